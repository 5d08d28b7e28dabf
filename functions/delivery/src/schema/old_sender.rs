//! Stopping the old system's sender before the takeover: the pg_cron jobs that call the seed's
//! `retry_failed_webhooks()`.
//!
//! Unscheduling them inside the adoption transaction is too late: a run that pg_cron started
//! meanwhile waits on adoption's lock, then finds `webhook_failures` renamed — resolving the name
//! to our view — and sends our outbox rows through pg_net. So, before the adoption transaction
//! and committed on its own: every visible job calling the function is paused
//! (`cron.alter_job(…, active := false)`: pg_cron starts no run of a paused job), then adoption
//! waits until no run of it is in progress (a session running it, or idle in the transaction
//! that ran it), and refuses after a while, resuming the jobs. The adoption transaction then
//! unschedules them. Should it fail, the jobs are resumed, exactly as they were (same ids). What this role cannot see —
//! other roles' jobs under pg_cron's row level security, other roles' sessions without
//! `pg_read_all_stats` — is said, not guessed.

use std::time::{Duration, Instant};

use deadpool_postgres::Pool;

use super::Result;
use super::SchemaError;
use super::cron::CronJob;

/// Pauses (`false`) or resumes (`true`) one pg_cron job by id, keeping it; pg_cron raises if
/// this role may not.
const CRON_ACTIVE: &str = "SELECT cron.alter_job($1::bigint, active := $2)";
/// What this role cannot see: other roles' jobs (pg_cron's row level security, unless we bypass
/// it) and other roles' sessions (without pg_read_all_stats).
const BLIND_SPOTS: &str = "
SELECT coalesce((SELECT c.relrowsecurity FROM pg_class c WHERE c.oid = to_regclass('cron.job')), false)
       AND NOT (SELECT r.rolsuper OR r.rolbypassrls FROM pg_roles r WHERE r.rolname = current_user),
       NOT (pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')
            OR (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user)),
       current_user::text";
/// Sessions of this database running the old retry function, or idle in the transaction that
/// ran it (its writes are not committed yet).
const RUNS_IN_PROGRESS: &str = "
SELECT pid, state, coalesce(to_char(xact_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '?')
  FROM pg_stat_activity
 WHERE datname = current_database()
   AND pid <> pg_backend_pid()
   AND state IS DISTINCT FROM 'idle'
   AND query ~* '\\mretry_failed_webhooks\\M'";

/// How long adoption waits, by default, for a run of the old retry function to end.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// Before the adoption transaction: pauses every visible, active job calling the old retry
/// function (committed, unless `dry_run`), then waits up to `wait` until no run of it is in
/// progress; refuses after that, resuming the jobs. Returns the jobs it paused, as they were
/// (for the rollback script, and for [`restart`] should the adoption fail).
pub(crate) async fn stop(
    pool: &Pool,
    wait: Duration,
    dry_run: bool,
    say: &mut (dyn FnMut(&str) + Send),
) -> Result<Vec<CronJob>> {
    let mut db = pool.get().await?;
    // Only the old system's jobs: one calling our own retry_failed_webhooks (a requeue an
    // operator scheduled after a first adoption) is left alone.
    let client: &mut tokio_postgres::Client = &mut db;
    let tx = client.transaction().await?;
    let found = super::seed::detect(&tx).await?;
    tx.rollback().await?;
    if found.is_empty() {
        return Ok(Vec::new());
    }
    let blind = db.query_one(BLIND_SPOTS, &[]).await?;
    let (jobs_hidden, sessions_hidden, role): (bool, bool, String) =
        (blind.try_get(0)?, blind.try_get(1)?, blind.try_get(2)?);
    if jobs_hidden {
        say(&format!(
            "note: pg_cron shows role {role} only its own jobs: a job another role scheduled to \
             call retry_failed_webhooks cannot be seen, nor unscheduled, from here. Check as a \
             superuser: SELECT jobid, username, command FROM cron.job;"
        ));
    }
    if sessions_hidden {
        say(&format!(
            "note: role {role} cannot see what other roles' sessions run (no pg_read_all_stats): \
             a run of the old retry function started by another role is not waited for"
        ));
    }
    let jobs: Vec<CronJob> = found.cron_jobs.into_iter().filter(|j| j.active).collect();
    for (n, job) in jobs.iter().enumerate() {
        if dry_run {
            say(&format!(
                "would pause before the adoption transaction, committed: {}",
                job.describe()
            ));
            continue;
        }
        if let Err(err) = db.execute(CRON_ACTIVE, &[&job.id, &false]).await {
            restart(pool, &jobs[..n], say).await;
            return Err(SchemaError::NotAdoptable(format!(
                "pausing {} failed: {}",
                job.describe(),
                super::error::describe_db_error(&err)
            )));
        }
        say(&format!(
            "paused {} (committed, before the adoption transaction: no new run starts)",
            job.describe()
        ));
    }
    let started = Instant::now();
    let mut said = false;
    loop {
        let runs = db.query(RUNS_IN_PROGRESS, &[]).await?;
        let Some(run) = runs.first() else {
            return Ok(jobs);
        };
        let (pid, state, since): (i32, Option<String>, String) =
            (run.try_get(0)?, run.try_get(1)?, run.try_get(2)?);
        let state = state.unwrap_or_default();
        if dry_run || started.elapsed() >= wait {
            if !dry_run {
                restart(pool, &jobs, say).await;
            }
            return Err(SchemaError::NotAdoptable(format!(
                "a run of the old retry_failed_webhooks() is in progress (session {pid}, {state}, \
                 its transaction since {since}): adopting now would let it send our outbox rows \
                 through pg_net. Wait for it to end, or end it: SELECT pg_cancel_backend({pid}); \
                 then run again{}",
                if dry_run {
                    ""
                } else {
                    " (the pg_cron jobs were resumed)"
                }
            )));
        }
        if !said {
            say(&format!(
                "waiting for a run of the old retry_failed_webhooks() to end (session {pid}, \
                 {state}), at most {} s",
                wait.as_secs()
            ));
            said = true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Resumes `jobs`, which [`stop`] paused (the adoption did not happen). Never fails: what
/// could not be resumed is said, with the statement to run.
pub(crate) async fn restart(pool: &Pool, jobs: &[CronJob], say: &mut (dyn FnMut(&str) + Send)) {
    for job in jobs {
        let resumed = match pool.get().await {
            Ok(db) => db
                .execute(CRON_ACTIVE, &[&job.id, &true])
                .await
                .map(|_| ())
                .map_err(crate::error::Error::from),
            Err(err) => Err(err.into()),
        };
        match resumed {
            Ok(()) => say(&format!("resumed: {}", job.describe())),
            Err(err) => say(&format!(
                "could NOT resume {} ({err}): run SELECT cron.alter_job({}, active := true);",
                job.describe(),
                job.id
            )),
        }
    }
}
