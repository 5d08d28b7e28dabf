//! Where "now" comes from. Production uses the system clock; tests pass a fixed instant and
//! move it forward, so backoff is tested without ever sleeping.

use std::time::{Duration, Instant, SystemTime};

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

/// A wall-clock deadline (the Lambda invocation's) on the monotonic clock, so time left is
/// measured with `Instant`s. A deadline already past is now; one absurdly far ahead is a day
/// away (a Lambda runs 15 minutes at most).
pub(crate) fn instant_of(deadline: SystemTime) -> Instant {
    let left = deadline
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO)
        .min(MAX_AHEAD);
    Instant::now() + left
}

const MAX_AHEAD: Duration = Duration::from_secs(24 * 60 * 60);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_becomes_the_time_left_on_the_monotonic_clock() {
        let left =
            |deadline: SystemTime| instant_of(deadline).saturating_duration_since(Instant::now());
        let ninety = left(SystemTime::now() + Duration::from_secs(90));
        assert!(
            ninety <= Duration::from_secs(90) && ninety > Duration::from_secs(89),
            "{ninety:?}"
        );
        assert_eq!(
            left(SystemTime::now() - Duration::from_secs(5)),
            Duration::ZERO
        );
        assert_eq!(left(SystemTime::UNIX_EPOCH), Duration::ZERO);
        let far = SystemTime::UNIX_EPOCH + Duration::from_millis(u64::MAX);
        assert!(left(far) <= MAX_AHEAD);
    }
}
