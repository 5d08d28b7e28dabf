//! `webhooks receiver` against the engine's real signer over real HTTP: what it accepts,
//! rejects, deduplicates and fails on purpose, and the command line around it.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use delivery::config::Config;
use delivery::receiver::{
    Misbehaviour, Received, ReceiverEvent, ReceiverOptions, Verdict, Verifier,
};
use delivery::{AttemptResult, Clock, ErrorKind, Sender};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::support::scratch::webhooks_binary;
use crate::support::{SIGNING_SECRET, TOKEN, TestDb, deps_with};

/// Another valid key, for rotation and wrong-key cases.
const OTHER_SECRET: &str = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// A receiver on 127.0.0.1:0 serving in a task; what it logs arrives on `log`.
struct Running {
    url: String,
    log: mpsc::UnboundedReceiver<Received>,
    _stop: oneshot::Sender<()>,
}

impl Running {
    async fn start(secrets: &str, misbehaviour: Misbehaviour) -> Running {
        let options = ReceiverOptions {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            verifier: Verifier::new(TOKEN, secrets).expect("valid credentials"),
            misbehaviour,
        };
        let bound = delivery::receiver::bind(options).await.expect("bind");
        let url = format!(
            "http://{}/functions/v1/send-booking-notification",
            bound.local_addr().expect("address")
        );
        let (tx, log) = mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(bound.serve(tx, async {
            let _ = stopped.await;
        }));
        Running {
            url,
            log,
            _stop: stop,
        }
    }

    /// The record of the next request (a safety net of 10 s, not a timing assumption).
    async fn next(&mut self) -> Received {
        tokio::time::timeout(Duration::from_secs(10), self.log.recv())
            .await
            .expect("a request was logged")
            .expect("receiver running")
    }
}

/// The engine's own HTTP client, configured like production but for the given credentials
/// (the pool it comes with connects lazily and is never used).
fn sender(url: &str, token: &str, secret: &str, timeout_ms: &str) -> Sender {
    let env = [
        ("DATABASE_URL", "postgres://unused@127.0.0.1/unused"),
        ("WEBHOOK_URL", url),
        ("WEBHOOK_AUTH_TOKEN", token),
        ("WEBHOOK_SIGNING_SECRET", secret),
        ("WEBHOOK_TIMEOUT_MS", timeout_ms),
    ];
    let config = Config::from_lookup(|name| {
        env.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    })
    .expect("valid configuration");
    delivery::Deps::new(config).expect("deps").sender
}

fn payload(kind: &str) -> String {
    json!({"type": kind, "bookingId": Uuid::new_v4(), "email": "grace@example.com"}).to_string()
}

fn status_of(result: &AttemptResult) -> Option<u16> {
    match result {
        AttemptResult::Response { status, .. } => Some(*status),
        AttemptResult::Transport { .. } => None,
    }
}

#[tokio::test]
async fn a_signed_delivery_is_accepted_once_and_its_retry_is_a_duplicate() {
    let mut receiver = Running::start(SIGNING_SECRET, Misbehaviour::default()).await;
    let sender = sender(&receiver.url, TOKEN, SIGNING_SECRET, "5000");
    let (id, body) = (Uuid::new_v4(), payload("new_request"));

    let first = sender.send(id, &body, Utc::now()).await;
    let second = sender.send(id, &body, Utc::now()).await;

    assert_eq!(status_of(&first.result), Some(200));
    assert_eq!(
        status_of(&second.result),
        Some(200),
        "a duplicate is still a 2xx"
    );
    let seen = receiver.next().await;
    assert_eq!(seen.verdict, Verdict::Accepted);
    assert!(seen.signature_verified);
    assert_eq!(seen.webhook_id, Some(id.to_string()));
    assert_eq!(seen.webhook_type.as_deref(), Some("new_request"));
    assert_eq!(seen.recipient.as_deref(), Some("g***@example.com"));
    let line = seen.to_string();
    assert!(
        line.contains("200 accepted") && line.contains("signature ok"),
        "{line}"
    );
    assert!(!line.contains("grace@"), "the address is masked: {line}");
    let again = receiver.next().await;
    assert_eq!((again.status, again.verdict), (200, Verdict::Duplicate));
}

