//! Retention: `webhooks cleanup` removes exactly the old resolved deliveries and their
//! attempts, in batches, leaves everything active alone, and moves the completeness horizon;
//! the retry sweep does the same when `WEBHOOK_RETENTION` is set.

use std::collections::BTreeMap;
use std::time::Duration;

use delivery::Clock;
use delivery::retention::{Cleanup, CleanupReport, clean_up};
use serde_json::json;
use uuid::Uuid;

use super::seed::{self, Delivery, at, days, failed, insert, ok};
use crate::support::{Receiver, Reply, TestDb, deps_with};

const THIRTY_DAYS: Duration = Duration::from_secs(30 * 86_400);

struct Aged {
    /// Resolved more than 30 days ago: to be removed.
    old: Vec<Uuid>,
    /// Resolved recently, or not resolved at all: to be kept.
    kept: Vec<Uuid>,
}

/// 28 deliveries resolved 31–45 days ago (26 succeeded, 1 failed, 1 skipped; 31 attempts),
/// and 3 to keep: one resolved 10 days ago, a pending one and a retrying one created 40–50
/// days ago (3 attempts between them).
async fn aged_set(db: &TestDb, now: chrono::DateTime<chrono::Utc>) -> Aged {
    let e500 = |at| failed(at, 100, Some(500), "http_5xx", "HTTP 500");
    let mut old = vec![
        insert(
            db,
            now,
            &Delivery::new("new_request", "succeeded", -days(40))
                .resolved(-days(40))
                .attempts(vec![e500(-days(40)), ok(-days(40), 20)]),
        )
        .await,
        insert(
            db,
            now,
            &Delivery::new("approved", "failed", -days(36))
                .resolved(-days(35))
                .attempts((0..4).map(|_| e500(-days(36))).collect()),
        )
        .await,
        insert(
            db,
            now,
            &Delivery::new("new_request", "skipped", -days(45)).resolved(-days(45)),
        )
        .await,
    ];
    for n in 0..25 {
        let when = -days(31) - n;
        old.push(
            insert(
                db,
                now,
                &Delivery::new("new_request", "succeeded", when)
                    .resolved(when)
                    .attempts(vec![ok(when, 10)]),
            )
            .await,
        );
    }
    let kept = vec![
        insert(
            db,
            now,
            &Delivery::new("rejected", "succeeded", -days(10))
                .resolved(-days(10))
                .attempts(vec![ok(-days(10), 10)]),
        )
        .await,
        insert(
            db,
            now,
            &Delivery::new("new_request", "pending", -days(40)).due(-days(40)),
        )
        .await,
        insert(
            db,
            now,
            &Delivery::new("approved", "retrying", -days(50))
                .due(-days(40))
                .attempts(vec![e500(-days(50)), e500(-days(45))]),
        )
        .await,
    ];
    Aged { old, kept }
}

async fn ids(db: &TestDb) -> Vec<Uuid> {
    let client = db.pool.get().await.expect("connection");
    let mut ids: Vec<Uuid> = client
        .query("SELECT id FROM webhook_deliveries", &[])
        .await
        .expect("ids")
        .iter()
        .map(|r| r.get(0))
        .collect();
    ids.sort();
    ids
}

async fn horizon(db: &TestDb) -> chrono::DateTime<chrono::Utc> {
    let client = db.pool.get().await.expect("connection");
    client
        .query_one("SELECT checked_from FROM webhook_verify_horizon", &[])
        .await
        .expect("horizon")
        .get(0)
}

