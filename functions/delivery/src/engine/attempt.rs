//! One claimed delivery's turn with a sender: the lease checked on the boot clock, the signed
//! request, and the state it leads to.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

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
    /// It failed while the endpoint was held (breaker open): logged, not counted toward
    /// `max_retries` ([`super::endpoint`]).
    pub(crate) held: bool,
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
    if let Some(at) = claimed.send_at.filter(|at| *at > Instant::now()) {
        // Its slot under the endpoint's pace (the lease covers the wait).
        crate::metrics::observe_throttled();
        tokio::time::sleep_until(at.into()).await;
    }
    let needed = deps.config.timeout + deps.config.lease_margin / 2;
    if stopped.load(Ordering::Relaxed) || BootInstant::now().until(claimed.lease_ends) < needed {
        return Completion::Unsent(claimed);
    }
    let body = body_of(&claimed.payload, claimed.sequence);
    let attempt = deps.sender.send(claimed.id, &body, clock.now()).await;
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
        held: false,
    })
}

/// The body sent: the stored payload (the seed's `type`, `bookingId`, `email`) with the
/// delivery's capture order as `sequence` — signed with the rest. The payload is a JSON object
/// as the database renders jsonb (`{…}`); the member is added before its closing brace.
pub(crate) fn body_of(payload: &str, sequence: i64) -> String {
    let payload = payload.trim_end();
    match payload.strip_suffix('}') {
        Some(open) if open.trim_end().ends_with('{') => format!("{{\"sequence\": {sequence}}}"),
        Some(open) => format!("{open}, \"sequence\": {sequence}}}"),
        None => payload.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_carries_the_sequence_after_the_seeds_fields() {
        let body = body_of(
            r#"{"type": "approved", "email": "s@example.com", "bookingId": "b"}"#,
            42,
        );
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        assert_eq!(parsed["sequence"], 42);
        assert_eq!(parsed["type"], "approved");
        assert_eq!(parsed.as_object().map(|o| o.len()), Some(4));
        assert_eq!(body_of("{}", 7), r#"{"sequence": 7}"#);
    }
}
