//! `infra alarms apply | show | delete` against moto server, one per test. What `apply` wrote
//! is read back with plain `DescribeAlarms` calls and checked against the metric contract
//! (METRICS.md: namespace, metric names, dimensions, statistics, thresholds).

use std::collections::HashMap;

use anyhow::{Context as _, Result, ensure};
use aws_sdk_cloudwatch::types::{ComparisonOperator, MetricAlarm, Statistic};
use infra::alarms::{self, AlarmDelete, AlarmSet};
use infra::aws::{Clients, sdk_error};
use infra::change::{Change, Report};

use crate::support::aws::{REGION, alarm_set, emulator, run_cli};

const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:webhook-alarms";

/// Every alarm in the emulator, by name, read with a plain SDK call.
async fn described(clients: &Clients) -> Result<HashMap<String, MetricAlarm>> {
    let out = (clients.cloudwatch.describe_alarms().send().await).map_err(sdk_error)?;
    let alarms = out.metric_alarms.unwrap_or_default().into_iter();
    Ok(alarms
        .filter_map(|a| Some((a.alarm_name.clone()?, a)))
        .collect())
}

fn alarm<'a>(alarms: &'a HashMap<String, MetricAlarm>, name: &str) -> &'a MetricAlarm {
    alarms
        .get(name)
        .unwrap_or_else(|| panic!("no alarm {name} in {:?}", alarms.keys()))
}

/// The changes of a report, in order: `(alarm name, change)`.
fn changes(report: &Report) -> Vec<(&str, &Change)> {
    let items = report.items.iter();
    items.map(|i| (i.name.as_str(), &i.change)).collect()
}

/// The names of the fields that changed on alarm `name`.
fn changed_fields(report: &Report, name: &str) -> Vec<&'static str> {
    let item = report.items.iter().find(|i| i.name == name);
    item.into_iter()
        .flat_map(|i| i.change.fields())
        .map(|c| c.field)
        .collect()
}

fn all(change: &Change) -> Vec<(String, Change)> {
    let names = ["failed-deliveries", "backlog-age", "sweep-errors"];
    let names = names.into_iter().chain([
        "scheduler-target-errors",
        "missing-deliveries",
        "breaker-open",
    ]);
    names
        .map(|n| (format!("booking-webhooks-{n}"), change.clone()))
        .collect()
}

fn owned(changes: Vec<(&str, &Change)>) -> Vec<(String, Change)> {
    let changes = changes.into_iter();
    changes.map(|(n, c)| (n.to_owned(), c.clone())).collect()
}

/// Asserts one alarm as CloudWatch holds it: what it watches, when it fires, whom it tells.
fn assert_alarm(
    alarm: &MetricAlarm,
    (namespace, metric, dimension): (&str, &str, Option<(&str, &str)>),
    statistic: Statistic,
    (period, evaluation_periods): (i32, i32),
    threshold: f64,
    treat_missing_data: &str,
    topic: Option<&str>,
) {
    let name = alarm.alarm_name().unwrap_or_default();
    assert_eq!(alarm.namespace(), Some(namespace), "{name}");
    assert_eq!(alarm.metric_name(), Some(metric), "{name}");
    let dimensions: Vec<_> = alarm
        .dimensions()
        .iter()
        .map(|d| (d.name().unwrap_or_default(), d.value().unwrap_or_default()))
        .collect();
    assert_eq!(
        dimensions,
        dimension.into_iter().collect::<Vec<_>>(),
        "{name}"
    );
    assert_eq!(alarm.statistic(), Some(&statistic), "{name}");
    assert_eq!(alarm.period(), Some(period), "{name}");
    assert_eq!(
        alarm.evaluation_periods(),
        Some(evaluation_periods),
        "{name}"
    );
    assert_eq!(alarm.datapoints_to_alarm(), Some(1), "{name}");
    assert_eq!(alarm.threshold(), Some(threshold), "{name}");
    assert_eq!(
        alarm.comparison_operator(),
        Some(&ComparisonOperator::GreaterThanThreshold),
        "{name}"
    );
    assert_eq!(
        alarm.treat_missing_data(),
        Some(treat_missing_data),
        "{name}"
    );
    assert_eq!(alarm.actions_enabled(), Some(true), "{name}");
    let topic: Vec<&str> = topic.into_iter().collect();
    assert_eq!(alarm.alarm_actions(), topic.as_slice(), "{name}");
    assert_eq!(alarm.ok_actions(), topic.as_slice(), "{name}");
    assert_eq!(
        alarm.insufficient_data_actions(),
        &[] as &[String],
        "{name}"
    );
    let description = alarm.alarm_description().unwrap_or_default();
    assert!(
        description.contains("docs/operations.md"),
        "{name}: {description}"
    );
}

