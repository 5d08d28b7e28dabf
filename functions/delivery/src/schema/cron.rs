//! The old system's pg_cron jobs: those of this database whose command calls
//! `retry_failed_webhooks`, as this role can see them, and how each is scheduled again.

use tokio_postgres::GenericClient;

use super::Result;

/// See `sql/cron_jobs.sql`.
const CRON_JOBS: &str = include_str!("sql/cron_jobs.sql");
/// Whether pg_cron's job table is there and readable by us.
const CRON_READABLE: &str = "SELECT to_regclass('cron.job') IS NOT NULL
       AND has_table_privilege('cron.job', 'SELECT')";
/// Unschedules one pg_cron job by id; pg_cron raises if it cannot.
pub(crate) const CRON_UNSCHEDULE: &str = "SELECT cron.unschedule($1::bigint)";

/// A pg_cron job calling `retry_failed_webhooks`.
#[derive(Debug, Clone)]
pub(crate) struct CronJob {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) schedule: String,
    pub(crate) active: bool,
    /// The statement that schedules it again, as it is now.
    pub(crate) restore: String,
}

impl CronJob {
    pub(crate) fn describe(&self) -> String {
        let paused = if self.active { "" } else { ", paused" };
        format!(
            "pg_cron job {} {:?} ({}{paused}) calls retry_failed_webhooks",
            self.id, self.name, self.schedule
        )
    }
}

/// The pg_cron jobs of this database calling `retry_failed_webhooks` that this role can see.
pub(crate) async fn cron_jobs(db: &impl GenericClient) -> Result<Vec<CronJob>> {
    if !db
        .query_one(CRON_READABLE, &[])
        .await?
        .try_get::<_, bool>(0)?
    {
        return Ok(Vec::new());
    }
    let mut jobs = Vec::new();
    for row in db.query(CRON_JOBS, &[]).await? {
        jobs.push(CronJob {
            id: row.try_get(0)?,
            name: row.try_get(1)?,
            schedule: row.try_get(2)?,
            active: row.try_get(3)?,
            restore: row.try_get(4)?,
        });
    }
    Ok(jobs)
}
