//! A sample run to draw the dashboard with: twelve hours in 5-minute periods, invented here but
//! written by the functions' own metric builders. Steady traffic, one `dispatch` invocation
//! per delivery and a sweep every ten minutes; the receiver down from 03:20 to 05:00 (every
//! attempt a 10 s timeout, the sweep's budget spent on them, retries piling up, the first
//! deliveries failing for good), the sweep after it reclaiming the leases of one that timed
//! out; one sweep failing on the database at 06:00; from 07:30 to 08:20 a scheduler role that
//! cannot invoke the sweep, so no sweep and no backlog figures at all.
//!
//! Each invocation's metrics come from `delivery::metrics::Invocation::emf_lines`, read back
//! from the EMF lines; AWS's own metrics (`AWS/Lambda`, `AWS/Scheduler`) are counted alongside,
//! as AWS would count those invocations.

use std::collections::BTreeMap;

use chrono::DateTime;
use delivery::DeliveryStatus;
use delivery::metrics::{Function, Invocation, SweepGauges, Tally};

use crate::contract::{Emitted, published};

/// Periods of five minutes in the sample.
pub(crate) const PERIODS: usize = 144;

/// One datapoint: a metric, the period it falls in, and its values there.
#[derive(Debug, Clone)]
pub(crate) struct Point {
    pub metric: Emitted,
    pub period: usize,
    pub values: Vec<f64>,
}

/// A small deterministic generator (an LCG): the same picture on every run.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = (self.0)
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * (self.below(10_000) as f64 / 10_000.0)
    }
}

/// A delivery waiting for its next attempt.
struct Retry {
    webhook_type: &'static str,
    due_minute: usize,
    attempts: usize,
}

/// What the sample collects: datapoints in the order they were made.
struct Recorder {
    points: Vec<Point>,
}

impl Recorder {
    /// An invocation's metrics as the function writes them, and AWS/Lambda's count of it.
    fn invocation(&mut self, period: usize, invocation: &Invocation, duration_ms: f64) {
        self.emf(period, invocation);
        let function = invocation.function.as_str();
        self.lambda(period, function, duration_ms, invocation.error);
    }

    fn emf(&mut self, period: usize, invocation: &Invocation) {
        let at = DateTime::from_timestamp(1_700_000_000, 0).expect("a valid instant");
        for line in invocation.emf_lines(at).expect("EMF lines") {
            for (metric, values) in published(&line) {
                self.points.push(Point {
                    metric,
                    period,
                    values,
                });
            }
        }
    }

    fn aws(
        &mut self,
        period: usize,
        namespace: &str,
        name: &str,
        dimension: (&str, &str),
        value: f64,
    ) {
        let dimensions = BTreeMap::from([(dimension.0.to_owned(), dimension.1.to_owned())]);
        let metric = Emitted {
            namespace: namespace.into(),
            name: name.into(),
            unit: String::new(),
            dimensions,
        };
        self.points.push(Point {
            metric,
            period,
            values: vec![value],
        });
    }

    fn lambda(&mut self, period: usize, function: &str, duration_ms: f64, error: bool) {
        let (name, error) = (("FunctionName", function), f64::from(u8::from(error)));
        self.aws(period, "AWS/Lambda", "Invocations", name, 1.0);
        self.aws(period, "AWS/Lambda", "Duration", name, duration_ms);
        self.aws(period, "AWS/Lambda", "Errors", name, error);
    }

    fn scheduler(&mut self, period: usize, metric: &str, value: f64) {
        let group = ("ScheduleGroup", "booking-webhooks");
        self.aws(period, "AWS/Scheduler", metric, group, value);
    }
}

const TYPES: [&str; 3] = ["new_request", "approved", "rejected"];
/// Minutes from a failure to the next attempt: the default 5m, 15m, 45m.
const BACKOFF: [usize; 3] = [5, 15, 45];
const TIMEOUT_MS: f64 = 10_000.0;

