//! `webhooks migrate`: the database schema, applied in ONE transaction end to end — checks,
//! every pending refinery migration and, when asked, the adoption of the old pg_net system.
//! A failure anywhere rolls back everything: nothing half-applied remains. `--dry-run` runs
//! the same transaction and rolls it back.
//!
//! Migrations are embedded from `migrations/` at compile time and apply into the current
//! schema (the first existing schema of the connection's `search_path`; tests use a schema
//! of their own). The files are plain SQL and still apply in order with `psql -f`.
//!
//! # Layout
//! - [`transaction`]: refinery over an already-open transaction.
//! - [`columns`]: the columns the capture triggers need from `booking_requests`.
//! - [`seed`]: finding and adopting the pg_net system.
//! - [`email_logs`]: leaving the email service's `email_logs` table alone.
//! - [`history`]: refinery's history judged by refinery's rules; the ledger of released
//!   migrations; what `--repair` does for databases intermediate builds migrated.
//! - [`installed`]: whether the schema is there for the operator commands.
//! - [`script`]: the pending migrations as one psql script (`--print-sql`).
//! - [`cron`]: the old system's pg_cron jobs.
//! - [`old_sender`]: the old system's pg_cron jobs stopped before the takeover.
//! - [`objects`]: the current definitions of the functions, triggers and views, compared with
//!   what the database holds, and reinstalled by `--repair` and adoption.
//! - `sql/`: the statements, one file each, each saying why.

mod apply;
mod columns;
mod cron;
mod email_logs;
mod error;
mod history;
mod installed;
mod objects;
mod old_sender;
mod script;
mod seed;
mod transaction;

use deadpool_postgres::Pool;
use tokio_postgres::Transaction;

pub use columns::Mismatch;
pub use history::RELEASED;
pub use installed::{explain_missing, require_installed};
pub use objects::{Difference, Drift};
pub use old_sender::DEFAULT_WAIT as OLD_SENDER_WAIT;
pub use seed::{ImportGroup, SeedSystem};

pub use error::{Result, SchemaError};

mod embedded {
    refinery::embed_migrations!("../../migrations");
}

/// The migrations this build embeds, as (version, name, refinery's checksum) in order: what
/// `webhooks doctor` compares the database's history with.
pub fn known_migrations() -> Vec<(i32, String, u64)> {
    let mut known: Vec<(i32, String, u64)> = embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| (m.version(), m.name().to_owned(), m.checksum()))
        .collect();
    known.sort();
    known
}

/// How the database's migration history stands against this build, by refinery's rules: one
/// line per migration that is pending, skipped, divergent or unknown (empty: all applied), and
/// whether `webhooks migrate` (or `--repair`) can bring it up. `applied` is the history as
/// (version, name, checksum).
pub fn judge_history(applied: &[(i32, String, u64)]) -> Vec<(String, HistoryState)> {
    let applied: Vec<history::Applied> = applied
        .iter()
        .map(|(version, name, checksum)| history::Applied {
            version: *version,
            name: name.clone(),
            checksum: *checksum,
        })
        .collect();
    history::compare(&applied, &known_migrations())
        .into_iter()
        .map(|finding| {
            let state = match &finding {
                history::Finding::Pending(_) => HistoryState::Pending,
                history::Finding::Unknown(_) => HistoryState::Newer,
                f if f.repairable() => HistoryState::Repairable,
                _ => HistoryState::Refused,
            };
            (finding.to_string(), state)
        })
        .collect()
}

/// Where one migration stands ([`judge_history`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryState {
    /// `webhooks migrate` applies it.
    Pending,
    /// refinery refuses; `webhooks migrate --repair` sets it right.
    Repairable,
    /// refinery refuses, and so does `--repair`: changed by hand, or unknown.
    Refused,
    /// Applied by a newer build.
    Newer,
}

/// See `sql/begin.sql`: lock timeout and one migration per schema at a time.
const BEGIN: &str = include_str!("sql/begin.sql");
/// The schema migrations apply to; NULL when no schema of `search_path` exists.
pub(crate) const CURRENT_SCHEMA: &str = "SELECT current_schema()::text";
/// Taken before adoption changes anything: no booking is inserted or updated meanwhile, and
/// the lock order (bookings, then the old table their triggers write) cannot deadlock with
/// an old trigger in flight. Reads go on until the old triggers are dropped (DROP TRIGGER
/// takes an exclusive lock), then wait for the commit too.
const LOCK_BOOKINGS: &str = "LOCK TABLE booking_requests IN SHARE ROW EXCLUSIVE MODE";

/// What `webhooks migrate` is asked to do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MigrateOptions {
    /// Take over the pg_net system if it is there (otherwise its presence is an error).
    pub adopt_seed: bool,
    /// Do everything, then roll back.
    pub dry_run: bool,
    /// Reinstall the current definition of every function, trigger and view that differs
    /// from this build's (missing, altered, a capture trigger disabled).
    pub repair: bool,
    /// Adoption: how long to wait for a run of the old retry function in progress
    /// (`None`: [`old_sender::DEFAULT_WAIT`]).
    pub old_sender_wait: Option<std::time::Duration>,
}

/// What a migration run did (or, for a dry run, would do).
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrateReport {
    /// The schema migrated.
    pub schema: String,
    /// Migrations applied by this run (`V1__booking_requests`, …); empty when current.
    pub applied: Vec<String>,
    /// True when the pg_net system was adopted.
    pub adopted: bool,
    /// What was not as this build defines it and was reinstalled (adoption, `--repair`).
    pub repaired: Vec<String>,
    /// How the old rows were imported.
    pub imported: Vec<ImportGroup>,
    /// The script that restores the old system (only when adopting).
    pub rollback_script: Option<String>,
    /// False for a dry run: everything was rolled back.
    pub committed: bool,
}

