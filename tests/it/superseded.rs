//! Superseded notifications (issue 15): a status notification that a later one of the same
//! booking replaced before it was sent ends `superseded` and never reaches the receiver; one
//! already sent is history and the later one follows it; `WEBHOOK_SUPERSEDE=off` sends every
//! one, in order; replay never resurrects a superseded delivery. Real Postgres, real
//! receivers, time passed in. "Receiver down" is the notification service refusing
//! connections (the workers' URL points at a closed port), "up" the recording receiver.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use delivery::dispatch::{DispatchReport, dispatch_ids};
use delivery::replay::{Requeue, requeue};
use delivery::sweep::{SweepOptions, SweepReport, sweep};
use delivery::{Clock, Deps};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::support::receiver::{Received, refusing_url};
use crate::support::state::same_instant;
use crate::support::{Receiver, Reply, TestDb, deps, deps_with};

fn minutes(n: i64) -> chrono::Duration {
    chrono::Duration::minutes(n)
}

/// Sets the booking's status (the app's UPDATE) and returns the delivery it captured.
pub(crate) async fn decide(db: &TestDb, booking: Uuid, status: &str) -> Uuid {
    let client = db.pool.get().await.expect("connection");
    client
        .execute(
            "UPDATE booking_requests SET status = $2 WHERE id = $1",
            &[&booking, &status],
        )
        .await
        .expect("status change");
    newest_decision(db, booking).await
}

/// The newest status notification of `booking`.
async fn newest_decision(db: &TestDb, booking: Uuid) -> Uuid {
    let client = db.pool.get().await.expect("connection");
    client
        .query_one(
            "SELECT id FROM webhook_deliveries
              WHERE booking_id = $1 AND webhook_type IN ('approved', 'rejected')
              ORDER BY capture_seq DESC LIMIT 1",
            &[&booking],
        )
        .await
        .expect("a status notification")
        .get(0)
}

async fn superseded_by(db: &TestDb, id: Uuid) -> Option<Uuid> {
    let client = db.pool.get().await.expect("connection");
    client
        .query_one(
            "SELECT superseded_by FROM webhook_deliveries WHERE id = $1",
            &[&id],
        )
        .await
        .expect("delivery")
        .get(0)
}

async fn sweep_at(deps: &Deps, at: DateTime<Utc>) -> SweepReport {
    let options = SweepOptions {
        batch_size: deps.config.sweep_batch,
        budget: Duration::from_secs(60),
        deadline: None,
    };
    sweep(deps, options, Clock::Fixed(at))
        .await
        .expect("sweep runs")
}

async fn dispatch_at(deps: &Deps, ids: &[Uuid], at: DateTime<Utc>) -> DispatchReport {
    dispatch_ids(deps, ids, Clock::Fixed(at), Duration::ZERO)
        .await
        .expect("dispatch runs")
}

