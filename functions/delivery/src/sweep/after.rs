//! The work after a drain, each part only with the time to finish it before the deadline:
//! retention (`WEBHOOK_RETENTION`), and the backlog figures of the function's metrics. What
//! the deadline left no time for is said in the report (`skippedAfterSweep`).

use std::time::{Duration, Instant};

use super::report::SweepReport;
use crate::clock::Clock;
use crate::db::STATEMENT_TIMEOUT;
use crate::deps::Deps;
use crate::engine::lease::DEADLINE_HEADROOM;
use crate::error::Result;
use crate::metrics::SweepGauges;
use crate::ops::completeness::{DEFAULT_WINDOW, count_missing};
use crate::ops::endpoint::read_endpoints;
use crate::ops::health::read_backlog;
use crate::ops::retention::{Cleanup, CleanupReport, clean_up};

/// What retention removes at most per sweep: delivery comes first, and the rest waits for the
/// next run.
pub const RETENTION_MAX_ROWS: i64 = 5_000;

/// Reads the sweep's gauges: the backlog and the missing-delivery count.
pub(super) async fn read_gauges(deps: &Deps, clock: Clock) -> Result<SweepGauges> {
    let db = deps.pool.get().await?;
    let backlog = read_backlog(&db, clock.sql_now()).await?;
    let missing = count_missing(&db, backlog.at, DEFAULT_WINDOW)
        .await
        .map_err(|e| tracing::warn!(error = %e, "missing-delivery count not read"))
        .ok();
    let origin = deps.config.webhook_origin();
    let endpoint = read_endpoints(&db, backlog.at.into(), deps.config.endpoint.max_rate)
        .await?
        .into_iter()
        .find(|e| e.origin == origin);
    Ok(SweepGauges {
        due_backlog: backlog.due,
        oldest_due_age_s: backlog.oldest_due_age_s.round(),
        missing_deliveries: missing,
        breaker_open: endpoint.as_ref().is_some_and(|e| e.breaker != "closed"),
        breaker_open_s: endpoint.as_ref().map_or(0.0, |e| e.open_seconds as f64),
        paused: endpoint.as_ref().is_some_and(|e| e.paused_until.is_some()),
        held: endpoint.as_ref().map_or(0, |e| e.held),
    })
}

/// With `WEBHOOK_RETENTION` set, removes up to [`RETENTION_MAX_ROWS`] deliveries resolved more
/// than that long before now — unless the sweep used up its time budget (delivering comes
/// first) or the deadline leaves no time for one batch (then it is skipped, and said in the
/// report). Never fails the sweep: an error is logged and the next run tries again.
pub(super) async fn retain(
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
            let e: crate::error::Error = e;
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
pub(super) struct TimeLeft(pub(super) Option<Instant>);

impl TimeLeft {
    /// True when more than `needed` is left, besides the headroom.
    pub(super) fn allows(self, needed: Duration) -> bool {
        self.0.is_none_or(|at| {
            at.saturating_duration_since(Instant::now()) > needed + DEADLINE_HEADROOM
        })
    }

    /// `work`, unless the deadline (less the headroom) comes first: then `None`.
    pub(super) async fn bound<T>(self, work: impl std::future::Future<Output = T>) -> Option<T> {
        match self.0 {
            None => Some(work.await),
            Some(at) => {
                let until = at.checked_sub(DEADLINE_HEADROOM).unwrap_or(at);
                tokio::time::timeout_at(until.into(), work).await.ok()
            }
        }
    }
}
