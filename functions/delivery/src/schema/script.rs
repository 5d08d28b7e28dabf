//! `webhooks migrate --print-sql`: what `webhooks migrate` would apply, as one psql script — for
//! an operator who applies schema changes by hand or through a review. The pending migrations
//! in version order (a shell glob such as `migrations/*.sql` sorts V11 before V2), each followed
//! by the history row refinery keeps, so `webhooks migrate` and `webhooks doctor` afterwards
//! agree that they are applied; all in one transaction.
//!
//! Printed only for a history `webhooks migrate` accepts: a database that needs `--repair`,
//! holds the old pg_net system or has drifted objects is refused as `webhooks migrate` refuses
//! it.

use tokio_postgres::Transaction;

use super::Result;
use super::{
    SchemaError, email_logs, embedded, history, known_migrations, objects, seed, transaction,
};

/// The script's head: one migration per schema at a time, as `webhooks migrate` takes it, and
/// refinery's history table as refinery creates it.
const HEAD: &str = "BEGIN;
SET LOCAL lock_timeout = '10s';
DO $lock$ BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('booking-webhooks migrate ' || current_schema(), 0));
END $lock$;
CREATE TABLE IF NOT EXISTS refinery_schema_history(
             version int4 PRIMARY KEY,
             name VARCHAR(255),
             applied_on VARCHAR(255),
             checksum VARCHAR(255));
";

/// The history row of one migration, with refinery's RFC 3339 timestamp.
const HISTORY_ROW: &str = "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
VALUES ({version}, '{name}', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), '{checksum}');
";

/// The script for the database `tx` is connected to (read only; the caller rolls back).
pub(crate) async fn script(tx: &Transaction<'_>) -> Result<String> {
    let schema: Option<String> = tx.query_one(super::CURRENT_SCHEMA, &[]).await?.try_get(0)?;
    let schema = schema.ok_or(SchemaError::NoSchema)?;
    let found = seed::detect(tx).await?;
    if !found.is_empty() {
        return Err(SchemaError::SeedFound {
            schema,
            findings: found.findings(),
        });
    }
    let applied = transaction::applied(tx).await?;
    let findings = history::compare(&applied, &known_migrations());
    if let Some((findings, repairable)) = history::refusal(&findings) {
        return Err(SchemaError::History {
            findings,
            repairable,
        });
    }
    if !applied.is_empty() {
        let drift: Vec<String> = objects::drift(tx)
            .await?
            .iter()
            .filter(|d| d.is_definition())
            .map(ToString::to_string)
            .collect();
        if !drift.is_empty() {
            return Err(SchemaError::Drift(drift));
        }
    }
    let runner = embedded::migrations::runner();
    let mut pending: Vec<&refinery::Migration> = runner
        .get_migrations()
        .iter()
        .filter(|m| !applied.iter().any(|a| a.version == m.version()))
        .collect();
    pending.sort_by_key(|m| m.version());
    let mut out = format!(
        "-- webhooks migrate --print-sql: {} pending migration(s) for schema {schema:?}, in \
         order,\n-- each with the history row refinery keeps, in one transaction. Apply with\n--   \
         psql -v ON_ERROR_STOP=1 -f <this file> \"$DATABASE_URL\"\n-- (search_path as in \
         DATABASE_URL: the schema printed here).\n",
        pending.len()
    );
    if pending.is_empty() {
        out.push_str("-- nothing to apply: the schema is current\n");
        return Ok(out);
    }
    out.push_str(HEAD);
    let aside = email_logs::foreign(tx).await?;
    if aside {
        out.push_str(&format!(
            "-- email_logs is the email service's table: set aside while the migrations run\n{};\n",
            email_logs::ASIDE_STATEMENTS.0
        ));
    }
    for migration in pending {
        out.push_str(&format!(
            "\n-- {} -------------------------------------------------------------------\n",
            migration
        ));
        out.push_str(migration.sql().unwrap_or_default().trim_end());
        out.push('\n');
        out.push_str(
            &HISTORY_ROW
                .replace("{version}", &migration.version().to_string())
                .replace("{name}", migration.name())
                .replace("{checksum}", &migration.checksum().to_string()),
        );
    }
    if aside {
        out.push_str(&format!("\n{};\n", email_logs::ASIDE_STATEMENTS.1));
    }
    out.push_str("COMMIT;\n");
    Ok(out)
}