/// Asserts all six alarms against the metric contract.
fn assert_contract(alarms: &HashMap<String, MetricAlarm>, function: &str, topic: Option<&str>) {
    assert_eq!(alarms.len(), 6, "{:?}", alarms.keys());
    let (sum, max) = (Statistic::Sum, Statistic::Maximum);
    assert_alarm(
        alarm(alarms, "booking-webhooks-failed-deliveries"),
        ("BookingWebhooks", "DeliveriesFailed", None),
        sum.clone(),
        (300, 12),
        0.0,
        "notBreaching",
        topic,
    );
    assert_alarm(
        alarm(alarms, "booking-webhooks-backlog-age"),
        ("BookingWebhooks", "OldestDueAge", None),
        max.clone(),
        (900, 1),
        1800.0,
        "breaching",
        topic,
    );
    assert_alarm(
        alarm(alarms, "booking-webhooks-sweep-errors"),
        ("AWS/Lambda", "Errors", Some(("FunctionName", function))),
        sum.clone(),
        (300, 1),
        0.0,
        "notBreaching",
        topic,
    );
    assert_alarm(
        alarm(alarms, "booking-webhooks-scheduler-target-errors"),
        (
            "AWS/Scheduler",
            "TargetErrorCount",
            Some(("ScheduleGroup", "booking-webhooks")),
        ),
        sum,
        (300, 1),
        0.0,
        "notBreaching",
        topic,
    );
    assert_alarm(
        alarm(alarms, "booking-webhooks-missing-deliveries"),
        ("BookingWebhooks", "MissingDeliveries", None),
        max.clone(),
        (900, 1),
        0.0,
        "notBreaching",
        topic,
    );
    assert_alarm(
        alarm(alarms, "booking-webhooks-breaker-open"),
        ("BookingWebhooks", "BreakerOpenFor", None),
        max,
        (900, 1),
        1800.0,
        "notBreaching",
        topic,
    );
}

fn with_topic(topic: &str) -> AlarmSet {
    AlarmSet {
        topic_arn: Some(topic.to_owned()),
        ..alarm_set("retry-sweep", "booking-webhooks")
    }
}

