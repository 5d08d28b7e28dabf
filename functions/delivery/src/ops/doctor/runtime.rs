//! How it runs: the backlog, the migration history, what `verify` can check, NOTIFY and the
//! wake-up, and when anything was last sent.

use chrono::{DateTime, Utc};
use tokio_postgres::Client;

use super::capture::triggers_on;
use super::finding::{Check, Severity, check};
use crate::db::{query, sql};
use crate::error::Result;
use crate::ops::table::span;
use crate::schema::HistoryState;

/// The oldest due row may wait this long before it is a problem (the backlog-age alarm's
/// threshold in `METRICS.md`).
pub const BACKLOG_AGE_LIMIT_S: i64 = 1_800;

pub(super) async fn backlog(db: &Client, now: DateTime<Utc>) -> Result<Check> {
    const NAME: &str = "backlog";
    let backlog = crate::ops::health::read_backlog(db, Some(now)).await?;
    let (due, age) = (backlog.due, backlog.oldest_due_age_s as i64);
    Ok(if due == 0 {
        check(NAME, Severity::Ok, "nothing is due")
    } else if age > BACKLOG_AGE_LIMIT_S {
        check(
            NAME,
            Severity::Problem,
            format!(
                "{due} deliveries are due, the oldest for {}: the retry sweep is not running or not \
                 keeping up. Check its schedule and errors (docs/operations.md, \"Backlog age\"); \
                 `webhooks sweep` sends them now.",
                span(age)
            ),
        )
    } else {
        check(
            NAME,
            Severity::Ok,
            format!("{due} deliveries are due, the oldest for {}", span(age)),
        )
    })
}

/// The migration history judged by refinery's rules ([`crate::schema::judge_history`]): what
/// `webhooks migrate` would apply, refuse, or need `--repair` for.
pub(super) async fn migrations(db: &Client) -> Result<Check> {
    const NAME: &str = "migrations";
    let has_table = match query(db, sql::MIGRATION_TABLE, &[]).await?.first() {
        Some(row) => row.try_get(0)?,
        None => false,
    };
    let mut applied: Vec<(i32, String, u64)> = Vec::new();
    if has_table {
        for r in query(db, sql::APPLIED_MIGRATIONS, &[]).await? {
            let checksum: String = r.try_get(2)?;
            applied.push((
                r.try_get(0)?,
                r.try_get(1)?,
                checksum.parse().unwrap_or_default(),
            ));
        }
    }
    let judged = crate::schema::judge_history(&applied);
    let lines = |state: HistoryState| -> Vec<String> {
        judged
            .iter()
            .filter(|(_, s)| *s == state)
            .map(|(line, _)| line.clone())
            .collect()
    };
    let (pending, repairable, refused, newer) = (
        lines(HistoryState::Pending),
        lines(HistoryState::Repairable),
        lines(HistoryState::Refused),
        lines(HistoryState::Newer),
    );
    Ok(if !refused.is_empty() {
        check(
            NAME,
            Severity::Problem,
            format!(
                "{}: webhooks migrate refuses this history, and --repair cannot set it right \
                 (compare with migrations/README.md)",
                refused.join("; ")
            ),
        )
    } else if !repairable.is_empty() {
        check(
            NAME,
            Severity::Problem,
            format!(
                "{}: a build between releases migrated this database; `webhooks migrate \
                 --repair` brings it up (migrations/README.md)",
                repairable.join("; ")
            ),
        )
    } else if !pending.is_empty() {
        let names: Vec<&str> = pending
            .iter()
            .map(|p| p.trim_end_matches(" is not applied"))
            .collect();
        check(
            NAME,
            Severity::Problem,
            format!(
                "not applied: {}. Run `webhooks migrate` with this DATABASE_URL.",
                names.join(", ")
            ),
        )
    } else if !newer.is_empty() {
        check(
            NAME,
            Severity::Warning,
            format!(
                "{}: a newer build migrated this database; deploy it (this build's `webhooks \
                 migrate` refuses)",
                newer.join("; ")
            ),
        )
    } else {
        check(
            NAME,
            Severity::Ok,
            format!(
                "all {} migrations applied, as refinery records them (latest {})",
                applied.len(),
                applied
                    .last()
                    .map(|(v, n, _)| format!("V{v}__{n}"))
                    .unwrap_or_default()
            ),
        )
    })
}

