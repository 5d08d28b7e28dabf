//! One invocation's figures — the engine's [`Tally`], the sweep's gauges — as CloudWatch EMF
//! lines, written to stdout one line a call (or to the sink of [`capture`]).

use std::future::Future;
use std::io::Write as _;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::json;

use super::emf::{Record, Unit};
use super::tally::Tally;
use super::{Function, NAMESPACE};
use crate::clock::Clock;

/// The sweep's view of the backlog when it finished.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SweepGauges {
    /// Due rows left.
    pub due_backlog: i64,
    /// Age of the oldest due row in seconds (0 when none).
    pub oldest_due_age_s: f64,
    /// Bookings whose expected delivery is missing (`None` when it could not be counted).
    pub missing_deliveries: Option<i64>,
    /// The notification service's breaker is not closed (open, or a probe on its way).
    pub breaker_open: bool,
    /// How long it has been open, in seconds (0 when closed).
    pub breaker_open_s: f64,
    /// A pause holds the endpoint (`webhooks pause`, a receiver's `Retry-After`).
    pub paused: bool,
    /// Deliveries held: due, and not sent because the breaker is open or a pause lasts.
    pub held: i64,
}

/// Everything one invocation reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// Which function.
    pub function: Function,
    /// The engine's outcomes.
    pub tally: Tally,
    /// Deliveries found `skipped` (dispatch).
    pub skipped: u64,
    /// True when the invocation returned an error.
    pub error: bool,
    /// The sweep's backlog figures (`None` for dispatch, or when they could not be read).
    pub gauges: Option<SweepGauges>,
}

impl Invocation {
    /// The EMF lines for this invocation at `at`: the aggregate record, then one record per
    /// webhook type seen.
    pub fn emf_lines(&self, at: DateTime<Utc>) -> Result<Vec<String>, String> {
        let function = self.function.as_str();
        let total = self.tally.total();
        let count = |n: u64| n as f64;
        let mut aggregate = log_line(Record::new(NAMESPACE, &[&[], &["Function"]]))
            .dimension("Function", function)
            .metric("DeliveriesSucceeded", Unit::Count, count(total.succeeded))
            .metric("DeliveriesRetrying", Unit::Count, count(total.retrying))
            .metric("DeliveriesFailed", Unit::Count, count(total.failed))
            .metric("DeliveriesSkipped", Unit::Count, count(self.skipped))
            .metric(
                "DeliveriesSuperseded",
                Unit::Count,
                count(self.tally.superseded),
            )
            .metric("Reclaimed", Unit::Count, count(self.tally.reclaimed))
            .metric("ThrottledSends", Unit::Count, count(self.tally.throttled))
            .metric("HoldsExpired", Unit::Count, count(self.tally.holds_expired))
            .metric(
                "InvocationErrors",
                Unit::Count,
                f64::from(u8::from(self.error)),
            );
        if let Some(g) = &self.gauges {
            aggregate = aggregate
                .metric("DueBacklog", Unit::Count, g.due_backlog as f64)
                .metric("OldestDueAge", Unit::Seconds, g.oldest_due_age_s.max(0.0));
            aggregate = aggregate
                .metric(
                    "BreakerOpen",
                    Unit::Count,
                    f64::from(u8::from(g.breaker_open)),
                )
                .metric("BreakerOpenFor", Unit::Seconds, g.breaker_open_s.max(0.0))
                .metric("EndpointPaused", Unit::Count, f64::from(u8::from(g.paused)))
                .metric("HeldDeliveries", Unit::Count, g.held as f64);
            if let Some(missing) = g.missing_deliveries {
                aggregate = aggregate.metric("MissingDeliveries", Unit::Count, missing as f64);
            }
        }
        let aggregate = aggregate.values(
            "AttemptLatency",
            Unit::Milliseconds,
            self.tally.latencies_ms.clone(),
        );
        let ts = at.timestamp_millis();
        let mut lines = aggregate.to_lines(ts)?;
        for (webhook_type, c) in &self.tally.by_type {
            let record = log_line(Record::new(NAMESPACE, &[&["Function", "WebhookType"]]))
                .dimension("Function", function)
                .dimension("WebhookType", webhook_type)
                .metric("DeliveriesSucceeded", Unit::Count, count(c.succeeded))
                .metric("DeliveriesRetrying", Unit::Count, count(c.retrying))
                .metric("DeliveriesFailed", Unit::Count, count(c.failed));
            lines.extend(record.to_lines(ts)?);
        }
        Ok(lines)
    }
}

/// The members that make a record look like the JSON logs of [`crate::telemetry`].
fn log_line(record: Record) -> Record {
    record
        .context("level", json!("INFO"))
        .context("target", json!("delivery::metrics"))
        .context("message", json!("metrics"))
}

/// The metric timestamp: the fixed instant in tests, else this machine's clock (what
/// CloudWatch compares it with).
pub(crate) fn timestamp(clock: Clock) -> DateTime<Utc> {
    match clock {
        Clock::Fixed(at) => at,
        Clock::System => Utc::now(),
    }
}

tokio::task_local! {
    static SINK: Arc<Mutex<Vec<String>>>;
}

/// Writes the invocation's EMF lines to stdout (or to the sink of [`capture`]). Metrics must
/// never fail an invocation: a record that cannot be built is logged and dropped.
pub fn emit(invocation: &Invocation, at: DateTime<Utc>) {
    let lines = match invocation.emf_lines(at) {
        Ok(lines) => lines,
        Err(why) => {
            tracing::error!(error = %why, "metrics record not written");
            return;
        }
    };
    let captured = SINK.try_with(|sink| {
        sink.lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(lines.iter().cloned());
    });
    if captured.is_ok() {
        return;
    }
    let mut out = std::io::stdout().lock();
    for line in lines {
        // One write per line, so nothing else ever lands in the middle of a record.
        let _ = out.write_all(format!("{line}\n").as_bytes());
    }
    let _ = out.flush();
}

/// Runs `work` with the EMF lines it emits collected instead of written to stdout, for tests
/// and for embedding the handlers elsewhere.
pub async fn capture<F: Future>(work: F) -> (F::Output, Vec<String>) {
    let sink = Arc::new(Mutex::new(Vec::new()));
    let output = SINK.scope(sink.clone(), work).await;
    let lines = std::mem::take(&mut *sink.lock().unwrap_or_else(|e| e.into_inner()));
    (output, lines)
}
