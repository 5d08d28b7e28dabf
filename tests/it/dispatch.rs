//! Immediate dispatch through the `dispatch` handler, called directly, against a real
//! Postgres and a real HTTP receiver.

use std::time::Duration;

use chrono::Utc;
use delivery::dispatch::{DispatchEvent, dispatch_ids};
use delivery::{Clock, Error};
use serde_json::json;
use uuid::Uuid;

use crate::support::receiver::refusing_url;
use crate::support::state::same_instant;
use crate::support::{Receiver, Reply, SIGNING_SECRET, TOKEN, TestDb, deps, deps_with};

async fn dispatch(
    deps: &delivery::Deps,
    id: Uuid,
    clock: Clock,
) -> delivery::dispatch::DispatchReport {
    delivery::dispatch::handle(json!({ "deliveryId": id }), deps, clock, None)
        .await
        .expect("dispatch runs")
}

#[tokio::test]
async fn success_records_succeeded_one_attempt_and_an_email_log() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let deps = deps(&db, &receiver.url);
    let (booking, id) = db.booking_with_delivery().await;
    let now = Utc::now();

    let report = dispatch(&deps, id, Clock::Fixed(now)).await;

    assert_eq!(report.succeeded, vec![id]);
    assert_eq!(report.counts.succeeded, 1);
    let row = db.delivery(id).await;
    assert_eq!(
        (row.status.as_str(), row.attempt_count, row.last_status_code),
        ("succeeded", 1, Some(200))
    );
    assert!(row.resolved_at.is_some_and(|at| same_instant(at, now)));
    assert_eq!(
        (row.next_retry_at, row.locked_until),
        (None, None),
        "final and lease released"
    );
    let attempts = db.attempts(id).await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(
        (
            attempts[0].attempt,
            attempts[0].status_code,
            attempts[0].error_kind.clone()
        ),
        (1, Some(200), None)
    );
    assert_eq!(receiver.requests().len(), 1);
    let client = db.pool.get().await.expect("connection");
    let log = client
        .query_one("SELECT booking_id, recipient_email, webhook_type, attempts FROM email_logs WHERE delivery_id = $1", &[&id])
        .await
        .expect("one email_logs row");
    assert_eq!(log.get::<_, Uuid>(0), booking);
    assert_eq!(log.get::<_, String>(1), "tutor@example.com");
    assert_eq!(
        (log.get::<_, String>(2), log.get::<_, i32>(3)),
        ("new_request".to_owned(), 1)
    );
}

#[tokio::test]
async fn the_request_is_signed_authenticated_and_passes_the_reference_verifier() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(204)).await;
    let deps = deps(&db, &receiver.url);
    let (booking, id) = db.booking_with_delivery().await;

    dispatch(&deps, id, Clock::System).await;

    let requests = receiver.requests();
    let request = &requests[0];
    assert_eq!(request.header("content-type"), "application/json");
    assert_eq!(request.header("authorization"), format!("Bearer {TOKEN}"));
    assert_eq!(request.header("webhook-id"), id.to_string());
    let body: serde_json::Value = serde_json::from_slice(&request.body).expect("JSON body");
    // The seed's three fields, and the capture order the receiver may keep decisions in.
    let sequence: i64 = db
        .count(&format!(
            "SELECT capture_seq FROM webhook_deliveries WHERE id = '{id}'"
        ))
        .await;
    assert_eq!(
        body,
        json!({"type": "new_request", "bookingId": booking, "email": "tutor@example.com", "sequence": sequence})
    );
    let stored: String = db
        .pool
        .get()
        .await
        .expect("c")
        .query_one(
            "SELECT payload::text FROM webhook_deliveries WHERE id = $1",
            &[&id],
        )
        .await
        .expect("row")
        .get(0);
    assert_eq!(
        request.text(),
        format!(
            "{}, \"sequence\": {sequence}}}",
            stored.strip_suffix('}').unwrap_or_default()
        ),
        "the body is the stored payload, byte for byte, and the sequence"
    );

    // The Standard Webhooks reference implementation (another team's code) must accept it.
    let verifier = standardwebhooks::Webhook::new(SIGNING_SECRET).expect("reference verifier");
    verifier
        .verify(&request.body, &request.headers)
        .expect("signature verifies");
    let mut tampered = request.body.to_vec();
    tampered[2] ^= 1;
    assert!(
        verifier.verify(&tampered, &request.headers).is_err(),
        "a changed body must not verify"
    );
    let other =
        standardwebhooks::Webhook::new("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAA").expect("verifier");
    assert!(
        other.verify(&request.body, &request.headers).is_err(),
        "another key must not verify"
    );
}

