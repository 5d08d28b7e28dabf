//! How long a claim leases its rows, and how many it may take before the deadline: sized to
//! the worst case of everything ahead (whole waves of `WEBHOOK_SWEEP_CONCURRENCY` requests of
//! at most `WEBHOOK_TIMEOUT_MS`), so a lease never expires under a request that may still run
//! and every claimed row can be sent and recorded in time.

use std::time::{Duration, Instant};

use crate::config::Config;

/// Kept free before a Lambda deadline for recording the last outcomes and returning.
pub(crate) const DEADLINE_HEADROOM: Duration = Duration::from_secs(5);

/// How long to lease `rows` deliveries that are sent `config.sweep_concurrency` at a time with
/// a per-request `config.timeout`: the worst case of the whole batch plus
/// `config.lease_margin` (time to record the outcome, slack for a slow database). Always longer
/// than the HTTP timeout, so a lease never expires under a request that is still allowed to run.
pub(crate) fn lease_for(rows: usize, config: &Config) -> Duration {
    let waves = rows.div_ceil(config.sweep_concurrency.max(1)).max(1);
    config
        .timeout
        .saturating_mul(u32::try_from(waves).unwrap_or(u32::MAX))
        .saturating_add(config.lease_margin)
}

/// The most deliveries one claim may take so that every one of them can be sent (whole waves
/// of `concurrency` requests, each at most `timeout`) and recorded before `deadline`, keeping
/// [`DEADLINE_HEADROOM`]; at most `max`. Zero when not even one wave fits any more.
pub(crate) fn rows_that_fit(
    deadline: Option<Instant>,
    max: usize,
    concurrency: usize,
    timeout: Duration,
) -> usize {
    let Some(deadline) = deadline else {
        return max;
    };
    let usable = deadline
        .saturating_duration_since(Instant::now())
        .saturating_sub(DEADLINE_HEADROOM);
    let waves = usable.as_millis() / timeout.as_millis().max(1);
    let rows = waves.saturating_mul(concurrency.max(1) as u128);
    max.min(usize::try_from(rows).unwrap_or(usize::MAX))
}

/// A lease as a statement parameter: whole milliseconds.
pub(crate) fn millis(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_outlasts_the_whole_batch() {
        let config = |concurrency: usize, timeout: Duration| {
            let mut config = Config::from_lookup(|name| {
                match name {
                    "DATABASE_URL" => Some("postgres://localhost/x"),
                    "WEBHOOK_URL" => Some("https://example.com/hook"),
                    "WEBHOOK_AUTH_TOKEN" => Some("t"),
                    "WEBHOOK_SIGNING_SECRET" => Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
                    _ => None,
                }
                .map(str::to_owned)
            })
            .expect("config");
            config.sweep_concurrency = concurrency;
            config.timeout = timeout;
            config
        };
        let ten = Duration::from_secs(10);
        assert_eq!(lease_for(1, &config(16, ten)), Duration::from_secs(40));
        assert_eq!(lease_for(100, &config(16, ten)), Duration::from_secs(100));
        assert_eq!(lease_for(0, &config(0, ten)), Duration::from_secs(40));
        assert_eq!(
            lease_for(usize::MAX, &config(1, Duration::MAX)),
            Duration::MAX
        );
    }

    #[test]
    fn a_claim_takes_only_what_can_be_sent_before_the_deadline() {
        let ten = Duration::from_secs(10);
        let in_secs = |s: u64| Some(Instant::now() + Duration::from_secs(s));
        // No deadline (the CLI, listen): the batch size.
        assert_eq!(rows_that_fit(None, 1000, 16, ten), 1000);
        // 120 s left, 5 s headroom: 11 waves of 16.
        assert_eq!(rows_that_fit(in_secs(120), 1000, 16, ten), 176);
        assert_eq!(rows_that_fit(in_secs(120), 100, 16, ten), 100);
        // Less than one wave left: nothing.
        assert_eq!(rows_that_fit(in_secs(14), 1000, 16, ten), 0);
        assert_eq!(rows_that_fit(in_secs(0), 1000, 16, ten), 0);
        assert_eq!(
            rows_that_fit(in_secs(60), usize::MAX, usize::MAX, ten),
            usize::MAX
        );
    }
}