/// `(webhook-id, type)` of every request, in arrival order.
fn seen(requests: &[Received]) -> Vec<(Uuid, String)> {
    requests
        .iter()
        .map(|r| {
            let body: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON body");
            (
                r.header("webhook-id").parse().expect("webhook-id"),
                body["type"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn ids_seen(receiver: &Receiver) -> Vec<Uuid> {
    seen(&receiver.requests())
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

#[tokio::test]
async fn a_rejection_captured_while_the_approval_retries_supersedes_it() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let up = deps(&db, &receiver.url);
    let down = deps(&db, &refusing_url().await);
    let t0 = Utc::now();
    let (booking, new_request) = db.booking_with_delivery().await;

    // The service is down: the request and the approval both start retrying.
    assert_eq!(
        dispatch_at(&down, &[new_request], t0).await.retrying,
        vec![new_request]
    );
    let approved = decide(&db, booking, "approved").await;
    assert_eq!(
        dispatch_at(&down, &[approved], t0 + minutes(1))
            .await
            .retrying,
        vec![approved]
    );
    // Rejected while "approved" waits for its retry (due at +6 min).
    let rejected = decide(&db, booking, "rejected").await;
    assert_eq!(
        dispatch_at(&down, &[rejected], t0 + minutes(3))
            .await
            .retrying,
        vec![rejected]
    );

    // The service is back; the sweep takes everything due.
    let report = sweep_at(&up, t0 + minutes(10)).await;
    assert_eq!(
        (report.processed, report.succeeded, report.superseded),
        (2, 2, 1),
        "{report:?}"
    );
    assert_eq!(
        seen(&receiver.requests()),
        vec![
            (new_request, "new_request".to_owned()),
            (rejected, "rejected".to_owned())
        ],
        "the receiver never sees the approval"
    );
    let row = db.delivery(approved).await;
    assert_eq!(
        (row.status.as_str(), row.next_retry_at, row.locked_until),
        ("superseded", None, None)
    );
    assert!(
        row.resolved_at
            .is_some_and(|at| same_instant(at, t0 + minutes(10)))
    );
    assert_eq!(superseded_by(&db, approved).await, Some(rejected));
    assert_eq!(db.attempts(approved).await.len(), 1, "only the refused one");
    assert_eq!(db.delivery(rejected).await.status, "succeeded");
    assert_eq!(
        db.delivery(new_request).await.status,
        "succeeded",
        "new_request is never superseded by a status change"
    );

    // What replaced it is visible in webhook_failures (the approval failed once).
    let client = db.pool.get().await.expect("connection");
    let failure = client
        .query_one(
            "SELECT status, last_error FROM webhook_failures WHERE id = $1",
            &[&approved],
        )
        .await
        .expect("listed");
    let (status, last_error): (String, String) = (failure.get(0), failure.get(1));
    assert_eq!(status, "superseded");
    assert!(
        last_error.starts_with(&format!("superseded by {rejected} (last error: ")),
        "{last_error}"
    );

    // Dispatching it by id reports why it is not sent, and sends nothing.
    let again = dispatch_at(&up, &[approved], t0 + minutes(11)).await;
    assert_eq!(again.counts.superseded, 1);
    assert_eq!(
        serde_json::to_value(&again.superseded).expect("json"),
        serde_json::json!([{ "id": approved, "supersededBy": rejected }])
    );
    assert_eq!(receiver.requests().len(), 2);
    // Nothing is left to do.
    let later = sweep_at(&up, t0 + minutes(120)).await;
    assert_eq!((later.processed, later.superseded), (0, 0));
}

#[tokio::test]
async fn the_rejection_is_sent_at_once_and_the_stale_approval_is_superseded_at_its_retry() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let up = deps(&db, &receiver.url);
    let down = deps(&db, &refusing_url().await);
    let t0 = Utc::now();
    let booking = db.insert_booking(None, Some("student@example.com")).await;
    let approved = decide(&db, booking, "approved").await;
    dispatch_at(&down, &[approved], t0).await;

    // The service is back before the approval's retry: the rejection does not wait for it.
    let rejected = decide(&db, booking, "rejected").await;
    let now = dispatch_at(&up, &[rejected], t0 + minutes(2)).await;
    assert_eq!(now.succeeded, vec![rejected]);
    assert_eq!(db.delivery(approved).await.status, "retrying");

    let retry = sweep_at(&up, t0 + minutes(5)).await;
    assert_eq!((retry.processed, retry.superseded), (0, 1));
    assert_eq!(superseded_by(&db, approved).await, Some(rejected));
    assert_eq!(ids_seen(&receiver), vec![rejected]);
}

#[tokio::test]
async fn a_rejection_captured_while_the_approval_is_in_flight_follows_it() {
    let db = TestDb::new().await;
    let gate = Arc::new(Semaphore::new(0));
    let receiver = Receiver::start(Reply::status(200)).await;
    receiver.script([Reply::status(200).held(gate.clone())]);
    let worker = deps(&db, &receiver.url);
    let other = deps(&db, &receiver.url);
    let t0 = Utc::now();
    let booking = db.insert_booking(None, Some("student@example.com")).await;
    let approved = decide(&db, booking, "approved").await;

    // One worker sends the approval; the receiver holds the request (leased, in flight).
    let sending = tokio::spawn(async move { dispatch_at(&worker, &[approved], t0).await });
    receiver.wait_for(1, Duration::from_secs(10)).await;

    // Rejected meanwhile: another worker must not send it before the approval's answer.
    let rejected = decide(&db, booking, "rejected").await;
    let waiting = dispatch_at(&other, &[rejected], t0 + chrono::Duration::seconds(1)).await;
    assert_eq!(
        serde_json::to_value(&waiting.unchanged).expect("json"),
        serde_json::json!([{ "id": rejected, "reason": "waiting_for_earlier" }])
    );
    assert_eq!(receiver.requests().len(), 1);

    // The approval's answer arrives: it was sent, so it stays succeeded, and the worker that
    // recorded it hands on to the rejection at once.
    gate.add_permits(1);
    let report = sending.await.expect("dispatch task");
    assert_eq!(report.succeeded, vec![approved, rejected]);
    assert_eq!(
        seen(&receiver.requests()),
        vec![
            (approved, "approved".to_owned()),
            (rejected, "rejected".to_owned())
        ]
    );
    let row = db.delivery(approved).await;
    assert_eq!(
        row.status, "succeeded",
        "a notification already sent is history"
    );
    assert_eq!(superseded_by(&db, approved).await, None);
    assert_eq!(db.delivery(rejected).await.status, "succeeded");
}

#[tokio::test]
async fn approve_reject_approve_sends_only_the_last() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let up = deps(&db, &receiver.url);
    let t0 = Utc::now();
    let booking = db.insert_booking(None, Some("student@example.com")).await;
    let first = decide(&db, booking, "approved").await;
    let rejected = decide(&db, booking, "rejected").await;
    let last = decide(&db, booking, "approved").await;

    // All three wake-ups arrive together (or in any order): only the current decision goes.
    let report = dispatch_at(&up, &[rejected, first, last], t0).await;
    assert_eq!(report.succeeded, vec![last]);
    let mut superseded: Vec<(Uuid, Uuid)> = report
        .superseded
        .iter()
        .map(|r| (r.id, r.superseded_by))
        .collect();
    superseded.sort();
    let mut expected = vec![(first, last), (rejected, last)];
    expected.sort();
    assert_eq!(superseded, expected, "both name the newest decision");
    assert_eq!(
        seen(&receiver.requests()),
        vec![(last, "approved".to_owned())]
    );
    for id in [first, rejected] {
        let row = db.delivery(id).await;
        assert_eq!((row.status.as_str(), row.attempt_count), ("superseded", 0));
    }
    // Ids are never reused: the one sent is the last capture's own.
    assert_ne!(first, last);
}

#[tokio::test]
async fn approve_reject_approve_through_the_sweep_sends_only_the_last() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let up = deps(&db, &receiver.url);
    let down = deps(&db, &refusing_url().await);
    let t0 = Utc::now();
    let booking = db.insert_booking(None, Some("student@example.com")).await;
    let mut decisions = Vec::new();
    for (i, status) in ["approved", "rejected", "approved"].into_iter().enumerate() {
        let id = decide(&db, booking, status).await;
        dispatch_at(&down, &[id], t0 + minutes(i as i64)).await;
        decisions.push(id);
    }
    let report = sweep_at(&up, t0 + minutes(10)).await;
    assert_eq!((report.succeeded, report.superseded), (1, 2), "{report:?}");
    assert_eq!(ids_seen(&receiver), vec![decisions[2]]);
    for id in &decisions[..2] {
        assert_eq!(superseded_by(&db, *id).await, Some(decisions[2]));
    }
}

#[tokio::test]
async fn with_supersede_off_both_are_sent_in_order() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let off = [("WEBHOOK_SUPERSEDE", "off")];
    let up = deps_with(&db, &receiver.url, &off);
    let down = deps_with(&db, &refusing_url().await, &off);
    let t0 = Utc::now();
    let booking = db.insert_booking(None, Some("student@example.com")).await;
    let approved = decide(&db, booking, "approved").await;
    dispatch_at(&down, &[approved], t0).await;

    // In order means the rejection waits while the approval is unresolved — even with the
    // service up.
    let rejected = decide(&db, booking, "rejected").await;
    let waiting = dispatch_at(&up, &[rejected], t0 + minutes(1)).await;
    assert_eq!(
        serde_json::to_value(&waiting.unchanged).expect("json"),
        serde_json::json!([{ "id": rejected, "reason": "waiting_for_earlier" }])
    );
    assert!(receiver.requests().is_empty());

    // The approval's retry succeeds, and the rejection follows in the same sweep.
    let report = sweep_at(&up, t0 + minutes(10)).await;
    assert_eq!((report.succeeded, report.superseded), (2, 0), "{report:?}");
    assert_eq!(
        seen(&receiver.requests()),
        vec![
            (approved, "approved".to_owned()),
            (rejected, "rejected".to_owned())
        ]
    );
}

#[tokio::test]
async fn with_supersede_off_a_later_notification_waits_until_the_earlier_one_is_final() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let off = [("WEBHOOK_SUPERSEDE", "off")];
    let up = deps_with(&db, &receiver.url, &off);
    // Every attempt counts (no breaker), so that the approval does fail for good.
    let down = deps_with(
        &db,
        &refusing_url().await,
        &[off[0], ("WEBHOOK_BREAKER_AFTER", "off")],
    );
    let t0 = Utc::now();
    let booking = db.insert_booking(None, Some("student@example.com")).await;
    let approved = decide(&db, booking, "approved").await;
    let rejected = decide(&db, booking, "rejected").await;
    // Attempts 1-4 of the approval at +0, +5, +20, +65 all refused; nothing else is sent
    // before it is final.
    dispatch_at(&down, &[approved, rejected], t0).await;
    for at in [5, 20] {
        let report = sweep_at(&down, t0 + minutes(at)).await;
        assert_eq!((report.processed, report.retrying), (1, 1), "+{at}");
        assert_eq!(db.delivery(rejected).await.attempt_count, 0);
    }
    // The approval fails for good; its worker hands on to the rejection (refused too).
    let last = sweep_at(&down, t0 + minutes(65)).await;
    assert_eq!((last.failed, last.retrying), (1, 1), "{last:?}");
    let approval_done = db.delivery(approved).await.resolved_at.expect("final");
    let first_rejection = db.attempts(rejected).await[0].started_at;
    assert!(first_rejection >= approval_done);
    // And the service is back.
    let report = sweep_at(&up, t0 + minutes(70)).await;
    assert_eq!(report.succeeded, 1);
    assert_eq!(ids_seen(&receiver), vec![rejected]);
    assert_eq!(db.delivery(approved).await.status, "failed");
}

