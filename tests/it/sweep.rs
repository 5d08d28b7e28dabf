//! The retry sweep: backoff end to end, reclaiming, overlapping sweeps, batches, the time
//! budget, and manual requeue. Time moves by passing `now`, never by sleeping.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use delivery::Clock;
use delivery::replay::{Requeue, requeue};
use delivery::sweep::{SweepOptions, SweepReport, sweep};
use serde_json::json;
use uuid::Uuid;

use crate::support::state::same_instant;
use crate::support::{Receiver, Reply, TestDb, deps, deps_with};

fn minutes(n: i64) -> chrono::Duration {
    chrono::Duration::minutes(n)
}

async fn sweep_at(deps: &delivery::Deps, at: DateTime<Utc>) -> SweepReport {
    let options = SweepOptions {
        batch_size: deps.config.sweep_batch,
        budget: Duration::from_secs(60),
        deadline: None,
    };
    sweep(deps, options, Clock::Fixed(at))
        .await
        .expect("sweep runs")
}

#[tokio::test]
async fn the_seed_lifecycle_fails_at_5_15_and_45_minutes_then_is_failed() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(503)).await;
    // The seed's schedule as it was: every attempt counts. With the breaker (the default), an
    // outage this long holds the delivery instead (tests/it/outage.rs).
    let deps = deps_with(&db, &receiver.url, &[("WEBHOOK_BREAKER_AFTER", "off")]);
    let (_, id) = db.booking_with_delivery().await;
    let t0 = Utc::now();

    let first =
        delivery::dispatch::handle(json!({ "deliveryId": id }), &deps, Clock::Fixed(t0), None)
            .await
            .expect("dispatch");
    assert_eq!(first.retrying, vec![id]);

    // Attempt 2 is due at +5 min: a sweep at +4 min leaves it alone.
    assert_eq!(sweep_at(&deps, t0 + minutes(4)).await.processed, 0);
    let expected = [(5, "retrying", 20), (20, "retrying", 65)];
    for (at, status, next) in expected {
        let report = sweep_at(&deps, t0 + minutes(at)).await;
        assert_eq!(
            (report.processed, report.retrying),
            (1, 1),
            "sweep at +{at}"
        );
        let row = db.delivery(id).await;
        assert_eq!(row.status, status);
        assert!(
            row.next_retry_at
                .is_some_and(|n| same_instant(n, t0 + minutes(next))),
            "+{at}: {row:?}"
        );
    }
    let last = sweep_at(&deps, t0 + minutes(65)).await;
    assert_eq!((last.processed, last.failed, last.still_due), (1, 1, 0));

    let row = db.delivery(id).await;
    assert_eq!(
        (row.status.as_str(), row.attempt_count, row.next_retry_at),
        ("failed", 4, None)
    );
    assert!(
        row.resolved_at
            .is_some_and(|at| same_instant(at, t0 + minutes(65)))
    );
    assert!(
        row.last_attempt_at
            .is_some_and(|at| same_instant(at, t0 + minutes(65)))
    );
    assert_eq!(
        row.last_error.as_deref(),
        Some("HTTP 503 (no retries left)")
    );
    let attempts = db.attempts(id).await;
    assert_eq!(
        attempts.iter().map(|a| a.attempt).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    let started: Vec<_> = attempts.iter().map(|a| a.started_at).collect();
    for (a, m) in started.iter().zip([0, 5, 20, 65]) {
        assert!(same_instant(*a, t0 + minutes(m)), "attempt at +{m}: {a}");
    }
    // Same idempotency key on every attempt.
    let ids: HashSet<String> = receiver
        .requests()
        .iter()
        .map(|r| r.header("webhook-id"))
        .collect();
    assert_eq!(ids, HashSet::from([id.to_string()]));
    assert_eq!(receiver.requests().len(), 4);
    // Nothing more happens after it is failed.
    assert_eq!(sweep_at(&deps, t0 + minutes(600)).await.processed, 0);
}

