//! Taking deliveries under a lease, so exactly one worker sends each (protocol in [`crate::sql`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::Result;
use crate::sql;
use crate::status::DeliveryStatus;

/// Added to the longest possible send time of a batch to form its lease: time to record the
/// outcome, and slack for a slow database.
pub(crate) const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// A delivery this worker owns until `lease`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// Delivery id, the idempotency key.
    pub(crate) id: Uuid,
    /// `new_request`, `approved` or `rejected`.
    pub(crate) webhook_type: String,
    /// The exact body to sign and send.
    pub(crate) payload: String,
    /// Attempts made before this one.
    pub(crate) attempt_count: i32,
    /// Retries allowed after the first attempt.
    pub(crate) max_retries: i32,
    /// Our lease; recording the outcome checks it is still ours.
    pub(crate) lease: DateTime<Utc>,
    /// True when the row was taken over from a worker whose lease expired.
    pub(crate) reclaimed: bool,
}

impl Claimed {
    fn from_row(row: &Row) -> Result<Self> {
        Ok(Claimed {
            id: row.try_get(0)?,
            webhook_type: row.try_get(1)?,
            payload: row.try_get(2)?,
            attempt_count: row.try_get(3)?,
            max_retries: row.try_get(4)?,
            lease: row.try_get(5)?,
            reclaimed: row.try_get(6)?,
        })
    }
}

/// How long to lease `rows` deliveries that are sent `concurrency` at a time with a per-request
/// `timeout`: the worst case of the whole batch plus [`LEASE_MARGIN`]. Always longer than the
/// HTTP timeout, so a lease never expires under a request that is still allowed to run.
pub(crate) fn lease_for(rows: usize, concurrency: usize, timeout: Duration) -> Duration {
    let waves = rows.div_ceil(concurrency.max(1)).max(1) as u32;
    timeout * waves + LEASE_MARGIN
}

fn until(now: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::days(1))
}

/// Claims up to `limit` deliveries due by `cutoff` (sweep).
pub(crate) async fn claim_due(
    db: &impl GenericClient,
    cutoff: DateTime<Utc>,
    now: DateTime<Utc>,
    lease: Duration,
    limit: usize,
) -> Result<Vec<Claimed>> {
    let rows = db
        .query(
            &db.prepare_cached(sql::DUE_CLAIM).await?,
            &[&cutoff, &now, &until(now, lease), &(limit as i64)],
        )
        .await?;
    rows.iter().map(Claimed::from_row).collect()
}

/// Claims the given ids if they are claimable now (dispatch).
pub async fn claim_ids(
    db: &impl GenericClient,
    ids: &[Uuid],
    now: DateTime<Utc>,
    lease: Duration,
) -> Result<Vec<Claimed>> {
    let rows = db
        .query(
            &db.prepare_cached(sql::IDS_CLAIM).await?,
            &[&ids, &now, &until(now, lease)],
        )
        .await?;
    rows.iter().map(Claimed::from_row).collect()
}

/// Claims up to `limit` never-attempted deliveries, oldest first (dispatch `{"limit": N}`).
pub(crate) async fn claim_fresh(
    db: &impl GenericClient,
    now: DateTime<Utc>,
    lease: Duration,
    limit: usize,
) -> Result<Vec<Claimed>> {
    let rows = db
        .query(
            &db.prepare_cached(sql::FRESH_CLAIM).await?,
            &[&(limit as i64), &now, &until(now, lease)],
        )
        .await?;
    rows.iter().map(Claimed::from_row).collect()
}

/// Why a delivery was not claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotClaimed {
    /// Final already: succeeded.
    AlreadySucceeded,
    /// Final already: failed.
    AlreadyFailed,
    /// Never to be sent: no recipient.
    Skipped,
    /// Another worker holds its lease.
    InFlight,
    /// A retry is scheduled for later; the sweep will send it.
    NotDue,
}

/// For each id in `ids` that exists, why it is not claimable at `now` — or `None` if it looks
/// claimable: it became visible (its transaction committed) after the claim ran, or another
/// worker's claim holds the row lock this instant.
pub(crate) async fn explain(
    db: &impl GenericClient,
    ids: &[Uuid],
    now: DateTime<Utc>,
) -> Result<Vec<(Uuid, Option<NotClaimed>)>> {
    let rows = db
        .query(&db.prepare_cached(sql::DELIVERY_STATES).await?, &[&ids])
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id: Uuid = row.try_get(0)?;
        let status: String = row.try_get(1)?;
        let locked_until: Option<DateTime<Utc>> = row.try_get(3)?;
        let next_retry_at: Option<DateTime<Utc>> = row.try_get(2)?;
        let status = DeliveryStatus::parse(&status);
        let reason = match status {
            Some(DeliveryStatus::Succeeded) => Some(NotClaimed::AlreadySucceeded),
            Some(DeliveryStatus::Failed) => Some(NotClaimed::AlreadyFailed),
            Some(DeliveryStatus::Skipped) => Some(NotClaimed::Skipped),
            _ if locked_until.is_some_and(|until| until > now) => Some(NotClaimed::InFlight),
            Some(DeliveryStatus::Retrying) if next_retry_at.is_some_and(|due| due > now) => {
                Some(NotClaimed::NotDue)
            }
            _ => None,
        };
        out.push((id, reason));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_outlasts_the_whole_batch() {
        let ten = Duration::from_secs(10);
        assert_eq!(lease_for(1, 16, ten), Duration::from_secs(40));
        assert_eq!(lease_for(100, 16, ten), Duration::from_secs(100));
        assert_eq!(lease_for(0, 0, ten), Duration::from_secs(40));
    }
}
