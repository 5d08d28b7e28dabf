//! Pacing toward the receiver: the rate (`WEBHOOK_MAX_RATE`, or the slow start after the
//! breaker closed, whichever is lower) and the sending slots a claim reserves for it.
//!
//! The slots are kept on the endpoint's row (`next_send_at`): a claim of `n` deliveries moves
//! it `n / rate` seconds on, in one statement, so every worker together keeps the rate — the
//! database's real clock is the only one they share. Each request then waits on this machine
//! for its slot. A claim takes at most [`PACED_CLAIM`] of sending time, so the slow start's
//! rate is read again every second.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio_postgres::types::Type;

use crate::db::{query_in_transaction, sql, with_retry};
use crate::deps::Deps;
use crate::engine::claim::Claimed;
use crate::error::Result;

/// The slow start begins at this many requests a second after the breaker closes...
pub const RAMP_FROM: f64 = 10.0;
/// ...doubles every second, and stops pacing (without a ceiling) once it reaches this.
pub const RAMP_UNPACED: f64 = 10_000.0;
/// A claim under a pace takes at most this much sending time.
pub const PACED_CLAIM: Duration = Duration::from_secs(1);

/// A pace toward the receiver, as a claim sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    /// Requests a second.
    pub rate: f64,
    /// How far ahead the next free slot is (other workers' reservations).
    pub backlog: Duration,
}

impl Pace {
    /// The pace under `ceiling` (`WEBHOOK_MAX_RATE`) when the slow start has run `ramp_s`
    /// seconds by the next free slot (`None`: the breaker never closed after an outage), with
    /// the next free slot `backlog_s` ahead. `None`: unpaced.
    pub(crate) fn at(ceiling: Option<f64>, ramp_s: Option<f64>, backlog_s: f64) -> Option<Pace> {
        let rate = pace_for(ceiling, ramp_s)?;
        Some(Pace {
            rate,
            backlog: Duration::try_from_secs_f64(backlog_s.max(0.0)).unwrap_or(Duration::MAX),
        })
    }

    /// How many of `n` one claim takes: [`PACED_CLAIM`]'s worth, at least one.
    pub(crate) fn limit(&self, n: usize) -> usize {
        let most = (self.rate * PACED_CLAIM.as_secs_f64()).ceil().max(1.0);
        n.min(most as usize)
    }

    /// The time `n` paced requests add before the last of them leaves, behind the backlog
    /// (and one more claim's worth: another worker may reserve between the read and ours).
    pub(crate) fn span(&self, n: usize) -> Duration {
        let sending =
            Duration::try_from_secs_f64(n as f64 / self.rate.max(0.001)).unwrap_or(Duration::MAX);
        self.backlog
            .saturating_add(sending)
            .saturating_add(PACED_CLAIM)
    }
}

/// The rate: the ceiling, or the slow start's while it is lower — `RAMP_FROM` doubling every
/// second for `ramp_s` seconds (`None`: no slow start). `None`: unpaced.
pub fn pace_for(ceiling: Option<f64>, ramp_s: Option<f64>) -> Option<f64> {
    let ramp = ramp_s.map(|seconds| RAMP_FROM * 2_f64.powf(seconds.clamp(0.0, 40.0)));
    match (ceiling, ramp) {
        (Some(ceiling), Some(ramp)) => Some(ceiling.min(ramp)),
        (Some(ceiling), None) => Some(ceiling),
        (None, Some(ramp)) => (ramp < RAMP_UNPACED).then_some(ramp),
        (None, None) => None,
    }
}

/// Reserves sending slots for `rows` at `pace` on this worker's endpoint and gives each its
/// moment (`send_at`), in order. One statement, whatever the number of rows.
pub(crate) async fn pace(deps: &Deps, rows: &mut [Claimed], pace: Pace) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let spacing = Duration::from_secs_f64(1.0 / pace.rate.max(0.001));
    let micros = i64::try_from(spacing.as_micros()).unwrap_or(i64::MAX);
    let count = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    let origin = deps.config.webhook_origin();
    let origin = origin.as_str();
    let first = with_retry(&deps.pool, |db| async move {
        let rows = query_in_transaction(
            &db,
            sql::BOUNDED_BEGIN,
            sql::ENDPOINT_PACE,
            &[
                (&origin, Type::TEXT),
                (&count, Type::INT8),
                (&micros, Type::INT8),
            ],
        )
        .await?;
        Ok(match rows.first() {
            Some(row) => {
                let (start, now): (DateTime<Utc>, DateTime<Utc>) =
                    (row.try_get(0)?, row.try_get(1)?);
                (start - now).to_std().unwrap_or_default()
            }
            None => Duration::ZERO,
        })
    })
    .await?;
    let first = Instant::now() + first;
    for (i, row) in rows.iter_mut().enumerate() {
        row.send_at = Some(first + spacing.saturating_mul(u32::try_from(i).unwrap_or(u32::MAX)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pace_is_the_ceiling_or_the_slow_start_whichever_is_lower() {
        assert_eq!(pace_for(None, None), None, "never opened, no ceiling");
        assert_eq!(pace_for(Some(50.0), None), Some(50.0));
        assert_eq!(pace_for(None, Some(0.0)), Some(RAMP_FROM), "just closed");
        assert_eq!(pace_for(None, Some(1.0)), Some(2.0 * RAMP_FROM));
        assert_eq!(pace_for(Some(15.0), Some(1.0)), Some(15.0));
        assert_eq!(pace_for(None, Some(60.0)), None, "the ramp is over");
        assert_eq!(pace_for(Some(50.0), Some(60.0)), Some(50.0));
        // A slot before the close (clock skew between workers): the ramp's start.
        assert_eq!(pace_for(None, Some(-5.0)), Some(RAMP_FROM));
    }

    #[test]
    fn a_paced_claim_takes_a_second_of_sending_at_least_one_row() {
        let pace = |rate| Pace {
            rate,
            backlog: Duration::ZERO,
        };
        assert_eq!(pace(10.0).limit(500), 10);
        assert_eq!(pace(0.5).limit(500), 1);
        assert_eq!(pace(1000.0).limit(500), 500);
        assert_eq!(
            pace(10.0).span(10),
            Duration::from_secs(1) + PACED_CLAIM,
            "the sending and one more claim's worth"
        );
    }
}