#[tokio::test]
async fn replay_skips_superseded_and_replaced_deliveries_unless_asked() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let up = deps(&db, &receiver.url);
    let t0 = Utc::now();

    // Booking 1: the approval superseded while retrying.
    let down = deps(&db, &refusing_url().await);
    let one = db.insert_booking(None, Some("one@example.com")).await;
    let superseded = decide(&db, one, "approved").await;
    dispatch_at(&down, &[superseded], t0).await;
    let replacement = decide(&db, one, "rejected").await;
    dispatch_at(&up, &[replacement], t0).await;
    sweep_at(&up, t0 + minutes(5)).await;
    assert_eq!(db.delivery(superseded).await.status, "superseded");

    // Booking 2: the approval failed for good (404), then the booking was rejected.
    receiver.script([Reply::status(404)]);
    let two = db.insert_booking(None, Some("two@example.com")).await;
    let failed = decide(&db, two, "approved").await;
    assert_eq!(dispatch_at(&up, &[failed], t0).await.failed, vec![failed]);
    let current = decide(&db, two, "rejected").await;
    dispatch_at(&up, &[current], t0 + minutes(1)).await;

    // Booking 3: an ordinary failure, nothing replaced it.
    receiver.script([Reply::status(404)]);
    let three = db.insert_booking(None, Some("three@example.com")).await;
    let plain = decide(&db, three, "approved").await;
    assert_eq!(dispatch_at(&up, &[plain], t0).await.failed, vec![plain]);
    let before = receiver.requests().len();

    // Replay everything failed: the plain failure only; the replaced one is counted.
    let all = Requeue {
        max_retries: 3,
        ..Requeue::default()
    };
    let report = requeue(&up.pool, &all, Clock::Fixed(t0 + minutes(30)))
        .await
        .expect("replay");
    assert_eq!((report.requeued, report.replaced), (1, 1), "{report:?}");
    assert_eq!(db.delivery(failed).await.status, "failed");

    // By id, a superseded delivery is never resurrected, even when asked for explicitly.
    let explicit = Requeue {
        ids: Some(vec![superseded]),
        max_retries: 3,
        include_replaced: true,
        ..Requeue::default()
    };
    let report = requeue(&up.pool, &explicit, Clock::Fixed(t0 + minutes(30)))
        .await
        .expect("replay");
    assert_eq!((report.requeued, report.replaced), (0, 0));
    assert_eq!(db.delivery(superseded).await.status, "superseded");

    // The seed's call reports the same through SQL.
    let client = up.pool.get().await.expect("connection");
    let row = client
        .query_one(
            "SELECT * FROM retry_failed_webhooks(p_ids => $1)",
            &[&vec![failed]],
        )
        .await
        .expect("seed call");
    assert_eq!(
        (row.get::<_, i32>("requeued"), row.get::<_, i32>("replaced")),
        (0, 1)
    );

    let sent = sweep_at(&up, t0 + minutes(30)).await;
    assert_eq!((sent.succeeded, sent.superseded), (1, 0));
    assert_eq!(ids_seen(&receiver)[before..], [plain]);

    // Asked explicitly, the replaced one is sent — and is not superseded by the decision
    // that replaced it before the replay.
    let explicit = Requeue {
        ids: Some(vec![failed]),
        max_retries: 3,
        include_replaced: true,
        ..Requeue::default()
    };
    let report = requeue(&up.pool, &explicit, Clock::Fixed(t0 + minutes(40)))
        .await
        .expect("replay");
    assert_eq!((report.requeued, report.replaced), (1, 0));
    let sent = sweep_at(&up, t0 + minutes(40)).await;
    assert_eq!((sent.succeeded, sent.superseded), (1, 0));
    assert_eq!(ids_seen(&receiver).last(), Some(&failed));
    assert_eq!(db.delivery(superseded).await.status, "superseded");
}