#[tokio::test]
async fn a_503_schedules_a_retry_five_minutes_later() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(503).body("upstream down")).await;
    let deps = deps(&db, &receiver.url);
    let (_, id) = db.booking_with_delivery().await;
    let now = Utc::now();

    let report = dispatch(&deps, id, Clock::Fixed(now)).await;

    assert_eq!(report.retrying, vec![id]);
    let row = db.delivery(id).await;
    assert_eq!(
        (row.status.as_str(), row.attempt_count, row.last_status_code),
        ("retrying", 1, Some(503))
    );
    assert!(
        row.next_retry_at
            .is_some_and(|at| same_instant(at, now + chrono::Duration::minutes(5))),
        "{row:?}"
    );
    assert_eq!(row.last_error.as_deref(), Some("HTTP 503: upstream down"));
    assert_eq!((row.resolved_at, row.locked_until), (None, None));
    let attempts = db.attempts(id).await;
    assert_eq!(attempts[0].error_kind.as_deref(), Some("http_5xx"));
    let failures = db
        .count("SELECT count(*) FROM webhook_failures WHERE status = 'retrying'")
        .await;
    assert_eq!(failures, 1, "the seed's view shows it");
}

#[tokio::test]
async fn jitter_spreads_retries_but_never_earlier_than_scheduled() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(500)).await;
    let deps = deps_with(&db, &receiver.url, &[("WEBHOOK_RETRY_JITTER", "0.1")]);
    let (_, id) = db.booking_with_delivery().await;
    let now = Utc::now();
    dispatch(&deps, id, Clock::Fixed(now)).await;
    let due = db.delivery(id).await.next_retry_at.expect("scheduled");
    assert!(
        due >= now + chrono::Duration::minutes(5) && due <= now + chrono::Duration::seconds(330),
        "{due} vs {now}"
    );
}

#[tokio::test]
async fn a_400_fails_at_once_with_the_reason() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(400).body("{\"error\":\"invalid email\"}")).await;
    let deps = deps(&db, &receiver.url);
    let (_, id) = db.booking_with_delivery().await;

    let report = dispatch(&deps, id, Clock::System).await;

    assert_eq!(report.failed, vec![id]);
    let row = db.delivery(id).await;
    assert_eq!(
        (row.status.as_str(), row.attempt_count, row.next_retry_at),
        ("failed", 1, None)
    );
    assert!(row.resolved_at.is_some());
    assert_eq!(
        row.last_error.as_deref(),
        Some("HTTP 400: {\"error\":\"invalid email\"} (permanent, not retried)")
    );
    assert_eq!(
        db.attempts(id).await[0].error_kind.as_deref(),
        Some("http_4xx")
    );
}

#[tokio::test]
async fn retry_after_on_a_429_sets_the_next_attempt_and_counts_as_an_attempt() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(429).header("retry-after", "120")).await;
    let deps = deps(&db, &receiver.url);
    let (_, id) = db.booking_with_delivery().await;
    let now = Utc::now();

    dispatch(&deps, id, Clock::Fixed(now)).await;

    let row = db.delivery(id).await;
    assert_eq!((row.status.as_str(), row.attempt_count), ("retrying", 1));
    assert!(
        row.next_retry_at
            .is_some_and(|at| same_instant(at, now + chrono::Duration::seconds(120))),
        "{row:?}"
    );
}

#[tokio::test]
async fn retry_after_is_capped() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(503).header("retry-after", "86400")).await;
    let deps = deps_with(&db, &receiver.url, &[("WEBHOOK_RETRY_AFTER_MAX", "10m")]);
    let (_, id) = db.booking_with_delivery().await;
    let now = Utc::now();
    dispatch(&deps, id, Clock::Fixed(now)).await;
    let row = db.delivery(id).await;
    assert!(
        row.next_retry_at
            .is_some_and(|at| same_instant(at, now + chrono::Duration::minutes(10))),
        "{row:?}"
    );
}

#[tokio::test]
async fn a_receiver_slower_than_the_timeout_is_retried_as_a_timeout() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200).slow(Duration::from_secs(5))).await;
    let deps = deps_with(&db, &receiver.url, &[("WEBHOOK_TIMEOUT_MS", "200")]);
    let (_, id) = db.booking_with_delivery().await;

    let report = dispatch(&deps, id, Clock::System).await;

    assert_eq!(report.retrying, vec![id]);
    let attempts = db.attempts(id).await;
    assert_eq!(
        (attempts[0].error_kind.as_deref(), attempts[0].status_code),
        (Some("timeout"), None)
    );
    let row = db.delivery(id).await;
    assert!(
        row.last_error
            .as_deref()
            .is_some_and(|e| e.starts_with("timeout:")),
        "{row:?}"
    );
    assert!(
        !row.last_error.unwrap_or_default().contains("127.0.0.1"),
        "the URL is not in the error"
    );
}

