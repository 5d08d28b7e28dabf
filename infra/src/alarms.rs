//! CloudWatch alarms on what the functions report: `infra alarms apply | show | delete`.
//!
//! Five alarms, on the metrics in `METRICS.md` (namespace `BookingWebhooks`, written as EMF
//! by each invocation) and on two AWS metrics; docs/operations.md, "Alarms", says what each
//! means and what to do. `apply` works like the schedule's: the wanted alarms are built once
//! in the SDK's own type (`MetricAlarm`, as `DescribeAlarms` returns it), compared field by
//! field with what exists ([`fields`]), and written (`PutMetricAlarm` replaces an alarm
//! whole) only when created or different. An SNS topic, when given, is told both when an
//! alarm fires and when it clears.

use std::collections::HashMap;

use anyhow::Context as _;
use aws_sdk_cloudwatch::types::builders::MetricAlarmBuilder;
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, MetricAlarm, Statistic};
use clap::Args;
use serde_json::{Map, Value, json};

use crate::aws::{Clients, none_if_not_found, sdk_error};
use crate::change::{Change, Field, Report};
use crate::cli::non_empty;
use crate::schedule::DEFAULT_GROUP;

/// Namespace of the metrics the functions write.
pub const NAMESPACE: &str = "BookingWebhooks";

/// Default prefix of the alarm names (`WEBHOOK_ALARM_PREFIX`).
pub const DEFAULT_PREFIX: &str = "booking-webhooks";

/// The five alarms: the name that follows the prefix, and what it means when it fires (the
/// start of its description).
pub const ALARMS: [(&str, &str); 5] = [
    (
        "failed-deliveries",
        "A delivery failed for good in the last hour: nobody will get it unless you act.",
    ),
    (
        "backlog-age",
        "The oldest due delivery has waited more than 30 minutes, or the sweep has not \
         reported for 15 minutes.",
    ),
    (
        "sweep-errors",
        "The retry sweep failed (database, configuration, timeout): nothing is retried until \
         it is fixed.",
    ),
    (
        "scheduler-target-errors",
        "EventBridge Scheduler could not invoke the retry sweep (function gone, role, \
         throttling).",
    ),
    (
        "missing-deliveries",
        "Bookings exist without their notification: capture did not happen (a disabled \
         trigger?).",
    ),
];

/// Which alarms: all five are named `<prefix>-<alarm>`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct AlarmNames {
    /// Alarm names start with this, then `-failed-deliveries`, `-backlog-age`, ….
    #[arg(long, env = "WEBHOOK_ALARM_PREFIX", default_value = DEFAULT_PREFIX)]
    pub prefix: String,
}

impl AlarmNames {
    /// The five alarm names, in [`ALARMS`] order.
    pub fn all(&self) -> Vec<String> {
        let prefix = self.prefix.trim();
        ALARMS
            .iter()
            .map(|(a, _)| format!("{prefix}-{a}"))
            .collect()
    }
}

/// What the alarms must be: the arguments of `infra alarms apply`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct AlarmSet {
    #[allow(missing_docs)]
    #[command(flatten)]
    pub names: AlarmNames,
    /// SNS topic told when an alarm fires and when it clears (none: the alarms only show in
    /// the console).
    #[arg(long, env = "WEBHOOK_ALARM_TOPIC_ARN", value_name = "ARN")]
    pub topic_arn: Option<String>,
    /// Name of the retry-sweep function, whose `AWS/Lambda` `Errors` are the sweep errors.
    #[arg(
        long,
        env = "WEBHOOK_SWEEP_FUNCTION_NAME",
        default_value = "retry-sweep"
    )]
    pub function_name: String,
    /// Schedule group of the sweep's schedule, whose `AWS/Scheduler` `TargetErrorCount` the
    /// scheduler alarm watches.
    #[arg(long, env = "WEBHOOK_SCHEDULE_GROUP", default_value = DEFAULT_GROUP)]
    pub group: String,
    /// Only read, and print what would change.
    #[arg(long)]
    pub dry_run: bool,
}

impl AlarmSet {
    /// The five alarms for `function_name` and `group`, with the defaults otherwise.
    pub fn new(function_name: &str, group: &str) -> Self {
        Self {
            names: AlarmNames {
                prefix: DEFAULT_PREFIX.to_owned(),
            },
            topic_arn: None,
            function_name: function_name.to_owned(),
            group: group.to_owned(),
            dry_run: false,
        }
    }

