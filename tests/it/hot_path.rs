//! The hot path's shape: claims read the due index in order and stop at their limit whatever
//! the statistics say, leases are heap-only updates, the first write of a group does not look
//! for attempts already stored, and the sweep claims the next batch while the current one is
//! on the wire (issue 13). Speed itself is measured by `make bench`, not here.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use delivery::Clock;
use delivery::sweep::{SweepOptions, SweepReport, sweep};
use tokio::sync::Semaphore;
use tokio_postgres::types::{ToSql, Type};
use uuid::Uuid;

use crate::support::{Receiver, Reply, TestDb, deps_with};

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

/// The plan of `statement` with `params`, as the engine runs it in the transaction `begin`
/// opens (its `SET LOCAL`s: the ordered claims forbid sorting, the recording whole-table
/// joins); the statement is not run.
async fn plan(
    db: &TestDb,
    begin: &str,
    statement: &str,
    params: &[(&(dyn ToSql + Sync), Type)],
) -> String {
    let mut client = db.client().await;
    let tx = client.transaction().await.expect("transaction");
    let set = begin.strip_prefix("BEGIN; ").expect("BEGIN first");
    tx.batch_execute(set).await.expect("SET LOCAL");
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
    let claim = plan(
        &db,
        delivery::sql::ORDERED_CLAIM_BEGIN,
        delivery::sql::DUE_CLAIM,
        &params,
    )
    .await;
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

    // Recording probes no attempts: a repeat of the same attempt meets the unique index.
    let ids: Vec<Uuid> = Vec::new();
    let leases: Vec<DateTime<Utc>> = Vec::new();
    let ints: Vec<i32> = Vec::new();
    let stamps: Vec<DateTime<Utc>> = Vec::new();
    let texts: Vec<&str> = Vec::new();
    let bools: Vec<bool> = Vec::new();
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
        (&bools, Type::BOOL_ARRAY),
    ];
    let record = plan(
        &db,
        delivery::sql::RECORDING_BEGIN,
        delivery::sql::OUTCOME_RECORDING,
        &params,
    )
    .await;
    assert!(!record.contains("on webhook_attempts a"), "{record}");
    assert!(
        record.contains("webhook_attempts_delivery_attempt_key"),
        "{record}"
    );
}

/// Recording a group reaches its deliveries by primary key, whatever the table holds: a plan
/// that hashed the whole outbox to join the group's 200 outcomes cost the drain half of the
/// server's CPU (issue 25), and it grows with the table.
#[tokio::test]
async fn recording_a_group_reads_its_deliveries_by_key_not_the_table() {
    let db = TestDb::new().await;
    let ids = db.backlog(5_000).await;
    db.client()
        .await
        .batch_execute("ANALYZE webhook_deliveries")
        .await
        .expect("analyze");
    let group: Vec<Uuid> = ids.into_iter().take(200).collect();
    let now = Utc::now();
    let leases = vec![now; group.len()];
    let ints = vec![1_i32; group.len()];
    let stamps = vec![now; group.len()];
    let texts: Vec<Option<&str>> = vec![None; group.len()];
    let statuses = vec!["succeeded"; group.len()];
    let params: [(&(dyn ToSql + Sync), Type); 12] = [
        (&group, Type::UUID_ARRAY),
        (&leases, Type::TIMESTAMPTZ_ARRAY),
        (&ints, Type::INT4_ARRAY),
        (&stamps, Type::TIMESTAMPTZ_ARRAY),
        (&ints, Type::INT4_ARRAY),
        (&ints, Type::INT4_ARRAY),
        (&texts, Type::TEXT_ARRAY),
        (&texts, Type::TEXT_ARRAY),
        (&statuses, Type::TEXT_ARRAY),
        (&stamps, Type::TIMESTAMPTZ_ARRAY),
        (&stamps, Type::TIMESTAMPTZ_ARRAY),
        (&stamps, Type::TIMESTAMPTZ_ARRAY),
    ];
    let record = plan(
        &db,
        delivery::sql::RECORDING_BEGIN,
        delivery::sql::OUTCOME_RECORDING_COUNTED,
        &params,
    )
    .await;
    assert!(
        !record.contains("Seq Scan on webhook_deliveries"),
        "{record}"
    );
    assert!(record.contains("webhook_deliveries_pkey"), "{record}");
}

