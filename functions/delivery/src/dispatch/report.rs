//! What a dispatch did: counts and ids per category, as the function returns them.

use serde::Serialize;
use uuid::Uuid;

use crate::engine::delivered::{DeliveryOutcome, Recorded};
use crate::engine::endpoint::Hold;
use crate::engine::explain::NotClaimed;
use crate::ops::endpoint::describe_hold;
use crate::ops::output::{Style, Tone, short_id};
use crate::ops::table::{Table, paragraph};
use crate::status::DeliveryStatus;

/// Counts per category of a [`DispatchReport`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DispatchCounts {
    /// Delivered now.
    pub succeeded: usize,
    /// Failed now; a retry is scheduled.
    pub retrying: usize,
    /// Failed now for good.
    pub failed: usize,
    /// Has no recipient; never sent.
    pub skipped: usize,
    /// Replaced by a later status notification of the same booking; never sent.
    pub superseded: usize,
    /// Not visible (unknown, or not committed within the wait); left to the sweep.
    pub not_found: usize,
    /// Exists but was not sent now (final, in flight elsewhere, or not due).
    pub unchanged: usize,
}

impl DispatchCounts {
    /// For a `{"limit"}` dispatch: the deliveries its claims took, whatever became of them
    /// (sent, superseded, given back, lost to another worker, or deleted while being sent —
    /// the only way such a dispatch finds one `notFound`).
    pub fn taken(&self) -> usize {
        self.succeeded
            + self.retrying
            + self.failed
            + self.superseded
            + self.unchanged
            + self.not_found
    }
}

/// A delivery that a later status notification of the same booking replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Replaced {
    /// Delivery id.
    pub id: Uuid,
    /// The newest status notification of the booking, which replaced it.
    pub superseded_by: Uuid,
}

/// A delivery that was not sent, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unchanged {
    /// Delivery id.
    pub id: Uuid,
    /// Why.
    pub reason: NotClaimed,
}

/// What a dispatch did, with the ids in each category.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DispatchReport {
    /// How many in each category.
    pub counts: DispatchCounts,
    /// Delivered now.
    pub succeeded: Vec<Uuid>,
    /// Failed now; a retry is scheduled.
    pub retrying: Vec<Uuid>,
    /// Failed now for good.
    pub failed: Vec<Uuid>,
    /// Has no recipient; never sent.
    pub skipped: Vec<Uuid>,
    /// Replaced by a later status notification (now, or before); never sent.
    pub superseded: Vec<Replaced>,
    /// Not visible; left to the sweep.
    pub not_found: Vec<Uuid>,
    /// Exists but not sent now.
    pub unchanged: Vec<Unchanged>,
    /// Why the notification service held this dispatch's deliveries, if it did (they are
    /// `unchanged` with reason `held`, and left to the sweep).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<Hold>,
}

impl DispatchReport {
    pub(super) fn add_delivered(&mut self, d: &DeliveryOutcome) {
        match d.recorded {
            Recorded::Yes => {}
            Recorded::LeaseLost => return self.add_unchanged(d.id, NotClaimed::InFlight, None),
            Recorded::Returned => {
                return self.add_unchanged(d.id, NotClaimed::ReturnedUnsent, None);
            }
            // Refused: the row went away while it was being sent.
            Recorded::Refused => return self.add_not_found(d.id),
        }
        match (d.status, d.superseded_by) {
            (DeliveryStatus::Succeeded, _) => self.succeeded.push(d.id),
            (DeliveryStatus::Failed, _) => self.failed.push(d.id),
            (DeliveryStatus::Superseded, Some(by)) => self.superseded.push(Replaced {
                id: d.id,
                superseded_by: by,
            }),
            _ => self.retrying.push(d.id),
        }
        self.tally();
    }

    pub(super) fn add_unchanged(
        &mut self,
        id: Uuid,
        reason: NotClaimed,
        superseded_by: Option<Uuid>,
    ) {
        match (reason, superseded_by) {
            (NotClaimed::Skipped, _) => self.skipped.push(id),
            (NotClaimed::Superseded, Some(by)) => self.superseded.push(Replaced {
                id,
                superseded_by: by,
            }),
            _ => self.unchanged.push(Unchanged { id, reason }),
        }
        self.tally();
    }

