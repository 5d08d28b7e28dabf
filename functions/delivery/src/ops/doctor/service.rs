//! The notification service as the workers last found it: its circuit breaker and any pause
//! ([`crate::engine::endpoint`]), one finding per endpoint.

use chrono::{DateTime, Utc};
use tokio_postgres::Client;

use super::finding::{Check, Severity, check};
use crate::db::{query, sql};
use crate::error::Result;
use crate::ops::endpoint::read_endpoints;
use crate::ops::table::{instant, span};

/// The breaker may stay open this long before it is a problem (the breaker-open alarm's
/// threshold in `METRICS.md`).
pub const BREAKER_OPEN_LIMIT_S: i64 = 1_800;

pub(super) async fn service(db: &Client, now: DateTime<Utc>) -> Result<Vec<Check>> {
    const NAME: &str = "notification-service";
    // A schema older than V16 has no such table: the migrations finding says what to run.
    let exists: bool = match query(db, sql::ENDPOINTS_TABLE, &[]).await?.first() {
        Some(row) => row.try_get(0)?,
        None => false,
    };
    if !exists {
        return Ok(vec![check(
            NAME,
            Severity::Info,
            "not known until `webhooks migrate` creates webhook_endpoints",
        )]);
    }
    let endpoints = read_endpoints(db, Some(now), None).await?;
    if endpoints.is_empty() {
        return Ok(vec![check(
            NAME,
            Severity::Info,
            "no request recorded yet: nothing is known about the notification service",
        )]);
    }
    Ok(endpoints
        .iter()
        .map(|e| {
            let held = match e.held {
                1 => "1 delivery is held".to_owned(),
                n => format!("{n} deliveries are held"),
            };
            if let (Some(until), by) = (e.paused_until, &e.paused_by) {
                let by = by.as_deref().unwrap_or("");
                return check(
                    NAME,
                    Severity::Warning,
                    format!(
                        "{} is paused until {} ({by}): {held}, not sent. `webhooks resume` ends \
                         the pause now.",
                        e.origin,
                        instant(Some(until))
                    ),
                );
            }
            match e.breaker.as_str() {
                "closed" => check(
                    NAME,
                    Severity::Ok,
                    format!("{} answers: the circuit breaker is closed", e.origin),
                ),
                _ => check(
                    NAME,
                    if e.open_seconds > BREAKER_OPEN_LIMIT_S {
                        Severity::Problem
                    } else {
                        Severity::Warning
                    },
                    format!(
                        "{} has failed every request for {}: the circuit breaker is open and \
                         {held}, not failed (next probe {}). They fail after WEBHOOK_HOLD_MAX; \
                         check the service (docs/operations.md, \"The notification service is \
                         down\").",
                        e.origin,
                        span(e.open_seconds),
                        instant(e.probe_at),
                    ),
                ),
            }
        })
        .collect())
}
