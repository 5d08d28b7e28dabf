//! Delivery health (`webhooks stats`): per webhook type and overall, from the view
//! `webhook_stats` (V9; a superset of the seed-compatible `webhook_health_stats`) — counts by
//! status, success rate, attempts to success, attempt
//! latency percentiles over 24 h, and how long the oldest undelivered row has waited.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Client;
use tokio_postgres::types::Type;

use crate::db::query;
use crate::db::sql;
use crate::error::Result;
use crate::ops::output::{Style, Tone};
use crate::ops::table::{Table, or_dash, relative, span};

/// One row of `webhook_stats`, plus ages computed at the time of reading.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TypeHealth {
    /// `new_request`, `approved`, `rejected`, or `all` for the overall row.
    pub webhook_type: String,
    /// Deliveries stored.
    pub total: i64,
    /// Delivered.
    pub succeeded: i64,
    /// Not attempted yet.
    pub pending: i64,
    /// Failed at least once, another attempt scheduled.
    pub retrying: i64,
    /// Failed for good.
    pub failed: i64,
    /// Never sent (no usable recipient).
    pub skipped: i64,
    /// Replaced by a later notification for the same booking before it was sent.
    pub superseded: i64,
    /// succeeded / (succeeded + failed), in percent; `None` before anything resolved.
    pub success_rate_pct: Option<f64>,
    /// Mean attempts of the succeeded deliveries.
    pub avg_attempts_to_succeed: Option<f64>,
    /// When the oldest unresolved delivery became (or becomes) due.
    pub oldest_due_at: Option<DateTime<Utc>>,
    /// Creation time of the oldest unresolved delivery.
    pub oldest_undelivered_at: Option<DateTime<Utc>>,
    /// How long the oldest unresolved delivery has waited, in seconds, at the time of reading
    /// (`oldestUndeliveredAgeSeconds`).
    #[serde(rename = "oldestUndeliveredAgeSeconds")]
    pub oldest_undelivered_age_s: Option<i64>,
    /// Attempts started in the last 24 h.
    pub attempts_24h: i64,
    /// Of those, attempts that failed.
    pub failed_attempts_24h: i64,
    /// Median attempt latency over 24 h, ms.
    pub p50_ms_24h: Option<f64>,
    /// 95th percentile, ms.
    pub p95_ms_24h: Option<f64>,
    /// 99th percentile, ms.
    pub p99_ms_24h: Option<f64>,
}

/// Reads `webhook_stats` (per type, then `all`); ages are computed at `now`.
pub async fn read_health(db: &Client, now: DateTime<Utc>) -> Result<Vec<TypeHealth>> {
    let rows = query(db, sql::HEALTH_STATS, &[]).await?;
    rows.iter()
        .map(|r| {
            let oldest_undelivered_at: Option<DateTime<Utc>> = r.try_get(11)?;
            Ok(TypeHealth {
                webhook_type: r.try_get(0)?,
                total: r.try_get(1)?,
                succeeded: r.try_get(2)?,
                pending: r.try_get(3)?,
                retrying: r.try_get(4)?,
                failed: r.try_get(5)?,
                skipped: r.try_get(6)?,
                superseded: r.try_get(7)?,
                success_rate_pct: r.try_get(8)?,
                avg_attempts_to_succeed: r.try_get(9)?,
                oldest_due_at: r.try_get(10)?,
                oldest_undelivered_at,
                oldest_undelivered_age_s: oldest_undelivered_at
                    .map(|at| (now - at).num_seconds().max(0)),
                attempts_24h: r.try_get(12)?,
                failed_attempts_24h: r.try_get(13)?,
                p50_ms_24h: r.try_get(14)?,
                p95_ms_24h: r.try_get(15)?,
                p99_ms_24h: r.try_get(16)?,
            })
        })
        .collect()
}

