//! `webhooks send`: a delivery waiting for a retry is sent now, once — through the claim, so
//! a second `send` at the same moment sends nothing more, and a replaced decision is ended
//! `superseded`, never sent. The real binary against a real receiver.

use std::process::{Command, Output};
use std::time::Duration;

use delivery::Clock;
use delivery::dispatch::dispatch_ids;
use serde_json::Value;
use uuid::Uuid;

use super::cli::{code, json, text};
use crate::superseded::decide;
use crate::support::receiver::refusing_url;
use crate::support::scratch::webhooks_binary;
use crate::support::{Receiver, Reply, SIGNING_SECRET, TOKEN, TestDb, deps};

/// Runs `webhooks args…` configured to send to `webhook_url`.
pub(super) async fn webhooks_sending(db: &TestDb, webhook_url: &str, args: &[&str]) -> Output {
    let mut command = Command::new(webhooks_binary());
    command
        .args(args)
        .env_clear()
        .env("DATABASE_URL", &db.url)
        .env("WEBHOOK_URL", webhook_url)
        .env("WEBHOOK_AUTH_TOKEN", TOKEN)
        .env("WEBHOOK_SIGNING_SECRET", SIGNING_SECRET)
        .env("RUST_LOG", "warn");
    tokio::task::spawn_blocking(move || command.output().expect("run webhooks"))
        .await
        .expect("command task")
}

/// A delivery whose first attempt failed (the receiver was down): retrying, its next attempt
/// five minutes away.
async fn retrying(db: &TestDb, id: Uuid) {
    let down = deps(db, &refusing_url().await);
    dispatch_ids(&down, &[id], Clock::System, Duration::ZERO)
        .await
        .expect("first attempt");
    let row = db.delivery(id).await;
    assert_eq!((row.status.as_str(), row.attempt_count), ("retrying", 1));
    assert!(row.next_retry_at > Some(chrono::Utc::now() + chrono::Duration::minutes(4)));
}

fn ids(report: &Value, key: &str) -> Vec<String> {
    report[key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().or_else(|| v["id"].as_str()).map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_retrying_delivery_is_sent_now_and_only_once() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let (_, id) = db.booking_with_delivery().await;
    retrying(&db, id).await;
    let wanted = id.to_string();

    // Two operators send it at the same moment: the claim's lease lets one of them send it.
    let args = ["send", wanted.as_str(), "--json"];
    let (first, second) = tokio::join!(
        webhooks_sending(&db, &receiver.url, &args),
        webhooks_sending(&db, &receiver.url, &args)
    );
    for out in [&first, &second] {
        assert_eq!(code(out), Some(0), "{}", text(&out.stderr));
    }
    let (first, second) = (json(&first), json(&second));
    let succeeded = ids(&first, "succeeded").len() + ids(&second, "succeeded").len();
    assert_eq!(succeeded, 1, "{first}\n{second}");

    let received = receiver.requests();
    assert_eq!(received.len(), 1, "sent once");
    assert_eq!(received[0].header("webhook-id"), wanted);
    let row = db.delivery(id).await;
    assert_eq!((row.status.as_str(), row.attempt_count), ("succeeded", 2));

    // Sent already: a later send says so and sends nothing.
    let again = webhooks_sending(&db, &receiver.url, &args).await;
    assert_eq!(code(&again), Some(0), "{}", text(&again.stderr));
    let again = json(&again);
    assert_eq!(
        again["unchanged"][0]["reason"], "already_succeeded",
        "{again}"
    );
    assert_eq!(receiver.requests().len(), 1);
}

#[tokio::test]
async fn send_retrying_ends_a_replaced_decision_superseded_and_sends_the_rest() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    // A tutor's request waiting for a retry, and an approval that a rejection replaced while
    // it waited.
    let (booking, request) = db.booking_with_delivery().await;
    retrying(&db, request).await;
    let approved = decide(&db, booking, "approved").await;
    retrying(&db, approved).await;
    let rejected = decide(&db, booking, "rejected").await;

    let out = webhooks_sending(&db, &receiver.url, &["send", "--retrying", "--json"]).await;
    assert_eq!(code(&out), Some(0), "{}", text(&out.stderr));
    let report = json(&out);
    assert_eq!(ids(&report, "succeeded"), [request.to_string()], "{report}");
    assert_eq!(
        ids(&report, "superseded"),
        [approved.to_string()],
        "{report}"
    );
    assert_eq!(
        report["superseded"][0]["supersededBy"],
        rejected.to_string()
    );
    let sent: Vec<String> = receiver
        .requests()
        .iter()
        .map(|r| r.header("webhook-id"))
        .collect();
    assert_eq!(sent, [request.to_string()], "the approval is never sent");
    assert_eq!(db.delivery(approved).await.status, "superseded");
    // The rejection was never attempted: --retrying leaves it to its dispatch.
    assert_eq!(db.delivery(rejected).await.status, "pending");
}
