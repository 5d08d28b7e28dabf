//! Whether the schema is there for the operator commands (`stats`, `failures`, `show`,
//! `verify`, `doctor`, `cleanup`). Pointed at a database where `webhooks migrate` never ran,
//! or an older one, their statements would fail with the server's "relation … does not
//! exist"; they say instead what is missing and that `webhooks migrate` installs it.

use tokio_postgres::Client;

use super::Result;
use super::SchemaError;
use crate::db::query;
use crate::error::Error;

/// The schema the connection's unqualified names resolve to, and whether the outbox is there
/// (the table every operator command reads, through the same `search_path`).
const OUTBOX_FOUND: &str =
    "SELECT current_schema()::text, to_regclass('webhook_deliveries') IS NOT NULL";

/// SQLSTATEs of a statement naming a table, view, function or column the schema lacks.
const UNDEFINED: [&str; 3] = ["42P01", "42883", "42703"];

/// Fails with [`SchemaError::NotInstalled`] when `webhook_deliveries` cannot be found
/// through the connection's `search_path`.
pub async fn require_installed(db: &Client) -> Result<()> {
    let rows = query(db, OUTBOX_FOUND, &[]).await?;
    let Some(row) = rows.first() else {
        return Ok(());
    };
    let (schema, found): (Option<String>, bool) = (row.try_get(0)?, row.try_get(1)?);
    if found {
        return Ok(());
    }
    Err(SchemaError::NotInstalled { schema })
}

/// `err` as the operator should read it: a statement that named something the schema lacks
/// becomes [`SchemaError::OutOfDate`] (the schema predates this build); anything else is
/// returned as it is ([`SchemaError::Engine`]).
pub fn explain_missing(err: Error) -> SchemaError {
    let undefined = match &err {
        Error::Database(db) => db
            .as_db_error()
            .filter(|server| UNDEFINED.contains(&server.code().code()))
            .map(|server| server.message().to_owned()),
        _ => None,
    };
    match undefined {
        Some(message) => SchemaError::OutOfDate(message),
        None => SchemaError::Engine(err),
    }
}
