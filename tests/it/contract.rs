//! The metric contract of METRICS.md. What the functions emit is derived from `delivery`
//! itself: its record builders run for an invocation of each function that saw everything, and
//! the EMF lines they write are parsed. Against that: the values `infra` repeats (namespace,
//! backlog limit, `Function` values, and the functions' deployed names its flags default to),
//! the metric each alarm watches, and METRICS.md's table.

use std::collections::{BTreeMap, BTreeSet};

use chrono::DateTime;
use delivery::DeliveryStatus;
use delivery::metrics::{Function, Invocation, SweepGauges, Tally};
use serde_json::Value;

use crate::ops::metrics::parse_emf;
use crate::support::aws::alarm_set;

/// One metric as the functions publish it: namespace, name, unit, and one of its dimension
/// sets with the values written for it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Emitted {
    pub namespace: String,
    pub name: String,
    pub unit: String,
    pub dimensions: BTreeMap<String, String>,
}

/// An invocation of `function` that saw every outcome of every webhook type, reclaimed a
/// lease, skipped a delivery, failed, and (the sweep) read all its gauges: everything a record
/// can hold.
fn everything(function: Function) -> Invocation {
    let mut tally = Tally::default();
    for webhook_type in ["new_request", "approved", "rejected"] {
        for status in [
            DeliveryStatus::Succeeded,
            DeliveryStatus::Retrying,
            DeliveryStatus::Failed,
            DeliveryStatus::Superseded,
        ] {
            tally.observe(webhook_type, status, 120, true, true);
        }
    }
    let gauges = (function == Function::RetrySweep).then_some(SweepGauges {
        due_backlog: 3,
        oldest_due_age_s: 60.0,
        missing_deliveries: Some(1),
        breaker_open: true,
        breaker_open_s: 60.0,
        paused: false,
        held: 3,
    });
    Invocation {
        function,
        tally,
        skipped: 1,
        error: true,
        gauges,
    }
}

/// Every metric the two functions can emit, with each dimension set it is published under.
pub(crate) fn emitted() -> BTreeSet<Emitted> {
    let at = DateTime::from_timestamp(1_700_000_000, 0).expect("a valid instant");
    let mut all = BTreeSet::new();
    for function in [Function::Dispatch, Function::RetrySweep] {
        let lines = everything(function).emf_lines(at).expect("EMF lines");
        all.extend(
            lines
                .iter()
                .flat_map(|l| published(l))
                .map(|(metric, _)| metric),
        );
    }
    all
}

/// What one EMF line publishes, checked against the specification first: each metric under
/// each of its dimension sets, with the line's values of it.
pub(crate) fn published(line: &str) -> Vec<(Emitted, Vec<f64>)> {
    let doc = parse_emf(line);
    let mut published = Vec::new();
    for directive in doc["_aws"]["CloudWatchMetrics"]
        .as_array()
        .expect("checked")
    {
        let namespace = directive["Namespace"].as_str().expect("checked");
        for set in directive["Dimensions"].as_array().expect("checked") {
            let keys = set.as_array().expect("checked").iter();
            let dimensions: BTreeMap<String, String> = keys
                .filter_map(Value::as_str)
                .map(|k| (k.to_owned(), doc[k].as_str().unwrap_or("").to_owned()))
                .collect();
            for metric in directive["Metrics"].as_array().expect("checked") {
                let name = metric["Name"].as_str().unwrap_or("");
                let values = match &doc[name] {
                    Value::Array(values) => values.iter().filter_map(Value::as_f64).collect(),
                    one => one.as_f64().into_iter().collect(),
                };
                let emitted = Emitted {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                    unit: metric["Unit"].as_str().unwrap_or("").to_owned(),
                    dimensions: dimensions.clone(),
                };
                published.push((emitted, values));
            }
        }
    }
    published
}

/// True when the functions publish `name` in `namespace` with exactly these dimensions.
pub(crate) fn is_emitted(
    emitted: &BTreeSet<Emitted>,
    namespace: &str,
    name: &str,
    dimensions: &BTreeMap<String, String>,
) -> bool {
    emitted
        .iter()
        .any(|e| e.namespace == namespace && e.name == name && &e.dimensions == dimensions)
}

#[test]
fn infra_repeats_the_namespace_the_backlog_limit_and_the_function_names_of_delivery() {
    assert_eq!(infra::metrics::NAMESPACE, delivery::metrics::NAMESPACE);
    assert_eq!(
        infra::metrics::BACKLOG_AGE_LIMIT_S,
        delivery::posture::BACKLOG_AGE_LIMIT_S
    );
    assert_eq!(
        infra::metrics::BREAKER_OPEN_LIMIT_S,
        delivery::posture::BREAKER_OPEN_LIMIT_S
    );
    assert_eq!(
        infra::metrics::FUNCTIONS,
        [Function::Dispatch.as_str(), Function::RetrySweep.as_str()]
    );
    let namespaces: BTreeSet<_> = emitted().into_iter().map(|e| e.namespace).collect();
    assert_eq!(
        namespaces,
        BTreeSet::from([infra::metrics::NAMESPACE.to_owned()])
    );
}

