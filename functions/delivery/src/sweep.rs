//! The `retry-sweep` Lambda handler: the safety net that makes delivery certain.
//!
//! Every run claims due deliveries in batches — retries whose time has come, pending ones
//! whose immediate dispatch never happened, and rows whose lease expired because a worker died
//! mid-flight (counted as `reclaimed`) — sends them as the shared [`engine`] does, and keeps
//! going until nothing due is left or its time is up; the next batch is claimed while the
//! current one is on the wire ([`crate::pipeline`]). It only takes rows that were due when it
//! started, so a receiver answering `Retry-After: 0` cannot keep it busy.
//!
//! Status notifications that a later one of the same booking replaced are ended `superseded`
//! by the claim and counted, never sent (`WEBHOOK_SUPERSEDE`, see [`crate::sql`]).
//!
//! Time: no batch is claimed after `WEBHOOK_SWEEP_BUDGET_MS` (default 60 s), and each claim is
//! sized so that all of it, behind everything claimed before it and not yet recorded, can be
//! sent and recorded before the Lambda deadline: whole waves of `WEBHOOK_SWEEP_CONCURRENCY`
//! requests of at most `WEBHOOK_TIMEOUT_MS` each, keeping 5 s free. However large `WEBHOOK_SWEEP_BATCH` or slow the receiver, every invocation records
//! the work it did, so every invocation makes progress.
//!
//! [`engine`]: crate::engine

use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::types::Type;

use crate::clock::instant_of;
use crate::db::{query, with_retry};
use crate::engine::{DeliveryOutcome, Recorded};
use crate::event::SweepEvent;
use crate::pipeline::{Plan, drain};
use crate::status::DeliveryStatus;
use crate::{Clock, Deps, Result, sql};

/// How one sweep runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepOptions {
    /// Deliveries claimed per batch, at most.
    pub batch_size: usize,
    /// No new batch is claimed once this much time has passed (the first always is).
    pub budget: Duration,
    /// The Lambda deadline: no batch is claimed that could not be finished before it.
    pub deadline: Option<SystemTime>,
}

/// Statistics of one sweep, like the seed's `retry_failed_webhooks()`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    /// Deliveries attempted.
    pub processed: usize,
    /// Delivered.
    pub succeeded: usize,
    /// Failed again; another retry is scheduled.
    pub retrying: usize,
    /// Failed for good.
    pub failed: usize,
    /// Not sent: a later status notification of the same booking replaced them (not counted
    /// in `processed`).
    pub superseded: usize,
    /// Taken over from a worker whose lease had expired.
    pub reclaimed: usize,
    /// Attempted, but another worker took them over in flight (state left to it).
    pub lease_lost: usize,
    /// Attempted, but the database refused the outcome (e.g. deleted meanwhile); logged.
    pub unrecorded: usize,
    /// Due deliveries left when the sweep ended.
    pub still_due: i64,
    /// Batches claimed.
    pub batches: usize,
    /// True when time (the budget or the deadline) ended the sweep.
    pub budget_exhausted: bool,
    /// Wall time of the sweep.
    pub duration_ms: u64,
    /// What retention removed after the sweep (`WEBHOOK_RETENTION`), when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<crate::retention::CleanupReport>,
}

impl SweepReport {
    /// Counts one delivery the sweep claimed.
    fn count(&mut self, d: &DeliveryOutcome) {
        self.reclaimed += usize::from(d.reclaimed);
        if d.status == DeliveryStatus::Superseded {
            self.superseded += 1;
            return;
        }
        self.processed += 1;
        match (d.recorded, d.status) {
            (Recorded::LeaseLost, _) => self.lease_lost += 1,
            (Recorded::Refused, _) => self.unrecorded += 1,
            (Recorded::Yes, DeliveryStatus::Succeeded) => self.succeeded += 1,
            (Recorded::Yes, DeliveryStatus::Failed) => self.failed += 1,
            (Recorded::Yes, _) => self.retrying += 1,
        }
    }
}

/// Handles one `retry-sweep` invocation. The event is the scheduler's input: any JSON object
/// (`{}` by default), optionally `{"batchSize": N}`. `deadline` is the Lambda deadline
/// (`Context::deadline()`), if any. Afterwards: retention when `WEBHOOK_RETENTION` is set, and the metrics
/// ([`crate::metrics::sweep_finished`]).
pub async fn handle(
    event: Value,
    deps: &Deps,
    clock: Clock,
    deadline: Option<SystemTime>,
) -> Result<SweepReport> {
    let (result, tally) = crate::metrics::collect(run(event, deps, clock, deadline)).await;
    crate::metrics::sweep_finished(deps, tally, &result, clock).await;
    result
}

async fn run(
    event: Value,
    deps: &Deps,
    clock: Clock,
    deadline: Option<SystemTime>,
) -> Result<SweepReport> {
    let options = options_for(&event, deps, deadline)?;
    let mut report = sweep(deps, options, clock).await?;
    report.retention = crate::retention::after_sweep(deps, &report, clock).await;
    tracing::info!(report = ?report, "sweep finished");
    Ok(report)
}

/// The options for an event: batch size from the event or configuration, the configured
/// budget, and the deadline.
pub fn options_for(
    event: &Value,
    deps: &Deps,
    deadline: Option<SystemTime>,
) -> Result<SweepOptions> {
    let event = SweepEvent::parse(event.clone())?;
    Ok(SweepOptions {
        batch_size: event.batch_size.unwrap_or(deps.config.sweep_batch),
        budget: deps.config.sweep_budget,
        deadline,
    })
}

/// Runs one sweep: claim a batch, deliver it while claiming the next, until nothing due is
/// left or time is up. Concurrent sweeps never send a delivery twice (claims are leased).
pub async fn sweep(deps: &Deps, options: SweepOptions, clock: Clock) -> Result<SweepReport> {
    let started = Instant::now();
    let plan = Plan {
        batch_size: options.batch_size.max(1),
        budget: options.budget,
        started,
        deadline: options.deadline.and_then(instant_of),
    };
    let mut report = SweepReport::default();
    let drained = drain(deps, clock, plan, |d| report.count(&d)).await?;
    drained.superseded.iter().for_each(|d| report.count(d));
    report.batches = drained.batches;
    report.budget_exhausted = drained.budget_exhausted;
    let now = clock.sql_now();
    report.still_due =
        with_retry(&deps.pool, |db| async move { count_due(&db, now).await }).await?;
    report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(report)
}

async fn count_due(db: &tokio_postgres::Client, now: Option<DateTime<Utc>>) -> Result<i64> {
    let rows = query(db, sql::DUE_COUNT, &[(&now, Type::TIMESTAMPTZ)]).await?;
    Ok(match rows.first() {
        Some(row) => row.try_get(0)?,
        None => 0,
    })
}