#[tokio::test]
async fn an_explicitly_replayed_delivery_is_still_superseded_by_a_newer_decision() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let up = deps(&db, &receiver.url);
    let down = deps(&db, &refusing_url().await);
    let t0 = Utc::now();
    receiver.script([Reply::status(404)]);
    let booking = db.insert_booking(None, Some("student@example.com")).await;
    let failed = decide(&db, booking, "approved").await;
    dispatch_at(&up, &[failed], t0).await;
    let rejected = decide(&db, booking, "rejected").await;
    dispatch_at(&up, &[rejected], t0).await;

    let explicit = Requeue {
        ids: Some(vec![failed]),
        max_retries: 3,
        include_replaced: true,
        ..Requeue::default()
    };
    requeue(&up.pool, &explicit, Clock::Fixed(t0 + minutes(1)))
        .await
        .expect("replay");
    // The service is down for the replay, and the booking is approved again meanwhile.
    sweep_at(&down, t0 + minutes(1)).await;
    let newest = decide(&db, booking, "approved").await;
    dispatch_at(&up, &[newest], t0 + minutes(2)).await;
    let report = sweep_at(&up, t0 + minutes(10)).await;
    assert_eq!(report.superseded, 1);
    assert_eq!(superseded_by(&db, failed).await, Some(newest));
}

