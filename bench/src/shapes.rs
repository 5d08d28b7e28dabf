//! The write designs of a delivery, side by side (issue 25): what the database spends per
//! delivery — server CPU from `/proc` ([`pgcpu`]), WAL from `pg_current_wal_lsn` — to take a
//! captured backlog through claim and record, with no HTTP in between (every attempt
//! succeeds at once), one connection, each design in turn over the same backlog size and
//! alternating over `BENCH_RUNS` runs, medians. Each design keeps the claim's decisions (the
//! real claim of `delivery::sql`, or its `SELECT` part) and the recording's (the real
//! statement, or the same with the lease test replaced by the row lock):
//!
//! - **lease** (today's engine): the claim's transaction writes a lease (`locked_until`, a
//!   heap-only update) and commits without waiting for the disk; recording, a group of 200
//!   later, inserts the attempts and writes the outcome, releasing the lease.
//! - **row lock**: the claim is the same `SELECT … FOR UPDATE SKIP LOCKED` without the lease
//!   write, in a transaction that stays open while the batch is sent; recording the batch in
//!   that transaction and committing releases the locks. No lease write; a crashed worker's
//!   locks go with its connection.
//!
//! each over the attempt log as it is (V17: its primary key is the delivery and the attempt
//! number, a B-tree on `started_at`, a foreign key to the delivery) and over a leaner one (BRIN
//! on `started_at`, no foreign key), to see what the rest of the log's shape costs.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio_postgres::Client;

use crate::ctx::Ctx;
use crate::pg::{self, Scratch};
use crate::pgcpu;
use crate::report::{Section, Verdict};
use crate::stats::median;

/// The sweep's claim batch (`WEBHOOK_SWEEP_BATCH`'s default) and the recorder's group
/// (`RECORD_EVERY`).
const BATCH: i64 = 100;
const GROUP: usize = 200;
const LEASE_MS: i64 = 60_000;

/// The attempt log made leaner still, for the comparison only (see bench/RESULTS.md for why it
/// is not the schema).
const LEAN_LOG: &str = "
ALTER TABLE webhook_attempts DROP CONSTRAINT webhook_attempts_delivery_id_fkey;
DROP INDEX webhook_attempts_started_idx;
CREATE INDEX webhook_attempts_started_brin ON webhook_attempts USING brin (started_at);";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Design {
    Lease,
    RowLock,
}

/// One measured pass: per delivery.
#[derive(Debug, Clone, Copy, Default)]
struct Cost {
    cpu_us: f64,
    wal_bytes: f64,
    wall_us: f64,
}

pub async fn run(ctx: &mut Ctx) -> anyhow::Result<Section> {
    let standard = Scratch::create("shapes").await?;
    let lean = Scratch::create("shapes_lean").await?;
    let result = measure(ctx, &standard, &lean).await;
    standard.drop().await?;
    lean.drop().await?;
    result
}

async fn measure(ctx: &mut Ctx, standard: &Scratch, lean: &Scratch) -> anyhow::Result<Section> {
    standard.set("webhooks.notify", "off").await?;
    lean.set("webhooks.notify", "off").await?;
    let (standard, lean) = (standard.client().await?, lean.client().await?);
    lean.batch_execute(LEAN_LOG).await?;
    pg::no_autovacuum(&standard).await?;
    pg::no_autovacuum(&lean).await?;
    let n = ctx.knobs.backlog;
    let mut section = Section::new(&format!(
        "Write designs side by side ({n} deliveries, no HTTP, one connection)"
    ));
    let cases: [(&str, Design, &Client); 4] = [
        ("lease, attempt log as it is", Design::Lease, &standard),
        ("row lock, attempt log as it is", Design::RowLock, &standard),
        ("lease, lean attempt log", Design::Lease, &lean),
        ("row lock, lean attempt log", Design::RowLock, &lean),
    ];
    let mut costs: Vec<Vec<Cost>> = vec![Vec::new(); cases.len()];
    for run in 0..ctx.knobs.runs {
        for i in 0..cases.len() {
            // Alternate the order, so no design always runs first after the backlog's writes.
            let i = if run % 2 == 0 { i } else { cases.len() - 1 - i };
            let (_, design, db) = cases[i];
            costs[i].push(pass(db, design, n).await?);
        }
    }
    let base = median_cost(&costs[0]);
    for (i, (name, _, _)) in cases.iter().enumerate() {
        let c = median_cost(&costs[i]);
        section.row(
            &format!("Design: {name} — server CPU, WAL per delivery (single client wall)"),
            format!(
                "{:.1} µs, {:.0} B ({:.1} µs) = {:.2}× CPU, {:.2}× WAL",
                c.cpu_us,
                c.wal_bytes,
                c.wall_us,
                c.cpu_us / base.cpu_us,
                c.wal_bytes / base.wal_bytes
            ),
            "—",
            Verdict::Reported,
        );
    }
    Ok(section)
}

fn median_cost(costs: &[Cost]) -> Cost {
    Cost {
        cpu_us: median(&costs.iter().map(|c| c.cpu_us).collect::<Vec<_>>()),
        wal_bytes: median(&costs.iter().map(|c| c.wal_bytes).collect::<Vec<_>>()),
        wall_us: median(&costs.iter().map(|c| c.wall_us).collect::<Vec<_>>()),
    }
}

