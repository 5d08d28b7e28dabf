//! How long resolved deliveries are kept: one rule for `WEBHOOK_RETENTION` (the sweep) and
//! `webhooks cleanup --older-than` (by hand).

use std::time::Duration;

/// The shortest retention accepted: less would delete what an operator is still debugging.
pub const MIN_RETENTION: Duration = Duration::from_secs(86_400);

/// `age`, unless it is shorter than [`MIN_RETENTION`].
pub fn at_least_a_day(age: Duration) -> Result<Duration, String> {
    if age < MIN_RETENTION {
        return Err(format!(
            "must be at least 1d (got {}s): recent history is what you debug with",
            age.as_secs()
        ));
    }
    Ok(age)
}