#[tokio::test]
async fn skipped_notifications_supersede_but_are_never_superseded() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let up = deps(&db, &receiver.url);
    let down = deps(&db, &refusing_url().await);
    let t0 = Utc::now();
    let client = db.pool.get().await.expect("connection");

    // Approved while the service is down; then the student's address is removed and the
    // booking rejected. The rejection cannot be sent, and the approval is no longer true.
    let booking = db.insert_booking(None, Some("student@example.com")).await;
    let approved = decide(&db, booking, "approved").await;
    dispatch_at(&down, &[approved], t0).await;
    client
        .execute(
            "UPDATE booking_requests SET student_email = NULL, status = 'rejected' WHERE id = $1",
            &[&booking],
        )
        .await
        .expect("reject");
    let rejected = newest_decision(&db, booking).await;
    assert_eq!(db.delivery(rejected).await.status, "skipped");
    let report = sweep_at(&up, t0 + minutes(10)).await;
    assert_eq!((report.processed, report.superseded), (0, 1));
    assert_eq!(superseded_by(&db, approved).await, Some(rejected));

    // The other way round: a skipped approval stays skipped, the later rejection is sent.
    let other = db.insert_booking(None, None).await;
    let skipped = decide(&db, other, "approved").await;
    client
        .execute(
            "UPDATE booking_requests SET student_email = 'late@example.com', status = 'rejected' WHERE id = $1",
            &[&other],
        )
        .await
        .expect("reject");
    let sent = newest_decision(&db, other).await;
    assert_eq!(dispatch_at(&up, &[sent], t0).await.succeeded, vec![sent]);
    let row = db.delivery(skipped).await;
    assert_eq!(row.status, "skipped");
    assert_eq!(superseded_by(&db, skipped).await, None);
    assert_eq!(ids_seen(&receiver), vec![sent]);
}

/// The claim protocol itself, statement by statement, on two connections: the rejection's
/// claim must see the approval's claim even before it commits.
#[tokio::test]
async fn a_claim_in_progress_on_the_approval_holds_back_the_rejection() {
    let db = TestDb::new().await;
    let booking = db.insert_booking(None, Some("student@example.com")).await;
    let approved = decide(&db, booking, "approved").await;
    let now = Utc::now();
    let lease = Duration::from_secs(60);

    // Worker 1 claims the approval; its transaction is still open.
    let one = db.client().await;
    one.batch_execute("BEGIN").await.expect("begin");
    let claimed = delivery::claim::claim_ids(&one, &[approved], Some(now), lease, true)
        .await
        .expect("claim");
    assert_eq!(claimed.to_send(), vec![approved]);

    // The booking is rejected (committed); worker 2 claims the rejection at once.
    let rejected = decide(&db, booking, "rejected").await;
    let two = db.client().await;
    let early = delivery::claim::claim_ids(&two, &[rejected], Some(now), lease, true).await;
    // Worker 1 commits (before any assertion: an open transaction would keep the test's
    // schema from being dropped).
    one.batch_execute("COMMIT").await.expect("commit");
    let early = early.expect("claim");
    assert!(
        early.is_empty(),
        "the approval's claim holds its row: {early:?}"
    );

    // The approval is leased, in flight: still not the rejection's turn.
    let leased = delivery::claim::claim_ids(&two, &[rejected], Some(now), lease, true)
        .await
        .expect("claim");
    assert!(leased.is_empty(), "the approval is in flight: {leased:?}");
    let states = two
        .query(
            delivery::sql::DELIVERY_STATES,
            &[&vec![rejected], &Some(now), &true],
        )
        .await
        .expect("states");
    assert!(states[0].get::<_, bool>("waiting"));

    // Its outcome is recorded (the lease released): now the rejection goes.
    two.execute(
        "UPDATE webhook_deliveries SET status = 'succeeded', next_retry_at = NULL,
                locked_until = NULL, resolved_at = $2, attempt_count = 1 WHERE id = $1",
        &[&approved, &now],
    )
    .await
    .expect("record");
    let turn = delivery::claim::claim_ids(&two, &[rejected], Some(now), lease, true)
        .await
        .expect("claim");
    assert_eq!(turn.to_send(), vec![rejected]);

    // Had the approval not been sent yet, the claim would have superseded it instead.
    let three = decide(&db, booking, "approved").await;
    let late = delivery::claim::claim_ids(&two, &[rejected, three], Some(now), lease, true)
        .await
        .expect("claim");
    assert!(
        late.is_empty(),
        "the rejection is leased now, and the approval waits for it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_racing_over_both_notifications_of_each_booking_never_reorder_them() {
    let db = TestDb::new().await;
    // Some latency keeps approvals in flight while rejections arrive.
    let receiver = Receiver::start(Reply::status(200).slow(Duration::from_millis(20))).await;
    const BOOKINGS: usize = 40;
    let mut bookings = Vec::new();
    let mut approvals = Vec::new();
    for _ in 0..BOOKINGS {
        let booking = db.insert_booking(None, Some("student@example.com")).await;
        approvals.push(decide(&db, booking, "approved").await);
        bookings.push(booking);
    }
    // For every booking at once, worker A dispatches the approval while worker B rejects the
    // booking and dispatches the rejection: two processes, each with its own pool and HTTP
    // client, and 80 tasks racing.
    let pool = [("WEBHOOK_DB_POOL_SIZE", "40")];
    let a = deps_with(&db, &receiver.url, &pool);
    let b = deps_with(&db, &receiver.url, &pool);
    let mut tasks = Vec::new();
    for (booking, approved) in bookings.iter().copied().zip(approvals.iter().copied()) {
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            dispatch_ids(&a, &[approved], Clock::System, Duration::ZERO)
                .await
                .expect("dispatch A");
            0
        }));
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            let client = b.pool.get().await.expect("connection");
            client
                .execute(
                    "UPDATE booking_requests SET status = 'rejected' WHERE id = $1",
                    &[&booking],
                )
                .await
                .expect("reject");
            let rejected: Uuid = client
                .query_one(
                    "SELECT id FROM webhook_deliveries
                      WHERE booking_id = $1 AND webhook_type = 'rejected'",
                    &[&booking],
                )
                .await
                .expect("captured")
                .get(0);
            drop(client);
            let report = dispatch_ids(&b, &[rejected], Clock::System, Duration::ZERO)
                .await
                .expect("dispatch B");
            usize::from(!report.unchanged.is_empty())
        }));
    }
    let mut waited = 0;
    for task in tasks {
        waited += task.await.expect("worker task");
    }
    // Whatever the sweep is still needed for (a hand-off missed by a few microseconds).
    let sweeper = deps(&db, &receiver.url);
    sweep(
        &sweeper,
        SweepOptions {
            batch_size: 100,
            budget: Duration::from_secs(60),
            deadline: None,
        },
        Clock::System,
    )
    .await
    .expect("sweep");

    let requests = seen(&receiver.requests());
    let client = db.pool.get().await.expect("connection");
    let (mut superseded, mut both) = (0, 0);
    for (booking, approved) in bookings.iter().zip(&approvals) {
        let rejected = newest_decision(&db, *booking).await;
        let order: Vec<Uuid> = requests
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| id == approved || *id == rejected)
            .collect();
        // The rejection is the last thing the receiver hears, exactly once.
        assert_eq!(
            order.last(),
            Some(&rejected),
            "booking {booking}: {order:?}"
        );
        assert_eq!(order.iter().filter(|id| **id == rejected).count(), 1);
        let status: String = client
            .query_one(
                "SELECT status FROM webhook_deliveries WHERE id = $1",
                &[approved],
            )
            .await
            .expect("approval")
            .get(0);
        match order.len() {
            // The approval never reached the receiver: it was superseded.
            1 => {
                assert_eq!(status, "superseded");
                superseded += 1;
            }
            // It was sent (before the rejection): history. And the rejection was not sent
            // before the approval's answer had come back.
            _ => {
                assert_eq!((status.as_str(), order[0]), ("succeeded", *approved));
                let answered = db.delivery(*approved).await.last_attempt_at.expect("sent");
                let followed = db.attempts(rejected).await[0].started_at;
                assert!(
                    followed >= answered - chrono::Duration::milliseconds(1),
                    "booking {booking}: rejection sent at {followed}, approval answered at {answered}"
                );
                both += 1;
            }
        }
    }
    println!(
        "{BOOKINGS} bookings: approval superseded {superseded}, sent before the rejection {both} \
         (the rejection waited for the approval in flight {waited})"
    );
}

