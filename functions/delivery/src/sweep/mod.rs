//! The `retry-sweep` Lambda handler: the safety net that makes delivery certain.
//!
//! Every run claims due deliveries in batches — retries whose time has come, pending ones
//! whose immediate dispatch never happened, and rows whose lease expired because a worker died
//! mid-flight (counted as `reclaimed`) — sends them as the shared [`engine`] does, and keeps
//! going until nothing due is left or its time is up; the next batch is claimed while the
//! current one is on the wire ([`crate::engine::pipeline`]). It only takes rows that were due when it
//! started, so a receiver answering `Retry-After: 0` cannot keep it busy.
//!
//! Status notifications that a later one of the same booking replaced are ended `superseded`
//! by the claim and counted, never sent (`WEBHOOK_SUPERSEDE`, see [`crate::sql`]).
//!
//! Time: no batch is claimed after `WEBHOOK_SWEEP_BUDGET_MS` (default 60 s), and each claim is
//! sized so that all of it, behind everything claimed before it and not yet recorded, can be
//! sent and recorded before the Lambda deadline: whole waves of `WEBHOOK_SWEEP_CONCURRENCY`
//! requests of at most `WEBHOOK_TIMEOUT_MS` each, keeping 5 s free. However large
//! `WEBHOOK_SWEEP_BATCH` or slow the receiver, every invocation records the work it did, so
//! every invocation makes progress. A watchdog makes sure of it: should the drain still run
//! [`WATCHDOG_STOP`] before the deadline (something stalled), it stops claiming and sending,
//! and [`WATCHDOG_ABANDON`] before the deadline it is abandoned, so the invocation always
//! returns its report (outcomes are recorded as they come; what was in flight is sent again
//! after its lease, under the same `webhook-id`).
//!
//! After the drain, with `WEBHOOK_RETENTION` set, retention removes old resolved deliveries,
//! and the function's metrics read the backlog; each runs only when the deadline leaves it
//! time, and is bounded by the deadline. What was skipped for lack of time is said in the
//! report (`skippedAfterSweep`).
//!
//! [`engine`]: crate::engine
//!
//! # Layout
//! - [`report`]: what a sweep did.
//! - `after`: retention and the backlog metrics, as the deadline allows.

mod after;
pub mod report;

use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::types::Type;

use crate::clock::Clock;
use crate::clock::instant_of;
use crate::db::{query, sql, with_retry};
use crate::deps::Deps;
use crate::engine::endpoint::health::expire_holds;
use crate::engine::pipeline::{Plan, drain};
use crate::error::Result;
use crate::event::SweepEvent;
use crate::metrics;
use crate::telemetry::json;
pub use after::RETENTION_MAX_ROWS;
use after::{TimeLeft, read_gauges, retain};
pub use report::SweepReport;

/// How long before the deadline a drain that is still running stops claiming and sending.
pub const WATCHDOG_STOP: Duration = Duration::from_secs(4);
/// How long before the deadline a drain that is still running is abandoned.
pub const WATCHDOG_ABANDON: Duration = Duration::from_secs(1);

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

/// Handles one `retry-sweep` invocation. The event is the scheduler's input: any JSON object
/// (`{}` by default), optionally `{"batchSize": N}`. `deadline` is the Lambda deadline
/// (`Context::deadline()`), if any. Afterwards, as the deadline allows: retention when
/// `WEBHOOK_RETENTION` is set, and the function's metrics ([`crate::metrics`]), with the backlog gauges.
pub async fn handle(
    event: Value,
    deps: &Deps,
    clock: Clock,
    deadline: Option<SystemTime>,
) -> Result<SweepReport> {
    let (result, tally) = metrics::collect(run(event, deps, clock, deadline)).await;
    let mut result = result.map_err(|err| err.reaching(&deps.config.db));
    let left = TimeLeft(deadline.and_then(instant_of));
    if let Ok(report) = &mut result {
        report.retention = retain(deps, report, clock, left).await;
    }
    let read = match left.allows(Duration::ZERO) {
        true => left.bound(read_gauges(deps, clock)).await,
        false => None,
    };
    let gauges = match read {
        Some(Ok(gauges)) => Some(gauges),
        Some(Err(e)) => {
            tracing::warn!(error = %e, "backlog metrics not read");
            None
        }
        None => {
            if let Ok(report) = &mut result {
                report.skipped_after_sweep.push("backlogMetrics");
            }
            None
        }
    };
    if let Ok(report) = &result {
        tracing::info!(report = %json(report), "sweep finished");
    }
    let invocation = metrics::Invocation {
        function: metrics::Function::RetrySweep,
        skipped: 0,
        error: result.is_err(),
        gauges,
        tally,
    };
    metrics::emit(&invocation, metrics::timestamp(clock));
    result
}

