//! The notification service as the operator sees and steers it (`webhooks stats`, `doctor`,
//! `pause`, `resume`, the sweep's metrics): the breaker's state, how long it has been open,
//! what is held, the pace now — and a hold by hand for a maintenance window.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Client;
use tokio_postgres::types::Type;

use super::output::{Style, Tone};
use super::table::{Table, instant, or_dash, relative, span};
use crate::db::{query, query_in_transaction, sql};
use crate::engine::endpoint::Hold;
use crate::engine::endpoint::pace::pace_for;
use crate::error::Result;

/// One endpoint's health.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointView {
    /// The origin of `WEBHOOK_URL` (scheme, host, port): never a path or a secret.
    pub origin: String,
    /// `closed`, `open` or `half_open` (a probe on its way).
    pub breaker: String,
    /// Consecutive failures of the service counted toward opening the breaker.
    pub failures: i32,
    /// When the breaker opened (the outage began), if it is not closed.
    pub open_since: Option<DateTime<Utc>>,
    /// How long it has been open, in seconds (0 when closed).
    pub open_seconds: i64,
    /// When the next probe may go, while open.
    pub probe_at: Option<DateTime<Utc>>,
    /// Paused until then (`webhooks pause`, or a receiver's `Retry-After`), if still ahead.
    pub paused_until: Option<DateTime<Utc>>,
    /// Who paused it.
    pub paused_by: Option<String>,
    /// Deliveries held now: due, and not sent because the endpoint is held.
    pub held: i64,
    /// Deliveries due now (held or not).
    pub due: i64,
    /// The pace now, requests a second (`None`: no ceiling, no slow start).
    pub rate: Option<f64>,
}

impl EndpointView {
    /// True when nothing but a probe is sent: the breaker is not closed, or a pause lasts.
    pub fn is_held(&self) -> bool {
        self.breaker != "closed" || self.paused_until.is_some()
    }
}

/// Every endpoint at `now` (`None`: the database's now), with its pace under `max_rate`
/// (`WEBHOOK_MAX_RATE`).
pub async fn read_endpoints(
    db: &Client,
    now: Option<DateTime<Utc>>,
    max_rate: Option<f64>,
) -> Result<Vec<EndpointView>> {
    let rows = query(db, sql::ENDPOINTS, &[(&now, Type::TIMESTAMPTZ)]).await?;
    rows.iter()
        .map(|row| {
            let at: DateTime<Utc> = row.try_get(8)?;
            let opened: Option<DateTime<Utc>> = row.try_get(3)?;
            let paused_until: Option<DateTime<Utc>> = row.try_get(6)?;
            let paused_until = paused_until.filter(|until| *until > at);
            let breaker: String = row.try_get(1)?;
            let due: i64 = row.try_get(10)?;
            let held = breaker != "closed" || paused_until.is_some();
            Ok(EndpointView {
                origin: row.try_get(0)?,
                failures: row.try_get(2)?,
                open_since: opened,
                open_seconds: opened.map_or(0, |since| (at - since).num_seconds().max(0)),
                probe_at: row.try_get(4)?,
                paused_by: paused_until.and(row.try_get(7)?),
                paused_until,
                held: if held { due } else { 0 },
                due,
                rate: if held {
                    None
                } else {
                    pace_for(max_rate, row.try_get(9)?)
                },
                breaker,
            })
        })
        .collect()
}

/// `WEBHOOK_MAX_RATE` as the operator commands read it, for the pace they show (they need
/// no other configuration; a value the workers would refuse shows no pace).
pub fn max_rate_from_env() -> Option<f64> {
    std::env::var("WEBHOOK_MAX_RATE")
        .ok()
        .and_then(|rate| rate.trim().parse::<f64>().ok())
        .filter(|rate| rate.is_finite() && *rate > 0.0)
}

/// `webhooks pause`: holds every delivery to `origin` until `until` (dispatch, listen and the
/// sweep send nothing, not even a probe), saying `reason`.
pub async fn pause(db: &Client, origin: &str, until: DateTime<Utc>, reason: &str) -> Result<()> {
    query_in_transaction(
        db,
        sql::BOUNDED_BEGIN,
        sql::ENDPOINT_PAUSE,
        &[
            (&origin, Type::TEXT),
            (&until, Type::TIMESTAMPTZ),
            (&reason, Type::TEXT),
        ],
    )
    .await?;
    Ok(())
}

/// `webhooks resume`: ends a pause of `origin` (an operator's or a receiver's `Retry-After`).
/// Returns the pause it ended, if one was set.
pub async fn resume(db: &Client, origin: &str) -> Result<Option<(DateTime<Utc>, String)>> {
    let rows = query_in_transaction(
        db,
        sql::BOUNDED_BEGIN,
        sql::ENDPOINT_RESUME,
        &[(&origin, Type::TEXT)],
    )
    .await?;
    Ok(rows.first().and_then(|row| {
        let until: Option<DateTime<Utc>> = row.try_get(0).ok().flatten();
        let by: Option<String> = row.try_get(1).ok().flatten();
        until.map(|until| (until, by.unwrap_or_default()))
    }))
}

/// The human form, one row per endpoint, times relative to `now`, fitted to `style`.
pub fn render_endpoints(rows: &[EndpointView], now: DateTime<Utc>, style: &Style) -> String {
    let mut table = Table::new(&[
        "endpoint",
        "breaker",
        "open for",
        "next probe",
        "paused until",
        ">held",
        ">due",
        "pace",
    ]);
    for e in rows {
        let breaker = match e.breaker.as_str() {
            "closed" => Tone::Good,
            "open" => Tone::Bad,
            _ => Tone::Warn,
        };
        table.row_toned(vec![
            (e.origin.clone(), Tone::Plain),
            (e.breaker.replace('_', "-"), breaker),
            (
                if e.open_since.is_some() {
                    span(e.open_seconds)
                } else {
                    "-".into()
                },
                Tone::Plain,
            ),
            (relative(e.probe_at, now), Tone::Plain),
            (relative(e.paused_until, now), Tone::Plain),
            (e.held.to_string(), Tone::Plain),
            (e.due.to_string(), Tone::Plain),
            (or_dash(e.rate.map(|r| format!("{r:.0}/s"))), Tone::Plain),
        ]);
        // Why it is paused, on a line of its own: the reason may be long.
        if let (Some(_), Some(by)) = (&e.paused_until, &e.paused_by) {
            table.note(&format!("paused: {by}"), Tone::Warn);
        }
    }
    if table.is_empty() {
        return "notification service: no request recorded yet\n".into();
    }
    table.render(style)
}

/// Why deliveries were held, in words, with what ends it (`webhooks send`, `sweep` and
/// `dispatch`'s human form).
pub fn describe_hold(hold: &Hold) -> String {
    match hold {
        Hold::BreakerOpen { since, probe_at } => format!(
            "held: the notification service's breaker has been open since {}; nothing was sent \
             and no attempt spent. A probe may go {}, and the sweep sends them once it closes \
             (docs/outages.md)",
            instant(Some(*since)),
            probe_at.map_or_else(
                || "now".to_owned(),
                |at| format!("from {}", instant(Some(at)))
            )
        ),
        Hold::Probing { since } => format!(
            "held: another worker's probe of the notification service is on its way (breaker \
             open since {}); nothing was sent",
            instant(Some(*since))
        ),
        Hold::Paused { until, by } => format!(
            "held: the notification service is paused until {} ({by}); nothing was sent. \
             `webhooks resume` ends the pause",
            instant(Some(*until))
        ),
    }
}
