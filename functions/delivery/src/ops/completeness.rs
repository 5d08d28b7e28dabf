//! The completeness check (`webhooks verify`, and the sweep's `MissingDeliveries` metric):
//! every booking must have a `new_request` delivery, and one for its current status when that
//! is `approved` or `rejected`. A booking without one was never captured — a disabled or
//! dropped trigger, a restore or bulk load that bypassed it, rows deleted by hand — and no
//! retry can ever send it. The rule lives in the view `webhook_missing_deliveries`
//! (`V9__operations`); bookings created before the horizon in `webhook_verify_horizon`
//! (capture installed; retention) are not checked.
//!
//! Capture is transactional, so a committed booking has its delivery at once; the window
//! (bookings younger than it are not reported) only keeps the check quiet around a restore in
//! progress or clocks that disagree.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Client;
use tokio_postgres::types::Type;
use uuid::Uuid;

use crate::db::query;
use crate::db::sql;
use crate::error::Result;
use crate::ops::output::{Style, Tone};
use crate::ops::table::{Table, instant, paragraph, span};

/// Bookings younger than this are not reported by default.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(3_600);

/// One expected delivery that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MissingDelivery {
    /// The booking.
    pub booking_id: Uuid,
    /// The delivery type it should have.
    pub missing_type: String,
    /// The booking's status now.
    pub booking_status: String,
    /// When the booking was created.
    pub booking_created_at: DateTime<Utc>,
}

/// The result of a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Completeness {
    /// Bookings created before this were checked.
    pub checked_before: DateTime<Utc>,
    /// Bookings created before this were not (see `webhook_verify_horizon`).
    pub checked_from: Option<DateTime<Utc>>,
    /// Why the horizon is where it is.
    pub horizon_reason: Option<String>,
    /// False when `booking_requests` has no `created_at`: no booking can be dated, so none is
    /// checked (see `V9__operations`).
    pub bookings_dated: bool,
    /// Missing deliveries in all.
    pub missing: i64,
    /// The first of them, oldest booking first.
    pub deliveries: Vec<MissingDelivery>,
    /// Set when the window reaches back before the horizon, so no booking is in range (the
    /// first hour after installing, with the default window): why, and when there will be
    /// something to check. Nothing is wrong then, and nothing was checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nothing_to_check: Option<String>,
}

impl Completeness {
    /// True when bookings could be checked and nothing is missing.
    pub fn is_complete(&self) -> bool {
        self.bookings_dated && self.missing == 0
    }

    /// Why no booking can be in range, when the window (made with `window`) reaches back
    /// before the horizon — `checked_before` earlier than `checked_from`, as in the first hour
    /// after installing with the default window — with what to do; `None` when there is a
    /// range to check. Reporting such a check as complete would claim what was never checked.
    pub fn empty_range(&self, window: Duration) -> Option<String> {
        let from = self
            .checked_from
            .filter(|from| *from > self.checked_before)?;
        let seconds = i64::try_from(window.as_secs()).unwrap_or(i64::MAX);
        let again = chrono::Duration::from_std(window)
            .ok()
            .and_then(|w| from.checked_add_signed(w))
            .map_or_else(String::new, |at| {
                format!(", or run it again after {}", instant(Some(at)))
            });
        Some(format!(
            "nothing to check yet: --window {} leaves out bookings created after {}, and \
             bookings created before {} are not checked ({}), so no booking is in range. Use a \
             shorter --window (--window 0s checks every booking up to now){again}.",
            span(seconds),
            instant(Some(self.checked_before)),
            instant(Some(from)),
            self.horizon_reason.as_deref().unwrap_or("the horizon"),
        ))
    }
}

/// The instant before which bookings are checked: `now - window` (the distant past if the
/// window is absurdly long).
pub fn checked_before(now: DateTime<Utc>, window: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(window)
        .ok()
        .and_then(|w| now.checked_sub_signed(w))
        .map_or(DateTime::<Utc>::UNIX_EPOCH, |at| {
            at.max(DateTime::<Utc>::UNIX_EPOCH)
        })
}

