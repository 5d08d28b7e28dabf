//! Where "now" comes from. Production uses the system clock; tests pass a fixed instant and
//! move it forward, so backoff is tested without ever sleeping.

use chrono::{DateTime, Utc};

/// A source of the current time for claiming, signing and scheduling retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// The system clock.
    System,
    /// Always this instant.
    Fixed(DateTime<Utc>),
}

impl Clock {
    /// The current time according to this clock.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Fixed(at) => *at,
        }
    }
}