/// The due backlog at a moment ([`crate::db::sql::DUE_BACKLOG`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backlog {
    /// Unresolved deliveries due.
    pub due: i64,
    /// How long the oldest of them has been due, in seconds (0 when none).
    pub oldest_due_age_s: f64,
    /// The instant it was measured at.
    pub at: DateTime<Utc>,
}

/// Reads the due backlog at `now` (`None`: the database's `now()`).
pub async fn read_backlog(db: &Client, now: Option<DateTime<Utc>>) -> Result<Backlog> {
    let rows = query(db, sql::DUE_BACKLOG, &[(&now, Type::TIMESTAMPTZ)]).await?;
    match rows.first() {
        Some(r) => Ok(Backlog {
            due: r.try_get(0)?,
            oldest_due_age_s: r.try_get(1)?,
            at: r.try_get(2)?,
        }),
        None => Ok(Backlog {
            due: 0,
            oldest_due_age_s: 0.0,
            at: now.unwrap_or_else(Utc::now),
        }),
    }
}

/// The human form: a column per webhook type (`all` last) and a row per figure, so it fits
/// any terminal; ages relative to `now`.
pub fn render_health(rows: &[TypeHealth], now: DateTime<Utc>, style: &Style) -> String {
    if rows.is_empty() {
        return "no deliveries yet\n".to_owned();
    }
    let mut header = vec![String::new()];
    header.extend(rows.iter().map(|h| format!(">{}", h.webhook_type)));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = Table::new(&header);
    let ms = |v: Option<f64>| or_dash(v.map(|v| format!("{v:.0}")));
    let figures: [(&str, &Figure<'_>); 16] = [
        ("total", &|h| (h.total.to_string(), Tone::Plain)),
        ("succeeded", &|h| (h.succeeded.to_string(), Tone::Plain)),
        ("pending", &|h| (h.pending.to_string(), Tone::Plain)),
        ("retrying", &|h| count(h.retrying, Tone::Warn)),
        ("failed", &|h| count(h.failed, Tone::Bad)),
        ("skipped", &|h| (h.skipped.to_string(), Tone::Plain)),
        ("superseded", &|h| (h.superseded.to_string(), Tone::Plain)),
        ("success rate", &|h| {
            let rate = h.success_rate_pct;
            let tone = match rate {
                Some(r) if r < 100.0 => Tone::Warn,
                _ => Tone::Plain,
            };
            (or_dash(rate.map(|p| format!("{p:.2}%"))), tone)
        }),
        ("attempts to succeed", &|h| {
            let mean = h.avg_attempts_to_succeed.map(|a| format!("{a:.2}"));
            (or_dash(mean), Tone::Plain)
        }),
        ("attempts (24h)", &|h| {
            (h.attempts_24h.to_string(), Tone::Plain)
        }),
        ("failed attempts (24h)", &|h| {
            count(h.failed_attempts_24h, Tone::Warn)
        }),
        ("p50 ms (24h)", &|h| (ms(h.p50_ms_24h), Tone::Plain)),
        ("p95 ms (24h)", &|h| (ms(h.p95_ms_24h), Tone::Plain)),
        ("p99 ms (24h)", &|h| (ms(h.p99_ms_24h), Tone::Plain)),
        ("oldest undelivered", &|h| {
            let age = h
                .oldest_undelivered_age_s
                .map(|s| format!("{} ago", span(s)));
            (or_dash(age), Tone::Plain)
        }),
        ("oldest due", &|h| {
            (relative(h.oldest_due_at, now), Tone::Plain)
        }),
    ];
    for (name, figure) in &figures {
        let mut cells = vec![((*name).to_owned(), Tone::Plain)];
        cells.extend(rows.iter().map(figure));
        t.row_toned(cells);
    }
    t.render(style)
}

/// One row of the human form: a type's figure, and its colour.
type Figure<'a> = dyn Fn(&TypeHealth) -> (String, Tone) + 'a;

/// A count, coloured when it is not zero.
fn count(n: i64, tone: Tone) -> (String, Tone) {
    (n.to_string(), if n == 0 { Tone::Plain } else { tone })
}
