//! The claimer and the notification service ([`crate::engine::endpoint`]): the gate before
//! each claim — trusted for [`GATE_FRESH`] while it lets everything through unpaced — what a
//! hold does to the drain, and how many rows a paced claim takes.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::Claimer;
use crate::engine::endpoint::{Gate, Hold, Pace, admit};
use crate::engine::lease::DEADLINE_HEADROOM;
use crate::error::Result;

/// How long a gate that let everything through unpaced is trusted without reading the
/// service's row again: an operator's pause, or another worker's breaker, reaches a running
/// drain within this (the drain's own failures at once, through the recorder).
pub(crate) const GATE_FRESH: Duration = Duration::from_secs(1);

impl Claimer<'_> {
    /// The notification service's gate for the next claim: read again unless the last one,
    /// less than [`GATE_FRESH`] ago, let everything through unpaced and the recorder has told
    /// nothing about the service since — in a fast drain, one read a second instead of one a
    /// claim. `may_probe`: a due claim may be the probe.
    pub(super) async fn gate(
        &mut self,
        now: Option<DateTime<Utc>>,
        may_probe: bool,
    ) -> Result<Gate> {
        if self
            .gate_holds_until
            .is_some_and(|until| Instant::now() < until)
        {
            return Ok(Gate::Send(None));
        }
        let gate = admit(self.deps, now, may_probe, self.lease(1)).await?;
        self.gate_holds_until =
            matches!(gate, Gate::Send(None)).then(|| Instant::now() + GATE_FRESH);
        Ok(gate)
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
