//! Robustness on a real Postgres: one bad row does not poison a batch, recording can be
//! repeated, the schema's invariants, the database's clock, and deadlines.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use delivery::Clock;
use delivery::sweep::{SweepOptions, sweep};
use serde_json::json;
use uuid::Uuid;

use crate::support::{Receiver, Reply, TestDb, deps, deps_with};

async fn database_now(db: &TestDb) -> DateTime<Utc> {
    let client = db.pool.get().await.expect("connection");
    client
        .query_one("SELECT now()", &[])
        .await
        .expect("now")
        .get(0)
}

fn options() -> SweepOptions {
    SweepOptions {
        batch_size: 100,
        budget: Duration::from_secs(60),
        deadline: None,
    }
}

#[tokio::test]
async fn a_delivery_deleted_mid_send_is_skipped_and_the_rest_of_its_group_is_recorded() {
    let db = TestDb::new().await;
    // Held long enough for the test to delete one delivery while all three are in flight.
    let receiver = Receiver::start(Reply::status(200).slow(Duration::from_millis(700))).await;
    let deps = deps(&db, &receiver.url);
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(db.booking_with_delivery().await.1);
    }
    let sweeping = tokio::spawn({
        let deps = deps.clone();
        async move { sweep(&deps, options(), Clock::System).await }
    });
    let requests = receiver.wait_for(3, Duration::from_secs(10)).await;
    let doomed: Uuid = requests[0].header("webhook-id").parse().expect("uuid");
    let client = db.pool.get().await.expect("connection");
    client
        .execute("DELETE FROM webhook_deliveries WHERE id = $1", &[&doomed])
        .await
        .expect("delete mid-send");

    let report = sweeping
        .await
        .expect("task")
        .expect("the sweep itself succeeds");

    assert_eq!(
        (report.processed, report.succeeded, report.unrecorded),
        (3, 2, 1)
    );
    for id in ids.iter().filter(|id| **id != doomed) {
        assert_eq!(db.delivery(*id).await.status, "succeeded");
        assert_eq!(db.attempts(*id).await.len(), 1);
    }
    assert_eq!(
        db.count("SELECT count(*) FROM webhook_deliveries WHERE locked_until IS NOT NULL")
            .await,
        0
    );
}

#[tokio::test]
async fn recording_the_same_outcomes_twice_stores_them_once() {
    let db = TestDb::new().await;
    let (_, id) = db.booking_with_delivery().await;
    let client = db.pool.get().await.expect("connection");
    let now = Utc::now();
    let claimed =
        delivery::claim::claim_ids(&client, &[id], Some(now), Duration::from_secs(60), true)
            .await
            .expect("claim");
    assert_eq!(claimed.len(), 1);
    let lease: DateTime<Utc> = client
        .query_one(
            "SELECT locked_until FROM webhook_deliveries WHERE id = $1",
            &[&id],
        )
        .await
        .expect("lease")
        .get(0);
    let none_ts: Option<DateTime<Utc>> = None;
    let none_text: Option<&str> = None;
    let client = &client;
    let record = || async move {
        client
            .query(
                delivery::sql::OUTCOME_RECORDING,
                &[
                    &vec![id],
                    &vec![lease],
                    &vec![1i32],
                    &vec![now],
                    &vec![12i32],
                    &vec![Some(200i32)],
                    &vec![none_text],
                    &vec![none_text],
                    &vec!["succeeded"],
                    &vec![none_ts],
                    &vec![Some(now)],
                    &vec![now],
                    &vec![false],
                ],
            )
            .await
            .expect("record")
            .len()
    };
    // The answer to the first was lost with its connection: the engine records again.
    assert_eq!(record().await, 1);
    assert_eq!(
        record().await,
        1,
        "the repeat reports the delivery as recorded"
    );
    assert_eq!(
        db.attempts(id).await.len(),
        1,
        "and stores no second attempt"
    );
    let row = db.delivery(id).await;
    assert_eq!((row.status.as_str(), row.attempt_count), ("succeeded", 1));
}

