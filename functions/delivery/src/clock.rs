//! Where "now" comes from. In production it is the database's clock: statements take "now"
//! as a parameter that is `NULL`, and the database uses its own `now()` (see
//! [`crate::db::sql`]; [`crate::db::now`] reads it for work that needs it first);
//! a batch's attempts are stamped from the time its claim returned. Tests pass a fixed instant
//! and move it forward, so backoff and leases are tested without ever sleeping.

use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};

/// A source of the current time for claiming, signing and scheduling retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// Real time, as the database server tells it.
    System,
    /// Always this instant.
    Fixed(DateTime<Utc>),
}

impl Clock {
    /// "Now" as a statement parameter: `None` lets the database use its own `now()`.
    pub(crate) fn sql_now(self) -> Option<DateTime<Utc>> {
        match self {
            Clock::System => None,
            Clock::Fixed(at) => Some(at),
        }
    }
}

/// The time during one batch: the instant its claim ran on the database's clock, moved on by
/// the local monotonic clock (which a wrong wall clock does not affect), or a fixed instant.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchClock {
    claimed_at: DateTime<Utc>,
    since: Option<Instant>,
}

impl BatchClock {
    /// Starts at `claimed_at`, the time the claim returned; fixed when `clock` is.
    pub(crate) fn start(clock: Clock, claimed_at: DateTime<Utc>) -> Self {
        match clock {
            Clock::System => BatchClock {
                claimed_at,
                since: Some(Instant::now()),
            },
            Clock::Fixed(at) => BatchClock {
                claimed_at: at,
                since: None,
            },
        }
    }

    /// The current time on the database's clock.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        let elapsed = self.since.map(|since| since.elapsed()).unwrap_or_default();
        chrono::Duration::from_std(elapsed)
            .ok()
            .and_then(|d| self.claimed_at.checked_add_signed(d))
            .unwrap_or(self.claimed_at)
    }
}

/// A wall-clock deadline (the Lambda invocation's) on the monotonic clock, so time left is
/// measured with `Instant`s; one absurdly far ahead is a day away (a Lambda runs 15 minutes at
/// most). A deadline already past is no deadline: Lambda would have stopped the invocation,
/// so it comes from an emulator and is ignored — quietly when it is a day or more in the past
/// (`cargo lambda watch` sends none, which reads as 1970: expected locally, nothing to act
/// on), with a warning otherwise (a clock that is off).
pub(crate) fn instant_of(deadline: SystemTime) -> Option<Instant> {
    match deadline.duration_since(SystemTime::now()) {
        Ok(left) => Some(Instant::now() + left.min(MAX_AHEAD)),
        Err(past) if past.duration() >= MAX_AHEAD => {
            tracing::debug!(
                "the runtime gave no deadline (a local emulator such as cargo lambda watch); \
                 running without one"
            );
            None
        }
        Err(_) => {
            tracing::warn!("the invocation's deadline has already passed; ignoring it");
            None
        }
    }
}

const MAX_AHEAD: Duration = Duration::from_secs(24 * 60 * 60);

/// An instant on the boot clock (Linux `CLOCK_BOOTTIME`): like [`Instant`], but it keeps
/// counting while the machine is suspended, so a laptop running `webhooks listen` that wakes up
/// after an hour knows an hour has passed (`Instant` would say no time did). A stopped process
/// (SIGSTOP, a frozen container) is covered by both. The lease check before each send reads
/// it: a request must never leave after its lease may have lapsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct BootInstant(Duration);

impl BootInstant {
    /// Now, on the boot clock.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(crate) fn now() -> Self {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
        let secs = u64::try_from(t.tv_sec).unwrap_or(0);
        let nanos = u32::try_from(t.tv_nsec).unwrap_or(0);
        BootInstant(Duration::new(secs, nanos))
    }

    /// Now, on the monotonic clock where there is no boot clock (a developer's macOS build of
    /// the command line; the Lambda functions run on Linux).
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(crate) fn now() -> Self {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        BootInstant(START.get_or_init(Instant::now).elapsed())
    }

    /// This instant moved on by `by`.
    pub(crate) fn after(self, by: Duration) -> Self {
        BootInstant(self.0.saturating_add(by))
    }

    /// How long until `later`; zero when it has passed.
    pub(crate) fn until(self, later: BootInstant) -> Duration {
        later.0.saturating_sub(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_becomes_the_time_left_on_the_monotonic_clock() {
        let left = |deadline: SystemTime| {
            instant_of(deadline).map(|at| at.saturating_duration_since(Instant::now()))
        };
        let ninety = left(SystemTime::now() + Duration::from_secs(90)).unwrap_or_default();
        assert!(
            ninety <= Duration::from_secs(90) && ninety > Duration::from_secs(89),
            "{ninety:?}"
        );
        assert_eq!(left(SystemTime::now() - Duration::from_secs(5)), None);
        assert_eq!(left(SystemTime::UNIX_EPOCH), None);
        let far = SystemTime::UNIX_EPOCH + Duration::from_millis(u64::MAX);
        assert!(left(far).is_some_and(|left| left <= MAX_AHEAD));
    }

    #[test]
    fn the_boot_clock_moves_forward_with_the_monotonic_clock() {
        let (boot, mono) = (BootInstant::now(), Instant::now());
        std::thread::sleep(Duration::from_millis(20));
        let (boot_elapsed, mono_elapsed) = (boot.until(BootInstant::now()), mono.elapsed());
        assert!(
            boot_elapsed >= Duration::from_millis(20),
            "{boot_elapsed:?}"
        );
        // Nothing was suspended: both clocks saw about the same time.
        assert!(boot_elapsed.abs_diff(mono_elapsed) < Duration::from_millis(50));
        assert_eq!(
            boot.until(boot.after(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(
            boot.after(Duration::from_secs(3)).until(boot),
            Duration::ZERO
        );
    }

    #[test]
    fn a_batch_runs_on_the_claims_clock() {
        // A database clock an hour behind this machine's: the batch follows the database.
        let database = Utc::now() - chrono::Duration::hours(1);
        let batch = BatchClock::start(Clock::System, database);
        let now = batch.now();
        assert!(now >= database && now < database + chrono::Duration::seconds(5));

        let fixed = DateTime::<Utc>::UNIX_EPOCH;
        let batch = BatchClock::start(Clock::Fixed(fixed), database);
        assert_eq!(batch.now(), fixed);
    }
}