#[tokio::test]
async fn apply_creates_then_changes_nothing_then_updates_one_field_then_deletes() -> Result<()> {
    let (_moto, _, clients) = emulator().await?;
    let wanted = with_topic(TOPIC);

    let first = alarms::apply(&clients, &wanted).await?;
    assert_eq!(owned(changes(&first)), all(&Change::Created));
    assert_contract(&described(&clients).await?, "retry-sweep", Some(TOPIC));

    let second = alarms::apply(&clients, &wanted).await?;
    assert_eq!(owned(changes(&second)), all(&Change::Unchanged));

    // The sweep's function renamed: only the alarm on its errors changes, one field.
    let renamed = AlarmSet {
        function_name: "sweeper".into(),
        ..wanted.clone()
    };
    let third = alarms::apply(&clients, &renamed).await?;
    let updated: Vec<_> = changes(&third)
        .into_iter()
        .filter(|(_, c)| **c != Change::Unchanged)
        .map(|(n, _)| n)
        .collect();
    assert_eq!(updated, ["booking-webhooks-sweep-errors"]);
    let lines: Vec<String> = changes(&third)[2]
        .1
        .fields()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        lines,
        [r#"Dimensions: {"FunctionName":"retry-sweep"} -> {"FunctionName":"sweeper"}"#]
    );
    assert_contract(&described(&clients).await?, "sweeper", Some(TOPIC));

    // Someone silences and loosens an alarm by hand: apply names what differs and puts it
    // back.
    let backlog = alarm(&described(&clients).await?, "booking-webhooks-backlog-age").clone();
    clients
        .cloudwatch
        .put_metric_alarm()
        .alarm_name("booking-webhooks-backlog-age")
        .set_alarm_description(backlog.alarm_description)
        .set_alarm_actions(backlog.alarm_actions)
        .actions_enabled(false)
        .namespace("BookingWebhooks")
        .metric_name("OldestDueAge")
        .statistic(Statistic::Maximum)
        .period(900)
        .evaluation_periods(1)
        .datapoints_to_alarm(1)
        .threshold(7200.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .treat_missing_data("notBreaching")
        .send()
        .await
        .map_err(sdk_error)?;
    let repaired = alarms::apply(&clients, &renamed).await?;
    assert_eq!(
        changed_fields(&repaired, "booking-webhooks-backlog-age"),
        [
            "ActionsEnabled",
            "OKActions",
            "Threshold",
            "TreatMissingData"
        ]
    );
    assert_eq!(
        changes(&repaired)
            .iter()
            .filter(|(_, c)| **c == Change::Unchanged)
            .count(),
        5
    );
    assert_contract(&described(&clients).await?, "sweeper", Some(TOPIC));

    let delete = AlarmDelete {
        names: wanted.names.clone(),
        dry_run: false,
    };
    let deleted = alarms::delete(&clients, &delete).await?;
    assert_eq!(owned(changes(&deleted)), all(&Change::Deleted));
    assert!(described(&clients).await?.is_empty());
    let again = alarms::delete(&clients, &delete).await?;
    assert_eq!(owned(changes(&again)), all(&Change::Absent));
    Ok(())
}

#[tokio::test]
async fn a_dry_run_reports_the_plan_and_writes_nothing() -> Result<()> {
    let (_moto, _, clients) = emulator().await?;
    let dry = |wanted: AlarmSet| AlarmSet {
        dry_run: true,
        ..wanted
    };

    let plan = alarms::apply(&clients, &dry(with_topic(TOPIC))).await?;
    assert_eq!(owned(changes(&plan)), all(&Change::Created));
    assert!(
        plan.to_string()
            .contains("alarm booking-webhooks-failed-deliveries: would be created"),
        "{plan}"
    );
    assert!(described(&clients).await?.is_empty());

    alarms::apply(&clients, &with_topic(TOPIC)).await?;
    let quiet = alarm_set("retry-sweep", "booking-webhooks");
    let plan = alarms::apply(&clients, &dry(quiet.clone())).await?;
    for (name, change) in changes(&plan) {
        assert_eq!(
            changed_fields(&plan, name),
            ["AlarmActions", "OKActions"],
            "{name}: {change:?}"
        );
    }
    assert_contract(&described(&clients).await?, "retry-sweep", Some(TOPIC));

    // Without a topic the alarms tell nobody (and no empty topic sneaks in).
    alarms::apply(&clients, &quiet).await?;
    assert_contract(&described(&clients).await?, "retry-sweep", None);

    let delete = AlarmDelete {
        names: quiet.names.clone(),
        dry_run: true,
    };
    let plan = alarms::delete(&clients, &delete).await?;
    assert_eq!(owned(changes(&plan)), all(&Change::Deleted));
    assert!(plan.to_string().contains("would be deleted"), "{plan}");
    assert_eq!(described(&clients).await?.len(), 6);
    Ok(())
}

#[tokio::test]
async fn the_command_line_applies_shows_and_deletes_the_alarms() -> Result<()> {
    let (moto, config, clients) = emulator().await?;
    // Every input is a flag, so WEBHOOK_… variables in the developer's shell change nothing.
    let common = [
        "--region",
        REGION,
        "--endpoint-url",
        moto.endpoint.as_str(),
        "--prefix",
        "bw",
    ];
    let apply = |topic: &'static str, dry_run: bool| {
        let mut args = vec!["alarms", "apply", "--topic-arn", topic];
        args.extend([
            "--function-name",
            "retry-sweep",
            "--group",
            "booking-webhooks",
        ]);
        args.extend(dry_run.then_some("--dry-run"));
        [args.as_slice(), &common].concat()
    };
    let out = run_cli(&config, apply(TOPIC, false)).await?;
    assert_eq!(
        out,
        "alarm bw-failed-deliveries: created\n\
         alarm bw-backlog-age: created\n\
         alarm bw-sweep-errors: created\n\
         alarm bw-scheduler-target-errors: created\n\
         alarm bw-missing-deliveries: created\n\
         alarm bw-breaker-open: created\n"
    );
    let out = run_cli(&config, apply(TOPIC, false)).await?;
    assert_eq!(out.matches(": unchanged (arn:").count(), 6, "{out}");

    let other = "arn:aws:sns:eu-west-1:123456789012:pager";
    let out = run_cli(&config, apply(other, true)).await?;
    assert!(out.starts_with("dry run: nothing was changed"), "{out}");
    assert_eq!(out.matches(": would be updated").count(), 6, "{out}");
    assert!(
        out.contains(&format!(r#"  AlarmActions: ["{TOPIC}"] -> ["{other}"]"#)),
        "{out}"
    );
    let stored = described(&clients).await?;
    let actions: Vec<_> = stored
        .values()
        .map(|a| a.alarm_actions().to_vec())
        .collect();
    assert!(actions.iter().all(|a| a == &[TOPIC]), "{actions:?}");

    let shown: serde_json::Value = serde_json::from_str(
        &run_cli(&config, [["alarms", "show"].as_slice(), &common].concat()).await?,
    )?;
    let shown = shown.as_array().context("show prints a list")?;
    assert_eq!(shown.len(), 6);
    assert_eq!(shown[0]["AlarmName"], "bw-failed-deliveries");
    assert_eq!(shown[0]["MetricName"], "DeliveriesFailed");
    assert_eq!(shown[2]["Dimensions"]["FunctionName"], "retry-sweep");
    assert_eq!(shown[1]["Threshold"], 1800.0);
    assert!(shown[0]["StateValue"].is_string(), "{}", shown[0]);
    assert!(shown[0]["AlarmArn"].is_string(), "{}", shown[0]);

    let out = run_cli(&config, [["alarms", "delete"].as_slice(), &common].concat()).await?;
    assert_eq!(out.matches(": deleted").count(), 6, "{out}");
    let err = run_cli(&config, [["alarms", "show"].as_slice(), &common].concat())
        .await
        .expect_err("show without alarms fails");
    ensure!(err.to_string().contains("infra alarms apply"), "{err:#}");
    Ok(())
}

#[test]
fn every_alarm_is_named_after_the_prefix_and_says_what_to_do() {
    let wanted = alarm_set("retry-sweep", "booking-webhooks").wanted();
    let names: Vec<_> = wanted.iter().filter_map(|a| a.alarm_name()).collect();
    assert_eq!(
        names,
        [
            "booking-webhooks-failed-deliveries",
            "booking-webhooks-backlog-age",
            "booking-webhooks-sweep-errors",
            "booking-webhooks-scheduler-target-errors",
            "booking-webhooks-missing-deliveries",
            "booking-webhooks-breaker-open",
        ]
    );
    for alarm in &wanted {
        let description = alarm.alarm_description().unwrap_or_default();
        assert!(
            description.contains("Managed by `infra alarms apply`"),
            "{description}"
        );
        assert!(alarm.alarm_actions().is_empty() && alarm.ok_actions().is_empty());
    }
}