#[tokio::test]
async fn a_refused_connection_is_retried_as_a_connect_error() {
    let db = TestDb::new().await;
    let deps = deps(&db, &refusing_url().await);
    let (_, id) = db.booking_with_delivery().await;

    let report = dispatch(&deps, id, Clock::System).await;

    assert_eq!(report.retrying, vec![id]);
    let attempts = db.attempts(id).await;
    assert_eq!(attempts[0].error_kind.as_deref(), Some("connect"));
    assert_eq!(db.delivery(id).await.status, "retrying");
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_fails_permanently() {
    let db = TestDb::new().await;
    let elsewhere = Receiver::start(Reply::status(200)).await;
    let receiver =
        Receiver::start(Reply::status(302).header("location", elsewhere.url.clone())).await;
    let deps = deps(&db, &receiver.url);
    let (_, id) = db.booking_with_delivery().await;

    let report = dispatch(&deps, id, Clock::System).await;

    assert_eq!(report.failed, vec![id]);
    assert!(
        elsewhere.requests().is_empty(),
        "the redirect target must never see the request"
    );
    let attempts = db.attempts(id).await;
    assert_eq!(
        (attempts[0].error_kind.as_deref(), attempts[0].status_code),
        (Some("redirect"), Some(302))
    );
    assert!(
        attempts[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("Location: http://")),
        "{attempts:?}"
    );
}

#[tokio::test]
async fn the_bearer_token_never_reaches_stored_errors() {
    let db = TestDb::new().await;
    let receiver =
        Receiver::start(Reply::status(401).body(format!("bad token {TOKEN}\n<html>"))).await;
    let deps = deps(&db, &receiver.url);
    let (_, id) = db.booking_with_delivery().await;
    dispatch(&deps, id, Clock::System).await;
    let error = db.delivery(id).await.last_error.unwrap_or_default();
    assert_eq!(
        error,
        "HTTP 401: bad token [redacted] <html> (permanent, not retried)"
    );
}

#[tokio::test]
async fn two_concurrent_dispatches_of_one_id_send_exactly_once() {
    let db = TestDb::new().await;
    // A slow answer keeps the first claim in flight while the second arrives.
    let receiver = Receiver::start(Reply::status(200).slow(Duration::from_millis(300))).await;
    let deps = deps(&db, &receiver.url);
    let (_, id) = db.booking_with_delivery().await;

    let (a, b) = tokio::join!(
        dispatch(&deps, id, Clock::System),
        dispatch(&deps, id, Clock::System)
    );

    assert_eq!(receiver.requests().len(), 1, "exactly one POST");
    assert_eq!(a.counts.succeeded + b.counts.succeeded, 1);
    assert_eq!(
        a.counts.unchanged + b.counts.unchanged,
        1,
        "the loser reports it in flight or done: {a:?} {b:?}"
    );
    assert_eq!(db.attempts(id).await.len(), 1);
}

/// Inserts a booking inside `tx` and returns its delivery id, visible to `tx` only.
async fn capture_uncommitted(tx: &tokio_postgres::Transaction<'_>) -> Uuid {
    tx.execute(
        "INSERT INTO booking_requests (tutor_email) VALUES ('t@example.com')",
        &[],
    )
    .await
    .expect("insert");
    tx.query_one("SELECT id FROM webhook_deliveries", &[])
        .await
        .expect("captured")
        .get(0)
}

#[tokio::test]
async fn a_dispatch_that_starts_before_the_commit_delivers_after_it() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let deps = deps_with(&db, &receiver.url, &[("WEBHOOK_DISPATCH_WAIT_MS", "10000")]);
    let mut client = db.client().await;
    let tx = client.transaction().await.expect("begin");
    let id = capture_uncommitted(&tx).await;

    // What RDS's aws_lambda.invoke does: the wake-up fires inside the transaction.
    let early = tokio::spawn({
        let deps = deps.clone();
        async move { dispatch(&deps, id, Clock::System).await }
    });
    // The dispatch cannot see the row until we commit, however long it looks.
    let invisible = dispatch_ids(&deps, &[id], Clock::System, Duration::ZERO)
        .await
        .expect("probe");
    assert_eq!(
        invisible.not_found,
        vec![id],
        "uncommitted rows are invisible"
    );
    tx.commit().await.expect("commit");

    let report = early.await.expect("dispatch task");
    assert_eq!(report.succeeded, vec![id]);
    assert_eq!(receiver.requests().len(), 1);
}