#[tokio::test]
async fn a_wrong_token_or_signing_key_is_refused_with_401_and_a_reason() {
    let mut receiver = Running::start(SIGNING_SECRET, Misbehaviour::default()).await;
    let body = payload("approved");

    let wrong_token = sender(&receiver.url, "not-the-token", SIGNING_SECRET, "5000")
        .send(Uuid::new_v4(), &body, Utc::now())
        .await;
    let wrong_key = sender(&receiver.url, TOKEN, OTHER_SECRET, "5000")
        .send(Uuid::new_v4(), &body, Utc::now())
        .await;
    let stale = sender(&receiver.url, TOKEN, SIGNING_SECRET, "5000")
        .send(
            Uuid::new_v4(),
            &body,
            Utc::now() - chrono::Duration::minutes(10),
        )
        .await;

    for (attempt, reason) in [
        (&wrong_token, "wrong bearer token"),
        (&wrong_key, "signature does not match"),
        (&stale, "more than 5 minutes old"),
    ] {
        let AttemptResult::Response {
            status, excerpt, ..
        } = &attempt.result
        else {
            panic!("expected a response, got {:?}", attempt.result);
        };
        assert_eq!(*status, 401);
        assert!(
            excerpt.contains(reason),
            "{excerpt:?} should say {reason:?}"
        );
        let seen = receiver.next().await;
        assert_eq!(seen.verdict, Verdict::Unauthorized);
        assert!(!seen.signature_verified);
        assert!(seen.detail.as_deref().is_some_and(|d| d.contains(reason)));
    }
}

#[tokio::test]
async fn during_key_rotation_a_request_signed_with_both_keys_is_accepted() {
    let mut receiver = Running::start(OTHER_SECRET, Misbehaviour::default()).await;
    let both = format!("{SIGNING_SECRET} {OTHER_SECRET}");

    let attempt = sender(&receiver.url, TOKEN, &both, "5000")
        .send(Uuid::new_v4(), &payload("rejected"), Utc::now())
        .await;

    assert_eq!(status_of(&attempt.result), Some(200));
    assert!(receiver.next().await.signature_verified);
}

