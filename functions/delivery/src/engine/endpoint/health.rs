//! What a recorded group tells about the notification service, written to its row before the
//! group's outcomes (so that a failure made while the breaker is open is held, not counted),
//! and the holds that last too long.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_postgres::Client;
use tokio_postgres::types::Type;

use crate::config::EndpointPolicy;
use crate::config::endpoint::MAX_COOLDOWN;
use crate::db::{query_in_transaction, sql};
use crate::engine::attempt::Attempted;
use crate::error::Result;
use crate::outcome::{AttemptResult, held, service_failing};

/// With light traffic the breaker also opens once every request for this long failed...
pub const BREAKER_SPAN: Duration = Duration::from_secs(300);
/// ...this many at least (one delivery's first three attempts, with the default schedule).
pub const BREAKER_SPAN_FAILURES: i32 = 3;

/// What one recorded group tells about the endpoint's health.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Health {
    /// Failures of the service (no response, 408, 5xx) after the group's last answer (all of
    /// them if none answered).
    pub(crate) trailing_failures: i32,
    /// The service answered (anything but those).
    pub(crate) answered: bool,
    /// The latest pause a receiver asked for (`Retry-After` on a 429 or 503), capped.
    pub(crate) pause_until: Option<DateTime<Utc>>,
}

impl Health {
    /// Reads `group`, in the order its attempts completed; a `Retry-After` counts up to `cap`.
    pub(crate) fn of(group: &[Attempted], cap: Duration) -> Health {
        let mut health = Health::default();
        for attempted in group {
            let result = &attempted.attempt.result;
            if service_failing(result) {
                health.trailing_failures += 1;
            } else {
                health.answered = true;
                health.trailing_failures = 0;
            }
            let retry_after = match result {
                AttemptResult::Response {
                    status: 429 | 503,
                    retry_after,
                    ..
                } => *retry_after,
                _ => None,
            };
            if let Some(wait) = retry_after {
                let until = chrono::Duration::from_std(wait.min(cap))
                    .ok()
                    .and_then(|wait| attempted.finished_at.checked_add_signed(wait));
                health.pause_until = health.pause_until.max(until);
            }
        }
        health
    }

    /// False when the group cannot change the endpoint's row (no attempt in it).
    pub(crate) fn worth_recording(&self) -> bool {
        self.trailing_failures > 0 || self.pause_until.is_some() || self.answered
    }
}

/// The endpoint after a recorded group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct After {
    /// `closed`, `open` or `half_open`.
    pub(crate) state: String,
    /// When the next probe may go (open).
    pub(crate) probe_at: Option<DateTime<Utc>>,
}

/// Records `health` on endpoint `origin` at `now` under `policy` (one statement; it writes
/// nothing when nothing changes). `None`: the endpoint has no row this role can see.
pub(crate) async fn record(
    db: &Client,
    origin: &str,
    now: Option<DateTime<Utc>>,
    health: Health,
    policy: &EndpointPolicy,
) -> Result<Option<After>> {
    let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    // Off: neither rule can open it (a receiver's Retry-After still pauses).
    let after = policy
        .breaker_after
        .map_or(i32::MAX, |n| i32::try_from(n).unwrap_or(i32::MAX));
    let span_failures = match policy.breaker_after {
        Some(_) => BREAKER_SPAN_FAILURES.min(after),
        None => i32::MAX,
    };
    let rows = query_in_transaction(
        db,
        sql::BOUNDED_BEGIN,
        sql::ENDPOINT_RECORD,
        &[
            (&origin, Type::TEXT),
            (&now, Type::TIMESTAMPTZ),
            (&health.trailing_failures, Type::INT4),
            (&health.answered, Type::BOOL),
            (&health.pause_until, Type::TIMESTAMPTZ),
            (&after, Type::INT4),
            (&millis(policy.breaker_cooldown), Type::INT8),
            (&millis(MAX_COOLDOWN), Type::INT8),
            (&span_failures, Type::INT4),
            (&millis(BREAKER_SPAN), Type::INT8),
        ],
    )
    .await?;
    rows.first()
        .map(|row| {
            Ok(After {
                state: row.try_get(0)?,
                probe_at: row.try_get(1)?,
            })
        })
        .transpose()
}

/// With the breaker open after `group` was recorded (`after`), its failures of the service
/// are held rather than counted: each such delivery stays due at the next probe (after the
/// deliveries already waiting, so a delivery that keeps failing does not become every probe).
pub(crate) fn hold_failures(group: &mut [Attempted], after: &After) {
    if after.state == "closed" {
        return;
    }
    for attempted in group {
        if !service_failing(&attempted.attempt.result) {
            continue;
        }
        let due = after
            .probe_at
            .unwrap_or(attempted.finished_at)
            .max(attempted.finished_at);
        attempted.transition = held(attempted.transition.clone(), &attempted.attempt.result, due);
        attempted.held = true;
    }
}

/// Fails up to `limit` due deliveries held longer than `hold_max` (at `now`), saying so.
/// Returns how many.
pub(crate) async fn expire_holds(
    db: &Client,
    now: Option<DateTime<Utc>>,
    hold_max: Duration,
    limit: i64,
) -> Result<usize> {
    let millis = i64::try_from(hold_max.as_millis()).unwrap_or(i64::MAX);
    let rows = query_in_transaction(
        db,
        sql::BOUNDED_BEGIN,
        sql::HOLD_EXPIRY,
        &[
            (&now, Type::TIMESTAMPTZ),
            (&millis, Type::INT8),
            (&limit, Type::INT8),
        ],
    )
    .await?;
    Ok(rows.len())
}
