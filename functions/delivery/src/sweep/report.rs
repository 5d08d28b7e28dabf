//! What a sweep did, like the seed's `retry_failed_webhooks()` statistics.

use serde::Serialize;

use crate::engine::delivered::{DeliveryOutcome, Recorded};
use crate::engine::endpoint::Hold;
use crate::ops::retention::CleanupReport;
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