/// Every index of the attempt log is written once per attempt: exactly its key — the delivery
/// and the attempt number (V17), which the recording's ON CONFLICT needs — and the start time
/// the health views read by. A new one belongs in `make bench` first.
#[tokio::test]
async fn an_attempt_writes_two_index_entries_its_key_and_its_start_time() {
    let db = TestDb::new().await;
    let client = db.client().await;
    let rows = client
        .query(
            "SELECT c.relname::text, i.indisprimary, pg_get_indexdef(i.indexrelid)
               FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
              WHERE i.indrelid = 'webhook_attempts'::regclass
              ORDER BY 1",
            &[],
        )
        .await
        .expect("the attempt log's indexes");
    let indexes: Vec<(String, bool, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let names: Vec<(&str, bool)> = indexes.iter().map(|(n, p, _)| (n.as_str(), *p)).collect();
    assert_eq!(
        names,
        [
            ("webhook_attempts_delivery_attempt_key", true),
            ("webhook_attempts_started_idx", false)
        ],
        "{indexes:?}"
    );
    assert!(
        indexes[0].2.ends_with("(delivery_id, attempt)"),
        "{indexes:?}"
    );
    // The surrogate column is still filled, for whoever reads it.
    db.backlog(2).await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let deps = deps_with(&db, &receiver.url, &[]);
    let report = sweep_at(&deps, Utc::now()).await;
    assert_eq!(report.succeeded, 2, "{report:?}");
    assert_eq!(
        db.count("SELECT count(DISTINCT id) FROM webhook_attempts WHERE id IS NOT NULL")
            .await,
        2
    );
}

#[tokio::test]
async fn the_next_batch_is_claimed_while_the_current_one_is_on_the_wire() {
    let db = TestDb::new().await;
    // The receiver holds every request until the test lets it answer.
    let gate = Arc::new(Semaphore::new(0));
    let receiver = Receiver::start(Reply::status(200).held(gate.clone())).await;
    let ids = db.backlog(30).await;
    let deps = deps_with(
        &db,
        &receiver.url,
        &[
            ("WEBHOOK_SWEEP_BATCH", "10"),
            ("WEBHOOK_SWEEP_CONCURRENCY", "10"),
            ("WEBHOOK_TIMEOUT_MS", "10000"),
        ],
    );
    let t0 = Utc::now();
    let sweeping = tokio::spawn(async move { sweep_at(&deps, t0).await });

    // The first batch is on the wire and nothing has come back, yet the rest is claimed: the
    // claims ran while the requests were in flight.
    receiver.wait_for(10, Duration::from_secs(10)).await;
    let leased = "SELECT count(*) FROM webhook_deliveries WHERE locked_until IS NOT NULL";
    let claimed = async {
        while db.count(leased).await < 30 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), claimed)
        .await
        .expect("the later batches are claimed while the first is held");
    assert_eq!(receiver.requests().len(), 10, "the concurrency still holds");

    // Each lease covers what is queued ahead of it: 10 rows are one wave of 10 s, plus the
    // 30 s margin; the second batch waits behind the first, the third behind both.
    let leases: Vec<i64> = db
        .client()
        .await
        .query(
            "SELECT DISTINCT extract(epoch FROM locked_until - $1)::int8 FROM webhook_deliveries ORDER BY 1",
            &[&t0],
        )
        .await
        .expect("leases")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(leases, vec![40, 50, 60]);

    gate.add_permits(30);
    let report = sweeping.await.expect("sweep task");
    assert_eq!(
        (
            report.processed,
            report.succeeded,
            report.batches,
            report.still_due
        ),
        (30, 30, 3, 0)
    );
    let sent: Vec<String> = receiver
        .requests()
        .iter()
        .map(|r| r.header("webhook-id"))
        .collect();
    assert_eq!(sent.len(), 30, "each sent once");
    assert_eq!(
        sent.into_iter().collect::<HashSet<_>>(),
        ids.iter().map(Uuid::to_string).collect::<HashSet<_>>()
    );
    assert_eq!(db.count(leased).await, 0);
    assert_eq!(db.count("SELECT count(*) FROM webhook_attempts").await, 30);
}

#[tokio::test]
async fn a_sweep_whose_recording_is_held_up_stops_claiming_instead_of_running_ahead() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    db.backlog(1000).await;
    let deps = deps_with(
        &db,
        &receiver.url,
        &[
            ("WEBHOOK_SWEEP_BATCH", "100"),
            ("WEBHOOK_SWEEP_CONCURRENCY", "10"),
        ],
    );
    // Recording blocks: another transaction holds webhook_attempts.
    let mut blocker = db.client().await;
    let lock = blocker.transaction().await.expect("transaction");
    lock.batch_execute("LOCK TABLE webhook_attempts IN EXCLUSIVE MODE")
        .await
        .expect("lock");
    let t0 = Utc::now();
    let sweeping = tokio::spawn(async move { sweep_at(&deps, t0).await });

    // Unrecorded, at most: the queue (half a batch, 50), the requests in flight (10) and two
    // recording groups (400) before a claim; a claim adds a batch (100).
    const BEFORE_A_CLAIM: usize = 50 + 10 + 400;
    const MOST: usize = BEFORE_A_CLAIM + 100;
    receiver
        .wait_for(BEFORE_A_CLAIM + 1, Duration::from_secs(10))
        .await;
    let more = tokio::time::timeout(
        Duration::from_millis(500),
        receiver.wait_for(MOST + 1, Duration::from_secs(10)),
    )
    .await;
    let leased = db
        .count("SELECT count(*) FROM webhook_deliveries WHERE locked_until IS NOT NULL")
        .await;
    lock.rollback().await.expect("unlock");
    assert!(more.is_err(), "the sends ran ahead of the recorder");
    assert!(leased as usize <= MOST, "{leased} leased");

    let report = sweeping.await.expect("sweep task");
    assert_eq!((report.succeeded, report.still_due), (1000, 0));
    let sent: HashSet<String> = receiver
        .requests()
        .iter()
        .map(|r| r.header("webhook-id"))
        .collect();
    assert_eq!((receiver.requests().len(), sent.len()), (1000, 1000));
}