#[tokio::test]
async fn a_failure_then_a_success_resolves_the_delivery() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    receiver.script([Reply::status(500)]);
    let deps = deps(&db, &receiver.url);
    let (_, id) = db.booking_with_delivery().await;
    let t0 = Utc::now();
    delivery::dispatch::handle(json!({ "deliveryId": id }), &deps, Clock::Fixed(t0), None)
        .await
        .expect("dispatch");

    let report = sweep_at(&deps, t0 + minutes(5)).await;

    assert_eq!((report.processed, report.succeeded), (1, 1));
    let row = db.delivery(id).await;
    assert_eq!((row.status.as_str(), row.attempt_count), ("succeeded", 2));
    assert!(
        row.resolved_at
            .is_some_and(|at| same_instant(at, t0 + minutes(5)))
    );
    // The seed's views: it failed once (webhook_failures) and was sent (email_logs).
    assert_eq!(
        db.count("SELECT count(*) FROM webhook_failures WHERE status = 'succeeded'")
            .await,
        1
    );
    assert_eq!(
        db.count("SELECT count(*) FROM email_logs WHERE attempts = 2")
            .await,
        1
    );
}

#[tokio::test]
async fn deliveries_not_yet_due_are_untouched() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let deps = deps(&db, &receiver.url);
    let (_, id) = db.booking_with_delivery().await;
    let client = db.pool.get().await.expect("connection");
    client
        .execute("UPDATE webhook_deliveries SET status = 'retrying', attempt_count = 1, next_retry_at = now() + interval '1 hour' WHERE id = $1", &[&id])
        .await
        .expect("schedule later");
    let before = db.delivery(id).await;

    let report = sweep_at(&deps, Utc::now()).await;

    assert_eq!(
        (report.processed, report.batches, report.still_due),
        (0, 0, 0)
    );
    assert!(receiver.requests().is_empty());
    let after = db.delivery(id).await;
    assert_eq!(
        (
            after.status,
            after.attempt_count,
            after.next_retry_at,
            after.locked_until
        ),
        (before.status, 1, before.next_retry_at, None)
    );
}

#[tokio::test]
async fn a_pending_delivery_whose_dispatch_never_ran_is_sent_by_the_sweep() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let deps = deps(&db, &receiver.url);
    let (_, id) = db.booking_with_delivery().await;
    let report = sweep_at(&deps, Utc::now()).await;
    assert_eq!(
        (report.processed, report.succeeded, report.reclaimed),
        (1, 1, 0)
    );
    assert_eq!(db.delivery(id).await.status, "succeeded");
}

#[tokio::test]
async fn an_expired_lease_is_reclaimed_and_a_live_one_is_not() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let deps = deps(&db, &receiver.url);
    let (_, dead) = db.booking_with_delivery().await;
    let (_, live) = db.booking_with_delivery().await;
    let now = Utc::now();
    let client = db.pool.get().await.expect("connection");
    // A worker that claimed `dead` and died; another that is still sending `live`.
    client
        .execute(
            "UPDATE webhook_deliveries SET locked_until = $2 WHERE id = $1",
            &[&dead, &(now - minutes(1))],
        )
        .await
        .expect("dead lease");
    client
        .execute(
            "UPDATE webhook_deliveries SET locked_until = $2 WHERE id = $1",
            &[&live, &(now + minutes(1))],
        )
        .await
        .expect("live lease");

    let report = sweep_at(&deps, now).await;

    assert_eq!(
        (report.processed, report.reclaimed, report.succeeded),
        (1, 1, 1)
    );
    assert_eq!(db.delivery(dead).await.status, "succeeded");
    let untouched = db.delivery(live).await;
    assert_eq!(untouched.status, "pending");
    assert_eq!(
        receiver
            .requests()
            .iter()
            .map(|r| r.header("webhook-id"))
            .collect::<Vec<_>>(),
        vec![dead.to_string()]
    );
    // Once that lease runs out too, the next sweep takes it.
    let later = sweep_at(&deps, now + minutes(2)).await;
    assert_eq!((later.processed, later.reclaimed), (1, 1));
}

