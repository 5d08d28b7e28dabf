//! Why `webhooks migrate` (and the schema checks of the operator commands) refused or stopped.
//! `schema` owns its error: [`crate::error::Error`] is what the handlers raise, and appears here
//! only wrapped, for the database and the pool.

use super::Mismatch;
use crate::error::chain;

/// The schema's result type.
pub type Result<T, E = SchemaError> = std::result::Result<T, E>;

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
    /// The database or the pool (the engine's error).
    #[error(transparent)]
    Engine(#[from] crate::error::Error),
    /// refinery itself failed.
    #[error("migration: {}", chain(.0))]
    Refinery(#[from] refinery::Error),
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
         Run `webhooks migrate` first (`make migrate` in a checkout; it needs only \
         DATABASE_URL), or check that DATABASE_URL names the database (and search_path the \
         schema) the functions use."
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

impl From<tokio_postgres::Error> for SchemaError {
    fn from(err: tokio_postgres::Error) -> Self {
        SchemaError::Engine(err.into())
    }
}

impl From<deadpool_postgres::PoolError> for SchemaError {
    fn from(err: deadpool_postgres::PoolError) -> Self {
        SchemaError::Engine(err.into())
    }
}
