//! Retention (`webhooks cleanup`, and the retry sweep when `WEBHOOK_RETENTION` is set):
//! deletes resolved deliveries — succeeded, failed, skipped, superseded (any status but
//! `pending` and `retrying`) — resolved before a cut-off, with their attempts.
//!
//! It works in bounded batches, each its own short transaction ([`crate::db::sql::CLEANUP_BATCH`]),
//! so locks and WAL stay small and the capture triggers never wait long. It never touches a
//! delivery that is still to be sent, and skips rows a concurrent replay holds. Each batch
//! that deletes also moves the completeness horizon to the cut-off, so `webhooks verify` does
//! not report the bookings whose deliveries were removed on purpose.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Client;
use tokio_postgres::types::Type;

use crate::config::retention::at_least_a_day;
use crate::db::sql;
use crate::db::{STATEMENT_TIMEOUT, query, query_in_transaction};
use crate::error::Result;
use crate::ops::output::Style;
use crate::ops::table::{instant, paragraph};

/// Deliveries deleted per batch by default.
pub const DEFAULT_BATCH: i64 = 1_000;

/// What to remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cleanup {
    /// Resolved before this instant.
    pub cutoff: DateTime<Utc>,
    /// Deliveries per batch (transaction).
    pub batch_size: i64,
    /// Stop after this many deliveries (`None`: until none is left).
    pub max_rows: Option<i64>,
    /// Count only; delete nothing.
    pub dry_run: bool,
    /// Start no batch that the server could still be running then (`None`: no limit).
    pub deadline: Option<std::time::Instant>,
}

impl Cleanup {
    /// Everything resolved more than `older_than` before `now`, in default batches. Refuses a
    /// retention shorter than [`crate::config::retention::MIN_RETENTION`], saying why.
    pub fn older_than(older_than: Duration, now: DateTime<Utc>) -> Result<Cleanup, String> {
        at_least_a_day(older_than)?;
        let cutoff = chrono::Duration::from_std(older_than)
            .ok()
            .and_then(|age| now.checked_sub_signed(age))
            .map_or(DateTime::<Utc>::UNIX_EPOCH, |at| {
                at.max(DateTime::<Utc>::UNIX_EPOCH)
            });
        Ok(Cleanup {
            cutoff,
            batch_size: DEFAULT_BATCH,
            max_rows: None,
            dry_run: false,
            deadline: None,
        })
    }
}

/// What a cleanup removed (or, dry, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CleanupReport {
    /// The cut-off: deliveries resolved before it.
    pub cutoff: DateTime<Utc>,
    /// True for a dry run: nothing was deleted.
    pub dry_run: bool,
    /// Deliveries removed, per status.
    pub deliveries: BTreeMap<String, i64>,
    /// Attempts removed with them.
    pub attempts: i64,
    /// Batches (transactions) run; 0 for a dry run.
    pub batches: usize,
    /// True when `max_rows` stopped it with more left to remove.
    pub more_left: bool,
}

impl CleanupReport {
    /// Deliveries removed in all.
    pub fn total(&self) -> i64 {
        self.deliveries.values().sum()
    }
}

/// Runs `what`. Each batch commits on its own: an error after some batches leaves those
/// deletions in place (and reported in the log), the rest for the next run.
pub async fn clean_up(db: &Client, what: &Cleanup) -> Result<CleanupReport> {
    let mut report = CleanupReport {
        cutoff: what.cutoff,
        dry_run: what.dry_run,
        ..CleanupReport::default()
    };
    if what.dry_run {
        let rows = query(
            db,
            sql::CLEANUP_PREVIEW,
            &[(&what.cutoff, Type::TIMESTAMPTZ)],
        )
        .await?;
        if let Some(row) = rows.first() {
            add_counts(&mut report, row.try_get(0)?, row.try_get(1)?);
        }
        return Ok(report);
    }
    let batch_size = what.batch_size.max(1);
    loop {
        let limit = match what.max_rows {
            Some(max) => batch_size.min(max - report.total()),
            None => batch_size,
        };
        let out_of_time = what.deadline.is_some_and(|at| {
            at.saturating_duration_since(std::time::Instant::now()) < STATEMENT_TIMEOUT
        });
        if limit <= 0 || out_of_time {
            report.more_left = true;
            break;
        }
        let rows = query_in_transaction(
            db,
            sql::BOUNDED_BEGIN,
            sql::CLEANUP_BATCH,
            &[(&what.cutoff, Type::TIMESTAMPTZ), (&limit, Type::INT8)],
        )
        .await?;
        let before = report.total();
        if let Some(row) = rows.first() {
            add_counts(&mut report, row.try_get(0)?, row.try_get(1)?);
        }
        report.batches += 1;
        if report.total() - before < limit {
            break;
        }
    }
    if report.total() > 0 {
        tracing::info!(
            cutoff = %report.cutoff, deliveries = report.total(), attempts = report.attempts,
            batches = report.batches, more_left = report.more_left, "retention removed resolved deliveries"
        );
    }
    Ok(report)
}

fn add_counts(report: &mut CleanupReport, by_status: serde_json::Value, attempts: i64) {
    if let Some(map) = by_status.as_object() {
        for (status, n) in map {
            *report.deliveries.entry(status.clone()).or_default() += n.as_i64().unwrap_or(0);
        }
    }
    report.attempts += attempts;
}

/// The human form.
pub fn render_cleanup(r: &CleanupReport, style: &Style) -> String {
    let verb = if r.dry_run { "would remove" } else { "removed" };
    let by_status = if r.deliveries.is_empty() {
        String::new()
    } else {
        let parts: Vec<String> = r
            .deliveries
            .iter()
            .map(|(status, n)| format!("{n} {status}"))
            .collect();
        format!(" ({})", parts.join(", "))
    };
    let mut out = format!(
        "{verb} {} deliveries{by_status} and {} attempts resolved before {}",
        r.total(),
        r.attempts,
        instant(Some(r.cutoff)),
    );
    if !r.dry_run {
        out.push_str(&format!(", in {} batches", r.batches));
    }
    let mut out = paragraph(&out, style);
    if r.more_left {
        out.push_str("more are left: run it again\n");
    }
    out
}