async fn run(
    event: Value,
    deps: &Deps,
    clock: Clock,
    deadline: Option<SystemTime>,
) -> Result<SweepReport> {
    let options = options_for(&event, deps, deadline)?;
    sweep(deps, options, clock).await
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
    let deadline = options.deadline.and_then(instant_of);
    let plan = Plan {
        batch_size: options.batch_size.max(1),
        budget: options.budget,
        started,
        deadline,
        stop_at: deadline.and_then(|at| at.checked_sub(WATCHDOG_STOP)),
    };
    let mut report = SweepReport::default();
    let drained = drain(deps, clock, plan, |d| report.count(&d));
    let drained = match deadline.and_then(|at| at.checked_sub(WATCHDOG_ABANDON)) {
        Some(at) => tokio::time::timeout_at(at.into(), drained).await.ok(),
        None => Some(drained.await),
    };
    match drained {
        Some(drained) => {
            let drained = drained?;
            drained.superseded.iter().for_each(|d| report.count(d));
            report.batches = drained.batches;
            report.budget_exhausted = drained.budget_exhausted;
            report.stopped_by_watchdog = drained.stopped;
            report.probes = drained.probes;
            report.held = drained.held;
        }
        None => {
            tracing::error!(
                "the sweep was abandoned just before its deadline (something stalled); what it recorded stays, what was in flight is sent again after its lease"
            );
            report.budget_exhausted = true;
            report.stopped_by_watchdog = true;
        }
    }
    let now = clock.sql_now();
    let left = TimeLeft(deadline);
    if report.held.is_some() {
        // Held: past WEBHOOK_HOLD_MAX, deliveries fail, saying so (replayable).
        report.holds_expired = expire_held(deps, now, left).await?;
    }
    let counted = match left.allows(Duration::ZERO) {
        true => {
            left.bound(with_retry(&deps.pool, |db| async move {
                count_due(&db, now).await
            }))
            .await
        }
        false => None,
    };
    match counted {
        Some(due) => report.still_due = due?,
        None => report.skipped_after_sweep.push("stillDue"),
    }
    report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(report)
}

/// Fails what has been held longer than `WEBHOOK_HOLD_MAX`, a bounded batch a sweep, as the
/// deadline allows ([`crate::engine::endpoint`]).
async fn expire_held(deps: &Deps, now: Option<DateTime<Utc>>, left: TimeLeft) -> Result<usize> {
    if !left.allows(crate::db::STATEMENT_TIMEOUT) {
        return Ok(0);
    }
    let hold_max = deps.config.endpoint.hold_max;
    let expired = left
        .bound(with_retry(&deps.pool, |db| async move {
            expire_holds(&db, now, hold_max, HOLDS_EXPIRED_MAX).await
        }))
        .await
        .transpose()?
        .unwrap_or(0);
    if expired > 0 {
        tracing::warn!(
            expired,
            hold_max_s = hold_max.as_secs(),
            "held deliveries failed: held longer than WEBHOOK_HOLD_MAX (webhooks replay sends them again)"
        );
        metrics::observe_holds_expired(expired as u64);
    }
    Ok(expired)
}

/// Held deliveries failed per sweep at most (the next sweep goes on).
pub const HOLDS_EXPIRED_MAX: i64 = 5_000;

async fn count_due(db: &tokio_postgres::Client, now: Option<DateTime<Utc>>) -> Result<i64> {
    let rows = query(db, sql::DUE_COUNT, &[(&now, Type::TIMESTAMPTZ)]).await?;
    Ok(match rows.first() {
        Some(row) => row.try_get(0)?,
        None => 0,
    })
}