/// Lists up to `limit` bookings created before `now - window` whose expected delivery is
/// missing, and counts them all.
pub async fn check_completeness(
    db: &Client,
    now: DateTime<Utc>,
    window: Duration,
    limit: i64,
) -> Result<Completeness> {
    let before = checked_before(now, window);
    let horizon = query(db, sql::VERIFY_HORIZON, &[]).await?;
    let (checked_from, horizon_reason, bookings_dated) = match horizon.first() {
        Some(r) => (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?),
        None => (None, None, true),
    };
    let rows = query(
        db,
        sql::MISSING_DELIVERIES,
        &[(&before, Type::TIMESTAMPTZ), (&limit.max(0), Type::INT8)],
    )
    .await?;
    let mut missing = 0;
    let mut deliveries = Vec::with_capacity(rows.len());
    for r in &rows {
        missing = r.try_get(4)?;
        deliveries.push(MissingDelivery {
            booking_id: r.try_get(0)?,
            missing_type: r.try_get(1)?,
            booking_status: r.try_get(2)?,
            booking_created_at: r.try_get(3)?,
        });
    }
    if rows.is_empty() && limit <= 0 {
        missing = count_missing(db, now, window).await?;
    }
    let mut check = Completeness {
        checked_before: before,
        checked_from,
        horizon_reason,
        bookings_dated,
        missing,
        deliveries,
        nothing_to_check: None,
    };
    // An undatable table is a problem whatever the window.
    check.nothing_to_check = check.empty_range(window).filter(|_| bookings_dated);
    Ok(check)
}

/// Counts bookings created before `now - window` whose expected delivery is missing.
pub async fn count_missing(db: &Client, now: DateTime<Utc>, window: Duration) -> Result<i64> {
    let before = checked_before(now, window);
    let rows = query(db, sql::COUNT_MISSING, &[(&before, Type::TIMESTAMPTZ)]).await?;
    rows.first().map_or(Ok(0), |r| Ok(r.try_get(0)?))
}

/// The human form: a verdict, then the missing deliveries.
pub fn render_completeness(c: &Completeness, style: &Style) -> String {
    let scope = format!(
        "bookings created from {} to {}",
        c.checked_from
            .map_or_else(|| "the beginning".to_owned(), |at| instant(Some(at))),
        instant(Some(c.checked_before))
    );
    if !c.bookings_dated {
        return paragraph(
            "nothing checked: booking_requests has no created_at column, so no booking can be \
             dated (add it, then run `webhooks migrate --repair`)",
            style,
        );
    }
    if let Some(why) = &c.nothing_to_check {
        return paragraph(why, style);
    }
    if c.is_complete() {
        let text = paragraph(
            &format!("complete: every expected delivery exists ({scope})"),
            style,
        );
        return text.replacen("complete", &style.paint("complete", Tone::Good), 1);
    }
    let verdict = format!(
        "INCOMPLETE: {} expected deliveries are missing ({scope})",
        c.missing
    );
    let mut out =
        paragraph(&verdict, style).replacen("INCOMPLETE", &style.paint("INCOMPLETE", Tone::Bad), 1);
    out.push('\n');
    let mut t = Table::new(&["booking", "missing", "booking status", "booking created"]);
    for m in &c.deliveries {
        t.row(vec![
            m.booking_id.to_string(),
            m.missing_type.clone(),
            m.booking_status.clone(),
            instant(Some(m.booking_created_at)),
        ]);
    }
    out.push_str(&t.render(style));
    let shown = c.deliveries.len() as i64;
    if c.missing > shown {
        out.push_str(&format!(
            "({shown} of {} shown; raise --limit for more)\n",
            c.missing
        ));
    }
    out.push('\n');
    out.push_str(&paragraph(
        "No retry will send these: they were never captured. Check the capture triggers \
         (webhooks doctor), then see docs/operations.md, \"Missing deliveries\".",
        style,
    ));
    out
}
