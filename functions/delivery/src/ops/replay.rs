//! Requeueing failed deliveries by hand (`webhooks replay`, or SQL `retry_failed_webhooks()`).
//! A requeued delivery is due at once with a fresh retry budget; the next sweep sends it.
//!
//! Never a superseded delivery (only failed ones are requeued), and not a failed status
//! notification that a later one of its booking has replaced — sending it now would tell the
//! student an old decision after the current one — unless asked explicitly
//! ([`Requeue::include_replaced`]); those are counted in [`RequeueReport::replaced`].

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde::Serialize;
use tokio_postgres::Client;
use tokio_postgres::types::Type;
use uuid::Uuid;

use crate::clock::Clock;
use crate::db::sql;
use crate::db::{query, with_retry};
use crate::error::Result;
use crate::ops::output::Style;
use crate::ops::table::paragraph;

/// Which failed deliveries to requeue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requeue {
    /// Only these ids (all failed ones when `None`).
    pub ids: Option<Vec<Uuid>>,
    /// Only those that failed at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Retries granted after the immediate attempt (3, like a new delivery).
    pub max_retries: i32,
    /// Also requeue failed status notifications that a later one of the same booking replaced;
    /// they are then sent, and only notifications captured after this replay supersede them.
    pub include_replaced: bool,
}

/// The counts `retry_failed_webhooks()` returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequeueReport {
    /// Failed deliveries made due again.
    pub requeued: i32,
    /// Deliveries due now (what the next sweep will take).
    pub due_now: i32,
    /// Deliveries still failed (not selected, or replaced).
    pub still_failed: i32,
    /// Selected, but left failed: a later status notification of the same booking replaced
    /// them (requeue them with `include_replaced`).
    pub replaced: i32,
}

/// Requeues failed deliveries matching `what`, due now on `clock`; once more on a fresh
/// connection if the first one broke (the requeue is idempotent).
pub async fn requeue(pool: &Pool, what: &Requeue, clock: Clock) -> Result<RequeueReport> {
    with_retry(pool, |db| async move { requeue_on(&db, what, clock).await }).await
}

/// [`requeue`] on one connection (`webhooks replay`).
pub async fn requeue_on(db: &Client, what: &Requeue, clock: Clock) -> Result<RequeueReport> {
    let now = clock.sql_now();
    let rows = query(
        db,
        sql::FAILED_REQUEUE,
        &[
            (&what.ids, Type::UUID_ARRAY),
            (&what.since, Type::TIMESTAMPTZ),
            (&what.max_retries, Type::INT4),
            (&now, Type::TIMESTAMPTZ),
            (&what.include_replaced, Type::BOOL),
        ],
    )
    .await?;
    let mut report = RequeueReport::default();
    if let Some(row) = rows.first() {
        report = RequeueReport {
            requeued: row.try_get(0)?,
            due_now: row.try_get(1)?,
            still_failed: row.try_get(2)?,
            replaced: row.try_get(3)?,
        };
    }
    Ok(report)
}

/// The human form: what was requeued, and what was left failed and why.
pub fn render_requeue(r: &RequeueReport, style: &Style) -> String {
    let mut out = match r.requeued {
        0 => "requeued nothing\n".to_owned(),
        n => format!(
            "requeued {n} failed deliveries with a fresh retry budget; the next sweep sends \
             them ({} due now; `webhooks send --retrying` sends them at once)\n",
            r.due_now
        ),
    };
    if r.replaced > 0 {
        out.push_str(&format!(
            "left {} failed: a later decision of the same booking replaced them \
             (--include-replaced requeues them anyway)\n",
            r.replaced
        ));
    }
    let others = r.still_failed - r.replaced;
    if others > 0 {
        out.push_str(&format!(
            "{others} other failed deliveries were not selected\n"
        ));
    }
    out.lines().map(|line| paragraph(line, style)).collect()
}
