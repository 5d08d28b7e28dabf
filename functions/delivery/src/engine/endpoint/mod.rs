//! The notification service as a whole, shared by every worker through `webhook_endpoints`
//! (V16): whether anything may be sent now (the circuit breaker, a pause), at what pace (the
//! rate ceiling and the slow start after an outage), and what each recorded group tells about
//! its health.
//!
//! The breaker: *closed* while the service answers; *open* after `WEBHOOK_BREAKER_AFTER`
//! consecutive connect errors, timeouts and 5xx across all workers — or, when traffic is too
//! light to reach that, once every request for [`BREAKER_SPAN`] failed ([`BREAKER_SPAN_FAILURES`]
//! at least); *half-open* once the cool-down has passed, while exactly one worker's probe — the
//! oldest due delivery — is on its way. Any answer closes it (4xx included: those are the
//! delivery's fault, not the service's, and never count toward opening it); a failed probe
//! reopens it for twice the cool-down (at most [`MAX_COOLDOWN`]).
//!
//! While it is not closed, or the endpoint is paused (`webhooks pause`, or a receiver's
//! `Retry-After` on a 429 or 503), deliveries are *held*: dispatch and listen leave them to
//! the sweep, the sweep sends only the probe, and held time does not count toward
//! `max_retries` — an attempt that fails while the breaker is open (the probe, or a request in
//! flight when it opened) is logged like any other but not counted, and its delivery waits
//! for the next probe. A delivery held longer than `WEBHOOK_HOLD_MAX` fails, saying so.
//!
//! Pacing: with `WEBHOOK_MAX_RATE`, or during the slow start after the breaker closed, each
//! claim reserves its sending slots on the endpoint's row — one write per claim, not per
//! delivery — so every worker together keeps under the rate, and each request waits for its
//! slot ([`pace`]).
//!
//! # Layout
//! - [`pace`]: the rate, and the slots a claim reserves.
//! - [`health`]: what a recorded group tells, the holds it leads to, and holds that expire.

pub(crate) mod health;
pub mod pace;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Client;
use tokio_postgres::types::Type;

use crate::config::EndpointPolicy;
pub use crate::config::endpoint::MAX_COOLDOWN;
use crate::db::{query, sql, with_retry};
use crate::deps::Deps;
use crate::error::Result;
pub use health::{BREAKER_SPAN, BREAKER_SPAN_FAILURES};
pub(crate) use pace::Pace;

/// Why nothing is sent now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "reason")]
pub enum Hold {
    /// The breaker is open: a probe may go from `probe_at`.
    #[serde(rename_all = "camelCase")]
    BreakerOpen {
        /// When the outage began.
        since: DateTime<Utc>,
        /// When a probe may go.
        probe_at: Option<DateTime<Utc>>,
    },
    /// Another worker's probe is on its way.
    #[serde(rename_all = "camelCase")]
    Probing {
        /// When the outage began.
        since: DateTime<Utc>,
    },
    /// Paused until then, by an operator or a receiver's `Retry-After`.
    #[serde(rename_all = "camelCase")]
    Paused {
        /// Until when.
        until: DateTime<Utc>,
        /// Who paused it.
        by: String,
    },
}

impl Hold {
    /// The breaker is open or probing (rather than a pause).
    pub fn breaker(&self) -> bool {
        !matches!(self, Hold::Paused { .. })
    }
}

/// Whether a worker may send now.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    /// Send, paced when a pace applies.
    Send(Option<Pace>),
    /// This worker won the probe: send exactly one delivery.
    Probe,
    /// Send nothing now.
    Held(Hold),
}

/// The endpoint's row, as the gate reads it.
struct State {
    state: String,
    opened_at: Option<DateTime<Utc>>,
    probe_at: Option<DateTime<Utc>>,
    paused_until: Option<DateTime<Utc>>,
    paused_by: Option<String>,
    at: DateTime<Utc>,
    ramp_s: Option<f64>,
    backlog_s: f64,
}