/// The sample's datapoints.
pub(crate) fn run() -> Vec<Point> {
    let mut random = Random(13);
    let mut out = Recorder { points: Vec::new() };
    let receiver_down = |minute: usize| (200..300).contains(&minute);
    let mut waiting: Vec<Retry> = Vec::new();
    for period in 0..PERIODS {
        let minute = period * 5;
        // Traffic: a gentle swell over the twelve hours.
        let swell = (period as f64 / PERIODS as f64 * std::f64::consts::PI).sin();
        let deliveries = 22 + (14.0 * swell) as u64 + random.below(8);
        for _ in 0..deliveries {
            let webhook_type = TYPES[[0, 0, 0, 1, 1, 2][random.below(6) as usize]];
            let mut tally = Tally::default();
            let mut skipped = 0;
            let mut duration = random.between(8.0, 20.0);
            if random.below(120) == 0 {
                skipped = 1; // no recipient address: never sent
            } else {
                let (status, latency) = if receiver_down(minute) {
                    (DeliveryStatus::Retrying, TIMEOUT_MS)
                } else if random.below(60) == 0 {
                    (DeliveryStatus::Retrying, random.between(30.0, 400.0)) // a 503
                } else {
                    (
                        DeliveryStatus::Succeeded,
                        random.between(60.0, 180.0) + random.between(0.0, 1.0).powi(8) * 900.0,
                    )
                };
                if status == DeliveryStatus::Retrying {
                    waiting.push(Retry {
                        webhook_type,
                        due_minute: minute + BACKOFF[0],
                        attempts: 1,
                    });
                }
                tally.observe(webhook_type, status, latency as i32, false, true);
                duration += latency;
            }
            let invocation = Invocation {
                function: Function::Dispatch,
                tally,
                skipped,
                error: false,
                gauges: None,
            };
            out.invocation(period, &invocation, duration);
        }
        if period % 2 == 0 {
            sweep(
                &mut out,
                &mut random,
                period,
                &mut waiting,
                receiver_down(minute),
            );
        }
    }
    out.points
}

/// One tick of the schedule: Scheduler invokes the sweep, which sends what is due, oldest
/// first, as far as its budget goes.
fn sweep(
    out: &mut Recorder,
    random: &mut Random,
    period: usize,
    waiting: &mut Vec<Retry>,
    receiver_down: bool,
) {
    let minute = period * 5;
    // 07:30 to 08:20 the role lost lambda:InvokeFunction: each tick is tried four times (the
    // retry policy's 3 retries), then dropped; no sweep runs.
    let broken_role = (450..=500).contains(&minute);
    let (attempts, errors) = if broken_role { (4.0, 4.0) } else { (1.0, 0.0) };
    out.scheduler(period, "InvocationAttemptCount", attempts);
    out.scheduler(period, "TargetErrorCount", errors);
    out.scheduler(
        period,
        "InvocationDroppedCount",
        f64::from(u8::from(broken_role)),
    );
    if broken_role {
        return;
    }
    let mut tally = Tally::default();
    if minute == 360 {
        // The database refused the sweep's connections: an error, no gauges.
        let invocation = Invocation {
            function: Function::RetrySweep,
            tally,
            skipped: 0,
            error: true,
            gauges: None,
        };
        out.invocation(period, &invocation, 3_000.0);
        return;
    }
    // With every attempt a 10 s timeout, 16 at a time, the 60 s budget sends about 96.
    let budget = if receiver_down { 96 } else { usize::MAX };
    waiting.sort_by_key(|r| r.due_minute);
    let (mut sent, mut left) = (0, Vec::new());
    // The sweep after the receiver came back finds the leases of a sweep that timed out.
    let mut reclaim = if minute == 300 { 3 } else { 0 };
    for retry in waiting.drain(..) {
        if retry.due_minute > minute || sent >= budget {
            left.push(retry);
            continue;
        }
        sent += 1;
        let reclaimed = reclaim > 0;
        reclaim -= usize::from(reclaimed);
        let webhook_type = retry.webhook_type;
        if !receiver_down {
            let latency = random.between(60.0, 200.0) as i32;
            tally.observe(
                webhook_type,
                DeliveryStatus::Succeeded,
                latency,
                reclaimed,
                true,
            );
        } else if retry.attempts + 1 > BACKOFF.len() {
            tally.observe(
                webhook_type,
                DeliveryStatus::Failed,
                TIMEOUT_MS as i32,
                reclaimed,
                true,
            );
        } else {
            tally.observe(
                webhook_type,
                DeliveryStatus::Retrying,
                TIMEOUT_MS as i32,
                reclaimed,
                true,
            );
            let due_minute = minute + BACKOFF[retry.attempts];
            left.push(Retry {
                webhook_type,
                due_minute,
                attempts: retry.attempts + 1,
            });
        }
    }
    *waiting = left;
    let due: Vec<usize> = waiting
        .iter()
        .map(|r| r.due_minute)
        .filter(|&d| d <= minute)
        .collect();
    let oldest = due.iter().min().map_or(0, |d| minute - d);
    let gauges = SweepGauges {
        due_backlog: due.len() as i64,
        oldest_due_age_s: (oldest * 60) as f64,
        missing_deliveries: Some(0),
        breaker_open: receiver_down,
        breaker_open_s: 0.0,
        paused: false,
        held: 0,
    };
    let duration = if receiver_down {
        (sent as f64 / 16.0).ceil() * TIMEOUT_MS + 400.0
    } else {
        250.0 + 12.0 * sent as f64
    };
    let invocation = Invocation {
        function: Function::RetrySweep,
        tally,
        skipped: 0,
        error: false,
        gauges: Some(gauges),
    };
    out.invocation(period, &invocation, duration);
}