/// Captures `n`, then claims and records them all the `design` way; what it cost the server.
async fn pass(db: &Client, design: Design, n: u64) -> anyhow::Result<Cost> {
    pg::truncate(db).await?;
    pg::backlog(db, n).await?;
    let lsn = pg::current_lsn(db).await?;
    let cpu = pgcpu::read()?;
    let started = Instant::now();
    let done = match design {
        Design::Lease => lease_pass(db).await?,
        Design::RowLock => row_lock_pass(db).await?,
    };
    let wall = started.elapsed();
    let cpu = pgcpu::between(cpu, pgcpu::read()?);
    let wal = pg::wal_since(db, &lsn).await?;
    let (succeeded, rows) = pg::delivered(db).await?;
    if done != n || succeeded as u64 != n || rows as u64 != n {
        bail!("{design:?}: recorded {done}, {succeeded} of {rows} succeeded, expected {n}");
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
    Ok(Cost {
        cpu_us: per(cpu),
        wal_bytes: wal / n as f64,
        wall_us: per(wall),
    })
}

/// A claimed row: id, the lease (or none), the attempt number.
type Claimed = (uuid::Uuid, Option<chrono::DateTime<chrono::Utc>>, i32);

/// Today's engine: claims of [`BATCH`] under a lease, recorded in groups of [`GROUP`].
async fn lease_pass(db: &Client) -> anyhow::Result<u64> {
    // Unnamed statements, planned at every execution, as the engine sends them (it runs
    // through transaction poolers, which cannot keep a prepared statement).
    let (claim, record) = (
        delivery::sql::DUE_CLAIM,
        delivery::sql::OUTCOME_RECORDING_COUNTED,
    );
    let mut done = 0;
    let mut pending: Vec<Claimed> = Vec::new();
    loop {
        db.batch_execute(delivery::sql::ORDERED_CLAIM_BEGIN).await?;
        let rows = db
            .query(
                claim,
                &[
                    &None::<chrono::DateTime<chrono::Utc>>,
                    &None::<chrono::DateTime<chrono::Utc>>,
                    &LEASE_MS,
                    &BATCH,
                    &true,
                ],
            )
            .await?;
        db.batch_execute(delivery::sql::COMMIT).await?;
        let empty = rows.is_empty();
        for row in rows {
            pending.push((row.try_get(0)?, row.try_get(5)?, row.try_get(3)?));
        }
        if pending.len() >= GROUP || (empty && !pending.is_empty()) {
            db.batch_execute(delivery::sql::RECORDING_BEGIN).await?;
            done += record_group(db, record, &pending).await?;
            db.batch_execute(delivery::sql::COMMIT).await?;
            pending.clear();
        }
        if empty {
            return Ok(done);
        }
    }
}

/// The claim's `SELECT`, locking without a lease: the due rows in order, `FOR UPDATE SKIP
/// LOCKED` (new_request rows only in this backlog, so the turn and supersede probes are moot).
const ROW_LOCK_CLAIM: &str = "
SELECT d.id, NULL::timestamptz, d.attempt_count + 1
  FROM webhook_deliveries d
 WHERE d.status IN ('pending', 'retrying')
   AND d.next_retry_at <= now()
   AND d.locked_until IS NULL
 ORDER BY d.next_retry_at
 LIMIT $1
   FOR UPDATE OF d SKIP LOCKED";

/// One transaction per batch: lock, (send), record, commit.
async fn row_lock_pass(db: &Client) -> anyhow::Result<u64> {
    let recording = delivery::sql::OUTCOME_RECORDING_COUNTED.replace(
        "   AND (d.locked_until = o.lease
        OR (d.locked_until IS NULL
            AND d.attempt_count = o.attempt
            AND d.last_attempt_at = o.finished_at))",
        "",
    );
    if recording == delivery::sql::OUTCOME_RECORDING_COUNTED {
        bail!("the recording statement changed: its lease test is not where the bench looks");
    }
    let mut done = 0;
    loop {
        db.batch_execute(delivery::sql::ORDERED_CLAIM_BEGIN).await?;
        let rows = db.query(ROW_LOCK_CLAIM, &[&BATCH]).await?;
        if rows.is_empty() {
            db.batch_execute(delivery::sql::COMMIT).await?;
            return Ok(done);
        }
        let claimed = rows
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect::<anyhow::Result<Vec<Claimed>>>()?;
        // The recording commits with the disk and plans as the engine's does.
        db.batch_execute(
            "SET LOCAL synchronous_commit = on; SET LOCAL enable_seqscan = off;
             SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off",
        )
        .await?;
        done += record_group(db, &recording, &claimed).await?;
        db.batch_execute(delivery::sql::COMMIT).await?;
    }
}

/// Records every claimed row as a 200 after 1 ms, with the real statement's parameters.
async fn record_group(db: &Client, statement: &str, claimed: &[Claimed]) -> anyhow::Result<u64> {
    let now = chrono::Utc::now();
    let k = claimed.len();
    let ids: Vec<uuid::Uuid> = claimed.iter().map(|c| c.0).collect();
    let leases: Vec<Option<chrono::DateTime<chrono::Utc>>> = claimed.iter().map(|c| c.1).collect();
    let attempts: Vec<i32> = claimed.iter().map(|c| c.2).collect();
    let times = vec![now; k];
    let durations = vec![1_i32; k];
    let codes = vec![Some(200_i32); k];
    let none_text: Vec<Option<String>> = vec![None; k];
    let status = vec!["succeeded".to_owned(); k];
    let no_time: Vec<Option<chrono::DateTime<chrono::Utc>>> = vec![None; k];
    let resolved: Vec<Option<chrono::DateTime<chrono::Utc>>> = vec![Some(now); k];
    let rows = db
        .query(
            statement,
            &[
                &ids, &leases, &attempts, &times, &durations, &codes, &none_text, &none_text,
                &status, &no_time, &resolved, &times,
            ],
        )
        .await
        .context("recording a group")?;
    Ok(rows.len() as u64)
}
