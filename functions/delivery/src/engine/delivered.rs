//! What became of one claimed delivery: its new status and whether its outcome was written.

use uuid::Uuid;

use super::claim::Superseded;
use crate::status::DeliveryStatus;

/// Whether an attempt's outcome was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The attempt and the delivery's new state are stored.
    Yes,
    /// The attempt is stored, but another worker took the delivery over while this attempt
    /// was in flight: the state is theirs.
    LeaseLost,
    /// Nothing is stored: the database refused the row (e.g. the delivery was deleted while
    /// it was being sent). Logged.
    Refused,
    /// Never sent: the lease might have lapsed before the request could end (this worker was
    /// stopped or its machine suspended), or the invocation's time was up. Given back for the
    /// next claim, its attempt number returned; no attempt is stored.
    Returned,
}

/// What became of one claimed delivery: its attempt made and its outcome recorded — or, for
/// one the claim ended `superseded`, that and what replaced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryOutcome {
    /// Delivery id.
    pub id: Uuid,
    /// Its new status (as decided; stored only when `recorded` is [`Recorded::Yes`]).
    pub status: DeliveryStatus,
    /// True when it was reclaimed from a worker whose lease had expired.
    pub reclaimed: bool,
    /// Whether the outcome was written.
    pub recorded: Recorded,
    /// For a superseded delivery: the one that replaced it.
    pub superseded_by: Option<Uuid>,
    /// A later status notification of its booking was unresolved when this was recorded.
    pub(crate) followed: bool,
}

impl DeliveryOutcome {
    pub(crate) fn superseded(s: &Superseded) -> Self {
        tracing::info!(
            delivery_id = %s.id, webhook_type = s.webhook_type, superseded_by = %s.by,
            reclaimed = s.reclaimed,
            "superseded by a later notification of the same booking; not sent"
        );
        crate::metrics::observe_superseded(s.reclaimed);
        DeliveryOutcome {
            id: s.id,
            status: DeliveryStatus::Superseded,
            reclaimed: s.reclaimed,
            recorded: Recorded::Yes,
            superseded_by: Some(s.by),
            followed: false,
        }
    }

    /// Whether a notification that waited for this one may now have its turn: this worker
    /// recorded it, a later one is unresolved, and it is no longer in flight (supersede on) or
    /// final (off: strict order).
    pub(crate) fn hands_on(&self, supersede: bool) -> bool {
        self.recorded == Recorded::Yes && self.followed && (supersede || self.status.is_final())
    }
}
