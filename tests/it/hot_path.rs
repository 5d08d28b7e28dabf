//! The hot path's shape: claims read the due index in order and stop at their limit whatever
//! the statistics say, leases are heap-only updates, the first write of a group does not look
//! for attempts already stored (issue 13). Speed itself is measured by `make bench`, not here.

use chrono::{DateTime, Utc};
use tokio_postgres::types::{ToSql, Type};
use uuid::Uuid;

use crate::support::TestDb;

/// The plan of `statement` with `params`, as the engine runs it when `ordered`: in the
/// transaction that forbids sorting (the statement is not run).
async fn plan(
    db: &TestDb,
    ordered: bool,
    statement: &str,
    params: &[(&(dyn ToSql + Sync), Type)],
) -> String {
    let mut client = db.client().await;
    let tx = client.transaction().await.expect("transaction");
    if ordered {
        let set = delivery::sql::ORDERED_CLAIM_BEGIN
            .strip_prefix("BEGIN; ")
            .expect("BEGIN first");
        tx.batch_execute(set).await.expect("SET LOCAL");
    }
    let explain = format!("EXPLAIN (COSTS OFF) {statement}");
    let rows = tx.query_typed(&explain, params).await;
    // Ended before anything is asserted: an open transaction would block the schema's drop.
    tx.rollback().await.expect("rollback");
    rows.expect("explain")
        .iter()
        .map(|row| row.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `n` deliveries resolved long ago: the history a claim must not read.
async fn history(db: &TestDb, n: i64) {
    db.backlog(n).await;
    db.client()
        .await
        .batch_execute(
            "UPDATE webhook_deliveries
                SET status = 'succeeded', next_retry_at = NULL, attempt_count = 1,
                    resolved_at = now() - interval '30 days'",
        )
        .await
        .expect("resolve the history");
}

#[tokio::test]
async fn the_due_claim_reads_the_due_index_in_order_even_without_statistics() {
    let db = TestDb::new().await;
    history(&db, 2000).await;
    // A burst captured since the statistics were taken: they say nothing is due.
    db.client()
        .await
        .batch_execute("ANALYZE webhook_deliveries")
        .await
        .expect("analyze");
    db.backlog(2000).await;
    let (cutoff, now): (Option<DateTime<Utc>>, Option<DateTime<Utc>>) = (None, None);
    let params: [(&(dyn ToSql + Sync), Type); 5] = [
        (&cutoff, Type::TIMESTAMPTZ),
        (&now, Type::TIMESTAMPTZ),
        (&60_000i64, Type::INT8),
        (&100i64, Type::INT8),
        (&true, Type::BOOL),
    ];
    let claim = plan(&db, true, delivery::sql::DUE_CLAIM, &params).await;
    assert!(
        claim.contains("Index Scan using webhook_deliveries_due_idx"),
        "{claim}"
    );
    assert!(!claim.contains("Sort"), "no sort of the backlog: {claim}");
    assert!(
        claim.contains("Tid Scan on webhook_deliveries d"),
        "the lease is written through ctid: {claim}"
    );
    assert!(
        !claim.contains("Seq Scan on webhook_deliveries"),
        "never a scan of the table: {claim}"
    );
}

#[tokio::test]
async fn a_lease_is_a_heap_only_update_and_a_first_write_does_not_probe_attempts() {
    let db = TestDb::new().await;
    db.backlog(200).await;
    // The sweep's claim, in a transaction of the test's own: its statistics count the
    // updates it made, and how many of them touched no index.
    let mut client = db.client().await;
    let tx = client.transaction().await.expect("transaction");
    let (cutoff, now): (Option<DateTime<Utc>>, Option<DateTime<Utc>>) = (None, None);
    let claimed = tx
        .query_typed(
            delivery::sql::DUE_CLAIM,
            &[
                (&cutoff, Type::TIMESTAMPTZ),
                (&now, Type::TIMESTAMPTZ),
                (&60_000i64, Type::INT8),
                (&200i64, Type::INT8),
                (&true, Type::BOOL),
            ],
        )
        .await
        .map(|rows| rows.len());
    let counts = tx
        .query_one(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables
              WHERE relid = 'webhook_deliveries'::regclass",
            &[],
        )
        .await
        .map(|row| (row.get::<_, i64>(0), row.get::<_, i64>(1)));
    tx.rollback().await.expect("rollback");
    assert_eq!(claimed.expect("claim"), 200);
    assert_eq!(
        counts.expect("this transaction's statistics"),
        (200, 200),
        "every lease is heap-only"
    );

    // The first write of a group has no attempts probe; a repeat has.
    let ids: Vec<Uuid> = Vec::new();
    let leases: Vec<DateTime<Utc>> = Vec::new();
    let ints: Vec<i32> = Vec::new();
    let stamps: Vec<DateTime<Utc>> = Vec::new();
    let texts: Vec<&str> = Vec::new();
    for (recheck, probes) in [(false, false), (true, true)] {
        let params: [(&(dyn ToSql + Sync), Type); 13] = [
            (&ids, Type::UUID_ARRAY),
            (&leases, Type::TIMESTAMPTZ_ARRAY),
            (&ints, Type::INT4_ARRAY),
            (&stamps, Type::TIMESTAMPTZ_ARRAY),
            (&ints, Type::INT4_ARRAY),
            (&ints, Type::INT4_ARRAY),
            (&texts, Type::TEXT_ARRAY),
            (&texts, Type::TEXT_ARRAY),
            (&texts, Type::TEXT_ARRAY),
            (&stamps, Type::TIMESTAMPTZ_ARRAY),
            (&stamps, Type::TIMESTAMPTZ_ARRAY),
            (&stamps, Type::TIMESTAMPTZ_ARRAY),
            (&recheck, Type::BOOL),
        ];
        let record = plan(&db, false, delivery::sql::OUTCOME_RECORDING, &params).await;
        assert_eq!(
            record.contains("on webhook_attempts a"),
            probes,
            "recheck {recheck}: {record}"
        );
    }
}
