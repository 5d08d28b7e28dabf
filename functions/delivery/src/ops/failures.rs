//! Deliveries in trouble (`webhooks failures`): failed for good or waiting for a retry, with
//! their last error and next attempt, most recently attempted first.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Client;
use tokio_postgres::types::Type;
use uuid::Uuid;

use crate::db::query;
use crate::db::sql;
use crate::error::Result;
use crate::ops::output::{Style, Tone, short_id};
use crate::ops::table::{Table, clip, or_dash, relative};

/// Which deliveries to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureFilter {
    /// Statuses to include (`failed`, `retrying`).
    pub statuses: Vec<String>,
    /// Only those last attempted at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// At most this many rows.
    pub limit: i64,
}

impl Default for FailureFilter {
    fn default() -> Self {
        FailureFilter {
            statuses: vec!["failed".into(), "retrying".into()],
            since: None,
            limit: 50,
        }
    }
}

/// One delivery in trouble.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    /// Delivery id (the `webhook-id`).
    pub id: Uuid,
    /// The booking it is about.
    pub booking_id: Uuid,
    /// `new_request`, `approved` or `rejected`.
    pub webhook_type: String,
    /// `failed` or `retrying` (or `superseded` when asked for).
    pub status: String,
    /// Attempts made.
    pub attempt_count: i32,
    /// Attempts allowed: the first plus this many retries.
    pub max_retries: i32,
    /// HTTP status of the last attempt, if a response came.
    pub last_status_code: Option<i32>,
    /// The last error, as recorded.
    pub last_error: Option<String>,
    /// When the last attempt ended.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// When the next attempt is due (`None` once failed).
    pub next_retry_at: Option<DateTime<Utc>>,
    /// For a superseded delivery: the later status notification that replaced it.
    pub superseded_by: Option<Uuid>,
}

/// A page of failures and how many match in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Failures {
    /// Deliveries matching the filter, whether listed or not.
    pub matching: i64,
    /// The listed ones, most recently attempted first.
    pub deliveries: Vec<Failure>,
}

/// Lists the deliveries matching `filter`.
pub async fn list_failures(db: &Client, filter: &FailureFilter) -> Result<Failures> {
    let rows = query(
        db,
        sql::FAILURES,
        &[
            (&filter.statuses, Type::TEXT_ARRAY),
            (&filter.since, Type::TIMESTAMPTZ),
            (&filter.limit, Type::INT8),
        ],
    )
    .await?;
    let mut matching = 0;
    let mut deliveries = Vec::with_capacity(rows.len());
    for r in &rows {
        matching = r.try_get(10)?;
        deliveries.push(Failure {
            id: r.try_get(0)?,
            booking_id: r.try_get(1)?,
            webhook_type: r.try_get(2)?,
            status: r.try_get(3)?,
            attempt_count: r.try_get(4)?,
            max_retries: r.try_get(5)?,
            last_status_code: r.try_get(6)?,
            last_error: r.try_get(7)?,
            last_attempt_at: r.try_get(8)?,
            next_retry_at: r.try_get(9)?,
            superseded_by: r.try_get(11)?,
        });
    }
    Ok(Failures {
        matching,
        deliveries,
    })
}

/// The human form: a table (times relative to `now`), each delivery's last error on a line
/// beneath it, then how many more match than are shown.
pub fn render_failures(f: &Failures, now: DateTime<Utc>, style: &Style) -> String {
    if f.deliveries.is_empty() {
        return "no deliveries in trouble\n".into();
    }
    let mut t = Table::new(&[
        "delivery",
        "type",
        "status",
        ">attempts",
        ">code",
        "last attempt",
        "next retry",
    ]);
    for d in &f.deliveries {
        let tone = match d.status.as_str() {
            "failed" => Tone::Bad,
            "retrying" => Tone::Warn,
            _ => Tone::Dim,
        };
        t.row_toned(vec![
            (short_id(&d.id), Tone::Plain),
            (d.webhook_type.clone(), Tone::Plain),
            (d.status.clone(), tone),
            (
                format!("{}/{}", d.attempt_count, d.max_retries + 1),
                Tone::Plain,
            ),
            (or_dash(d.last_status_code), Tone::Plain),
            (relative(d.last_attempt_at, now), Tone::Plain),
            (relative(d.next_retry_at, now), Tone::Plain),
        ]);
        match (d.superseded_by, &d.last_error) {
            (Some(by), _) => t.note(&format!("superseded by {}", short_id(&by)), Tone::Dim),
            (None, Some(error)) => t.note(&clip(error, 300), Tone::Plain),
            (None, None) => {}
        }
    }
    let mut out = t.render(style);
    let shown = f.deliveries.len() as i64;
    if f.matching > shown {
        out.push_str(&format!(
            "({shown} of {} shown; raise --limit for more)\n",
            f.matching
        ));
    }
    out
}
