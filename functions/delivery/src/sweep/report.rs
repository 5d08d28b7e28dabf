//! What a sweep did, like the seed's `retry_failed_webhooks()` statistics.

use serde::Serialize;

use crate::engine::delivered::{DeliveryOutcome, Recorded};
use crate::engine::endpoint::Hold;
use crate::ops::endpoint::describe_hold;
use crate::ops::output::Style;
use crate::ops::retention::CleanupReport;
use crate::ops::table::paragraph;
use crate::status::DeliveryStatus;

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
    /// Why the notification service held the due deliveries (breaker open, a probe on its
    /// way, a pause), if it did: they were not sent, and no attempt was spent on them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<Hold>,
    /// Probes sent while the breaker was open (at most one a sweep).
    pub probes: usize,
    /// Held deliveries failed for being held longer than `WEBHOOK_HOLD_MAX` (replayable).
    pub holds_expired: usize,
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
    pub(super) fn count(&mut self, d: &DeliveryOutcome) {
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

/// The human form: what was sent and how it ended, then what else happened, if anything.
pub fn render_sweep(r: &SweepReport, style: &Style) -> String {
    let mut out = format!(
        "sent {}: {} succeeded, {} retrying, {} failed ({} batches, {} ms)\n",
        r.processed, r.succeeded, r.retrying, r.failed, r.batches, r.duration_ms
    );
    let extras = [
        (
            r.superseded,
            "superseded: a later decision replaced them; never sent",
        ),
        (
            r.reclaimed,
            "reclaimed from a worker whose lease had expired",
        ),
        (
            r.lease_lost,
            "taken over by another worker while being sent",
        ),
        (
            r.unrecorded,
            "sent, but the database refused the outcome (see the log)",
        ),
        (
            r.returned,
            "given back unsent (their lease could lapse); the next claim sends them",
        ),
        (r.probes, "sent as the breaker's probe"),
        (
            r.holds_expired,
            "failed for being held past WEBHOOK_HOLD_MAX (webhooks replay)",
        ),
    ];
    for (n, what) in extras.iter().filter(|(n, _)| *n > 0) {
        out.push_str(&format!("{n} {what}\n"));
    }
    if let Some(held) = &r.held {
        out.push_str(&format!("{}\n", describe_hold(held)));
    }
    if r.budget_exhausted {
        out.push_str("stopped by its time budget (WEBHOOK_SWEEP_BUDGET_MS): run it again\n");
    }
    out.push_str(&match r.still_due {
        0 => "nothing is due now; retries scheduled for later: `webhooks send --retrying`\n"
            .to_owned(),
        n => format!("{n} still due\n"),
    });
    if let Some(retention) = &r.retention {
        out.push_str(&format!(
            "retention removed {} deliveries\n",
            retention.total()
        ));
    }
    out.lines().map(|line| paragraph(line, style)).collect()
}