#[tokio::test]
async fn a_body_outside_the_contract_is_a_400() {
    let mut receiver = Running::start(SIGNING_SECRET, Misbehaviour::default()).await;
    let sender = sender(&receiver.url, TOKEN, SIGNING_SECRET, "5000");

    let attempt = sender
        .send(Uuid::new_v4(), r#"{"type": "approved"}"#, Utc::now())
        .await;

    assert_eq!(status_of(&attempt.result), Some(400));
    let seen = receiver.next().await;
    assert_eq!(seen.verdict, Verdict::BadRequest);
    assert!(seen.signature_verified, "the signature was checked first");
}

#[tokio::test]
async fn fail_first_fails_n_verified_requests_with_retry_after_then_accepts() {
    let misbehaviour = Misbehaviour {
        fail_first: 2,
        retry_after: Some(7),
        ..Default::default()
    };
    let mut receiver = Running::start(SIGNING_SECRET, misbehaviour).await;
    let sender = sender(&receiver.url, TOKEN, SIGNING_SECRET, "5000");
    // A request that fails authentication does not count towards --fail-first.
    let _ = self::sender(&receiver.url, "nope", SIGNING_SECRET, "5000")
        .send(Uuid::new_v4(), &payload("approved"), Utc::now())
        .await;
    assert_eq!(receiver.next().await.verdict, Verdict::Unauthorized);

    let id = Uuid::new_v4();
    let mut results = Vec::new();
    for _ in 0..3 {
        results.push(
            sender
                .send(id, &payload("approved"), Utc::now())
                .await
                .result,
        );
    }

    assert_eq!(
        results[0],
        AttemptResult::Response {
            status: 503,
            retry_after: Some(Duration::from_secs(7)),
            excerpt: "failing: --fail-first 2: 1 of 2".into()
        }
    );
    assert_eq!(status_of(&results[1]), Some(503));
    assert_eq!(status_of(&results[2]), Some(200));
    let verdicts = [
        receiver.next().await.verdict,
        receiver.next().await.verdict,
        receiver.next().await.verdict,
    ];
    assert_eq!(
        verdicts,
        [
            Verdict::FailedOnPurpose,
            Verdict::FailedOnPurpose,
            Verdict::Accepted
        ]
    );
}

#[tokio::test]
async fn a_delay_longer_than_the_senders_timeout_is_a_timeout() {
    let misbehaviour = Misbehaviour {
        delay: Duration::from_secs(30),
        ..Default::default()
    };
    let receiver = Running::start(SIGNING_SECRET, misbehaviour).await;

    let attempt = sender(&receiver.url, TOKEN, SIGNING_SECRET, "200")
        .send(Uuid::new_v4(), &payload("approved"), Utc::now())
        .await;

    assert!(
        matches!(
            attempt.result,
            AttemptResult::Transport {
                kind: ErrorKind::Timeout,
                ..
            }
        ),
        "{:?}",
        attempt.result
    );
}

#[tokio::test]
async fn the_engine_retries_a_receiver_that_fails_first_then_delivers_once() {
    let db = TestDb::new().await;
    let misbehaviour = Misbehaviour {
        fail_first: 1,
        ..Default::default()
    };
    let mut receiver = Running::start(SIGNING_SECRET, misbehaviour).await;
    // A one-second schedule: the retry is due 1 s after the failure. (The receiver checks the
    // signed timestamp, so moving the clock minutes ahead would sign requests it must refuse.)
    let deps = deps_with(&db, &receiver.url, &[("WEBHOOK_RETRY_SCHEDULE", "1s")]);
    let (_, id) = db.booking_with_delivery().await;
    let now = Utc::now();

    let report =
        delivery::dispatch::handle(json!({ "deliveryId": id }), &deps, Clock::Fixed(now), None)
            .await
            .expect("dispatch");
    assert_eq!(report.retrying, vec![id]);
    let sweep_options = delivery::sweep::SweepOptions {
        batch_size: 10,
        budget: Duration::from_secs(30),
        deadline: None,
    };
    let later = Clock::Fixed(now + chrono::Duration::seconds(2));
    let swept = delivery::sweep::sweep(&deps, sweep_options, later)
        .await
        .expect("sweep");

    assert_eq!(swept.succeeded, 1);
    let (first, second) = (receiver.next().await, receiver.next().await);
    assert_eq!(
        (first.verdict, second.verdict),
        (Verdict::FailedOnPurpose, Verdict::Accepted)
    );
    assert_eq!(first.webhook_id, Some(id.to_string()));
    assert_eq!(
        second.webhook_id, first.webhook_id,
        "one webhook-id across retries"
    );
    assert_eq!(db.delivery(id).await.status, "succeeded");
}

#[tokio::test]
async fn the_command_prints_its_address_a_json_line_per_request_and_a_tally_on_sigterm() {
    let mut child = Command::new(webhooks_binary())
        .args(["receiver", "--port", "0", "--json", "--status", "400"])
        .env("WEBHOOK_AUTH_TOKEN", TOKEN)
        .env("WEBHOOK_SIGNING_SECRET", SIGNING_SECRET)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start webhooks receiver");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut next_event = move || -> ReceiverEvent {
        let line = lines.next().expect("a line").expect("readable");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?} is not an event: {e}"))
    };
    let ReceiverEvent::Listening { url } = next_event() else {
        panic!("the first line announces the address");
    };
    let id = Uuid::new_v4();

    let attempt = sender(&format!("{url}/hook"), TOKEN, SIGNING_SECRET, "5000")
        .send(id, &payload("new_request"), Utc::now())
        .await;
    assert_eq!(status_of(&attempt.result), Some(400));
    let ReceiverEvent::Request(seen) = next_event() else {
        panic!("one line per request");
    };
    assert_eq!(
        (seen.verdict, seen.webhook_id),
        (Verdict::FailedOnPurpose, Some(id.to_string()))
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let ReceiverEvent::Stopped { tally } = next_event() else {
        panic!("a tally on shutdown");
    };
    assert_eq!((tally.requests, tally.failed_on_purpose), (1, 1));
    assert!(child.wait().expect("exit").success());
}

