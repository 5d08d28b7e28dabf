//! The EMF lines each handler invocation writes: valid Embedded Metric Format (checked
//! against the specification's rules, not just "is JSON"), and the figures of METRICS.md.

use delivery::Clock;
use serde_json::{Value, json};

use super::seed::{self, Delivery, at, insert};
use super::verify::{captured_bookings, uncaptured_bookings};
use crate::support::{Receiver, Reply, TestDb, deps};

const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// Parses one line as an EMF document and checks every rule of the specification: a JSON
/// object; `_aws.Timestamp` an integer (epoch ms); `_aws.CloudWatchMetrics` a non-empty array
/// of directives with a `Namespace` (1–255 chars), `Dimensions` (an array of dimension sets,
/// each at most 30 string keys naming string members of the root) and `Metrics` (at most 100
/// definitions with a `Name` naming a root member that is a number or an array of at most
/// 100 numbers, and a valid `Unit`).
pub(crate) fn parse_emf(line: &str) -> Value {
    assert!(!line.contains('\n'), "one document per line: {line}");
    let doc: Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    let root = doc.as_object().expect("the root is an object");
    let aws = root
        .get("_aws")
        .and_then(Value::as_object)
        .expect("_aws object");
    assert!(
        aws.get("Timestamp").is_some_and(Value::is_i64),
        "_aws.Timestamp integer: {line}"
    );
    let directives = aws
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .expect("CloudWatchMetrics array");
    assert!(!directives.is_empty());
    for d in directives {
        let ns = d["Namespace"].as_str().expect("Namespace string");
        assert!((1..=255).contains(&ns.len()));
        let sets = d["Dimensions"].as_array().expect("Dimensions array");
        assert!(!sets.is_empty(), "at least one dimension set");
        for set in sets {
            let keys = set.as_array().expect("a dimension set is an array");
            assert!(keys.len() <= 30);
            for key in keys {
                let key = key.as_str().expect("dimension keys are strings");
                assert!(
                    root.get(key).is_some_and(Value::is_string),
                    "dimension {key} is a string member: {line}"
                );
            }
        }
        let metrics = d["Metrics"].as_array().expect("Metrics array");
        assert!(metrics.len() <= 100);
        for m in metrics {
            let name = m["Name"].as_str().expect("Name string");
            if let Some(unit) = m.get("Unit") {
                assert!(
                    unit.as_str().is_some_and(|u| UNITS.contains(&u)),
                    "unit {unit}"
                );
            }
            match root.get(name) {
                Some(Value::Number(_)) => {}
                Some(Value::Array(values)) => {
                    assert!(
                        !values.is_empty()
                            && values.len() <= 100
                            && values.iter().all(Value::is_number),
                        "{name}: {line}"
                    );
                }
                other => panic!("metric {name} has no numeric member: {other:?}"),
            }
        }
    }
    doc
}

pub(crate) fn aggregate(docs: &[Value]) -> &Value {
    let found: Vec<&Value> = docs
        .iter()
        .filter(|d| d["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == json!([[], ["Function"]]))
        .collect();
    assert_eq!(found.len(), 1, "one aggregate record: {docs:?}");
    found[0]
}

fn per_type<'a>(docs: &'a [Value], webhook_type: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["WebhookType"] == json!(webhook_type))
        .unwrap_or_else(|| panic!("no {webhook_type} record in {docs:?}"))
}

