//! The claimer and the notification service ([`crate::engine::endpoint`]): the gate before
//! each claim, what a hold does to the drain, and how many rows a paced claim takes.

use std::time::Instant;

use chrono::{DateTime, Utc};

use super::Claimer;
use crate::engine::endpoint::{Gate, Hold, Pace, admit};
use crate::engine::lease::DEADLINE_HEADROOM;
use crate::error::Result;

impl Claimer<'_> {
    /// The notification service's gate for the next claim ([`admit`]: read at most once a
    /// second while it lets everything through). `may_probe`: a due claim may be the probe.
    pub(super) async fn gate(
        &mut self,
        now: Option<DateTime<Utc>>,
        may_probe: bool,
    ) -> Result<Gate> {
        admit(self.deps, now, may_probe, self.lease(1)).await
    }

    /// The service holds what is due: no more due claims; past `WEBHOOK_HOLD_MAX`, held
    /// deliveries fail (by the sweep).
    pub(super) fn hold(&mut self, hold: Hold) {
        tracing::info!(hold = ?hold, "the notification service is held: due deliveries wait");
        self.drained.held = Some(hold);
    }

    /// How many of `limit` a paced claim takes: a second's worth, and only what can be sent
    /// before the deadline behind the other workers' slots.
    pub(super) fn paced_limit(&self, pace: Pace, limit: usize) -> usize {
        let limit = pace.limit(limit);
        let Some(deadline) = self.plan.deadline else {
            return limit;
        };
        let left = deadline
            .saturating_duration_since(Instant::now())
            .saturating_sub(pace.backlog + self.deps.config.timeout + DEADLINE_HEADROOM);
        limit.min((left.as_secs_f64() * pace.rate) as usize)
    }
}
