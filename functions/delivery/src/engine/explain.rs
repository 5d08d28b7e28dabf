//! Why a delivery was not claimed: final, in flight elsewhere, waiting for an earlier one of its
//! booking, not due — judged as the claims judge ([`crate::db::sql::DELIVERY_STATES`]).

use chrono::{DateTime, Utc};
use tokio_postgres::Client;
use tokio_postgres::types::Type;
use uuid::Uuid;

use crate::db::{query, sql};
use crate::error::Result;
use crate::status::DeliveryStatus;

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
    /// Never to be sent: a later status notification of the same booking replaced it.
    Superseded,
    /// Another worker holds its lease.
    InFlight,
    /// An earlier status notification of the same booking is in flight (with
    /// `WEBHOOK_SUPERSEDE=off`: not final yet); this one follows it, handed on by the worker
    /// that records the earlier one, or by the sweep.
    WaitingForEarlier,
    /// A retry is scheduled for later; the sweep will send it.
    NotDue,
    /// Claimed, then given back unsent: its lease might have lapsed before the request could
    /// end (this worker was stopped or suspended). The next claim sends it.
    ReturnedUnsent,
    /// The notification service is held (its breaker is open, or it is paused): not sent, no
    /// attempt spent; the sweep sends it once the service is back
    /// ([`crate::engine::endpoint`]).
    Held,
}

/// Where a delivery that was not claimed stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unclaimed {
    pub(crate) id: Uuid,
    /// Why it was not claimed — `None` if it looks claimable: it became visible (its
    /// transaction committed) after the claim ran, or another worker's claim held the row lock
    /// this instant.
    pub(crate) reason: Option<NotClaimed>,
    /// For a superseded delivery, the one that replaced it.
    pub(crate) superseded_by: Option<Uuid>,
}

/// For each id in `ids` that exists, why it is not claimable at `now` (`None`: the
/// database's clock), judged as the claims would with `supersede` — by a claim that ignores
/// due times (`webhooks send`) when `ignore_due`, so a retry not due yet is no reason.
pub(crate) async fn explain(
    db: &Client,
    ids: &[Uuid],
    now: Option<DateTime<Utc>>,
    supersede: bool,
    ignore_due: bool,
) -> Result<Vec<Unclaimed>> {
    let rows = query(
        db,
        sql::DELIVERY_STATES,
        &[
            (&ids, Type::UUID_ARRAY),
            (&now, Type::TIMESTAMPTZ),
            (&supersede, Type::BOOL),
        ],
    )
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let status: String = row.try_get(1)?;
        let (in_flight, not_due, waiting): (bool, bool, bool) =
            (row.try_get(3)?, row.try_get(4)?, row.try_get(5)?);
        let reason = match DeliveryStatus::parse(&status) {
            Some(DeliveryStatus::Succeeded) => Some(NotClaimed::AlreadySucceeded),
            Some(DeliveryStatus::Failed) => Some(NotClaimed::AlreadyFailed),
            Some(DeliveryStatus::Skipped) => Some(NotClaimed::Skipped),
            Some(DeliveryStatus::Superseded) => Some(NotClaimed::Superseded),
            _ if in_flight => Some(NotClaimed::InFlight),
            _ if waiting => Some(NotClaimed::WaitingForEarlier),
            Some(DeliveryStatus::Retrying) if not_due && !ignore_due => Some(NotClaimed::NotDue),
            _ => None,
        };
        out.push(Unclaimed {
            id: row.try_get(0)?,
            reason,
            superseded_by: row.try_get(2)?,
        });
    }
    Ok(out)
}