#[test]
fn the_command_names_a_missing_credential_and_exits_non_zero() {
    let output = Command::new(webhooks_binary())
        .args(["receiver", "--port", "0"])
        .env_remove("WEBHOOK_AUTH_TOKEN")
        .env("WEBHOOK_SIGNING_SECRET", SIGNING_SECRET)
        .output()
        .expect("run webhooks receiver");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("WEBHOOK_AUTH_TOKEN: is required"),
        "{stderr}"
    );
}

#[tokio::test]
async fn decisions_carry_a_growing_sequence_and_an_older_one_arriving_late_is_discarded() {
    // The engine sends both decisions of one booking (in order: supersede off), each body
    // with its capture order as `sequence`.
    let db = TestDb::new().await;
    let capture = crate::support::Receiver::start(crate::support::Reply::status(200)).await;
    let engine = deps_with(&db, &capture.url, &[("WEBHOOK_SUPERSEDE", "off")]);
    let booking = db
        .insert_booking(Some("tutor@example.com"), Some("grace@example.com"))
        .await;
    let client = db.client().await;
    let mut decisions = Vec::new();
    for status in ["approved", "rejected"] {
        client
            .execute(
                "UPDATE booking_requests SET status = $2 WHERE id = $1",
                &[&booking, &status],
            )
            .await
            .expect("decide");
        let id = db.delivery_id(booking, status).await;
        let sent = delivery::dispatch::dispatch_ids(&engine, &[id], Clock::System, Duration::ZERO)
            .await
            .expect("dispatch");
        assert_eq!(sent.succeeded, vec![id]);
        decisions.push(id);
    }
    let bodies: Vec<(String, String, i64)> = capture
        .requests()
        .iter()
        .map(|r| {
            let sequence = r.json()["sequence"].as_i64().unwrap_or(-1);
            (r.header("webhook-id"), r.text(), sequence)
        })
        .collect();
    let (approved, rejected) = (&bodies[0], &bodies[1]);
    assert_eq!(approved.0, decisions[0].to_string());
    assert!(
        0 < approved.2 && approved.2 < rejected.2,
        "sequence grows: {} then {}",
        approved.2,
        rejected.2
    );

    // The approval's request outlived the engine's timeout and arrives after the rejection:
    // `webhooks receiver` answers 200 (nothing to retry) and does not apply it.
    let mut receiver = Running::start(SIGNING_SECRET, Misbehaviour::default()).await;
    let sender = sender(&receiver.url, TOKEN, SIGNING_SECRET, "5000");
    for (id, body, _) in [rejected, approved] {
        let id: Uuid = id.parse().expect("id");
        let sent = sender.send(id, body, Utc::now()).await;
        assert_eq!(status_of(&sent.result), Some(200));
    }
    let first = receiver.next().await;
    assert_eq!(
        (first.verdict, first.sequence),
        (Verdict::Accepted, Some(rejected.2))
    );
    let late = receiver.next().await;
    assert_eq!((late.status, late.verdict), (200, Verdict::Stale));
    assert!(
        late.to_string().contains(&format!("seq {}", approved.2)),
        "{late}"
    );
}
