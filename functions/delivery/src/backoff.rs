//! When to try again: the retry schedule, jitter, and a receiver's `Retry-After`.
//!
//! After a failed attempt the next one is due at *failure time + delay*. A delivery may make
//! `max_retries + 1` attempts (column `max_retries`, default 3). The delays are counted back
//! from the last retry: with the default schedule `5m,15m,45m` and 3 retries, attempt 2 is due
//! 5 minutes after attempt 1 fails, attempt 3 15 minutes after attempt 2, attempt 4 45 minutes
//! after attempt 3 — the seed's ~65 minute window. Counting from the end keeps that shape
//! after a manual requeue (which grants a fresh budget) and when `max_retries` exceeds the
//! schedule's length (the first delay then repeats).

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Delays between attempts, e.g. `5m,15m,45m`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RetrySchedule(Vec<Duration>);

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule(vec![
            Duration::from_secs(5 * 60),
            Duration::from_secs(15 * 60),
            Duration::from_secs(45 * 60),
        ])
    }
}

impl FromStr for RetrySchedule {
    type Err = String;

    /// Comma-separated durations, each with a unit: `500ms`, `30s`, `5m`, `1h`, `1d`.
    fn from_str(text: &str) -> Result<Self, String> {
        let delays = text
            .split(',')
            .map(|part| parse_duration(part.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        if delays.is_empty() || delays.len() > 20 {
            return Err("must list 1 to 20 delays, e.g. 5m,15m,45m".into());
        }
        if delays.iter().any(Duration::is_zero) {
            return Err("delays must be greater than zero".into());
        }
        Ok(RetrySchedule(delays))
    }
}

impl RetrySchedule {
    /// The delays in order.
    #[cfg(test)]
    pub(crate) fn delays(&self) -> &[Duration] {
        &self.0
    }

    /// The delay before the next attempt after `attempts_made` attempts, or `None` when the
    /// budget of `max_retries + 1` attempts is spent.
    pub(crate) fn delay_after(&self, attempts_made: i32, max_retries: i32) -> Option<Duration> {
        // i64: the columns are plain integers that an operator may set to anything.
        let retries_left = i64::from(max_retries) + 1 - i64::from(attempts_made);
        if retries_left <= 0 {
            return None;
        }
        let retries_left = usize::try_from(retries_left).unwrap_or(usize::MAX);
        let index = self.0.len().saturating_sub(retries_left);
        self.0.get(index).copied()
    }
}

/// Backoff settings: the schedule, jitter and the `Retry-After` cap.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RetryPolicy {
    /// Delays between attempts.
    pub(crate) schedule: RetrySchedule,
    /// Up to this fraction of a delay is added, so deliveries that failed together (an outage)
    /// do not all come due in the same second. `0` disables it.
    pub(crate) jitter: f64,
    /// A receiver's `Retry-After` is honoured up to this long.
    pub(crate) retry_after_max: Duration,
}

impl RetryPolicy {
    /// When the next attempt is due after a retryable failure at `failed_at`, or `None` if the
    /// budget is spent. A `Retry-After` from the receiver replaces the scheduled delay (capped
    /// at `retry_after_max`) but still uses up an attempt.
    pub(crate) fn next_attempt_at(
        &self,
        id: Uuid,
        attempts_made: i32,
        max_retries: i32,
        retry_after: Option<Duration>,
        failed_at: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let scheduled = self.schedule.delay_after(attempts_made, max_retries)?;
        let delay = match retry_after {
            Some(asked) => asked.min(self.retry_after_max),
            None => scheduled + jitter(scheduled, self.jitter, id, attempts_made),
        };
        let delay = chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
        Some(
            failed_at
                .checked_add_signed(delay)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        )
    }
}

/// Between zero and `fraction` of `delay`, derived from the delivery id and attempt number:
/// spread across deliveries, yet reproducible (no random source to seed or mock).
pub(crate) fn jitter(delay: Duration, fraction: f64, id: Uuid, attempt: i32) -> Duration {
    if fraction <= 0.0 {
        return Duration::ZERO;
    }
    // splitmix64 over the id's high half and the attempt: cheap and well mixed.
    let (high, low) = id.as_u64_pair();
    let mut x = (high ^ low).wrapping_add((attempt as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    let unit = (x >> 11) as f64 / (1u64 << 53) as f64;
    delay.mul_f64(fraction * unit)
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP date (RFC 9110 §10.2.3). Dates in
/// the past mean "now"; anything unparsable is ignored (the schedule applies).
pub(crate) fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at: DateTime<Utc> = httpdate::parse_http_date(value).ok()?.into();
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// Parses one duration with a unit: `500ms`, `30s`, `5m`, `1h`, `1d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 30s, 5m or 1h"))?;
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("{text:?} is not a duration like 30s, 5m or 1h")),
    };
    n.checked_mul(unit_ms)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn policy(jitter: f64) -> RetryPolicy {
        RetryPolicy {
            schedule: RetrySchedule::default(),
            jitter,
            retry_after_max: Duration::from_secs(3600),
        }
    }

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::minutes(minutes)
    }

