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

use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::types::Type;

use crate::clock::instant_of;
use crate::completeness::{DEFAULT_WINDOW, count_missing};
use crate::db::sql;
use crate::db::{STATEMENT_TIMEOUT, query, with_retry};
use crate::engine::delivered::{DeliveryOutcome, Recorded};
use crate::engine::lease::DEADLINE_HEADROOM;
use crate::engine::pipeline::{Plan, drain};
use crate::event::SweepEvent;
use crate::health::read_backlog;
use crate::metrics::SweepGauges;
use crate::retention::{Cleanup, CleanupReport, clean_up};
use crate::status::DeliveryStatus;
use crate::{Clock, Deps, Result, metrics};

/// How long before the deadline a drain that is still running stops claiming and sending.
pub const WATCHDOG_STOP: Duration = Duration::from_secs(4);
/// How long before the deadline a drain that is still running is abandoned.
pub const WATCHDOG_ABANDON: Duration = Duration::from_secs(1);
/// What retention removes at most per sweep: delivery comes first, and the rest waits for the
/// next run.
pub const RETENTION_MAX_ROWS: i64 = 5_000;

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
    /// Claimed, then given back unsent: the lease might have lapsed before the request could
    /// end (this worker was stopped or suspended), or the watchdog stopped the sweep. Not
    /// counted in `processed`.
    pub returned: usize,
    /// Due deliveries left when the sweep ended.
    pub still_due: i64,
    /// Batches claimed.
    pub batches: usize,
    /// True when time (the budget or the deadline) ended the sweep.
    pub budget_exhausted: bool,
    /// True when the watchdog had to stop the sweep before its deadline (something stalled).
    pub stopped_by_watchdog: bool,
    /// Wall time of the sweep.
    pub duration_ms: u64,
    /// What retention removed after the sweep (`WEBHOOK_RETENTION`), when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<CleanupReport>,
    /// The work after the sweep that the deadline left no time for (`retention`,
    /// `backlogMetrics`, `stillDue`); it runs again with the next sweep.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped_after_sweep: Vec<&'static str>,
}

impl SweepReport {
    /// Counts one delivery the sweep claimed.
    fn count(&mut self, d: &DeliveryOutcome) {
        self.reclaimed += usize::from(d.reclaimed);
        if d.status == DeliveryStatus::Superseded {
            self.superseded += 1;
            return;
        }
        if d.recorded == Recorded::Returned {
            self.returned += 1;
            return;
        }
        self.processed += 1;
        match (d.recorded, d.status) {
            (Recorded::LeaseLost, _) => self.lease_lost += 1,
            (Recorded::Refused | Recorded::Returned, _) => self.unrecorded += 1,
            (Recorded::Yes, DeliveryStatus::Succeeded) => self.succeeded += 1,
            (Recorded::Yes, DeliveryStatus::Failed) => self.failed += 1,
            (Recorded::Yes, _) => self.retrying += 1,
        }
    }
}

/// Handles one `retry-sweep` invocation. The event is the scheduler's input: any JSON object
/// (`{}` by default), optionally `{"batchSize": N}`. `deadline` is the Lambda deadline
/// (`Context::deadline()`), if any. Afterwards, as the deadline allows: retention when
/// `WEBHOOK_RETENTION` is set, and the metrics ([`crate::metrics::sweep_finished`]).
pub async fn handle(
    event: Value,
    deps: &Deps,
    clock: Clock,
    deadline: Option<SystemTime>,
) -> Result<SweepReport> {
    let (mut result, tally) = metrics::collect(run(event, deps, clock, deadline)).await;
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
        tracing::info!(report = ?report, "sweep finished");
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

/// Reads the sweep's gauges: the backlog and the missing-delivery count.
async fn read_gauges(deps: &Deps, clock: Clock) -> Result<SweepGauges> {
    let db = deps.pool.get().await?;
    let backlog = read_backlog(&db, clock.sql_now()).await?;
    let missing = count_missing(&db, backlog.at, DEFAULT_WINDOW)
        .await
        .map_err(|e| tracing::warn!(error = %e, "missing-delivery count not read"))
        .ok();
    Ok(SweepGauges {
        due_backlog: backlog.due,
        oldest_due_age_s: backlog.oldest_due_age_s.round(),
        missing_deliveries: missing,
    })
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

async fn count_due(db: &tokio_postgres::Client, now: Option<DateTime<Utc>>) -> Result<i64> {
    let rows = query(db, sql::DUE_COUNT, &[(&now, Type::TIMESTAMPTZ)]).await?;
    Ok(match rows.first() {
        Some(row) => row.try_get(0)?,
        None => 0,
    })
}

/// With `WEBHOOK_RETENTION` set, removes up to [`RETENTION_MAX_ROWS`] deliveries resolved more
/// than that long before now — unless the sweep used up its time budget (delivering comes
/// first) or the deadline leaves no time for one batch (then it is skipped, and said in the
/// report). Never fails the sweep: an error is logged and the next run tries again.
async fn retain(
    deps: &Deps,
    report: &mut SweepReport,
    clock: Clock,
    left: TimeLeft,
) -> Option<CleanupReport> {
    let retention = deps.config.retention?;
    if report.budget_exhausted {
        return None;
    }
    // One batch is one statement, which the server ends after STATEMENT_TIMEOUT at most.
    if !left.allows(STATEMENT_TIMEOUT) {
        report.skipped_after_sweep.push("retention");
        return None;
    }
    let result = async {
        let db = deps.pool.get().await?;
        let now = crate::db::now(&db, clock).await?;
        let mut what = match Cleanup::older_than(retention, now) {
            Ok(what) => what,
            Err(why) => {
                tracing::error!(error = %why, "WEBHOOK_RETENTION: retention skipped");
                return Ok(None);
            }
        };
        what.max_rows = Some(RETENTION_MAX_ROWS);
        what.deadline = left.0.and_then(|at| at.checked_sub(DEADLINE_HEADROOM));
        clean_up(&db, &what).await.map(Some)
    };
    match left.bound(result).await {
        Some(Ok(removed)) => removed,
        Some(Err(e)) => {
            let e: crate::Error = e;
            tracing::error!(error = %e, "retention failed; the next sweep tries again");
            None
        }
        None => {
            report.skipped_after_sweep.push("retention");
            None
        }
    }
}

/// The time left before a deadline (`None`: no deadline), less [`DEADLINE_HEADROOM`] for
/// returning the report.
#[derive(Debug, Clone, Copy)]
struct TimeLeft(Option<Instant>);

impl TimeLeft {
    /// True when more than `needed` is left, besides the headroom.
    fn allows(self, needed: Duration) -> bool {
        self.0.is_none_or(|at| {
            at.saturating_duration_since(Instant::now()) > needed + DEADLINE_HEADROOM
        })
    }

    /// `work`, unless the deadline (less the headroom) comes first: then `None`.
    async fn bound<T>(self, work: impl std::future::Future<Output = T>) -> Option<T> {
        match self.0 {
            None => Some(work.await),
            Some(at) => {
                let until = at.checked_sub(DEADLINE_HEADROOM).unwrap_or(at);
                tokio::time::timeout_at(until.into(), work).await.ok()
            }
        }
    }
}
