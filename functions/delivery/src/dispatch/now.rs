//! Sending now, due or not (`webhooks send`): the given deliveries, or every one waiting for a
//! retry, claimed as dispatch claims them — under a lease, so a sweep or dispatch running at
//! the same time sends none of them twice; a replaced status notification ended `superseded`,
//! never sent; one whose turn has not come left for the earlier one of its booking — but
//! without waiting for a retry's scheduled time ([`crate::db::sql::SEND_NOW_CLAIM`]). A
//! delivery that fails again is scheduled as after any attempt.

use std::time::Duration;

use tokio_postgres::types::Type;
use uuid::Uuid;

use super::{Due, dispatch_ids_via};
use crate::clock::Clock;
use crate::db::{query, sql, with_retry};
use crate::deps::Deps;
use crate::dispatch::report::DispatchReport;
use crate::error::Result;

/// Sends the given deliveries now, pending or retrying, whenever their next attempt is due.
/// Ids that do not exist are reported `notFound` (at once: no waiting for a commit).
pub async fn send_now(deps: &Deps, ids: &[Uuid], clock: Clock) -> Result<DispatchReport> {
    let mut report = DispatchReport::default();
    for batch in ids.chunks(deps.config.sweep_batch.max(1)) {
        let sent =
            dispatch_ids_via(deps, None, batch, clock, Duration::ZERO, None, Due::Ignored).await?;
        report.absorb(sent);
    }
    Ok(report)
}

/// Sends now up to `limit` deliveries waiting for a retry, next due first: those retrying when
/// it starts (one that fails again is not sent a second time), a batch at a time.
pub async fn send_retrying(deps: &Deps, limit: usize, clock: Clock) -> Result<DispatchReport> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = with_retry(&deps.pool, |db| async move {
        query(&db, sql::RETRYING_IDS, &[(&limit, Type::INT8)]).await
    })
    .await?;
    let ids = rows
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<Vec<Uuid>, _>>()?;
    send_now(deps, &ids, clock).await
}