    #[test]
    fn default_schedule_gives_the_seed_window() {
        let p = policy(0.0);
        let id = Uuid::nil();
        assert_eq!(p.next_attempt_at(id, 1, 3, None, at(0)), Some(at(5)));
        assert_eq!(p.next_attempt_at(id, 2, 3, None, at(5)), Some(at(20)));
        assert_eq!(p.next_attempt_at(id, 3, 3, None, at(20)), Some(at(65)));
        assert_eq!(p.next_attempt_at(id, 4, 3, None, at(65)), None);
    }

    #[test]
    fn delays_count_back_from_the_last_retry() {
        let s = RetrySchedule::default();
        // A requeued delivery with 4 attempts behind it and a fresh budget of 3 retries.
        assert_eq!(s.delay_after(5, 7), Some(5 * MIN));
        assert_eq!(s.delay_after(7, 7), Some(45 * MIN));
        // More retries than delays: the first delay repeats.
        assert_eq!(s.delay_after(1, 5), Some(5 * MIN));
        assert_eq!(s.delay_after(4, 5), Some(15 * MIN));
        assert_eq!(s.delay_after(1, 0), None);
        // Whatever the columns hold, no overflow.
        assert_eq!(s.delay_after(i32::MIN, i32::MAX), Some(5 * MIN));
        assert_eq!(s.delay_after(i32::MAX, i32::MIN), None);
    }

    #[test]
    fn jitter_only_adds_and_stays_within_the_fraction() {
        let p = policy(0.1);
        let mut distinct = std::collections::HashSet::new();
        for _ in 0..200 {
            let id = Uuid::new_v4();
            let next = p.next_attempt_at(id, 1, 3, None, at(0));
            let Some(next) = next else {
                panic!("budget not spent")
            };
            assert!(
                next >= at(5) && next <= at(5) + chrono::Duration::seconds(30),
                "{next}"
            );
            distinct.insert(next);
            assert_eq!(
                p.next_attempt_at(id, 1, 3, None, at(0)),
                Some(next),
                "reproducible"
            );
        }
        assert!(
            distinct.len() > 150,
            "jitter spreads deliveries: {}",
            distinct.len()
        );
    }

    #[test]
    fn retry_after_replaces_the_delay_is_capped_and_counts_as_an_attempt() {
        let p = policy(0.1);
        let id = Uuid::new_v4();
        let two_min = Some(Duration::from_secs(120));
        assert_eq!(p.next_attempt_at(id, 1, 3, two_min, at(0)), Some(at(2)));
        let a_day = Some(Duration::from_secs(86_400));
        assert_eq!(p.next_attempt_at(id, 1, 3, a_day, at(0)), Some(at(60)));
        assert_eq!(p.next_attempt_at(id, 4, 3, two_min, at(0)), None);
    }

    #[test]
    fn parses_retry_after_seconds_and_dates() {
        let now = DateTime::parse_from_rfc2822("Sun, 06 Nov 1994 08:49:37 GMT").map(|d| d.to_utc());
        let Ok(now) = now else { panic!("bad fixture") };
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:51:37 GMT", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn parses_schedules() {
        let parsed: Result<RetrySchedule, _> = "30s, 2m,1h".parse();
        assert_eq!(
            parsed.map(|s| s.delays().to_vec()),
            Ok(vec![Duration::from_secs(30), 2 * MIN, 60 * MIN])
        );
        assert!("".parse::<RetrySchedule>().is_err());
        assert!("0s".parse::<RetrySchedule>().is_err());
        assert!("5".parse::<RetrySchedule>().is_err());
        assert!("5 m".parse::<RetrySchedule>().is_err());
    }
}
