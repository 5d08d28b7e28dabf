//! Finding and adopting the old pg_net system (`../shared/seed/TASK_20_COMPLETION.md`):
//! pg_net triggers on `booking_requests`, the `webhook_failures` retry table, its
//! `retry_failed_webhooks()`, its `webhook_health_stats` view and a pg_cron job calling the
//! retry function.
//!
//! Adoption runs inside the one `webhooks migrate` transaction, in this order: rename the old
//! table to `webhook_failures_seed` (history kept) → drop the old triggers, functions and
//! views → (the migrations run) → import the old rows into the outbox with their ids →
//! unschedule the cron jobs. Everything it finds is described first, and the statements that
//! restore it are collected, before anything changes: that is the rollback script.

use tokio_postgres::Transaction;
use uuid::Uuid;

use super::Result;
use super::SchemaError;
use super::columns::{self, SEED_COLUMNS};
use super::cron::{CRON_UNSCHEDULE, CronJob, cron_jobs};

/// See `sql/seed_objects.sql`.
const SEED_OBJECTS: &str = include_str!("sql/seed_objects.sql");
/// See `sql/seed_tables.sql`.
pub(crate) const SEED_TABLES: &str = include_str!("sql/seed_tables.sql");
/// See `sql/pg_net_queue.sql`.
const PG_NET_QUEUE: &str = include_str!("sql/pg_net_queue.sql");
/// See `sql/seed_rename.sql`.
const SEED_RENAME: &str = include_str!("sql/seed_rename.sql");
/// See `sql/seed_table_restore.sql`.
const SEED_TABLE_RESTORE: &str = include_str!("sql/seed_table_restore.sql");
/// See `sql/seed_import.sql`.
const SEED_IMPORT: &str = include_str!("sql/seed_import.sql");
/// After the import: the capture sequence moves past the imported rows, so what is captured
/// next counts as later than every one of them (they took values above it).
const CAPTURE_SEQ_PAST_IMPORT: &str = "SELECT setval('webhook_deliveries_capture_seq',
       greatest((SELECT max(capture_seq) FROM webhook_deliveries),
                (SELECT last_value FROM webhook_deliveries_capture_seq), 1))";
/// See `sql/rollback_ours.sql`.
const ROLLBACK_OURS: &str = include_str!("sql/rollback_ours.sql");
/// See `sql/rollback_sync.sql`.
const ROLLBACK_SYNC: &str = include_str!("sql/rollback_sync.sql");

/// Whether pg_net's queue is there and readable.
const PG_NET_READABLE: &str = "SELECT to_regclass('net.http_request_queue') IS NOT NULL
       AND has_table_privilege('net.http_request_queue', 'SELECT')";
/// Rows in the old table (only run when it is a table of the current schema).
const SEED_ROWS: &str = "SELECT count(*) FROM webhook_failures";
/// The first lines of the rollback script: the schema it applies to and when it was made.
const ROLLBACK_HEAD: &str = "SELECT format('SET LOCAL search_path = %I;', current_schema()),
       current_schema()::text,
       to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')";

/// A trigger, function or view of the old system.
#[derive(Debug, Clone)]
struct OldObject {
    kind: String,
    what: String,
    statement: String,
    restore: String,
}

/// What of the pg_net system the current schema holds.
#[derive(Debug, Clone, Default)]
pub struct SeedSystem {
    /// Rows of the old `webhook_failures` table, when it is there.
    table_rows: Option<i64>,
    /// How to restore that table's name, grants and comment.
    table_restore: Option<String>,
    /// Triggers, functions and views, in the order adoption removes them.
    objects: Vec<OldObject>,
    pub(crate) cron_jobs: Vec<CronJob>,
    /// A `webhook_failures_seed` already exists (a previous adoption's history).
    history_exists: bool,
    /// Facts worth telling the operator that need no action.
    notes: Vec<String>,
}

impl SeedSystem {
    /// True when there is nothing to adopt.
    pub fn is_empty(&self) -> bool {
        self.table_rows.is_none() && self.objects.is_empty() && self.cron_jobs.is_empty()
    }

    /// One line per object found, for the operator.
    pub fn findings(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(rows) = self.table_rows {
            lines.push(format!(
                "table webhook_failures ({rows} rows): the old retry queue, not our view"
            ));
        }
        lines.extend(self.objects.iter().map(|o| o.what.clone()));
        lines.extend(self.cron_jobs.iter().map(CronJob::describe));
        lines
    }

    /// Facts that need no action (e.g. requests still queued in pg_net).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }
}

