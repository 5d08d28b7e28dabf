//! The delivery states stored in `webhook_deliveries.status`.

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Captured, not attempted yet (or requeued by hand).
    Pending,
    /// At least one attempt failed; another is scheduled.
    Retrying,
    /// The receiver answered 2xx.
    Succeeded,
    /// Permanent error, or every attempt failed.
    Failed,
    /// Never sent: the booking had no recipient address.
    Skipped,
    /// Never sent (again): a later status notification of the same booking replaced it
    /// before its turn came (`superseded_by` names the newest one).
    Superseded,
}

impl DeliveryStatus {
    /// The value stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Retrying => "retrying",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Skipped => "skipped",
            DeliveryStatus::Superseded => "superseded",
        }
    }

    /// Parses a stored value.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => DeliveryStatus::Pending,
            "retrying" => DeliveryStatus::Retrying,
            "succeeded" => DeliveryStatus::Succeeded,
            "failed" => DeliveryStatus::Failed,
            "skipped" => DeliveryStatus::Skipped,
            "superseded" => DeliveryStatus::Superseded,
            _ => return None,
        })
    }

    /// True for the states a delivery never leaves (an operator's replay aside).
    pub fn is_final(self) -> bool {
        !matches!(self, DeliveryStatus::Pending | DeliveryStatus::Retrying)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_round_trips_through_its_stored_name() {
        for status in [
            DeliveryStatus::Pending,
            DeliveryStatus::Retrying,
            DeliveryStatus::Succeeded,
            DeliveryStatus::Failed,
            DeliveryStatus::Skipped,
            DeliveryStatus::Superseded,
        ] {
            assert_eq!(DeliveryStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(DeliveryStatus::parse("sent"), None);
        assert!(DeliveryStatus::Superseded.is_final() && !DeliveryStatus::Retrying.is_final());
    }
}