#[tokio::test]
async fn a_worker_that_overran_its_lease_cannot_overwrite_the_new_owner() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let deps = deps(&db, &receiver.url);
    let (_, id) = db.booking_with_delivery().await;
    let now = Utc::now();
    let lease = Duration::from_secs(60);
    let client = db.pool.get().await.expect("connection");
    let stale = delivery::claim::claim_ids(&client, &[id], Some(now), lease, true)
        .await
        .expect("claim");
    assert_eq!(stale.len(), 1);
    // The lease expires and a sweep reclaims and delivers it.
    let report = sweep_at(&deps, now + minutes(2)).await;
    assert_eq!((report.succeeded, report.reclaimed), (1, 1));
    // The first worker finally finishes with a failure: its attempt is kept, the state is not.
    let late = delivery::engine::deliver(&deps, stale, Clock::Fixed(now + minutes(3)))
        .await
        .expect("deliver");
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].recorded, delivery::engine::Recorded::LeaseLost);
    let row = db.delivery(id).await;
    // Each claim reserved its own attempt number: the new owner's is the second.
    assert_eq!((row.status.as_str(), row.attempt_count), ("succeeded", 2));
    let mut numbers: Vec<i32> = db.attempts(id).await.iter().map(|a| a.attempt).collect();
    numbers.sort_unstable();
    assert_eq!(
        numbers,
        vec![1, 2],
        "both attempts are visible, numbered apart"
    );
}

#[tokio::test]
async fn four_concurrent_sweeps_over_two_thousand_due_rows_deliver_each_exactly_once() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let ids = db.backlog(2000).await;
    let now = Utc::now();
    let sweeps: Vec<_> = (0..4)
        .map(|_| {
            // Four separate "Lambda invocations": each its own pool and HTTP client.
            let deps = deps_with(&db, &receiver.url, &[("WEBHOOK_SWEEP_BATCH", "50")]);
            tokio::spawn(async move { sweep_at(&deps, now).await })
        })
        .collect();
    let mut total = 0;
    for s in sweeps {
        let report = s.await.expect("sweep task");
        total += report.succeeded;
        assert_eq!(report.lease_lost, 0);
    }
    assert_eq!(total, 2000);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2000, "no delivery sent twice");
    let distinct: HashSet<String> = requests.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(
        distinct,
        ids.iter().map(Uuid::to_string).collect::<HashSet<_>>()
    );
    assert_eq!(
        db.count("SELECT count(*) FROM webhook_deliveries WHERE status = 'succeeded'")
            .await,
        2000
    );
    assert_eq!(
        db.count("SELECT count(*) FROM webhook_attempts").await,
        2000
    );
}

#[tokio::test]
async fn a_backlog_larger_than_one_batch_is_drained_across_batches() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let deps = deps_with(&db, &receiver.url, &[("WEBHOOK_SWEEP_BATCH", "100")]);
    db.backlog(250).await;
    let report = sweep_at(&deps, Utc::now()).await;
    assert_eq!(
        (
            report.processed,
            report.succeeded,
            report.batches,
            report.still_due
        ),
        (250, 250, 3, 0)
    );
    assert!(!report.budget_exhausted);
}

#[tokio::test]
async fn the_time_budget_stops_a_sweep_cleanly_with_the_rest_still_due() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let deps = deps(&db, &receiver.url);
    db.backlog(250).await;
    let options = SweepOptions {
        batch_size: 100,
        budget: Duration::ZERO,
        deadline: None,
    };

    let report = sweep(&deps, options, Clock::Fixed(Utc::now()))
        .await
        .expect("sweep");

    assert_eq!(
        (report.processed, report.batches, report.still_due),
        (100, 1, 150)
    );
    assert!(report.budget_exhausted);
    assert_eq!(
        db.count("SELECT count(*) FROM webhook_deliveries WHERE locked_until IS NOT NULL")
            .await,
        0,
        "no lease left behind"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'")
            .await,
        150
    );
}