/// The rows already in the outbox when V8 arrives get their capture order from their
/// creation time.
#[tokio::test]
async fn v8_numbers_existing_deliveries_in_creation_order() {
    let db = TestDb::unmigrated().await;
    let client = db.client().await;
    let files = crate::support::db::migration_files();
    let (before, after): (Vec<_>, Vec<_>) = files.iter().partition(|f| {
        f.file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.trim_start_matches('V').split("__").next())
            .and_then(|v| v.parse::<u32>().ok())
            .is_some_and(|v| v < 8)
    });
    for file in &before {
        let text = std::fs::read_to_string(file).expect("read migration");
        client.batch_execute(&text).await.expect("migration");
    }
    // Captured out of id order, at three times.
    client
        .batch_execute(
            "INSERT INTO webhook_deliveries (id, booking_id, webhook_type, recipient_email, payload, created_at)
             VALUES ('ffffffff-0000-0000-0000-000000000000', gen_random_uuid(), 'approved', 's@example.com', '{}', now() - interval '3 minutes'),
                    ('00000000-0000-0000-0000-00000000000f', gen_random_uuid(), 'rejected', 's@example.com', '{}', now() - interval '1 minute'),
                    ('77777777-0000-0000-0000-000000000000', gen_random_uuid(), 'approved', 's@example.com', '{}', now() - interval '2 minutes')",
        )
        .await
        .expect("old rows");
    for file in &after {
        let text = std::fs::read_to_string(file).expect("read migration");
        client.batch_execute(&text).await.expect("migration");
    }
    let order: Vec<String> = client
        .query(
            "SELECT id::text FROM webhook_deliveries ORDER BY capture_seq",
            &[],
        )
        .await
        .expect("order")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        order,
        [
            "ffffffff-0000-0000-0000-000000000000",
            "77777777-0000-0000-0000-000000000000",
            "00000000-0000-0000-0000-00000000000f"
        ]
    );
    // New captures come after them.
    client
        .execute(
            "INSERT INTO booking_requests (tutor_email) VALUES ('t@example.com')",
            &[],
        )
        .await
        .expect("capture");
    let newest: String = client
        .query_one(
            "SELECT webhook_type FROM webhook_deliveries ORDER BY capture_seq DESC LIMIT 1",
            &[],
        )
        .await
        .expect("newest")
        .get(0);
    assert_eq!(newest, "new_request");
}