#[tokio::test]
async fn dispatch_writes_emf_with_outcomes_per_type_and_latency() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    receiver.script([Reply::status(503)]);
    let deps = deps(&db, &receiver.url);
    db.booking_with_delivery().await;
    db.booking_with_delivery().await;
    db.insert_booking(None, Some("s@example.com")).await; // captured as skipped
    let now = seed::now();

    let (report, lines) = delivery::metrics::capture(delivery::dispatch::handle(
        json!({ "limit": 10 }),
        &deps,
        Clock::Fixed(now),
        None,
    ))
    .await;
    let report = report.expect("dispatch");
    assert_eq!((report.counts.succeeded, report.counts.retrying), (1, 1));

    let docs: Vec<Value> = lines.iter().map(|l| parse_emf(l)).collect();
    assert_eq!(docs.len(), 2, "aggregate + new_request: {lines:?}");
    let a = aggregate(&docs);
    assert_eq!(a["_aws"]["Timestamp"], json!(now.timestamp_millis()));
    assert_eq!(
        a["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        json!("BookingWebhooks")
    );
    assert_eq!(a["Function"], json!("dispatch"));
    for (name, value) in [
        ("DeliveriesSucceeded", 1),
        ("DeliveriesRetrying", 1),
        ("DeliveriesFailed", 0),
        ("DeliveriesSkipped", 0),
        ("DeliveriesSuperseded", 0),
        ("Reclaimed", 0),
        ("InvocationErrors", 0),
    ] {
        assert_eq!(a[name], json!(value), "{name}");
    }
    assert_eq!(
        a["AttemptLatency"].as_array().map(Vec::len),
        Some(2),
        "one value per attempt"
    );
    let t = per_type(&docs, "new_request");
    assert_eq!(
        t["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["Function", "WebhookType"]])
    );
    assert_eq!(
        (
            &t["Function"],
            &t["DeliveriesSucceeded"],
            &t["DeliveriesRetrying"],
            &t["DeliveriesFailed"]
        ),
        (&json!("dispatch"), &json!(1), &json!(1), &json!(0))
    );

    // `{"deliveryId"}` of a skipped delivery: counted as skipped, nothing attempted.
    let skipped = db.insert_booking(None, Some("s@example.com")).await;
    let id = db.delivery_id(skipped, "new_request").await;
    let (_, lines) = delivery::metrics::capture(delivery::dispatch::handle(
        json!({ "deliveryId": id }),
        &deps,
        Clock::Fixed(now),
        None,
    ))
    .await;
    let docs: Vec<Value> = lines.iter().map(|l| parse_emf(l)).collect();
    assert_eq!(docs.len(), 1);
    assert_eq!(
        (&docs[0]["DeliveriesSkipped"], docs[0].get("AttemptLatency")),
        (&json!(1), None)
    );
}

#[tokio::test]
async fn a_failed_invocation_still_writes_its_metrics() {
    let db = TestDb::new().await;
    let deps = deps(&db, "http://127.0.0.1:9/unused");
    let (result, lines) = delivery::metrics::capture(delivery::dispatch::handle(
        json!([1]),
        &deps,
        Clock::System,
        None,
    ))
    .await;
    assert!(result.is_err());
    let docs: Vec<Value> = lines.iter().map(|l| parse_emf(l)).collect();
    assert_eq!(
        (
            docs.len(),
            &docs[0]["InvocationErrors"],
            &docs[0]["DeliveriesSucceeded"]
        ),
        (1, &json!(1), &json!(0))
    );
}

#[tokio::test]
async fn the_sweep_reports_backlog_age_and_missing_deliveries() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(500)).await;
    let deps = deps(&db, &receiver.url);
    let now = seed::now();
    let later = at(now, 90);
    // At `later`: two approvals due (sent, fail, retry); a rejection due only after `later`;
    // a new_request due since -40 min but leased by a live worker (skipped, still due after).
    insert(
        &db,
        now,
        &Delivery::new("approved", "pending", -10).due(-10),
    )
    .await;
    insert(
        &db,
        now,
        &Delivery::new("approved", "retrying", -30).due(-20),
    )
    .await;
    insert(
        &db,
        now,
        &Delivery::new("rejected", "retrying", -30).due(120),
    )
    .await;
    let leased = insert(
        &db,
        now,
        &Delivery::new("new_request", "retrying", -50).due(-40),
    )
    .await;
    let client = db.pool.get().await.expect("connection");
    client
        .execute(
            "UPDATE webhook_deliveries SET locked_until = $2 WHERE id = $1",
            &[&leased, &at(later, 5)],
        )
        .await
        .expect("lease");
    // Captured: a new_request and an approval, both pending (sent too); then four deliveries
    // that were never captured, older than the check's window at `later`.
    let captured = captured_bookings(&db).await;
    uncaptured_bookings(&db, captured[0]).await;

    let (report, lines) = delivery::metrics::capture(delivery::sweep::handle(
        json!({}),
        &deps,
        Clock::Fixed(later),
        None,
    ))
    .await;
    let report = report.expect("sweep");
    assert_eq!((report.processed, report.retrying), (4, 4), "{report:?}");

    let docs: Vec<Value> = lines.iter().map(|l| parse_emf(l)).collect();
    let a = aggregate(&docs);
    assert_eq!(a["Function"], json!("retry-sweep"));
    assert_eq!(
        (
            &a["DeliveriesRetrying"],
            &a["DueBacklog"],
            &a["MissingDeliveries"],
            &a["InvocationErrors"]
        ),
        (&json!(4), &json!(1), &json!(4), &json!(0)),
        "{a}"
    );
    // The leased row has been due since -40 min: 130 minutes before `later`.
    assert_eq!(a["OldestDueAge"], json!(130 * 60));
    assert_eq!(a["AttemptLatency"].as_array().map(Vec::len), Some(4));
    assert_eq!(per_type(&docs, "approved")["DeliveriesRetrying"], json!(3));
    assert_eq!(
        per_type(&docs, "new_request")["DeliveriesRetrying"],
        json!(1)
    );
    assert!(
        docs.iter().all(|d| d["WebhookType"] != json!("rejected")),
        "no rejected attempt was made"
    );
}