/// Looks for the pg_net system in the current schema. Changes nothing.
pub(crate) async fn detect(tx: &Transaction<'_>) -> Result<SeedSystem> {
    let mut found = SeedSystem::default();
    for row in tx.query(SEED_TABLES, &[]).await? {
        let name: String = row.try_get(0)?;
        let relkind: String = row.try_get(1)?;
        match name.as_str() {
            "webhook_failures" if relkind == "r" || relkind == "p" => {
                found.table_rows = Some(tx.query_one(SEED_ROWS, &[]).await?.try_get(0)?);
                found.table_restore =
                    Some(tx.query_one(SEED_TABLE_RESTORE, &[]).await?.try_get(0)?);
            }
            "webhook_failures_seed" => found.history_exists = true,
            _ => {}
        }
    }
    for row in tx.query(SEED_OBJECTS, &[]).await? {
        found.objects.push(OldObject {
            kind: row.try_get(0)?,
            what: row.try_get(1)?,
            statement: row.try_get(2)?,
            restore: row.try_get(3)?,
        });
    }
    found.cron_jobs = cron_jobs(tx).await?;
    if tx.query_one(PG_NET_READABLE, &[]).await?.try_get(0)? {
        // Requests pg_net has queued but not sent: it still sends them after the switch.
        let queued: i64 = tx.query_one(PG_NET_QUEUE, &[]).await?.try_get(0)?;
        if queued > 0 && !found.is_empty() {
            found.notes.push(format!(
                "{queued} request(s) are still queued in pg_net (net.http_request_queue): pg_net \
                 sends them after the switch as it would have before, once, without retries"
            ));
        }
    }
    Ok(found)
}

/// Refuses adoption when it could not finish: the old table is not shaped as the seed
/// describes, or a previous adoption's history table is in the way.
pub(crate) async fn check_adoptable(tx: &Transaction<'_>, found: &SeedSystem) -> Result<()> {
    if found.table_rows.is_none() {
        return Ok(());
    }
    if found.history_exists {
        return Err(SchemaError::NotAdoptable(
            "webhook_failures_seed already exists (the history of an earlier adoption?): rename \
             or drop it, then run again"
                .into(),
        ));
    }
    let mismatches = columns::mismatches(tx, "webhook_failures", SEED_COLUMNS).await?;
    if !mismatches.is_empty() {
        let lines: Vec<String> = mismatches.iter().map(|m| format!("  - {m}")).collect();
        return Err(SchemaError::NotAdoptable(format!(
            "the table webhook_failures is not shaped as the pg_net system's, so its rows cannot \
             be imported:\n{}",
            lines.join("\n")
        )));
    }
    Ok(())
}

/// The script that puts the old system back after adoption (printed, never run by us). It
/// holds the old functions' source verbatim, and schedules the pg_cron jobs again as they were
/// before [`super::old_sender::stop`] paused them (`stopped`).
pub(crate) async fn rollback_script(
    tx: &Transaction<'_>,
    found: &SeedSystem,
    stopped: &[CronJob],
) -> Result<String> {
    let head = tx.query_one(ROLLBACK_HEAD, &[]).await?;
    let set_path: String = head.try_get(0)?;
    let schema: String = head.try_get(1)?;
    let at: String = head.try_get(2)?;
    let mut out = vec![
        format!(
            "-- Rollback to the pg_net system in schema {schema:?}, as it was at {at}.\n\
             -- Made by `webhooks migrate --adopt-seed` (docs/switching-from-pg-net.md). It holds\n\
             -- the old functions' source verbatim: if they contain keys, keep it like a secret.\n\
             -- First stop our sweep and dispatch; then run it with psql, as the same role."
        ),
        "BEGIN;".to_owned(),
        set_path,
        ROLLBACK_OURS.trim_end().to_owned(),
    ];
    if let Some(restore) = &found.table_restore {
        out.push(restore.clone());
        out.push(ROLLBACK_SYNC.trim_end().to_owned());
    }
    let restores = |kind: &str| -> Vec<String> {
        found
            .objects
            .iter()
            .filter(|o| o.kind == kind)
            .map(|o| o.restore.clone())
            .collect()
    };
    out.extend(restores("function"));
    out.extend(restores("trigger"));
    // Dropped readers-first; created in the reverse order.
    out.extend(restores("view").into_iter().rev());
    // A job paused before the adoption transaction is restored as it was before the pause.
    out.extend(found.cron_jobs.iter().map(|job| {
        stopped
            .iter()
            .find(|paused| paused.id == job.id)
            .unwrap_or(job)
            .restore
            .clone()
    }));
    out.push("COMMIT;".to_owned());
    Ok(out.join("\n\n") + "\n")
}

