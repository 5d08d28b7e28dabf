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
//! - [`old_sender`]: the old system's pg_cron jobs stopped before the takeover.
//! - [`objects`]: the current definitions of the functions, triggers and views, compared with
//!   what the database holds, and reinstalled by `--repair` and adoption.
//! - `sql/`: the statements, one file each, each saying why.

mod columns;
mod email_logs;
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

use crate::{Error, Result};

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

/// Why `webhooks migrate` refused or stopped, or why another command found no schema to work
/// on. Each message names what to fix; none contains an email address or a secret.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// `search_path` names no schema that exists.
    #[error("search_path names no existing schema: there is nowhere to migrate into")]
    NoSchema,
    /// `booking_requests` exists but the capture triggers could not work on it.
    #[error("{}", incompatible_bookings(.0))]
    IncompatibleBookings(Vec<Mismatch>),
    /// The old pg_net system is there and adoption was not asked for.
    #[error("{}", seed_found(.schema, .findings))]
    SeedFound {
        /// The schema holding it.
        schema: String,
        /// One line per object found.
        findings: Vec<String>,
    },
    /// Adoption cannot be done as things are.
    #[error("cannot adopt the pg_net system: {0}")]
    NotAdoptable(String),
    /// Importing the old rows failed.
    #[error("importing the rows of webhook_failures failed: {0}")]
    Import(String),
    /// A migration failed.
    #[error("{0}")]
    Migration(String),
    /// refinery's history does not fit this build's migrations (see `history`).
    #[error("{}", history_refused(.findings, *.repairable))]
    History {
        /// One line per migration that does not fit.
        findings: Vec<String>,
        /// True when `--repair` can set every one right.
        repairable: bool,
    },
    /// After adoption, part of the old system was still there.
    #[error("adoption would leave part of the pg_net system in place:\n  - {}", .0.join("\n  - "))]
    Incomplete(Vec<String>),
    /// `webhook_deliveries` is not on the connection's `search_path`: migrations never ran
    /// here (or DATABASE_URL points at another database or schema).
    #[error("{}", not_installed(.schema.as_deref()))]
    NotInstalled {
        /// The connection's current schema; `None` when no schema of `search_path` exists.
        schema: Option<String>,
    },
    /// Functions, triggers or views differ from this build's definitions: reinstalled only
    /// when asked (`--repair`).
    #[error("{}", drifted(.0))]
    Drift(Vec<String>),
    /// A statement named something the schema lacks (the server's message): the schema is
    /// older than this build.
    #[error(
        "the database schema is older than this webhooks command ({0}): run `webhooks migrate` \
         to apply the pending migrations (it needs only DATABASE_URL). If it finds nothing to \
         apply, the schema was changed by hand: `webhooks doctor` lists what is wrong."
    )]
    OutOfDate(String),
}

fn not_installed(schema: Option<&str>) -> String {
    let place = match schema {
        Some(schema) => format!("in schema {schema:?}"),
        None => "here (no schema of the connection's search_path exists)".to_owned(),
    };
    format!(
        "the webhooks schema is not installed {place}: there is no webhook_deliveries table. \
         Run `webhooks migrate` first (it needs only DATABASE_URL), or check that DATABASE_URL \
         names the database (and search_path the schema) the functions use."
    )
}

fn history_refused(findings: &[String], repairable: bool) -> String {
    let lines: Vec<String> = findings.iter().map(|f| format!("  - {f}")).collect();
    let what = if repairable {
        "A build between those releases migrated this database. Bring it up with\n    \
         webhooks migrate --repair\n(one transaction; see migrations/README.md)."
    } else {
        "`webhooks migrate --repair` cannot set this right: a migration this build does not \
         know was applied (deploy the newer build), or a released migration was changed by \
         hand (compare it with migrations/README.md)."
    };
    format!(
        "the database's migration history does not fit this build's migrations:\n{}\n{what}",
        lines.join("\n")
    )
}

fn drifted(drift: &[String]) -> String {
    let lines: Vec<String> = drift.iter().map(|d| format!("  - {d}")).collect();
    format!(
        "the schema's functions, triggers or views are not this build's:\n{}\nA rollback to the \
         pg_net system, a hand edit or an old migration's text run by hand leaves them so (an \
         old capture function may send to addresses the current one refuses). Reinstall the \
         current definitions with\n    webhooks migrate --repair\n(one transaction; \
         `--repair --dry-run` shows the plan).",
        lines.join("\n")
    )
}

