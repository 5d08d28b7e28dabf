//! A deployment's posture (`webhooks doctor`): what is wrong, in plain words, with what to do.
//!
//! Checked, in order of harm: the capture triggers exist and fire (a disabled trigger loses
//! every notification silently); the capture functions are SECURITY DEFINER, owned by the
//! outbox's owner, resolve names in `pg_catalog` only and are not executable by others; who
//! besides the owner may create objects in the schema; every function, trigger and view is
//! this build's definition (bodies compared, not only attributes); row level security on
//! the outbox tables (and on `booking_requests` where Supabase's API roles can reach it); the
//! due backlog and its age; migrations current; the NOTIFY switch against whether anything
//! listens; a wake-up trigger; when anything was last sent. Everything is read from the
//! catalogs through the caller's `search_path`, so it checks the schema the functions use.
//!
//! # Layout
//! - [`finding`]: a finding, its severity, and the human form of all of them.
//! - `capture`: triggers, capture functions, who may create in the schema, definitions.
//! - `security`: row level security and the API roles.
//! - `runtime`: backlog, migrations, completeness, NOTIFY, wake-up, last attempt.
//! - `service`: the notification service's breaker and pause.

mod capture;
pub mod finding;
mod runtime;
mod security;
mod service;

use chrono::{DateTime, Utc};
use tokio_postgres::Client;

use crate::error::Result;
pub use finding::{Check, Posture, Severity, render_posture};
pub use runtime::BACKLOG_AGE_LIMIT_S;
pub use service::BREAKER_OPEN_LIMIT_S;

/// Runs every check at `now`; migrations are judged against this build's.
pub async fn check_posture(db: &Client, now: DateTime<Utc>) -> Result<Posture> {
    let mut checks = Vec::new();
    checks.extend(capture::capture_triggers(db).await?);
    checks.extend(capture::capture_functions(db).await?);
    checks.push(capture::schema_create(db).await?);
    let migrated = runtime::migrations(db).await?;
    // Against a schema that is behind, or whose history refinery refuses, comparing
    // definitions says nothing new: the migrations finding says what to run first.
    if migrated.severity == Severity::Ok || migrated.severity == Severity::Warning {
        checks.extend(capture::definitions(db).await?);
    }
    checks.extend(security::row_level_security(db).await?);
    checks.push(runtime::backlog(db, now).await?);
    checks.push(migrated);
    checks.push(runtime::completeness(db).await?);
    let (notify, listeners) = runtime::notify(db).await?;
    checks.extend(notify);
    checks.push(runtime::wake_up(db, listeners).await?);
    checks.push(runtime::last_attempt(db, now).await?);
    checks.extend(service::service(db, now).await?);
    Ok(Posture::new(checks))
}