/// Adoption before the migrations: renames the old table and drops the old triggers,
/// functions and views (all restorable from the rollback script).
pub(crate) async fn remove_old(
    tx: &Transaction<'_>,
    found: &SeedSystem,
    say: &mut (dyn FnMut(&str) + Send),
) -> Result<()> {
    if let Some(rows) = found.table_rows {
        tx.batch_execute(SEED_RENAME).await?;
        say(&format!(
            "renamed table webhook_failures to webhook_failures_seed ({rows} rows kept as \
             history; access revoked from PUBLIC, anon and authenticated)"
        ));
    }
    for object in &found.objects {
        tx.batch_execute(&object.statement).await?;
        say(&format!("dropped {}", object.what));
    }
    Ok(())
}

/// One group of old rows imported (or not) alike.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportGroup {
    /// The old `status` (`NULL` when it had none).
    pub old_status: String,
    /// The delivery status they got; `None` when they were not imported.
    pub new_status: Option<String>,
    /// What was special about them (empty for a plain import).
    pub notes: Vec<String>,
    /// How many rows.
    pub rows: i64,
    /// Up to 20 of their ids.
    pub ids: Vec<Uuid>,
}

/// Adoption after the migrations: imports the old rows into `webhook_deliveries` with their
/// ids (see `sql/seed_import.sql` for the mapping).
pub(crate) async fn import(
    tx: &Transaction<'_>,
    found: &SeedSystem,
    say: &mut (dyn FnMut(&str) + Send),
) -> Result<Vec<ImportGroup>> {
    let Some(total) = found.table_rows else {
        return Ok(Vec::new());
    };
    let rows = tx
        .query(SEED_IMPORT, &[])
        .await
        .map_err(|e| SchemaError::Import(super::error::describe_db_error(&e)))?;
    tx.query_one(CAPTURE_SEQ_PAST_IMPORT, &[]).await?;
    let mut groups = Vec::new();
    let mut inserted = 0;
    for row in &rows {
        inserted = row.try_get(5)?;
        groups.push(ImportGroup {
            old_status: row.try_get(0)?,
            new_status: row.try_get(1)?,
            notes: row.try_get(2)?,
            rows: row.try_get(3)?,
            ids: row.try_get(4)?,
        });
    }
    let expected: i64 = groups
        .iter()
        .filter(|g| g.new_status.is_some())
        .map(|g| g.rows)
        .sum();
    if inserted != expected {
        return Err(SchemaError::Import(format!(
            "{inserted} rows inserted, {expected} expected"
        )));
    }
    say(&format!(
        "imported {inserted} of {total} rows into webhook_deliveries, each with its old id \
         (the webhook-id receivers see), after every delivery already here in capture order:"
    ));
    for group in &groups {
        say(&format!("    {}", describe_group(group)));
    }
    Ok(groups)
}

fn describe_group(group: &ImportGroup) -> String {
    let mut line = match &group.new_status {
        Some(new) => format!("{} x {} -> {new}", group.rows, group.old_status),
        None => format!(
            "{} x {}: kept in webhook_failures_seed only",
            group.rows, group.old_status
        ),
    };
    if let Some(live) = group
        .new_status
        .as_deref()
        .filter(|s| *s == "pending" || *s == "retrying")
    {
        line.push_str(if live == "pending" {
            " (live: dispatch or the sweep sends them)"
        } else {
            " (live: the sweep sends them when due)"
        });
    }
    for note in &group.notes {
        line.push_str("; ");
        line.push_str(note);
    }
    if !group.notes.is_empty() {
        let ids: Vec<String> = group.ids.iter().map(Uuid::to_string).collect();
        let more = if group.rows > ids.len() as i64 {
            ", …"
        } else {
            ""
        };
        line.push_str(&format!(" [ids: {}{more}]", ids.join(", ")));
    }
    line
}

/// Adoption, last step: unschedules the pg_cron jobs calling `retry_failed_webhooks`, so only
/// our sweep sends.
pub(crate) async fn unschedule(
    tx: &Transaction<'_>,
    found: &SeedSystem,
    say: &mut (dyn FnMut(&str) + Send),
) -> Result<()> {
    for job in &found.cron_jobs {
        let done: bool = tx
            .query_one(CRON_UNSCHEDULE, &[&job.id])
            .await?
            .try_get(0)?;
        if !done {
            return Err(SchemaError::NotAdoptable(format!(
                "cron.unschedule({}) returned false",
                job.id
            )));
        }
        say(&format!(
            "unscheduled pg_cron job {} {:?} ({}): only our sweep sends now",
            job.id, job.name, job.schedule
        ));
    }
    Ok(())
}