fn counts(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

#[tokio::test]
async fn cleanup_removes_exactly_the_old_resolved_rows_in_batches() {
    let db = TestDb::new().await;
    let now = seed::now();
    let set = aged_set(&db, now).await;
    let client = db.pool.get().await.expect("connection");
    // As if capture had been installed 60 days ago (a fresh schema starts checking now).
    client
        .execute(
            "UPDATE webhook_verify_horizon SET checked_from = $1",
            &[&at(now, -days(60))],
        )
        .await
        .expect("horizon");
    let before = horizon(&db).await;

    let mut what = Cleanup::older_than(THIRTY_DAYS, now).expect("30d is allowed");
    assert_eq!(what.cutoff, at(now, -days(30)));
    what.batch_size = 10;
    what.dry_run = true;
    let preview = clean_up(&client, &what).await.expect("dry run");
    let expected = counts(&[("failed", 1), ("skipped", 1), ("succeeded", 26)]);
    assert_eq!(
        (&preview.deliveries, preview.attempts, preview.batches),
        (&expected, 31, 0)
    );
    assert_eq!(
        db.count("SELECT count(*) FROM webhook_deliveries").await,
        31,
        "a dry run deletes nothing"
    );
    assert_eq!(horizon(&db).await, before, "a dry run moves nothing");

    what.dry_run = false;
    let report = clean_up(&client, &what).await.expect("cleanup");
    assert_eq!(
        report,
        CleanupReport {
            cutoff: what.cutoff,
            dry_run: false,
            deliveries: expected,
            attempts: 31,
            batches: 3, // 10 + 10 + 8
            more_left: false,
        }
    );
    let mut kept = set.kept.clone();
    kept.sort();
    assert_eq!(
        ids(&db).await,
        kept,
        "exactly the recent and the active rows are left"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM webhook_attempts").await,
        3,
        "their attempts stay"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM webhook_attempts a WHERE NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.id = a.delivery_id)").await,
        0
    );
    assert_eq!(
        horizon(&db).await,
        what.cutoff,
        "verify no longer checks what was removed"
    );
    assert!(set.old.iter().all(|id| !kept.contains(id)));

    let again = clean_up(&client, &what).await.expect("second run");
    assert_eq!(
        (again.total(), again.batches),
        (0, 1),
        "nothing left to remove"
    );
    assert_eq!(horizon(&db).await, what.cutoff);
}

#[tokio::test]
async fn cleanup_stops_at_its_row_budget_and_says_more_is_left() {
    let db = TestDb::new().await;
    let now = seed::now();
    aged_set(&db, now).await;
    let mut what = Cleanup::older_than(THIRTY_DAYS, now).expect("30d is allowed");
    what.batch_size = 4;
    what.max_rows = Some(10);
    let report = clean_up(&db.pool.get().await.expect("connection"), &what)
        .await
        .expect("cleanup");
    assert_eq!(
        (report.total(), report.batches, report.more_left),
        (10, 3, true),
        "4 + 4 + 2"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM webhook_deliveries").await,
        21
    );
}

#[tokio::test]
async fn a_retention_shorter_than_a_day_is_refused() {
    let err = Cleanup::older_than(Duration::from_secs(3_600), seed::now()).err();
    assert!(err.is_some_and(|e| e.contains("at least 1d")));
}

#[tokio::test]
async fn the_sweep_applies_webhook_retention_after_delivering() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let now = seed::now();
    let set = aged_set(&db, now).await;

    // Without WEBHOOK_RETENTION the sweep removes nothing.
    let plain = deps_with(&db, &receiver.url, &[]);
    let report = delivery::sweep::handle(json!({}), &plain, Clock::Fixed(now), None)
        .await
        .expect("sweep");
    assert_eq!(
        (report.processed, report.retention.clone()),
        (2, None),
        "the two old active rows are sent"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM webhook_deliveries").await,
        31
    );

    let deps = deps_with(&db, &receiver.url, &[("WEBHOOK_RETENTION", "30d")]);
    let report = delivery::sweep::handle(json!({}), &deps, Clock::Fixed(now), None)
        .await
        .expect("sweep");
    let removed = report.retention.expect("retention ran");
    assert_eq!((removed.total(), removed.attempts), (28, 31));
    // The two active rows were just delivered (resolved now): kept, like the recent one.
    let mut kept = set.kept.clone();
    kept.sort();
    assert_eq!(ids(&db).await, kept);
}

/// Retention after a sweep runs only when the deadline leaves it time for a batch (the server
/// may run one for STATEMENT_TIMEOUT): 20 s before the deadline it is skipped, and said in the
/// report; every outcome was recorded all the same.
#[tokio::test]
async fn retention_is_skipped_and_said_when_the_deadline_leaves_no_time() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let now = seed::now();
    aged_set(&db, now).await;
    let deps = deps_with(&db, &receiver.url, &[("WEBHOOK_RETENTION", "30d")]);
    let deadline = std::time::SystemTime::now() + Duration::from_secs(20);
    let report = delivery::sweep::handle(json!({}), &deps, Clock::Fixed(now), Some(deadline))
        .await
        .expect("sweep");
    assert_eq!(report.processed, 2, "{report:?}");
    assert_eq!(report.retention, None);
    assert_eq!(report.skipped_after_sweep, vec!["retention"]);
    assert_eq!(
        db.count("SELECT count(*) FROM webhook_deliveries").await,
        31,
        "nothing was removed"
    );
    // With time left, the next sweep does it.
    let deadline = std::time::SystemTime::now() + Duration::from_secs(120);
    let report = delivery::sweep::handle(json!({}), &deps, Clock::Fixed(now), Some(deadline))
        .await
        .expect("sweep");
    assert!(report.skipped_after_sweep.is_empty(), "{report:?}");
    assert_eq!(report.retention.map(|r| r.total()), Some(28));
}