#[tokio::test]
async fn a_delivery_not_committed_within_the_wait_is_left_to_the_sweep() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let deps = deps_with(&db, &receiver.url, &[("WEBHOOK_DISPATCH_WAIT_MS", "100")]);
    let mut client = db.client().await;
    let tx = client.transaction().await.expect("begin");
    let id = capture_uncommitted(&tx).await;

    let report = dispatch(&deps, id, Clock::System).await;
    assert_eq!(
        (report.not_found.clone(), report.counts.not_found),
        (vec![id], 1)
    );
    tx.commit().await.expect("commit");
    assert!(receiver.requests().is_empty());

    let options = delivery::sweep::SweepOptions {
        batch_size: 10,
        budget: Duration::from_secs(60),
        deadline: None,
    };
    let swept = delivery::sweep::sweep(&deps, options, Clock::System)
        .await
        .expect("sweep");
    assert_eq!(swept.succeeded, 1, "the sweep picks it up");
    assert_eq!(db.delivery(id).await.status, "succeeded");
}

#[tokio::test]
async fn unknown_final_and_skipped_deliveries_are_reported_not_errors() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let deps = deps(&db, &receiver.url);
    let (_, id) = db.booking_with_delivery().await;
    dispatch(&deps, id, Clock::System).await;
    let skipped_booking = db.insert_booking(None, None).await;
    let skipped = db.delivery_id(skipped_booking, "new_request").await;
    let unknown = Uuid::new_v4();

    let again = dispatch(&deps, id, Clock::System).await;
    assert_eq!(again.unchanged.len(), 1);
    assert_eq!(
        serde_json::to_value(&again.unchanged[0]).expect("json"),
        json!({"id": id, "reason": "already_succeeded"})
    );
    assert_eq!(
        dispatch(&deps, skipped, Clock::System).await.skipped,
        vec![skipped]
    );
    assert_eq!(
        dispatch(&deps, unknown, Clock::System).await.not_found,
        vec![unknown]
    );
    assert_eq!(receiver.requests().len(), 1, "nothing else was sent");
}

#[tokio::test]
async fn a_retry_not_yet_due_is_left_alone() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(500)).await;
    let deps = deps(&db, &receiver.url);
    let (_, id) = db.booking_with_delivery().await;
    let now = Utc::now();
    dispatch(&deps, id, Clock::Fixed(now)).await;
    let report = dispatch(&deps, id, Clock::Fixed(now + chrono::Duration::minutes(1))).await;
    assert_eq!(
        serde_json::to_value(&report.unchanged).expect("json"),
        json!([{"id": id, "reason": "not_due"}])
    );
    assert_eq!(receiver.requests().len(), 1);
}

#[tokio::test]
async fn malformed_events_are_clear_errors() {
    let db = TestDb::new().await;
    let deps = deps(&db, "http://127.0.0.1:9/unused");
    for (event, expected) in [
        (
            json!({"deliveryId": "42"}),
            "invalid event: deliveryId must be a UUID string, got \"42\"",
        ),
        (json!("hello"), "invalid event: expected a JSON object"),
        (
            json!({"limit": -1}),
            "invalid event: limit must be an integer from 1 to 10000, got -1",
        ),
    ] {
        let err = delivery::dispatch::handle(event.clone(), &deps, Clock::System, None)
            .await
            .err();
        let text = err.as_ref().map(ToString::to_string).unwrap_or_default();
        assert!(text.starts_with(expected), "{event}: {text}");
        assert!(matches!(err, Some(Error::InvalidEvent(_))));
    }
    assert_eq!(
        DispatchEvent::parse(json!({"deliveryId": Uuid::nil()}), None).ok(),
        Some(DispatchEvent::One(Uuid::nil()))
    );
}

#[tokio::test]
async fn a_limit_dispatch_sends_never_attempted_deliveries_oldest_first() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let deps = deps(&db, &receiver.url);
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(db.booking_with_delivery().await.1);
    }
    let report = delivery::dispatch::handle(json!({"limit": 2}), &deps, Clock::System, None)
        .await
        .expect("dispatch");
    let mut sent = report.succeeded.clone();
    sent.sort();
    let mut oldest = ids[..2].to_vec();
    oldest.sort();
    assert_eq!(sent, oldest);
    assert_eq!(db.delivery(ids[2]).await.status, "pending");
    let rest = delivery::dispatch::handle(json!({}), &deps, Clock::System, None)
        .await
        .expect("dispatch");
    assert_eq!(rest.succeeded, vec![ids[2]]);
    assert_eq!(receiver.requests().len(), 3);
}