fn incompatible_bookings(mismatches: &[Mismatch]) -> String {
    let lines: Vec<String> = mismatches.iter().map(|m| format!("  - {m}")).collect();
    format!(
        "booking_requests does not fit the capture triggers (they read NEW.id, NEW.tutor_email, \
         NEW.student_email and NEW.status):\n{}\nChange the table (or migrate into another \
         schema), then run again.",
        lines.join("\n")
    )
}

fn seed_found(schema: &str, findings: &[String]) -> String {
    let lines: Vec<String> = findings.iter().map(|f| format!("  - {f}")).collect();
    format!(
        "schema {schema:?} runs the old pg_net webhook system:\n{}\n\
         Migrating over it would fail half-way, and its retries would keep sending next to our \
         sweep. To take it over in one transaction (old rows imported with their ids, old \
         triggers, functions and views replaced, the cron job unscheduled), look at the plan \
         and save the rollback script with\n    webhooks migrate --adopt-seed --dry-run\n\
         then run\n    webhooks migrate --adopt-seed\n\
         See docs/switching-from-pg-net.md.",
        lines.join("\n")
    )
}

/// A server error as the operator should see it: message, detail and hint — except the
/// detail of an integrity violation, which quotes the failing row (email addresses).
pub(crate) fn describe_db_error(err: &tokio_postgres::Error) -> String {
    let Some(db) = err.as_db_error() else {
        return crate::error::chain(err);
    };
    let mut out = format!("{}: {}", db.severity(), db.message());
    if let Some(detail) = db.detail().filter(|_| !db.code().code().starts_with("23")) {
        out.push_str("\nDETAIL: ");
        out.push_str(detail);
    }
    if let Some(hint) = db.hint() {
        out.push_str("\nHINT: ");
        out.push_str(hint);
    }
    out
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
    stopped: &[old_sender::CronJob],
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
    stopped: &[old_sender::CronJob],
    say: &mut (dyn FnMut(&str) + Send),
) -> Result<MigrateReport> {
    tx.batch_execute(BEGIN).await?;
    let schema: Option<String> = tx.query_one(CURRENT_SCHEMA, &[]).await?.try_get(0)?;
    let schema = schema.ok_or(SchemaError::NoSchema)?;
    let mismatches = columns::mismatches(tx, "booking_requests", columns::BOOKING_COLUMNS).await?;
    if !mismatches.is_empty() {
        return Err(SchemaError::IncompatibleBookings(mismatches).into());
    }

    let found = seed::detect(tx).await?;
    let adopting = !found.is_empty();
    if adopting && !options.adopt_seed {
        return Err(SchemaError::SeedFound {
            schema,
            findings: found.findings(),
        }
        .into());
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

    report.applied = apply_migrations(tx, options.repair, say).await?;
    report.repaired = check_objects(tx, adopting || options.repair, say).await?;

    if adopting {
        report.imported = seed::import(tx, &found, say).await?;
        seed::unschedule(tx, &found, say).await?;
        let left = seed::detect(tx).await?;
        if !left.is_empty() {
            return Err(SchemaError::Incomplete(left.findings()).into());
        }
        say(
            "checked: no trigger on booking_requests calls net.http_post; no old retry \
             function, view, table or cron job is left",
        );
    }
    Ok(report)
}

/// Compares the functions, triggers and views with this build's definitions; reinstalls what
/// differs when `repair`, and refuses otherwise (a trigger that is only disabled is said, not
/// refused: doctor reports it). Returns what was reinstalled.
async fn check_objects(
    tx: &Transaction<'_>,
    repair: bool,
    say: &mut (dyn FnMut(&str) + Send),
) -> Result<Vec<String>> {
    if !repair {
        let drift = objects::drift(tx).await?;
        let (wrong, disabled): (Vec<&Drift>, Vec<&Drift>) =
            drift.iter().partition(|d| d.is_definition());
        for d in disabled {
            say(&format!(
                "note: {d}: bookings are not captured while it is (`webhooks migrate --repair` \
                 enables it)"
            ));
        }
        if !wrong.is_empty() {
            return Err(SchemaError::Drift(wrong.iter().map(ToString::to_string).collect()).into());
        }
        return Ok(Vec::new());
    }
    let repaired: Vec<String> = objects::reinstall(tx)
        .await?
        .iter()
        .map(ToString::to_string)
        .collect();
    for line in &repaired {
        say(&format!("reinstalled: {line}"));
    }
    let left = objects::drift(tx).await?;
    if !left.is_empty() {
        return Err(SchemaError::Drift(left.iter().map(ToString::to_string).collect()).into());
    }
    if repaired.is_empty() {
        say("checked: every function, trigger and view is this build's");
    } else {
        say("checked: every function, trigger and view is this build's now");
    }
    Ok(repaired)
}

/// Applies the pending migrations inside `tx`, the email service's `email_logs` set aside
/// meanwhile.
async fn apply_migrations(
    tx: &Transaction<'_>,
    repair: bool,
    say: &mut (dyn FnMut(&str) + Send),
) -> Result<Vec<String>> {
    let runner = embedded::migrations::runner();
    let applied = transaction::applied(tx).await?;
    let findings = history::compare(&applied, &known_migrations());
    let refused: Vec<String> = findings
        .iter()
        .filter(|f| !matches!(f, history::Finding::Pending(_)))
        .map(ToString::to_string)
        .collect();
    let repairable = findings.iter().all(history::Finding::repairable);
    // refinery would refuse it: only `--repair` goes on, and only when it knows how.
    let refinery_refuses = !refused.is_empty();
    if refinery_refuses && (!repair || !repairable) {
        return Err(SchemaError::History {
            findings: refused,
            repairable,
        }
        .into());
    }
    let pending = transaction::pending(tx, &runner).await?;
    if pending.is_empty() {
        say(&format!(
            "schema is current: all {} migrations applied, nothing to do",
            runner.get_migrations().len()
        ));
        return Ok(Vec::new());
    }
    let aside = email_logs::put_aside(tx).await?;
    let mut applied_now = Vec::new();
    for finding in &findings {
        if let Some(line) = repair_history(tx, &runner, finding).await? {
            say(&line);
            applied_now.push(line);
        }
    }
    let report = runner
        .run_async(&mut transaction::InTransaction::new(tx))
        .await
        .map_err(describe_migration_error)?;
    let applied: Vec<String> = report
        .applied_migrations()
        .iter()
        .map(ToString::to_string)
        .collect();
    for name in &applied {
        say(&format!("applied migration {name}"));
    }
    if aside {
        email_logs::restore(tx).await?;
        say(
            "email_logs is not ours (the email service's table): left untouched; our view of \
             delivered notifications is webhook_email_logs here",
        );
    }
    Ok(applied)
}

/// Sets one history finding right (`--repair`): a known earlier text is replaced by the
/// current one, run again (it is re-runnable); a known late migration is applied out of order.
/// Each is recorded in the history as refinery records it. Returns what was done, if anything.
async fn repair_history(
    tx: &Transaction<'_>,
    runner: &refinery::Runner,
    finding: &history::Finding,
) -> Result<Option<String>> {
    let (name, update) = match finding {
        history::Finding::Divergent {
            name,
            earlier: Some(_),
        } => (name, true),
        history::Finding::Skipped {
            name,
            repairable: true,
        } => (name, false),
        _ => return Ok(None),
    };
    let Some(migration) = runner
        .get_migrations()
        .iter()
        .find(|m| m.to_string() == *name)
    else {
        return Ok(None);
    };
    tx.batch_execute(migration.sql().unwrap_or_default())
        .await
        .map_err(|e| SchemaError::Migration(format!("{name}: {}", describe_db_error(&e))))?;
    transaction::record(tx, migration, update).await?;
    Ok(Some(if update {
        format!(
            "repaired history: {name} applied with its current text (an earlier one was recorded)"
        )
    } else {
        format!(
            "repaired history: {name} applied out of order (later migrations were applied without it)"
        )
    }))
}

/// refinery's error with the server's message, detail and hint spelled out.
fn describe_migration_error(err: refinery::Error) -> Error {
    if let refinery::error::Kind::Connection(what, source) = err.kind() {
        if let Some(transaction::HistoryError::Db(db)) = source.downcast_ref() {
            return SchemaError::Migration(format!("{what}: {}", describe_db_error(db))).into();
        }
        if let Some(inner) = source.source() {
            return SchemaError::Migration(format!("{what}: {inner}")).into();
        }
    }
    Error::Migration(err)
}