async fn read(db: &Client, origin: &str, now: Option<DateTime<Utc>>) -> Result<State> {
    let params: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 2] =
        [(&origin, Type::TEXT), (&now, Type::TIMESTAMPTZ)];
    let mut rows = query(db, sql::ENDPOINT_STATE, &params).await?;
    if rows.is_empty() {
        query(db, sql::ENDPOINT_ENSURE, &[(&origin, Type::TEXT)]).await?;
        rows = query(db, sql::ENDPOINT_STATE, &params).await?;
    }
    let Some(row) = rows.first() else {
        // Not readable (row security without a policy for this role): as if closed and never
        // paused — the delivery path must not stop because the health row cannot be seen.
        return Ok(State {
            state: "closed".into(),
            opened_at: None,
            probe_at: None,
            paused_until: None,
            paused_by: None,
            at: now.unwrap_or_else(Utc::now),
            ramp_s: None,
            backlog_s: 0.0,
        });
    };
    Ok(State {
        state: row.try_get(0)?,
        opened_at: row.try_get(2)?,
        probe_at: row.try_get(3)?,
        paused_until: row.try_get(6)?,
        paused_by: row.try_get(7)?,
        at: row.try_get(8)?,
        ramp_s: row.try_get(9)?,
        backlog_s: row.try_get::<_, Option<f64>>(10)?.unwrap_or(0.0),
    })
}

/// Whether to send to `origin` now (`now`: the engine's clock; `None`: the database's). With
/// `may_probe` (the sweep), an open breaker whose cool-down has passed makes this worker the
/// prober, if no other is (the probe's lease is `probe_lease`).
pub(crate) async fn gate(
    db: &Client,
    origin: &str,
    now: Option<DateTime<Utc>>,
    policy: &EndpointPolicy,
    may_probe: bool,
    probe_lease: Duration,
) -> Result<Gate> {
    let state = read(db, origin, now).await?;
    if let Some(until) = state.paused_until.filter(|until| *until > state.at) {
        return Ok(Gate::Held(Hold::Paused {
            until,
            by: state.paused_by.unwrap_or_default(),
        }));
    }
    let since = state.opened_at.unwrap_or(state.at);
    let open = Hold::BreakerOpen {
        since,
        probe_at: state.probe_at,
    };
    match state.state.as_str() {
        "closed" => Ok(Gate::Send(Pace::at(
            policy.max_rate,
            state.ramp_s,
            state.backlog_s,
        ))),
        _ if may_probe => {
            let millis = i64::try_from(probe_lease.as_millis()).unwrap_or(i64::MAX);
            let won = query(
                db,
                sql::ENDPOINT_PROBE,
                &[
                    (&origin, Type::TEXT),
                    (&now, Type::TIMESTAMPTZ),
                    (&millis, Type::INT8),
                ],
            )
            .await?;
            Ok(match (won.is_empty(), state.state.as_str()) {
                (false, _) => Gate::Probe,
                (true, "half_open") => Gate::Held(Hold::Probing { since }),
                (true, _) => Gate::Held(open),
            })
        }
        "half_open" => Ok(Gate::Held(Hold::Probing { since })),
        _ => Ok(Gate::Held(open)),
    }
}

/// [`gate`] for this worker's endpoint (`WEBHOOK_URL`'s origin), through the pool — unless
/// this process saw it let everything through unpaced less than a second ago and has recorded
/// no failure or pause since ([`Deps::endpoint_open`]): in a fast drain, or under `listen`,
/// one read a second instead of one a claim.
pub(crate) async fn admit(
    deps: &Deps,
    now: Option<DateTime<Utc>>,
    may_probe: bool,
    probe_lease: Duration,
) -> Result<Gate> {
    if deps.endpoint_open() {
        return Ok(Gate::Send(None));
    }
    let origin = deps.config.webhook_origin();
    let (origin, policy) = (origin.as_str(), &deps.config.endpoint);
    let gate = with_retry(&deps.pool, |db| async move {
        gate(&db, origin, now, policy, may_probe, probe_lease).await
    })
    .await?;
    // Held or probing is not quiet: the answers of what is sent now (a probe) must reach its
    // row.
    let held = !matches!(gate, Gate::Send(_));
    deps.saw_endpoint(
        Some(matches!(gate, Gate::Send(None))),
        held.then_some(false),
    );
    Ok(gate)
}
