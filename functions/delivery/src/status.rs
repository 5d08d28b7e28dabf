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
            _ => return None,
        })
    }
}