#[tokio::test]
async fn the_sweep_event_is_validated() {
    let db = TestDb::new().await;
    let deps = deps_with(
        &db,
        "http://127.0.0.1:9/x",
        &[("WEBHOOK_SWEEP_BUDGET_MS", "60000")],
    );
    let options =
        delivery::sweep::options_for(&json!({"batchSize": 7}), &deps, None).expect("valid");
    assert_eq!(
        (options.batch_size, options.budget),
        (7, Duration::from_secs(60))
    );
    let defaults = delivery::sweep::options_for(&json!({}), &deps, None).expect("valid");
    assert_eq!(defaults.batch_size, 100);
    // The Lambda deadline goes along; each claim is sized to it (next test).
    let soon = std::time::SystemTime::now() + Duration::from_secs(90);
    let capped = delivery::sweep::options_for(&json!({}), &deps, Some(soon)).expect("valid");
    assert_eq!(capped.deadline, Some(soon));
    for bad in [
        json!({"batchSize": 0}),
        json!({"batchSize": "many"}),
        json!([]),
    ] {
        let err = delivery::sweep::handle(bad.clone(), &deps, Clock::System, None)
            .await
            .err();
        assert!(
            matches!(err, Some(delivery::Error::InvalidEvent(_))),
            "{bad}: {err:?}"
        );
    }
}

#[tokio::test]
async fn each_claim_takes_only_what_can_be_sent_before_the_deadline() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    // One wave is 4 requests of at most 1 s; 5 s are kept free before the deadline.
    let deps = deps_with(
        &db,
        &receiver.url,
        &[
            ("WEBHOOK_TIMEOUT_MS", "1000"),
            ("WEBHOOK_SWEEP_CONCURRENCY", "4"),
        ],
    );
    db.backlog(10).await;
    let options = |deadline_in: Duration| SweepOptions {
        batch_size: 100,
        budget: Duration::from_secs(60),
        deadline: Some(std::time::SystemTime::now() + deadline_in),
    };

    // Less than one wave fits: nothing is claimed, nothing is left leased.
    let none = sweep(&deps, options(Duration::from_millis(5500)), Clock::System)
        .await
        .expect("sweep");
    assert_eq!((none.processed, none.batches, none.still_due), (0, 0, 10));
    assert!(none.budget_exhausted);

    // One wave fits: the backlog goes out 4 at a time, in 3 claims, and all of it is recorded.
    let waves = sweep(&deps, options(Duration::from_millis(6900)), Clock::System)
        .await
        .expect("sweep");
    assert_eq!(
        (
            waves.processed,
            waves.succeeded,
            waves.batches,
            waves.still_due
        ),
        (10, 10, 3, 0)
    );
}

/// Three deliveries failed for good at t0, t0+10m and t0+20m.
async fn three_failed(db: &TestDb, deps: &delivery::Deps, t0: DateTime<Utc>) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for i in 0..3 {
        let (_, id) = db.booking_with_delivery().await;
        delivery::dispatch::handle(
            json!({ "deliveryId": id }),
            deps,
            Clock::Fixed(t0 + minutes(10 * i)),
            None,
        )
        .await
        .expect("dispatch");
        ids.push(id);
    }
    assert_eq!(
        db.count("SELECT count(*) FROM webhook_deliveries WHERE status = 'failed'")
            .await,
        3
    );
    ids
}

#[tokio::test]
async fn requeue_by_id_gives_a_fresh_budget_and_the_next_sweep_sends_it() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(404)).await;
    let deps = deps(&db, &receiver.url);
    let t0 = Utc::now();
    let ids = three_failed(&db, &deps, t0).await;
    receiver.set_default(Reply::status(500));

    let what = Requeue {
        ids: Some(vec![ids[1]]),
        since: None,
        max_retries: 3,
        include_replaced: false,
    };
    let report = requeue(&deps.pool, &what, Clock::Fixed(t0 + minutes(30)))
        .await
        .expect("requeue");
    assert_eq!(
        (report.requeued, report.due_now, report.still_failed),
        (1, 1, 2)
    );
    let row = db.delivery(ids[1]).await;
    assert_eq!(
        (
            row.status.as_str(),
            row.attempt_count,
            row.max_retries,
            row.resolved_at
        ),
        ("retrying", 1, 4, None)
    );

    // The fresh budget: attempt now, then +5, +15, +45 again.
    let swept = sweep_at(&deps, t0 + minutes(30)).await;
    assert_eq!((swept.processed, swept.retrying), (1, 1));
    let row = db.delivery(ids[1]).await;
    assert!(
        row.next_retry_at
            .is_some_and(|at| same_instant(at, t0 + minutes(35))),
        "{row:?}"
    );
}