#[tokio::test]
async fn metrics_and_the_cli_show_what_superseded_what() {
    use crate::ops::cli::{code, json, text, webhooks};
    use crate::ops::metrics::{aggregate, parse_emf};

    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let up = deps(&db, &receiver.url);
    let down = deps(&db, &refusing_url().await);
    let t0 = Utc::now();
    let booking = db.insert_booking(None, Some("student@example.com")).await;
    let approved = decide(&db, booking, "approved").await;
    dispatch_at(&down, &[approved], t0).await;
    let rejected = decide(&db, booking, "rejected").await;
    dispatch_at(&down, &[rejected], t0).await;

    // The retry sweep counts it in its EMF record (DeliveriesSuperseded).
    let (report, lines) = delivery::metrics::capture(delivery::sweep::handle(
        serde_json::json!({}),
        &up,
        Clock::Fixed(t0 + minutes(10)),
        None,
    ))
    .await;
    assert_eq!(report.expect("sweep").superseded, 1);
    let docs: Vec<serde_json::Value> = lines.iter().map(|l| parse_emf(l)).collect();
    let sweep = aggregate(&docs);
    assert_eq!(
        (
            &sweep["DeliveriesSuperseded"],
            &sweep["DeliveriesSucceeded"],
            &sweep["Function"]
        ),
        (
            &serde_json::json!(1),
            &serde_json::json!(1),
            &serde_json::json!("retry-sweep")
        )
    );
    let latencies = match &sweep["AttemptLatency"] {
        serde_json::Value::Array(values) => values.len(),
        serde_json::Value::Number(_) => 1,
        _ => 0,
    };
    assert_eq!(
        latencies, 1,
        "a superseded delivery makes no attempt: {sweep}"
    );

    // So does dispatch: a third decision, and the wake-up of the rejection after it.
    let newest = decide(&db, booking, "approved").await;
    let stale = db.insert_booking(None, Some("other@example.com")).await;
    let stale_approval = decide(&db, stale, "approved").await;
    decide(&db, stale, "rejected").await;
    let (_, lines) = delivery::metrics::capture(delivery::dispatch::handle(
        serde_json::json!({ "deliveryId": stale_approval }),
        &up,
        Clock::Fixed(t0 + minutes(11)),
        None,
    ))
    .await;
    let docs: Vec<serde_json::Value> = lines.iter().map(|l| parse_emf(l)).collect();
    assert_eq!(
        aggregate(&docs)["DeliveriesSuperseded"],
        serde_json::json!(1)
    );

    // The CLI: show, failures --status superseded, stats.
    let url = db.url.clone();
    let args: Vec<String> = vec!["show".into(), approved.to_string()];
    let cli = move |args: Vec<String>| {
        let url = url.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                webhooks(&url, &args)
            })
            .await
            .expect("command task")
        }
    };
    let show = cli(args).await;
    assert_eq!(code(&show), Some(0), "{}", text(&show.stderr));
    let shown = text(&show.stdout);
    assert!(
        shown.contains("superseded") && shown.contains(&format!("superseded by     {rejected}")),
        "{shown}"
    );
    let show = cli(vec!["show".into(), approved.to_string(), "--json".into()]).await;
    assert_eq!(
        json(&show)["delivery"]["supersededBy"],
        serde_json::json!(rejected)
    );
    let failures = cli(vec![
        "failures".into(),
        "--status".into(),
        "superseded".into(),
        "--json".into(),
    ])
    .await;
    assert_eq!(code(&failures), Some(0), "{}", text(&failures.stderr));
    let listed = json(&failures);
    assert_eq!(listed["matching"], serde_json::json!(2));
    let table = cli(vec![
        "failures".into(),
        "--status".into(),
        "superseded".into(),
    ])
    .await;
    assert!(
        text(&table.stdout).contains(&format!("superseded by {}", &rejected.to_string()[..8])),
        "{}",
        text(&table.stdout)
    );
    let stats = cli(vec!["stats".into(), "--json".into()]).await;
    let all = json(&stats)
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["webhookType"] == "all").cloned())
        .expect("the overall row");
    assert_eq!(all["superseded"], serde_json::json!(2));
    assert_eq!(superseded_by(&db, newest).await, None);
}

/// A fixture id of `tests/it/fixtures/seed_system.sql` (`a03`, `b3`, …).
fn seed_id(name: &str) -> Uuid {
    let tail = match name.len() {
        3 => format!("000000000{name}"),
        _ => format!("0000000000{name}"),
    };
    Uuid::parse_str(&format!("00000000-0000-4000-8000-{tail}")).expect("fixture id")
}