    /// Adds what another dispatch did (`webhooks send` runs one per batch).
    pub(super) fn absorb(&mut self, other: DispatchReport) {
        self.succeeded.extend(other.succeeded);
        self.retrying.extend(other.retrying);
        self.failed.extend(other.failed);
        self.skipped.extend(other.skipped);
        self.superseded.extend(other.superseded);
        self.not_found.extend(other.not_found);
        self.unchanged.extend(other.unchanged);
        self.tally();
    }

    pub(super) fn add_not_found(&mut self, id: Uuid) {
        self.not_found.push(id);
        self.tally();
    }

    fn tally(&mut self) {
        self.counts = DispatchCounts {
            succeeded: self.succeeded.len(),
            retrying: self.retrying.len(),
            failed: self.failed.len(),
            skipped: self.skipped.len(),
            superseded: self.superseded.len(),
            not_found: self.not_found.len(),
            unchanged: self.unchanged.len(),
        };
    }
}

/// The most deliveries the human form lists one by one (`--json` lists them all).
const LISTED: usize = 50;

/// The human form: the counts, then each delivery and what became of it.
pub fn render_dispatch(r: &DispatchReport, style: &Style) -> String {
    let c = &r.counts;
    let counts = [
        (c.succeeded, "succeeded"),
        (c.retrying, "retrying"),
        (c.failed, "failed"),
        (c.skipped, "skipped"),
        (c.superseded, "superseded"),
        (c.not_found, "not found"),
        (c.unchanged, "not sent"),
    ];
    let said: Vec<String> = counts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
    let held = r.held.as_ref().map(describe_hold);
    if said.is_empty() {
        return paragraph(held.as_deref().unwrap_or("nothing to send"), style);
    }
    let mut rows: Vec<(Uuid, &str, Tone, String)> = Vec::new();
    rows.extend(
        r.succeeded
            .iter()
            .map(|id| (*id, "succeeded", Tone::Good, String::new())),
    );
    let retry = "failed; a retry is scheduled (webhooks show)";
    rows.extend(
        r.retrying
            .iter()
            .map(|id| (*id, "retrying", Tone::Warn, retry.into())),
    );
    let failed = "failed for good (webhooks show; webhooks replay to retry)";
    rows.extend(
        r.failed
            .iter()
            .map(|id| (*id, "failed", Tone::Bad, failed.into())),
    );
    let skipped = "no recipient: never sent";
    rows.extend(
        r.skipped
            .iter()
            .map(|id| (*id, "skipped", Tone::Dim, skipped.into())),
    );
    rows.extend(r.superseded.iter().map(|s| {
        let why = format!("replaced by {}: never sent", short_id(&s.superseded_by));
        (s.id, "superseded", Tone::Dim, why)
    }));
    let absent = "not found (unknown, or not committed yet); left to the sweep";
    rows.extend(
        r.not_found
            .iter()
            .map(|id| (*id, "not found", Tone::Warn, absent.into())),
    );
    rows.extend(
        r.unchanged
            .iter()
            .map(|u| (u.id, "not sent", Tone::Dim, why_not(u.reason))),
    );
    let mut t = Table::new(&["delivery", "outcome", "~why"]);
    for (id, outcome, tone, why) in rows.iter().take(LISTED) {
        t.row_toned(vec![
            (short_id(id), Tone::Plain),
            ((*outcome).to_owned(), *tone),
            (why.clone(), Tone::Plain),
        ]);
    }
    let mut out = format!("{}\n", said.join(", "));
    if let Some(held) = held {
        out.push_str(&paragraph(&held, style));
    }
    out.push('\n');
    out.push_str(&t.render(style));
    if rows.len() > LISTED {
        out.push_str(&format!(
            "({LISTED} of {} listed; --json lists them all)\n",
            rows.len()
        ));
    }
    out
}

/// Why a delivery was not sent, in words (the JSON's `reason`, spelled out).
fn why_not(reason: NotClaimed) -> String {
    let name = serde_json::to_value(reason)
        .ok()
        .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
        .unwrap_or_default();
    let hint = match reason {
        NotClaimed::AlreadyFailed => ": `webhooks replay` requeues it",
        NotClaimed::NotDue => ": `webhooks send` sends it now",
        NotClaimed::InFlight => ": another worker is sending it",
        NotClaimed::WaitingForEarlier => ": an earlier decision of its booking goes first",
        _ => "",
    };
    format!("{name}{hint}")
}
