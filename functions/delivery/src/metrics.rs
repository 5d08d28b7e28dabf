//! The metrics each Lambda invocation writes, as CloudWatch EMF lines ([`crate::emf`]) on
//! stdout — the contract in `METRICS.md`, which the alarms are built on:
//!
//! - namespace `BookingWebhooks`;
//! - one aggregate record per invocation, dimension sets `[[], ["Function"]]` (`Function` is
//!   `dispatch` or `retry-sweep`): `DeliveriesSucceeded`, `DeliveriesRetrying`,
//!   `DeliveriesFailed`, `DeliveriesSkipped`, `DeliveriesSuperseded`, `Reclaimed` (Count),
//!   `AttemptLatency` (Milliseconds, one value per attempt), `InvocationErrors` (Count, 1 when
//!   the invocation returned an error); the sweep adds `DueBacklog` (Count), `OldestDueAge`
//!   (Seconds) and `MissingDeliveries` (Count);
//! - one record per webhook type seen, dimension set `[["Function", "WebhookType"]]`:
//!   `DeliveriesSucceeded`, `DeliveriesRetrying`, `DeliveriesFailed`.
//!
//! Counts are zero rather than absent, so an alarm on them always has data. Outcomes are
//! gathered while the handler runs ([`collect`] around it, [`observe`] in the engine), so
//! attempts recorded before a later error are still counted.
//!
//! Why stdout: on Lambda, JSON written to stdout in EMF is all it takes ("writing JSON to
//! standard out in the embedded metric format is sufficient"); the JSON logs of
//! [`crate::telemetry`] go to stderr, so the two streams never interleave mid-line. Each record
//! is one complete JSON object per line, written with one call, and also carries
//! `level`/`target`/`message` so it reads like any other log line.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write as _;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::completeness::{DEFAULT_WINDOW, count_missing};
use crate::dispatch::DispatchReport;
use crate::emf::{Record, Unit};
use crate::health::read_backlog;
use crate::status::DeliveryStatus;
use crate::sweep::SweepReport;
use crate::{Clock, Deps, Result};

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "BookingWebhooks";

/// Which function an invocation belongs to: its role, not its deployed name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// The immediate first attempt.
    Dispatch,
    /// The scheduled retry sweep.
    RetrySweep,
}

impl Function {
    /// The `Function` dimension value.
    pub fn as_str(self) -> &'static str {
        match self {
            Function::Dispatch => "dispatch",
            Function::RetrySweep => "retry-sweep",
        }
    }
}

/// Outcomes of one webhook type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TypeCounts {
    /// Attempts that ended `succeeded`.
    pub succeeded: u64,
    /// Attempts that ended `retrying`.
    pub retrying: u64,
    /// Attempts that ended `failed`.
    pub failed: u64,
}

/// What the engine did during one invocation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Outcomes per webhook type (only types seen).
    pub by_type: BTreeMap<String, TypeCounts>,
    /// Deliveries that ended `superseded`.
    pub superseded: u64,
    /// Expired leases taken over.
    pub reclaimed: u64,
    /// Latency of every attempt, in milliseconds.
    pub latencies_ms: Vec<f64>,
}

impl Tally {
    /// Counts one attempt. `recorded` is false when another worker took the delivery over
    /// while it was in flight: the attempt's latency counts, its outcome is not ours to report.
    pub fn observe(
        &mut self,
        webhook_type: &str,
        status: DeliveryStatus,
        latency_ms: i32,
        reclaimed: bool,
        recorded: bool,
    ) {
        self.latencies_ms.push(f64::from(latency_ms.max(0)));
        self.reclaimed += u64::from(reclaimed);
        if !recorded {
            return;
        }
        let counts = self.by_type.entry(webhook_type.to_owned()).or_default();
        match status.as_str() {
            "succeeded" => counts.succeeded += 1,
            "retrying" => counts.retrying += 1,
            "failed" => counts.failed += 1,
            "superseded" => self.superseded += 1,
            _ => {}
        }
    }

    fn total(&self) -> TypeCounts {
        self.by_type
            .values()
            .fold(TypeCounts::default(), |sum, c| TypeCounts {
                succeeded: sum.succeeded + c.succeeded,
                retrying: sum.retrying + c.retrying,
                failed: sum.failed + c.failed,
            })
    }
}