#[test]
fn every_alarm_on_our_namespace_watches_a_metric_the_functions_emit() {
    let emitted = emitted();
    let alarms = alarm_set("retry-sweep", "booking-webhooks").wanted();
    let mut ours = Vec::new();
    for alarm in &alarms {
        let namespace = alarm.namespace().unwrap_or_default();
        let metric = alarm.metric_name().unwrap_or_default();
        if namespace != delivery::metrics::NAMESPACE {
            assert!(
                ["AWS/Lambda", "AWS/Scheduler"].contains(&namespace),
                "{namespace} {metric}"
            );
            continue;
        }
        let dimensions: BTreeMap<String, String> = (alarm.dimensions().iter())
            .map(|d| {
                (
                    d.name().unwrap_or("").into(),
                    d.value().unwrap_or("").into(),
                )
            })
            .collect();
        assert!(
            is_emitted(&emitted, namespace, metric, &dimensions),
            "alarm {:?} watches {metric} {dimensions:?}, which no function emits",
            alarm.alarm_name()
        );
        ours.push(metric);
    }
    assert_eq!(
        ours,
        [
            "DeliveriesFailed",
            "OldestDueAge",
            "MissingDeliveries",
            "BreakerOpenFor"
        ]
    );

    let backlog = alarms
        .iter()
        .find(|a| a.metric_name() == Some("OldestDueAge"));
    let backlog = backlog.expect("a backlog alarm");
    let limit = delivery::posture::BACKLOG_AGE_LIMIT_S;
    assert_eq!(backlog.threshold(), Some(limit as f64));
    let description = backlog.alarm_description().unwrap_or_default();
    assert!(
        description.contains(&format!("more than {} minutes", limit / 60)),
        "{description}"
    );
}

/// METRICS.md's table of metrics: name -> (unit, dimension sets).
fn documented() -> BTreeMap<String, (String, BTreeSet<BTreeSet<String>>)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../METRICS.md");
    let text = std::fs::read_to_string(path).expect("METRICS.md at the repository root");
    let table = text
        .split("## The metrics")
        .nth(1)
        .expect("a section \"The metrics\"");
    let table = table.split("\n## ").next().unwrap_or_default();
    let mut documented = BTreeMap::new();
    for row in table.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (name, unit, sets) = (cells[1].trim_matches('`'), cells[2], cells[3]);
        let sets = sets.split("`, `").map(|set| {
            let set = set.trim_matches(|c| "`[]".contains(c));
            let keys = set.split(',').map(str::trim).filter(|k| !k.is_empty());
            keys.map(str::to_owned).collect::<BTreeSet<_>>()
        });
        documented.insert(name.to_owned(), (unit.to_owned(), sets.collect()));
    }
    documented
}

#[test]
fn metrics_md_lists_exactly_the_metrics_units_and_dimension_sets_emitted() {
    let mut emitted_table: BTreeMap<String, (String, BTreeSet<BTreeSet<String>>)> = BTreeMap::new();
    for e in emitted() {
        let entry = emitted_table.entry(e.name).or_default();
        entry.0 = e.unit;
        entry.1.insert(e.dimensions.into_keys().collect());
    }
    assert_eq!(documented(), emitted_table);
}

/// The default of `--<flag>` of `infra <command> apply`, read from the command line's
/// definition (not parsed, so no `WEBHOOK_…` variable of the shell can change it).
fn default_of(command: &str, flag: &str) -> String {
    use clap::CommandFactory as _;
    let cli = infra::cli::Cli::command();
    let apply = (cli.find_subcommand(command))
        .and_then(|c| c.find_subcommand("apply"))
        .unwrap_or_else(|| panic!("infra {command} apply"));
    let arg = apply.get_arguments().find(|a| a.get_long() == Some(flag));
    let arg = arg.unwrap_or_else(|| panic!("infra {command} apply --{flag}"));
    let default = arg.get_default_values().first().expect("a default");
    default.to_string_lossy().into_owned()
}

/// The `name` of a function's package: the name `cargo lambda deploy` gives the function.
fn package_name(function: &str) -> String {
    let path = format!(
        "{}/../functions/{function}/Cargo.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let manifest = std::fs::read_to_string(path).expect("the function's Cargo.toml");
    let name = manifest.lines().find_map(|l| l.strip_prefix("name = "));
    name.expect("a package name").trim_matches('"').to_owned()
}

#[test]
fn infra_s_default_function_names_are_those_cargo_lambda_deploys() {
    let (dispatch, sweep) = (package_name("dispatch"), package_name("retry-sweep"));
    assert_eq!(default_of("schedule", "function-name"), sweep);
    assert_eq!(default_of("alarms", "function-name"), sweep);
    assert_eq!(default_of("dashboard", "function-name"), sweep);
    assert_eq!(default_of("dashboard", "dispatch-function-name"), dispatch);
}
