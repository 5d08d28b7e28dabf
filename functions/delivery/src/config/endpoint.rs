//! How the notification service is treated as a whole: the circuit breaker, how long
//! deliveries may be held, and the rate ceiling every worker shares (`WEBHOOK_BREAKER_AFTER`,
//! `WEBHOOK_BREAKER_COOLDOWN`, `WEBHOOK_HOLD_MAX`, `WEBHOOK_MAX_RATE`).

use std::time::Duration;

use super::ConfigError;
use super::env::{invalid, number};
use crate::backoff::parse_duration;

/// The longest cool-down: each failed probe doubles it, up to this.
pub const MAX_COOLDOWN: Duration = Duration::from_secs(600);

/// The endpoint policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EndpointPolicy {
    /// Consecutive connect errors, timeouts and 5xx (across workers) that open the breaker;
    /// `None` (`off`): no breaker — every attempt counts toward `max_retries`, as in the seed.
    pub breaker_after: Option<u32>,
    /// How long the breaker stays open before one probe goes; doubled by each failed probe.
    pub breaker_cooldown: Duration,
    /// The longest a delivery is held (breaker open, paused) before it fails, counted from its
    /// last attempt (or its capture).
    pub hold_max: Duration,
    /// Requests per second toward the receiver, shared by every worker (`None`: no ceiling).
    pub max_rate: Option<f64>,
}

impl EndpointPolicy {
    /// Reads the variables through `get`.
    pub(super) fn read(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let duration = |var: &'static str, default: Duration, least: Duration| {
            let Some(text) = get(var) else {
                return Ok(default);
            };
            let value = parse_duration(&text).map_err(|why| invalid(var, &why))?;
            if value < least {
                return Err(invalid(
                    var,
                    &format!("must be at least {}s, got {text:?}", least.as_secs()),
                ));
            }
            Ok(value)
        };
        let max_rate = match get("WEBHOOK_MAX_RATE") {
            None => None,
            Some(text) if text.eq_ignore_ascii_case("off") => None,
            Some(text) => Some(
                text.parse::<f64>()
                    .ok()
                    .filter(|r| r.is_finite() && (0.1..=100_000.0).contains(r))
                    .ok_or_else(|| {
                        invalid(
                            "WEBHOOK_MAX_RATE",
                            "must be requests per second from 0.1 to 100000, or off",
                        )
                    })?,
            ),
        };
        Ok(EndpointPolicy {
            breaker_after: match get("WEBHOOK_BREAKER_AFTER") {
                Some(text) if text.trim().eq_ignore_ascii_case("off") => None,
                _ => Some(number(get, "WEBHOOK_BREAKER_AFTER", 20, 1, 100_000)? as u32),
            },
            breaker_cooldown: duration(
                "WEBHOOK_BREAKER_COOLDOWN",
                Duration::from_secs(60),
                Duration::from_secs(1),
            )?,
            hold_max: duration(
                "WEBHOOK_HOLD_MAX",
                Duration::from_secs(3 * 86_400),
                Duration::from_secs(60),
            )?,
            max_rate,
        })
    }
}