/// The sweep's view of the backlog when it finished.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SweepGauges {
    /// Due rows left.
    pub due_backlog: i64,
    /// Age of the oldest due row in seconds (0 when none).
    pub oldest_due_age_s: f64,
    /// Bookings whose expected delivery is missing (`None` when it could not be counted).
    pub missing_deliveries: Option<i64>,
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
            .metric(
                "InvocationErrors",
                Unit::Count,
                f64::from(u8::from(self.error)),
            );
        if let Some(g) = &self.gauges {
            aggregate = aggregate
                .metric("DueBacklog", Unit::Count, g.due_backlog as f64)
                .metric("OldestDueAge", Unit::Seconds, g.oldest_due_age_s.max(0.0));
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

/// Writes the metrics of a finished `dispatch` invocation.
pub fn dispatch_finished(tally: Tally, result: &Result<DispatchReport>, clock: Clock) {
    let skipped = result.as_ref().map_or(0, |r| r.counts.skipped as u64);
    let invocation = Invocation {
        function: Function::Dispatch,
        tally,
        skipped,
        error: result.is_err(),
        gauges: None,
    };
    emit(&invocation, timestamp(clock));
}

/// Writes the metrics of a finished `retry-sweep` invocation with the backlog gauges (due rows,
/// oldest due age, missing deliveries) read by [`read_gauges`]; without them (not read, or no
/// time left to read them) they are left out. The invocation's own result is never changed.
pub fn sweep_finished(
    tally: Tally,
    result: &Result<SweepReport>,
    gauges: Option<SweepGauges>,
    clock: Clock,
) {
    let invocation = Invocation {
        function: Function::RetrySweep,
        tally,
        skipped: 0,
        error: result.is_err(),
        gauges,
    };
    emit(&invocation, timestamp(clock));
}

/// The metric timestamp: the fixed instant in tests, else this machine's clock (what
/// CloudWatch compares it with).
fn timestamp(clock: Clock) -> DateTime<Utc> {
    match clock {
        Clock::Fixed(at) => at,
        Clock::System => Utc::now(),
    }
}

/// Reads the sweep's gauges: the backlog and the missing-delivery count.
pub(crate) async fn read_gauges(deps: &Deps, clock: Clock) -> Result<SweepGauges> {
    let db = deps.pool.get().await?;
    let backlog = read_backlog(&db, clock.sql_now()).await?;
    let missing = count_missing(&db, backlog.at, DEFAULT_WINDOW)
        .await
        .map_err(|e| tracing::warn!(error = %e, "missing-delivery count not read"))
        .ok();
    Ok(SweepGauges {
        due_backlog: backlog.due,
        oldest_due_age_s: backlog.oldest_due_age_s.round(),
        missing_deliveries: missing,
    })
}

tokio::task_local! {
    static TALLY: Arc<Mutex<Tally>>;
    static SINK: Arc<Mutex<Vec<String>>>;
}

/// Runs `work` (one handler invocation) and returns its output with what the engine observed
/// meanwhile. Outside such a scope [`observe`] does nothing (`webhooks sweep`, `listen`).
pub async fn collect<F: Future>(work: F) -> (F::Output, Tally) {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let output = TALLY.scope(tally.clone(), work).await;
    let tally = std::mem::take(&mut *tally.lock().unwrap_or_else(|e| e.into_inner()));
    (output, tally)
}

/// Counts one attempt towards the current invocation (see [`Tally::observe`]).
pub fn observe(
    webhook_type: &str,
    status: DeliveryStatus,
    latency_ms: i32,
    reclaimed: bool,
    recorded: bool,
) {
    let _ = TALLY.try_with(|tally| {
        tally.lock().unwrap_or_else(|e| e.into_inner()).observe(
            webhook_type,
            status,
            latency_ms,
            reclaimed,
            recorded,
        );
    });
}

/// Counts one delivery a claim ended `superseded` towards the current invocation: no attempt,
/// so no latency; `reclaimed` when its expired lease was taken over.
pub fn observe_superseded(reclaimed: bool) {
    let _ = TALLY.try_with(|tally| {
        let mut tally = tally.lock().unwrap_or_else(|e| e.into_inner());
        tally.superseded += 1;
        tally.reclaimed += u64::from(reclaimed);
    });
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_700_000_000_123).unwrap_or_default()
    }

    fn docs(invocation: &Invocation) -> Vec<Value> {
        invocation
            .emf_lines(at())
            .unwrap_or_default()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
            .collect()
    }

    #[test]
    fn a_dispatch_reports_totals_and_one_record_per_type() {
        let mut tally = Tally::default();
        tally.observe("new_request", DeliveryStatus::Succeeded, 40, false, true);
        tally.observe("new_request", DeliveryStatus::Retrying, 10_000, false, true);
        tally.observe("approved", DeliveryStatus::Failed, 12, true, true);
        // Lost its lease in flight: latency counts, the outcome is the other worker's.
        tally.observe("approved", DeliveryStatus::Succeeded, 30, false, false);
        let docs = docs(&Invocation {
            function: Function::Dispatch,
            tally,
            skipped: 2,
            error: false,
            gauges: None,
        });
        assert_eq!(docs.len(), 3, "{docs:?}");
        let aggregate = &docs[0];
        assert_eq!(aggregate["_aws"]["Timestamp"], json!(1_700_000_000_123_i64));
        assert_eq!(
            aggregate["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            json!(NAMESPACE)
        );
        assert_eq!(
            aggregate["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[], ["Function"]])
        );
        assert_eq!(aggregate["Function"], json!("dispatch"));
        for (name, value) in [
            ("DeliveriesSucceeded", 1),
            ("DeliveriesRetrying", 1),
            ("DeliveriesFailed", 1),
            ("DeliveriesSkipped", 2),
            ("DeliveriesSuperseded", 0),
            ("Reclaimed", 1),
            ("InvocationErrors", 0),
        ] {
            assert_eq!(aggregate[name], json!(value), "{name}");
        }
        assert_eq!(aggregate["AttemptLatency"], json!([40, 10_000, 12, 30]));
        assert!(aggregate.get("DueBacklog").is_none(), "sweep-only");

        // Types in name order: approved, then new_request.
        assert_eq!(
            docs[1]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Function", "WebhookType"]])
        );
        assert_eq!(
            (
                &docs[1]["WebhookType"],
                &docs[1]["DeliveriesFailed"],
                &docs[1]["DeliveriesSucceeded"]
            ),
            (&json!("approved"), &json!(1), &json!(0))
        );
        assert_eq!(
            (
                &docs[2]["WebhookType"],
                &docs[2]["DeliveriesSucceeded"],
                &docs[2]["DeliveriesRetrying"]
            ),
            (&json!("new_request"), &json!(1), &json!(1))
        );
    }

    #[test]
    fn a_sweep_adds_its_gauges_and_an_error_counts_once() {
        let docs = docs(&Invocation {
            function: Function::RetrySweep,
            tally: Tally::default(),
            skipped: 0,
            error: true,
            gauges: Some(SweepGauges {
                due_backlog: 7,
                oldest_due_age_s: 1_860.5,
                missing_deliveries: Some(3),
            }),
        });
        assert_eq!(docs.len(), 1, "no type seen, no per-type record");
        let d = &docs[0];
        assert_eq!(d["Function"], json!("retry-sweep"));
        assert_eq!(
            (
                &d["InvocationErrors"],
                &d["DueBacklog"],
                &d["OldestDueAge"],
                &d["MissingDeliveries"]
            ),
            (&json!(1), &json!(7), &json!(1_860.5), &json!(3))
        );
        assert!(
            d.get("AttemptLatency").is_none(),
            "no attempts, no latency values"
        );
        let units: Vec<(String, String)> = d["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                (
                    m["Name"].as_str().unwrap_or("").into(),
                    m["Unit"].as_str().unwrap_or("").into(),
                )
            })
            .collect();
        assert!(units.contains(&("OldestDueAge".into(), "Seconds".into())));
        assert!(units.contains(&("DueBacklog".into(), "Count".into())));
    }

    #[tokio::test]
    async fn observations_belong_to_the_invocation_that_made_them() {
        observe("new_request", DeliveryStatus::Succeeded, 5, false, true); // outside: ignored
        let ((), tally) = collect(async {
            observe("new_request", DeliveryStatus::Succeeded, 5, false, true);
            let ((), inner) = collect(async {
                observe("approved", DeliveryStatus::Failed, 9, false, true);
            })
            .await;
            assert_eq!(inner.latencies_ms, vec![9.0]);
        })
        .await;
        assert_eq!(tally.latencies_ms, vec![5.0]);
        assert_eq!(tally.by_type.len(), 1);
    }

    #[tokio::test]
    async fn captured_lines_do_not_reach_stdout() {
        let invocation = Invocation {
            function: Function::Dispatch,
            tally: Tally::default(),
            skipped: 0,
            error: false,
            gauges: None,
        };
        let ((), lines) = capture(async { emit(&invocation, at()) }).await;
        assert_eq!(lines.len(), 1);
    }
}
