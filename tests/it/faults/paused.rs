//! A `webhooks sweep` process stopped (SIGSTOP: a frozen container, a suspended laptop running
//! `webhooks listen`) for longer than its lease. Meanwhile the bookings are rejected and a
//! second worker supersedes the approvals and delivers the rejections. When the first one
//! resumes (SIGCONT), nothing stale reaches the receiver: the approvals it still held are given
//! back unsent, because their lease may have lapsed — checked on the boot clock right before
//! each send.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use delivery::Clock;
use delivery::sweep::{SweepOptions, sweep};
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::Figures;
use crate::support::scratch::webhooks_binary;
use crate::support::{Receiver, Reply, SIGNING_SECRET, TOKEN, TestDb, deps_with};

const BOOKINGS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_stopped_past_its_lease_sends_nothing_stale_when_it_resumes() {
    let db = TestDb::new().await;
    let client = db.client().await;
    let mut bookings = Vec::new();
    for _ in 0..BOOKINGS {
        let booking = db.insert_booking(None, Some("student@example.com")).await;
        set_status(&client, booking, "approved").await;
        bookings.push(booking);
    }
    // The first approval is held by the receiver (in flight) until the test lets it go.
    let gate = Arc::new(Semaphore::new(0));
    let receiver = Receiver::start(Reply::status(200)).await;
    receiver.script([Reply::status(200).held(gate.clone())]);
    // One at a time, short timeouts and lease margin: a lease of 4 × 0.5 s + 0.2 s.
    let mut child = Command::new(webhooks_binary())
        .args(["sweep", "--json"])
        .env("DATABASE_URL", &db.url)
        .env("WEBHOOK_URL", &receiver.url)
        .env("WEBHOOK_AUTH_TOKEN", TOKEN)
        .env("WEBHOOK_SIGNING_SECRET", SIGNING_SECRET)
        .env("WEBHOOK_SWEEP_CONCURRENCY", "1")
        .env("WEBHOOK_SWEEP_BATCH", BOOKINGS.to_string())
        .env("WEBHOOK_TIMEOUT_MS", "500")
        .env("WEBHOOK_LEASE_MARGIN_MS", "200")
        .env("RUST_LOG", "off")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start webhooks sweep");
    receiver.wait_for(1, Duration::from_secs(30)).await;
    signal(&child, "-STOP");

    // While it is stopped, the bookings are rejected, and a second worker, once the first
    // one's lease has expired on the database's clock, supersedes the approvals and delivers
    // the rejections.
    for booking in &bookings {
        set_status(&client, *booking, "rejected").await;
    }
    let deps = deps_with(&db, &receiver.url, &[]);
    let options = SweepOptions {
        batch_size: 100,
        budget: Duration::from_secs(60),
        deadline: None,
    };
    let later = Clock::Fixed(Utc::now() + chrono::Duration::minutes(10));
    let second = sweep(&deps, options, later).await.expect("second worker");
    assert_eq!(
        (second.superseded, second.succeeded),
        (BOOKINGS, BOOKINGS),
        "{second:?}"
    );
    // The first worker stays stopped past its lease on its own clock too (a stopped process
    // is the scenario: this wait is the fault, not a guess at timing).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    signal(&child, "-CONT");
    gate.add_permits(1);
    let output = tokio::task::spawn_blocking(move || {
        let status = child.wait();
        let mut out = String::new();
        if let Some(mut stdout) = child.stdout.take() {
            use std::io::Read as _;
            let _ = stdout.read_to_string(&mut out);
        }
        (status, out)
    })
    .await
    .expect("join");
    let (status, report) = output;
    assert!(status.expect("wait").success(), "{report}");
    let report: serde_json::Value = serde_json::from_str(&report).expect("report");

    // At the receiver, per booking: the approval that was on the wire before the stop, then
    // the rejection; no approval after a rejection.
    let arrived: Vec<(Uuid, String)> = receiver
        .requests()
        .iter()
        .map(|r| {
            let body = r.json();
            let booking = body["bookingId"].as_str().unwrap_or_default().parse();
            (
                booking.unwrap_or_default(),
                body["type"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let mut stale = 0;
    for booking in &bookings {
        let mine: Vec<&str> = arrived
            .iter()
            .filter(|(b, _)| b == booking)
            .map(|(_, t)| t.as_str())
            .collect();
        let rejected_at = mine.iter().position(|t| *t == "rejected");
        assert!(rejected_at.is_some(), "{booking}: {mine:?}");
        stale += mine
            .iter()
            .skip(rejected_at.unwrap_or(0))
            .filter(|t| **t == "approved")
            .count();
    }
    assert_eq!(report["returned"], BOOKINGS - 1, "{report}");
    assert_eq!(report["leaseLost"], 1, "the approval in flight: {report}");
    let figures = Figures {
        runs: 2,
        faults: 1,
        deliveries: BOOKINGS,
        lost: 0,
        duplicates: stale,
    };
    figures.report("sweep_stopped_past_its_lease");
    assert_eq!(
        stale, 0,
        "an approval reached the receiver after its rejection: {arrived:?}"
    );
    // Attempt numbers stay unique per delivery although two workers attempted the first one.
    assert_eq!(
        db.count(
            "SELECT count(*) FROM (SELECT delivery_id, attempt FROM webhook_attempts \
             GROUP BY 1, 2 HAVING count(*) > 1) d"
        )
        .await,
        0
    );
}

async fn set_status(client: &tokio_postgres::Client, booking: Uuid, status: &str) {
    client
        .execute(
            "UPDATE booking_requests SET status = $2 WHERE id = $1",
            &[&booking, &status],
        )
        .await
        .expect("status");
}

fn signal(child: &std::process::Child, which: &str) {
    let sent = Command::new("kill")
        .args([which, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success(), "kill {which}");
}