    /// The alarms as `DescribeAlarms` returns them when they are exactly as wanted, in
    /// [`ALARMS`] order. Each fires when its value goes above the threshold (0 unless said).
    pub fn wanted(&self) -> Vec<MetricAlarm> {
        let [failed, backlog, sweep, scheduler, missing] = ALARMS;
        let minutes = |m: i32| m * 60;
        vec![
            // Sum over the last hour > 0, as twelve 5-minute sums of which any one may fire
            // it: the alarm rises within minutes of a failure and clears an hour after the
            // last. Missing data is no invocation, hence no failure.
            self.alarm(failed)
                .metric_name("DeliveriesFailed")
                .statistic(Statistic::Sum)
                .period(minutes(5))
                .evaluation_periods(12)
                .treat_missing_data("notBreaching")
                .build(),
            // The sweep writes OldestDueAge on every run (0 when nothing is due), so missing
            // data means the sweep is not running at all (schedule disabled or gone, function
            // deleted): breaching, the one alarm that sees silence. 15 minutes holds at least
            // one run at the default rate(10 minutes).
            self.alarm(backlog)
                .metric_name("OldestDueAge")
                .statistic(Statistic::Maximum)
                .period(minutes(15))
                .threshold(1800.0)
                .treat_missing_data("breaching")
                .build(),
            // Lambda's own count: it also sees timeouts and crashes, which end an invocation
            // before it can write InvocationErrors. No invocation, no data: not an error.
            self.alarm(sweep)
                .namespace("AWS/Lambda")
                .metric_name("Errors")
                .dimensions(dimension("FunctionName", &self.function_name))
                .statistic(Statistic::Sum)
                .period(minutes(5))
                .treat_missing_data("notBreaching")
                .build(),
            // No data: no failed invocation.
            self.alarm(scheduler)
                .namespace("AWS/Scheduler")
                .metric_name("TargetErrorCount")
                .dimensions(dimension("ScheduleGroup", &self.group))
                .statistic(Statistic::Sum)
                .period(minutes(5))
                .treat_missing_data("notBreaching")
                .build(),
            // Written by every sweep too; its silence is the backlog alarm's to report, so
            // this one stays quiet rather than fire for the same cause.
            self.alarm(missing)
                .metric_name("MissingDeliveries")
                .statistic(Statistic::Maximum)
                .period(minutes(15))
                .treat_missing_data("notBreaching")
                .build(),
        ]
    }

    /// What every alarm shares: its name and description, the topic, our namespace, and
    /// "fires at the first period above 0".
    fn alarm(&self, (alarm, meaning): (&str, &str)) -> MetricAlarmBuilder {
        let topic = non_empty(&self.topic_arn).map(|t| vec![t.to_owned()]);
        let name = format!("{}-{alarm}", self.names.prefix.trim());
        let description = format!(
            "{meaning} What to do: docs/operations.md, \"Alarms\". Managed by `infra alarms apply`."
        );
        MetricAlarm::builder()
            .alarm_name(name)
            .alarm_description(description)
            .actions_enabled(true)
            .set_alarm_actions(topic.clone())
            .set_ok_actions(topic)
            .namespace(NAMESPACE)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .threshold(0.0)
            .evaluation_periods(1)
            .datapoints_to_alarm(1)
    }
}

fn dimension(name: &str, value: &str) -> Dimension {
    Dimension::builder().name(name).value(value.trim()).build()
}

/// Every field of an alarm that `apply` manages, named as in the API; unset lists read as
/// empty ones, as `DescribeAlarms` returns them.
pub fn fields(a: &MetricAlarm) -> Vec<Field> {
    let dimensions = a.dimensions().iter();
    let dimensions: Map<_, _> = dimensions
        .map(|d| (d.name().unwrap_or_default().to_owned(), json!(d.value())))
        .collect();
    vec![
        ("AlarmDescription", json!(a.alarm_description())),
        ("ActionsEnabled", json!(a.actions_enabled())),
        ("AlarmActions", json!(a.alarm_actions())),
        ("OKActions", json!(a.ok_actions())),
        (
            "InsufficientDataActions",
            json!(a.insufficient_data_actions()),
        ),
        ("Namespace", json!(a.namespace())),
        ("MetricName", json!(a.metric_name())),
        ("Dimensions", Value::Object(dimensions)),
        ("Statistic", json!(a.statistic().map(Statistic::as_str))),
        ("ExtendedStatistic", json!(a.extended_statistic())),
        ("Unit", json!(a.unit().map(|u| u.as_str()))),
        ("Period", json!(a.period())),
        ("EvaluationPeriods", json!(a.evaluation_periods())),
        ("DatapointsToAlarm", json!(a.datapoints_to_alarm())),
        ("Threshold", json!(a.threshold())),
        (
            "ComparisonOperator",
            json!(a.comparison_operator().map(|c| c.as_str())),
        ),
        ("TreatMissingData", json!(a.treat_missing_data())),
    ]
}