#[tokio::test]
async fn requeue_all_and_since_a_time() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(404)).await;
    let deps = deps(&db, &receiver.url);
    let t0 = Utc::now();
    let ids = three_failed(&db, &deps, t0).await;

    let since = Requeue {
        ids: None,
        since: Some(t0 + minutes(10)),
        max_retries: 3,
        include_replaced: false,
    };
    let report = requeue(&deps.pool, &since, Clock::Fixed(t0 + minutes(30)))
        .await
        .expect("requeue since");
    assert_eq!((report.requeued, report.still_failed), (2, 1));
    assert_eq!(db.delivery(ids[0]).await.status, "failed");

    // The seed's own call: everything failed, due now.
    let client = db.pool.get().await.expect("connection");
    let row = client
        .query_one("SELECT * FROM retry_failed_webhooks()", &[])
        .await
        .expect("seed call");
    assert_eq!(
        (
            row.get::<_, i32>("requeued"),
            row.get::<_, i32>("still_failed")
        ),
        (1, 0)
    );
    assert_eq!(
        db.count("SELECT count(*) FROM webhook_deliveries WHERE status = 'retrying'")
            .await,
        3
    );
}

#[tokio::test]
async fn a_dispatch_and_a_sweep_racing_for_one_delivery_send_it_once() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200).slow(Duration::from_millis(200))).await;
    let deps = deps(&db, &receiver.url);
    let (_, id) = db.booking_with_delivery().await;
    let (dispatched, swept) = tokio::join!(
        delivery::dispatch::handle(json!({ "deliveryId": id }), &deps, Clock::System, None),
        sweep_at(&deps, Utc::now()),
    );
    let dispatched = dispatched.expect("dispatch");
    assert_eq!(
        dispatched.counts.succeeded + swept.succeeded,
        1,
        "{dispatched:?} {swept:?}"
    );
    assert_eq!(receiver.requests().len(), 1);
}

/// The reproduction of a hang: a batch larger than what may be claimed and unrecorded at once,
/// every approval sent and recorded, their rejections leased by another worker — so the
/// hand-off finds nothing while nothing is outstanding and the due claims have not finished.
/// The sweep must end (it used to wait for progress forever).
#[tokio::test]
async fn a_hand_off_that_finds_the_followers_leased_elsewhere_ends_the_sweep() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let deps = deps_with(
        &db,
        &receiver.url,
        &[
            ("WEBHOOK_SUPERSEDE", "off"),
            ("WEBHOOK_SWEEP_BATCH", "1000"),
        ],
    );
    let client = db.client().await;
    client
        .batch_execute(
            "INSERT INTO booking_requests (student_email)
             SELECT 'student' || n || '@example.com' FROM generate_series(1, 1000) n;
             UPDATE booking_requests SET status = 'approved';
             UPDATE booking_requests SET status = 'rejected';",
        )
        .await
        .expect("bookings approved, then rejected");
    let now = Utc::now();
    // Another worker holds the rejections.
    client
        .execute(
            "UPDATE webhook_deliveries SET locked_until = $1 WHERE webhook_type = 'rejected'",
            &[&(now + minutes(10))],
        )
        .await
        .expect("lease the rejections");
    let report = tokio::time::timeout(Duration::from_secs(60), sweep_at(&deps, now))
        .await
        .expect("the sweep ends instead of waiting for progress that cannot come");
    assert_eq!(
        (report.processed, report.succeeded),
        (1000, 1000),
        "{report:?}"
    );
    assert_eq!(receiver.requests().len(), 1000);
}
