//! Misbehaving on purpose, to watch retries, backoff and permanent failures happen.
//!
//! Only requests that pass every check and are not duplicates are affected (they are what
//! `--fail-first` counts); the delay applies to every request.

use std::time::Duration;

/// The misbehaviour switches of `webhooks receiver`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Misbehaviour {
    /// Fail the first this many requests (`--fail-first N`).
    pub fail_first: u64,
    /// Fail every request for this long after start (`--fail-for 2m`).
    pub fail_for: Option<Duration>,
    /// The status of a failing answer (`--status CODE`, default 503). Given alone, every
    /// request is answered with it: `--status 400` rejects everything for good.
    pub status: Option<u16>,
    /// Wait this long before answering each request (`--delay MS`).
    pub delay: Duration,
    /// `Retry-After` seconds sent with failing answers (`--retry-after S`).
    pub retry_after: Option<u64>,
}

/// The status to answer with, and why when it is not a plain 200.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The switch responsible, for the log line and the response body.
    pub reason: Option<String>,
}

/// The status of a failing answer when `--status` is not given: retryable, like an outage.
pub const DEFAULT_FAIL_STATUS: u16 = 503;

impl Misbehaviour {
    /// The answer to the `nth` counted request (1-based), `since_start` after start.
    pub fn answer(&self, nth: u64, since_start: Duration) -> Answer {
        let status = self.status.unwrap_or(DEFAULT_FAIL_STATUS);
        if nth <= self.fail_first {
            return Answer {
                status,
                reason: Some(format!(
                    "--fail-first {}: {nth} of {}",
                    self.fail_first, self.fail_first
                )),
            };
        }
        if let Some(window) = self.fail_for
            && since_start < window
        {
            let left = (window - since_start).as_secs().max(1);
            return Answer {
                status,
                reason: Some(format!("--fail-for: {left}s left")),
            };
        }
        match self.status {
            Some(status) if self.fail_first == 0 && self.fail_for.is_none() => Answer {
                status,
                reason: Some(format!("--status {status}")),
            },
            _ => Answer {
                status: 200,
                reason: None,
            },
        }
    }

    /// True when no switch is set.
    pub fn is_none(&self) -> bool {
        *self == Misbehaviour::default()
    }

    /// The switches in effect, as they would be typed: `--fail-first 2 --status 503`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.fail_first > 0 {
            parts.push(format!("--fail-first {}", self.fail_first));
        }
        if let Some(window) = self.fail_for {
            parts.push(format!("--fail-for {}s", window.as_secs()));
        }
        if let Some(status) = self.status {
            parts.push(format!("--status {status}"));
        } else if self.fail_first > 0 || self.fail_for.is_some() {
            parts.push(format!("--status {DEFAULT_FAIL_STATUS}"));
        }
        if !self.delay.is_zero() {
            parts.push(format!("--delay {}", self.delay.as_millis()));
        }
        if let Some(seconds) = self.retry_after {
            parts.push(format!("--retry-after {seconds}"));
        }
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Duration = Duration::ZERO;

    #[test]
    fn behaves_by_default() {
        let m = Misbehaviour::default();
        assert_eq!(m.answer(1, NOW).status, 200);
        assert!(m.is_none());
        assert_eq!(m.describe(), "");
    }

    #[test]
    fn fail_first_fails_exactly_n_then_recovers() {
        let m = Misbehaviour {
            fail_first: 2,
            ..Default::default()
        };
        let statuses: Vec<u16> = (1..=4).map(|n| m.answer(n, NOW).status).collect();
        assert_eq!(statuses, [503, 503, 200, 200]);
        assert_eq!(
            m.answer(2, NOW).reason.as_deref(),
            Some("--fail-first 2: 2 of 2")
        );
    }

    #[test]
    fn status_alone_answers_every_request_with_it() {
        let m = Misbehaviour {
            status: Some(400),
            ..Default::default()
        };
        assert_eq!(m.answer(1, NOW).status, 400);
        assert_eq!(m.answer(1000, Duration::from_secs(3600)).status, 400);
    }

    #[test]
    fn status_with_a_failure_switch_only_sets_the_failing_code() {
        let m = Misbehaviour {
            fail_first: 1,
            status: Some(429),
            ..Default::default()
        };
        assert_eq!(
            (m.answer(1, NOW).status, m.answer(2, NOW).status),
            (429, 200)
        );
        assert_eq!(m.describe(), "--fail-first 1 --status 429");
    }

    #[test]
    fn fail_for_is_a_window_from_start() {
        let m = Misbehaviour {
            fail_for: Some(Duration::from_secs(60)),
            ..Default::default()
        };
        assert_eq!(m.answer(1, Duration::from_secs(59)).status, 503);
        assert_eq!(
            m.answer(1, Duration::from_secs(30)).reason.as_deref(),
            Some("--fail-for: 30s left")
        );
        assert_eq!(m.answer(2, Duration::from_secs(60)).status, 200);
    }
}