pub(super) async fn completeness(db: &Client) -> Result<Check> {
    const NAME: &str = "completeness";
    let rows = query(db, sql::VERIFY_HORIZON, &[]).await?;
    let Some(row) = rows.first() else {
        return Ok(check(
            NAME,
            Severity::Info,
            "completeness horizon not readable",
        ));
    };
    let checked_from: Option<DateTime<Utc>> = row.try_get(0)?;
    let reason: Option<String> = row.try_get(1)?;
    let dated: bool = row.try_get(2)?;
    Ok(if !dated {
        check(
            NAME,
            Severity::Warning,
            "booking_requests has no created_at column: `webhooks verify` and the \
             MissingDeliveries metric cannot date bookings and check nothing, so a disabled \
             trigger would go unnoticed. Add the column, then run `webhooks migrate --repair` \
             (it rebuilds the completeness view).",
        )
    } else {
        check(
            NAME,
            Severity::Ok,
            match checked_from {
                Some(at) => format!(
                    "`webhooks verify` checks bookings created since {} ({})",
                    crate::ops::table::instant(Some(at)),
                    reason.unwrap_or_default()
                ),
                None => "`webhooks verify` checks every booking (no horizon row)".to_owned(),
            },
        )
    })
}

pub(super) async fn notify(db: &Client) -> Result<(Vec<Check>, i64)> {
    const NAME: &str = "notify";
    let rows = query(db, sql::NOTIFY_POSTURE, &[]).await?;
    let Some(row) = rows.first() else {
        return Ok((Vec::new(), 0));
    };
    let setting: String = row.try_get(0)?;
    let listeners: i64 = row.try_get(1)?;
    let queue_usage: f64 = row.try_get(2)?;
    let polling: Option<bool> = row.try_get(3)?;
    let on = !matches!(
        setting.to_ascii_lowercase().as_str(),
        "off" | "false" | "0" | "no"
    );
    let mut checks = vec![match (on, listeners > 0) {
        (true, true) => check(
            NAME,
            Severity::Ok,
            format!(
                "NOTIFY is on and {listeners} session(s) listen (webhooks listen){}",
                if polling == Some(true) {
                    "; one is polling the outbox now, so bookings skip their NOTIFY (V18)"
                } else {
                    ""
                }
            ),
        ),
        (true, false) => check(
            NAME,
            Severity::Warning,
            "NOTIFY is on but no session listens on webhook_delivery: every capturing commit pays \
             for a NOTIFY nobody reads (it serializes commits). Unless you run `webhooks listen`: \
             ALTER DATABASE <db> SET webhooks.notify = 'off';",
        ),
        (false, true) => check(
            NAME,
            Severity::Warning,
            format!(
                "{listeners} session(s) listen on webhook_delivery but NOTIFY is off (as this \
                 role sees it): they only pick deliveries up on their own sweep"
            ),
        ),
        (false, false) => check(NAME, Severity::Ok, "NOTIFY is off and nothing listens"),
    }];
    if queue_usage > 0.5 {
        checks.push(check(
            NAME,
            Severity::Problem,
            format!(
                "the NOTIFY queue is {:.0}% full: a listening session stopped reading. When it is \
                 full, every capturing commit fails. Restart the listener, or turn NOTIFY off.",
                queue_usage * 100.0
            ),
        ));
    }
    Ok((checks, listeners))
}

pub(super) async fn wake_up(db: &Client, listeners: i64) -> Result<Check> {
    const NAME: &str = "wake-up";
    let triggers = triggers_on(db, "webhook_deliveries").await?;
    Ok(match triggers.first() {
        Some((name, enabled, function)) if enabled == "D" || enabled == "R" => check(
            NAME,
            Severity::Warning,
            format!(
                "wake-up trigger {name} ({function}) is disabled: first attempts wait for the \
                 retry sweep. Fix: ALTER TABLE webhook_deliveries ENABLE TRIGGER {name};"
            ),
        ),
        Some((name, _, function)) => check(
            NAME,
            Severity::Ok,
            format!("wake-up trigger {name} ({function}) dispatches each new delivery"),
        ),
        None if listeners > 0 => check(
            NAME,
            Severity::Info,
            "no wake-up trigger; `webhooks listen` dispatches each new delivery",
        ),
        None => check(
            NAME,
            Severity::Warning,
            "no wake-up trigger and nothing listens: first attempts wait for the retry sweep (up \
             to its interval). See infra/sql/ for the RDS and Supabase wake-up triggers.",
        ),
    })
}

pub(super) async fn last_attempt(db: &Client, now: DateTime<Utc>) -> Result<Check> {
    let last: Option<DateTime<Utc>> = match query(db, sql::LAST_ATTEMPT, &[]).await?.first() {
        Some(row) => row.try_get(0)?,
        None => None,
    };
    Ok(check(
        "last-attempt",
        Severity::Info,
        match last {
            Some(at) => format!(
                "the last attempt started {} ago",
                span((now - at).num_seconds())
            ),
            None => "no attempt recorded yet".to_owned(),
        },
    ))
}