/// Adopting the old pg_net system (`webhooks migrate --adopt-seed`): its rows come before
/// anything captured here, so a decision captured after the switch supersedes an imported one
/// still retrying; and the rollback script hands nothing outdated back to the old system.
#[tokio::test]
async fn imported_notifications_are_superseded_by_later_decisions_and_never_handed_back() {
    use crate::support::scratch::{ScratchDb, webhooks as migrate};

    let db = ScratchDb::with_seed_system().await;
    let dir = std::env::temp_dir().join(format!("supersede-{}", db.name));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let plan = migrate(&db.url, &["migrate", "--adopt-seed", "--dry-run"]).await;
    std::fs::write(dir.join("adoption-plan.txt"), &plan.stdout).expect("write plan");
    let adopted = migrate(&db.url, &["migrate", "--adopt-seed"]).await;
    assert_eq!(adopted.code, 0, "{adopted:?}");

    let client = db.client().await;
    let seq = |id: Uuid| {
        let client = &client;
        async move {
            client
                .query_one(
                    "SELECT capture_seq FROM webhook_deliveries WHERE id = $1",
                    &[&id],
                )
                .await
                .expect("delivery")
                .get::<_, i64>(0)
        }
    };
    // Imported in the old system's order: a02 (created 30 min ago) before a03 (25 min ago).
    assert!(seq(seed_id("a02")).await < seq(seed_id("a03")).await);
    let set = |booking: &str, status: &str| {
        let client = &client;
        let (booking, status) = (seed_id(booking), status.to_owned());
        async move {
            client
                .execute(
                    "UPDATE booking_requests SET status = $2 WHERE id = $1",
                    &[&booking, &status],
                )
                .await
                .expect("status change");
            client
                .query_one(
                    "SELECT id FROM webhook_deliveries
                      WHERE booking_id = $1 AND webhook_type IN ('approved', 'rejected')
                      ORDER BY capture_seq DESC LIMIT 1",
                    &[&booking],
                )
                .await
                .expect("captured")
                .get::<_, Uuid>(0)
        }
    };
    // b2's imported approval (a02) is due; b2 is rejected after the switch.
    let rejected_b2 = set("b2", "rejected").await;
    assert!(seq(rejected_b2).await > seq(seed_id("a02")).await);
    let receiver = Receiver::start(Reply::status(200)).await;
    let deps = crate::support::deps_for_url(&db.url, &receiver.url, &[]);
    let report = sweep(
        &deps,
        SweepOptions {
            batch_size: 50,
            budget: Duration::from_secs(60),
            deadline: None,
        },
        Clock::Fixed(Utc::now()),
    )
    .await
    .expect("sweep");
    assert!(report.superseded >= 1, "{report:?}");
    let a02 = client
        .query_one(
            "SELECT status, superseded_by FROM webhook_deliveries WHERE id = $1",
            &[&seed_id("a02")],
        )
        .await
        .expect("a02");
    assert_eq!(
        (a02.get::<_, String>(0), a02.get::<_, Option<Uuid>>(1)),
        ("superseded".to_owned(), Some(rejected_b2))
    );
    let sent = ids_seen(&receiver);
    assert!(sent.contains(&rejected_b2) && !sent.contains(&seed_id("a02")));

    // b3's imported rejection (a03) is not due yet when b3 is approved again; b4 is approved
    // and rejected after the switch, neither sent yet. Then the operator rolls back.
    let approved_b3 = set("b3", "approved").await;
    let approved_b4 = set("b4", "approved").await;
    let rejected_b4 = set("b4", "rejected").await;
    let (url, workdir) = (db.url.clone(), dir.clone());
    let rollback = tokio::task::spawn_blocking(move || {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(
                "sed -n '/^-- Rollback to the pg_net system/,$p' adoption-plan.txt > rollback.sql \
                 && psql \"$DATABASE_URL\" -q -v ON_ERROR_STOP=1 -f rollback.sql",
            )
            .current_dir(workdir)
            .env("DATABASE_URL", url)
            .output()
    })
    .await
    .expect("join")
    .expect("sh runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        rollback.status.success(),
        "rollback script: {}",
        String::from_utf8_lossy(&rollback.stderr)
    );
    let old = |id: Uuid| {
        let client = &client;
        async move {
            client
                .query_opt(
                    "SELECT status, last_error FROM webhook_failures WHERE id = $1",
                    &[&id],
                )
                .await
                .expect("old table")
                .map(|r| (r.get::<_, String>(0), r.get::<_, Option<String>>(1)))
        }
    };
    // Superseded with us: failed there (the old retry never resends a failed row).
    let (status, error) = old(seed_id("a02")).await.expect("a02 stays");
    assert_eq!(status, "failed");
    assert!(error.is_some_and(|e| e.starts_with("superseded")));
    // Still retrying with us, but replaced by b3's approval: failed there too.
    assert_eq!(
        old(seed_id("a03")).await.map(|(status, _)| status),
        Some("failed".to_owned())
    );
    // Of ours, only the current decisions go back.
    assert_eq!(
        old(approved_b3).await.map(|(status, _)| status),
        Some("pending".to_owned())
    );
    assert_eq!(
        old(rejected_b4).await.map(|(status, _)| status),
        Some("pending".to_owned())
    );
    assert_eq!(old(approved_b4).await, None, "replaced: not handed back");
}