#[tokio::test]
async fn the_schema_refuses_an_unresolved_delivery_without_a_due_time() {
    let db = TestDb::new().await;
    let (_, id) = db.booking_with_delivery().await;
    let client = db.pool.get().await.expect("connection");
    for (status, due) in [
        ("retrying", "NULL"),
        ("pending", "NULL"),
        ("failed", "now()"),
    ] {
        let broken = client
            .execute(
                &format!(
                    "UPDATE webhook_deliveries SET status = '{status}', next_retry_at = {due} WHERE id = $1"
                ),
                &[&id],
            )
            .await;
        let message = broken.err().map(|e| format!("{e:?}")).unwrap_or_default();
        assert!(
            message.contains("webhook_deliveries_due_check"),
            "{status} with next_retry_at {due}: {message}"
        );
    }
}

#[tokio::test]
async fn retry_failed_webhooks_with_a_null_now_makes_the_rows_due_now() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(404)).await;
    let deps = deps(&db, &receiver.url);
    let (_, id) = db.booking_with_delivery().await;
    delivery::dispatch::handle(json!({ "deliveryId": id }), &deps, Clock::System, None)
        .await
        .expect("dispatch");
    let client = db.pool.get().await.expect("connection");
    let row = client
        .query_one("SELECT * FROM retry_failed_webhooks(p_now => NULL)", &[])
        .await
        .expect("requeue with a NULL now");
    assert_eq!(
        (row.get::<_, i32>("requeued"), row.get::<_, i32>("due_now")),
        (1, 1),
        "requeued and visible to the next sweep"
    );
    receiver.set_default(Reply::status(200));
    let report = sweep(&deps, options(), Clock::System).await.expect("sweep");
    assert_eq!(report.succeeded, 1);
}

#[tokio::test]
async fn in_production_leases_and_due_times_come_from_the_database_clock() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(503)).await;
    let deps = deps(&db, &receiver.url);
    let (_, leased) = db.booking_with_delivery().await;
    let client = db.pool.get().await.expect("connection");
    // Another worker's lease, live for 20 more seconds by the database's clock.
    client
        .execute(
            "UPDATE webhook_deliveries SET locked_until = now() + interval '20 seconds' WHERE id = $1",
            &[&leased],
        )
        .await
        .expect("lease");
    let swept = sweep(&deps, options(), Clock::System).await.expect("sweep");
    assert_eq!(swept.processed, 0, "a live lease is not taken");

    let (_, fresh) = db.booking_with_delivery().await;
    let before = database_now(&db).await;
    delivery::dispatch::handle(json!({ "deliveryId": fresh }), &deps, Clock::System, None)
        .await
        .expect("dispatch");
    let after = database_now(&db).await;
    let row = db.delivery(fresh).await;
    let due = row.next_retry_at.expect("a retry is scheduled");
    let five = chrono::Duration::minutes(5);
    assert!(
        due >= before + five && due <= after + five + chrono::Duration::seconds(1),
        "due {due}, database time {before}..{after}"
    );
    let started = db.attempts(fresh).await[0].started_at;
    assert!(started >= before && started <= after, "{started}");
}

#[tokio::test]
async fn a_limit_dispatch_claims_nothing_it_cannot_finish_before_its_deadline() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let deps = deps_with(&db, &receiver.url, &[("WEBHOOK_TIMEOUT_MS", "1000")]);
    db.booking_with_delivery().await;
    // 5 s are kept free before the deadline and one attempt may take 1 s: 5.5 s is too little.
    let soon = SystemTime::now() + Duration::from_millis(5500);
    let report = delivery::dispatch::handle(json!({}), &deps, Clock::System, Some(soon))
        .await
        .expect("dispatch");
    assert_eq!(report.counts.succeeded, 0);
    assert_eq!(
        db.count("SELECT count(*) FROM webhook_deliveries WHERE status = 'pending' AND locked_until IS NULL")
            .await,
        1
    );
    let later = SystemTime::now() + Duration::from_secs(30);
    let report = delivery::dispatch::handle(json!({}), &deps, Clock::System, Some(later))
        .await
        .expect("dispatch");
    assert_eq!(report.counts.succeeded, 1);
}