/// An alarm as `show` prints it: its name, ARN and state, and every field [`fields`] lists.
pub fn to_json(a: &MetricAlarm) -> Value {
    let state = [
        ("AlarmName", json!(a.alarm_name())),
        ("AlarmArn", json!(a.alarm_arn())),
        ("StateValue", json!(a.state_value().map(|s| s.as_str()))),
        ("StateReason", json!(a.state_reason())),
    ];
    crate::change::to_json(state.into_iter().chain(fields(a)))
}

/// Reads the alarms `names` lists, by name; those that do not exist are left out.
///
/// Fails on AWS errors.
pub async fn get(
    clients: &Clients,
    names: &AlarmNames,
) -> anyhow::Result<HashMap<String, MetricAlarm>> {
    let describe = clients
        .cloudwatch
        .describe_alarms()
        .set_alarm_names(Some(names.all()));
    let described = describe
        .send()
        .await
        .map_err(sdk_error)
        .context("reading the alarms")?;
    let alarms = described.metric_alarms.unwrap_or_default().into_iter();
    Ok(alarms
        .filter_map(|a| Some((a.alarm_name.clone()?, a)))
        .collect())
}

/// Makes the five alarms exist exactly as `wanted` says, each reported created, updated
/// (with the fields that changed) or unchanged. Writes nothing that is already right; with
/// `dry_run`, writes nothing at all.
///
/// Fails on AWS errors (the message names the alarm and the service's error code).
pub async fn apply(clients: &Clients, wanted: &AlarmSet) -> anyhow::Result<Report> {
    let existing = get(clients, &wanted.names).await?;
    let mut report = Report::new(wanted.dry_run);
    for alarm in wanted.wanted() {
        let name = alarm.alarm_name().unwrap_or_default().to_owned();
        let now = existing.get(&name);
        let change = now.map_or(Change::Created, |now| {
            Change::between(&fields(now), &fields(&alarm))
        });
        if change != Change::Unchanged && !wanted.dry_run {
            put(clients, alarm)
                .await
                .with_context(|| format!("writing alarm {name}"))?;
        }
        report.push(
            "alarm",
            &name,
            now.and_then(|a| a.alarm_arn.clone()),
            change,
        );
    }
    Ok(report)
}

/// `PutMetricAlarm` with every field of `alarm`: it creates the alarm, or replaces it whole.
async fn put(clients: &Clients, alarm: MetricAlarm) -> anyhow::Result<()> {
    let put = clients.cloudwatch.put_metric_alarm();
    put.set_alarm_name(alarm.alarm_name)
        .set_alarm_description(alarm.alarm_description)
        .set_actions_enabled(alarm.actions_enabled)
        .set_alarm_actions(alarm.alarm_actions)
        .set_ok_actions(alarm.ok_actions)
        .set_insufficient_data_actions(alarm.insufficient_data_actions)
        .set_namespace(alarm.namespace)
        .set_metric_name(alarm.metric_name)
        .set_dimensions(alarm.dimensions)
        .set_statistic(alarm.statistic)
        .set_period(alarm.period)
        .set_evaluation_periods(alarm.evaluation_periods)
        .set_datapoints_to_alarm(alarm.datapoints_to_alarm)
        .set_threshold(alarm.threshold)
        .set_comparison_operator(alarm.comparison_operator)
        .set_treat_missing_data(alarm.treat_missing_data)
        .send()
        .await
        .map_err(sdk_error)?;
    Ok(())
}

/// What `infra alarms delete` removes.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct AlarmDelete {
    #[allow(missing_docs)]
    #[command(flatten)]
    pub names: AlarmNames,
    /// Only read, and print what would be deleted.
    #[arg(long)]
    pub dry_run: bool,
}

/// Deletes the five alarms; those that do not exist are reported absent, not an error.
///
/// Fails on AWS errors.
pub async fn delete(clients: &Clients, options: &AlarmDelete) -> anyhow::Result<Report> {
    let existing = get(clients, &options.names).await?;
    let names = options.names.all();
    let doomed: Vec<String> = names
        .iter()
        .filter(|n| existing.contains_key(*n))
        .cloned()
        .collect();
    if !doomed.is_empty() && !options.dry_run {
        // One call for all; one deleted by someone else meanwhile leaves the same result.
        let delete = clients
            .cloudwatch
            .delete_alarms()
            .set_alarm_names(Some(doomed));
        none_if_not_found(delete.send().await).context("deleting the alarms")?;
    }
    let mut report = Report::new(options.dry_run);
    for name in names {
        let change = if existing.contains_key(&name) {
            Change::Deleted
        } else {
            Change::Absent
        };
        report.push("alarm", &name, None, change);
    }
    Ok(report)
}
