//! `webhooks pause` and `webhooks resume`: hold every delivery to the notification service by
//! hand — for its maintenance window — exactly as an open circuit breaker holds them (nothing
//! sent, not even a probe; no attempt spent; `WEBHOOK_HOLD_MAX` still applies), and release
//! them. They need DATABASE_URL and WEBHOOK_URL (whose origin names the service), nothing else.

use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Args;
use delivery::backoff::parse_duration;
use delivery::endpoint::{max_rate_from_env, pause, read_endpoints, render_endpoints, resume};
use delivery::ops::output::render;
use delivery::{Clock, out};

use crate::Verdict;
use crate::ops::connect;

/// How long a pause lasts.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub(crate) struct PauseFor {
    /// For this long from now, e.g. 30m or 2h.
    #[arg(long = "for", value_parser = parse_duration)]
    pub(crate) duration: Option<Duration>,
    /// Until this time (RFC 3339, e.g. 2026-12-07T06:00:00Z).
    #[arg(long, value_parser = until)]
    pub(crate) until: Option<DateTime<Utc>>,
}

fn until(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.to_utc())
        .map_err(|_| format!("{text:?} is not RFC 3339, e.g. 2026-12-07T06:00:00Z"))
}

/// The longest reason kept (the column's limit).
const REASON_MAX: usize = 200;

/// The origin of WEBHOOK_URL (scheme, host, port): the notification service's name in
/// `webhook_endpoints`, never its path or credentials.
fn origin() -> Result<String, String> {
    let url = std::env::var("WEBHOOK_URL").map_err(|_| {
        "WEBHOOK_URL is not set: pause and resume act on the notification service it names"
            .to_owned()
    })?;
    let parsed = reqwest::Url::parse(&url)
        .map_err(|e| format!("WEBHOOK_URL is not a URL ({e}); see .env.example"))?;
    Ok(parsed.origin().ascii_serialization())
}

/// `webhooks pause`.
pub(crate) async fn run_pause(
    duration: PauseFor,
    reason: Option<String>,
    json: bool,
) -> Result<Verdict, Box<dyn std::error::Error>> {
    let origin = origin()?;
    let db = connect().await?;
    let now = delivery::db::now(&db, Clock::System).await?;
    let until = match (duration.duration, duration.until) {
        (Some(duration), _) => now + chrono::Duration::from_std(duration)?,
        (None, Some(until)) => until,
        (None, None) => return Err("--for or --until is required".into()),
    };
    if until <= now {
        return Err(format!("--until {until} is not in the future").into());
    }
    let reason = reason.unwrap_or_else(|| "webhooks pause".into());
    let reason: String = reason.chars().take(REASON_MAX).collect();
    pause(&db, &origin, until, &reason).await?;
    show(&db, now, json).await?;
    if !json {
        eprintln!(
            "paused: deliveries to {origin} are held until {until} (`webhooks resume` ends it sooner); \
             past WEBHOOK_HOLD_MAX (default 3d) held deliveries fail"
        );
    }
    Ok(Verdict::Fine)
}

/// `webhooks resume`.
pub(crate) async fn run_resume(json: bool) -> Result<Verdict, Box<dyn std::error::Error>> {
    let origin = origin()?;
    let db = connect().await?;
    let now = delivery::db::now(&db, Clock::System).await?;
    let ended = resume(&db, &origin).await?;
    show(&db, now, json).await?;
    if !json {
        match ended {
            Some((until, by)) if until > now => eprintln!(
                "resumed: the pause of {origin} until {until} ({by}) is over; the next sweep, \
                 dispatch or listen sends what it held"
            ),
            _ => eprintln!("{origin} was not paused"),
        }
    }
    Ok(Verdict::Fine)
}

/// Prints the endpoints after the change.
async fn show(
    db: &tokio_postgres::Client,
    now: DateTime<Utc>,
    json: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let endpoints = read_endpoints(db, Some(now), max_rate_from_env()).await?;
    out::print(&render(&endpoints, json, |style| {
        render_endpoints(&endpoints, now, style)
    })?);
    Ok(())
}