/// What `webhooks migrate` would apply, as one psql script with the history rows refinery
/// keeps (`webhooks migrate --print-sql`). Changes nothing.
pub async fn print_sql(pool: &Pool) -> Result<String> {
    let mut object = pool.get().await?;
    let client: &mut tokio_postgres::Client = &mut object;
    let tx = client.transaction().await?;
    let script = script::script(&tx).await;
    tx.rollback().await?;
    script
}

/// What of the functions, triggers and views differs from this build's definitions
/// (`webhooks doctor`), read in a transaction of its own that is rolled back: nothing changes.
pub async fn drift(db: &tokio_postgres::Client) -> Result<Vec<Drift>> {
    db.batch_execute("BEGIN READ WRITE").await?;
    let found = objects::drift(db).await;
    db.batch_execute("ROLLBACK").await?;
    found
}

/// Applies the schema in one transaction: checks `booking_requests`, looks for the pg_net
/// system (an error unless `options.adopt_seed`), adopts it if asked, applies the pending
/// migrations, then commits — or rolls back for a dry run or on any error. Each step is
/// reported to `say` as it completes.
pub async fn migrate(
    pool: &Pool,
    options: MigrateOptions,
    say: &mut (dyn FnMut(&str) + Send),
) -> Result<MigrateReport> {
    // Adoption stops the old sender first, committed on its own (see `old_sender`).
    let stopped = if options.adopt_seed {
        let wait = options.old_sender_wait.unwrap_or(old_sender::DEFAULT_WAIT);
        old_sender::stop(pool, wait, options.dry_run, say).await?
    } else {
        Vec::new()
    };
    let done = in_one_transaction(pool, options, &stopped, say).await;
    if done.is_err() && !stopped.is_empty() {
        old_sender::restart(pool, &stopped, say).await;
    }
    done
}

async fn in_one_transaction(
    pool: &Pool,
    options: MigrateOptions,
    stopped: &[cron::CronJob],
    say: &mut (dyn FnMut(&str) + Send),
) -> Result<MigrateReport> {
    let mut object = pool.get().await?;
    let client: &mut tokio_postgres::Client = &mut object;
    let tx = client.transaction().await?;
    match run(&tx, options, stopped, say).await {
        Ok(mut report) if !options.dry_run => {
            tx.commit().await?;
            report.committed = true;
            Ok(report)
        }
        Ok(report) => {
            tx.rollback().await?;
            Ok(report)
        }
        Err(err) => {
            // Explicit, so the connection goes back to the pool clean; dropping would too.
            let _ = tx.rollback().await;
            Err(err)
        }
    }
}

/// [`migrate`] with the defaults and no progress output; returns the migrations applied.
pub async fn migrate_quietly(pool: &Pool) -> Result<Vec<String>> {
    Ok(migrate(pool, MigrateOptions::default(), &mut |_| {})
        .await?
        .applied)
}

async fn run(
    tx: &Transaction<'_>,
    options: MigrateOptions,
    stopped: &[cron::CronJob],
    say: &mut (dyn FnMut(&str) + Send),
) -> Result<MigrateReport> {
    tx.batch_execute(BEGIN).await?;
    let schema: Option<String> = tx.query_one(CURRENT_SCHEMA, &[]).await?.try_get(0)?;
    let schema = schema.ok_or(SchemaError::NoSchema)?;
    let mismatches = columns::mismatches(tx, "booking_requests", columns::BOOKING_COLUMNS).await?;
    if !mismatches.is_empty() {
        return Err(SchemaError::IncompatibleBookings(mismatches));
    }

    let found = seed::detect(tx).await?;
    let adopting = !found.is_empty();
    if adopting && !options.adopt_seed {
        return Err(SchemaError::SeedFound {
            schema,
            findings: found.findings(),
        });
    }
    let mut report = MigrateReport {
        schema: schema.clone(),
        adopted: adopting,
        ..MigrateReport::default()
    };
    if options.adopt_seed && !adopting {
        say(&format!(
            "no pg_net system in schema {schema:?}: nothing to adopt"
        ));
    }
    if adopting {
        seed::check_adoptable(tx, &found).await?;
        say(&format!(
            "adopting the pg_net system in schema {schema:?}, in one transaction; found:"
        ));
        for line in found.findings() {
            say(&format!("  - {line}"));
        }
        for note in found.notes() {
            say(&format!("note: {note}"));
        }
        report.rollback_script = Some(seed::rollback_script(tx, &found, stopped).await?);
        tx.batch_execute(LOCK_BOOKINGS).await?;
        seed::remove_old(tx, &found, say).await?;
    }

    report.applied = apply::apply_migrations(tx, options.repair, say).await?;
    report.repaired = apply::check_objects(tx, adopting || options.repair, say).await?;

    if adopting {
        report.imported = seed::import(tx, &found, say).await?;
        seed::unschedule(tx, &found, say).await?;
        let left = seed::detect(tx).await?;
        if !left.is_empty() {
            return Err(SchemaError::Incomplete(left.findings()));
        }
        say(
            "checked: no trigger on booking_requests calls net.http_post; no old retry \
             function, view, table or cron job is left",
        );
    }
    Ok(report)
}
