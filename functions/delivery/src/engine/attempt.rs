//! One claimed delivery's turn with a sender: the lease checked on the boot clock, the signed
//! request, and the state it leads to.

use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};

use super::claim::Claimed;
use crate::clock::{BatchClock, BootInstant};
use crate::deps::Deps;
use crate::outcome::{Attempt, Transition, decide};

/// A claimed delivery after its attempt: what happened and the state it leads to.
#[derive(Debug, Clone)]
pub(crate) struct Attempted {
    /// The delivery as claimed (id and lease).
    pub(crate) claimed: Claimed,
    /// The HTTP attempt.
    pub(crate) attempt: Attempt,
    /// The delivery's next state.
    pub(crate) transition: Transition,
    /// When the attempt ended (`last_attempt_at`).
    pub(crate) finished_at: DateTime<Utc>,
}

/// A claimed delivery after its turn with a sender.
#[derive(Debug)]
pub(crate) enum Completion {
    /// Sent: what happened, and the state it leads to.
    Sent(Attempted),
    /// Not sent (see [`Recorded::Returned`]); to be given back.
    Unsent(Claimed),
}

/// Sends `claimed` — unless `stopped` says time is up, or its lease might lapse before the
/// request could end: a request must never leave after its lease may have lapsed, or another
/// worker that reclaimed the row could have sent it, or a later decision of its booking,
/// meanwhile. The lease is read on the boot clock, which counts a stopped process and a
/// suspended machine, and must still cover the request's timeout and half of the lease margin
/// (recording the outcome).
pub(crate) async fn attempt(
    deps: &Deps,
    claimed: Claimed,
    clock: BatchClock,
    stopped: &AtomicBool,
) -> Completion {
    let needed = deps.config.timeout + deps.config.lease_margin / 2;
    if stopped.load(Ordering::Relaxed) || BootInstant::now().until(claimed.lease_ends) < needed {
        return Completion::Unsent(claimed);
    }
    let attempt = deps
        .sender
        .send(claimed.id, &claimed.payload, clock.now())
        .await;
    let finished_at = clock.now();
    let transition = decide(
        claimed.id,
        claimed.attempt.saturating_sub(1),
        claimed.max_retries,
        &attempt,
        &deps.config.retry,
        finished_at,
    );
    Completion::Sent(Attempted {
        claimed,
        attempt,
        transition,
        finished_at,
    })
}
