//! The `retry-sweep` Lambda handler: the safety net that makes delivery certain.
//!
//! Every run claims due deliveries in batches — retries whose time has come, pending ones
//! whose immediate dispatch never happened, and rows whose lease expired because a worker died
//! mid-flight (counted as `reclaimed`) — sends each batch through the shared [`engine`], and
//! keeps going until nothing due is left or the time budget is spent. It only takes rows that
//! were due when it started, so a receiver answering `Retry-After: 0` cannot keep it busy.
//!
//! The budget is `WEBHOOK_SWEEP_BUDGET_MS` (default 60 s), further capped so that the last
//! batch can finish before the Lambda deadline: a batch may take
//! `ceil(batch / concurrency) × timeout` (default 7 × 10 s), plus [`DEADLINE_HEADROOM`].
//!
//! [`engine`]: crate::engine

use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use serde_json::Value;

use crate::claim::{LEASE_MARGIN, claim_due, lease_for};
use crate::clock::instant_of;
use crate::engine::deliver;
use crate::event::SweepEvent;
use crate::status::DeliveryStatus;
use crate::{Clock, Deps, Result, sql};

/// Kept free before the Lambda deadline for recording and returning the report.
pub(crate) const DEADLINE_HEADROOM: Duration = Duration::from_secs(5);

/// How one sweep runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepOptions {
    /// Deliveries claimed per batch.
    pub batch_size: usize,
    /// No new batch is claimed once this much time has passed (the first always is).
    pub budget: Duration,
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
    /// Taken over from a worker whose lease had expired.
    pub reclaimed: usize,
    /// Attempted, but another worker took them over in flight (state left to it).
    pub lease_lost: usize,
    /// Due deliveries left when the sweep ended.
    pub still_due: i64,
    /// Batches claimed.
    pub batches: usize,
    /// True when the time budget ended the sweep.
    pub budget_exhausted: bool,
    /// Wall time of the sweep.
    pub duration_ms: u64,
}

/// Handles one `retry-sweep` invocation. The event is the scheduler's input: any JSON object
/// (`{}` by default), optionally `{"batchSize": N}`. `deadline` is the Lambda deadline
/// (`Context::deadline()`), if any.
pub async fn handle(
    event: Value,
    deps: &Deps,
    clock: Clock,
    deadline: Option<SystemTime>,
) -> Result<SweepReport> {
    let options = options_for(&event, deps, deadline)?;
    let report = sweep(deps, options, clock).await?;
    tracing::info!(report = ?report, "sweep finished");
    Ok(report)
}

/// The options for an event: batch size from the event or configuration, and the budget
/// capped by the deadline.
pub fn options_for(
    event: &Value,
    deps: &Deps,
    deadline: Option<SystemTime>,
) -> Result<SweepOptions> {
    let event = SweepEvent::parse(event.clone())?;
    let batch_size = event.batch_size.unwrap_or(deps.config.sweep_batch);
    let mut budget = deps.config.sweep_budget;
    if let Some(deadline) = deadline {
        let worst_batch = lease_for(
            batch_size,
            deps.config.sweep_concurrency,
            deps.config.timeout,
        ) - LEASE_MARGIN;
        let usable = instant_of(deadline)
            .saturating_duration_since(Instant::now())
            .saturating_sub(worst_batch + DEADLINE_HEADROOM);
        budget = budget.min(usable);
    }
    Ok(SweepOptions { batch_size, budget })
}

/// Runs one sweep: claim a batch, deliver it, repeat until nothing due is left or the budget
/// is spent. Concurrent sweeps never send a delivery twice (claims are leased).
pub async fn sweep(deps: &Deps, options: SweepOptions, clock: Clock) -> Result<SweepReport> {
    let started = Instant::now();
    let cutoff = clock.now();
    let lease = lease_for(
        options.batch_size,
        deps.config.sweep_concurrency,
        deps.config.timeout,
    );
    let mut report = SweepReport::default();
    loop {
        if report.batches > 0 && started.elapsed() >= options.budget {
            report.budget_exhausted = true;
            break;
        }
        let batch = claim_due(
            &deps.pool.get().await?,
            cutoff,
            clock.now(),
            lease,
            options.batch_size,
        )
        .await?;
        if batch.is_empty() {
            break;
        }
        report.batches += 1;
        for d in deliver(deps, batch, clock).await? {
            report.processed += 1;
            report.reclaimed += usize::from(d.reclaimed);
            if !d.recorded {
                report.lease_lost += 1;
                continue;
            }
            match d.status {
                DeliveryStatus::Succeeded => report.succeeded += 1,
                DeliveryStatus::Failed => report.failed += 1,
                _ => report.retrying += 1,
            }
        }
    }
    let db = deps.pool.get().await?;
    report.still_due = db
        .query_one(&db.prepare_cached(sql::DUE_COUNT).await?, &[&clock.now()])
        .await?
        .try_get(0)?;
    report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(report)
}
