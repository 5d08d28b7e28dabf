//! The EMF lines of invocations, checked member by member.

use super::*;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::status::DeliveryStatus;

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
            breaker_open: true,
            breaker_open_s: 720.0,
            paused: false,
            held: 7,
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
    assert_eq!(
        (
            &d["BreakerOpen"],
            &d["BreakerOpenFor"],
            &d["EndpointPaused"],
            &d["HeldDeliveries"]
        ),
        (&json!(1), &json!(720), &json!(0), &json!(7))
    );
    assert!(units.contains(&("BreakerOpenFor".into(), "Seconds".into())));
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
