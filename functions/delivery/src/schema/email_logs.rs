//! Leaving the email service's `email_logs` table alone.
//!
//! The seed's users have an `email_logs` table written by their email service; V4 creates
//! our `email_logs` view (succeeded deliveries), and later migrations may refer to it. While
//! migrations run, the service's relation is renamed aside — inside the migration
//! transaction, so nobody else ever sees the other name; its rows, grants, triggers and
//! policies are untouched, and views reading it follow it by oid — and our view, kept as
//! `webhook_email_logs` between runs, takes the name. Afterwards they swap back. This happens
//! only when migrations are pending; a current schema is not touched at all.

use tokio_postgres::Transaction;

use super::Result;
use super::seed::SEED_TABLES;

/// Moves the service's relation out of the way.
const ASIDE: &str = "ALTER TABLE email_logs RENAME TO email_logs_aside_during_migrate";
/// Our view, kept under its own name between runs, takes the name for the migrations.
const OURS_IN: &str = "ALTER VIEW webhook_email_logs RENAME TO email_logs";
/// Our view goes back to its own name.
const OURS_OUT: &str = "ALTER VIEW email_logs RENAME TO webhook_email_logs";
/// The service's relation gets its name back.
const RESTORE: &str = "ALTER TABLE email_logs_aside_during_migrate RENAME TO email_logs";

/// What the current schema holds under the names involved.
#[derive(Debug, Default)]
struct Names {
    /// `email_logs` exists and is not our view.
    foreign: bool,
    /// `email_logs` is our view.
    ours: bool,
    /// `webhook_email_logs` (our view, renamed) exists.
    ours_renamed: bool,
}

async fn names(tx: &Transaction<'_>) -> Result<Names> {
    let mut names = Names::default();
    for row in tx.query(SEED_TABLES, &[]).await? {
        let name: String = row.try_get(0)?;
        let ours: bool = row.try_get(2)?;
        match name.as_str() {
            "email_logs" if ours => names.ours = true,
            "email_logs" => names.foreign = true,
            "webhook_email_logs" => names.ours_renamed = true,
            _ => {}
        }
    }
    Ok(names)
}

/// The same two steps as statements for a psql script (`--print-sql`): set aside, then back.
pub(crate) const ASIDE_STATEMENTS: (&str, &str) = (
    "ALTER TABLE email_logs RENAME TO email_logs_aside_during_migrate;
ALTER VIEW IF EXISTS webhook_email_logs RENAME TO email_logs",
    "ALTER VIEW IF EXISTS email_logs RENAME TO webhook_email_logs;
ALTER TABLE email_logs_aside_during_migrate RENAME TO email_logs",
);

/// Whether `email_logs` is there and not ours (the email service's).
pub(crate) async fn foreign(tx: &Transaction<'_>) -> Result<bool> {
    Ok(names(tx).await?.foreign)
}

/// Before migrations: renames a foreign `email_logs` aside and lends the name to our view.
/// Returns whether it did (then [`restore`] must follow).
pub(crate) async fn put_aside(tx: &Transaction<'_>) -> Result<bool> {
    let names = names(tx).await?;
    if !names.foreign {
        return Ok(false);
    }
    tx.batch_execute(ASIDE).await?;
    if names.ours_renamed {
        tx.batch_execute(OURS_IN).await?;
    }
    Ok(true)
}

/// After migrations: our view back to `webhook_email_logs`, the service's relation back to
/// `email_logs`.
pub(crate) async fn restore(tx: &Transaction<'_>) -> Result<()> {
    if names(tx).await?.ours {
        tx.batch_execute(OURS_OUT).await?;
    }
    tx.batch_execute(RESTORE).await?;
    Ok(())
}
