//! CloudWatch alarms on the metrics the functions write (METRICS.md) and on two of AWS's own:
//! `infra alarms apply | show | delete`. Built in the SDK's own type (`MetricAlarm`, as
//! `DescribeAlarms` returns it), compared with what exists field by field ([`fields`]) and
//! written whole (`PutMetricAlarm`) when missing or different. What each alarm means and what
//! to do: docs/operations.md, "Alarms"; why its threshold and missing-data rule: docs/deploy.md.

use std::collections::HashMap;

use anyhow::Context as _;
use aws_sdk_cloudwatch::types::builders::MetricAlarmBuilder;
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, MetricAlarm, Statistic};
use clap::Args;
use serde_json::{Map, Value, json};

use crate::args::non_empty;
use crate::aws::{Clients, none_if_not_found, sdk_error};
use crate::change::{Change, Field, Missing, Report};
use crate::metrics::{BACKLOG_AGE_LIMIT_S, BREAKER_OPEN_LIMIT_S, NAMESPACE};
use crate::schedule::group::DEFAULT_GROUP;

/// The six alarms: the name after the prefix, and what it means when it fires.
const ALARMS: [(&str, &str); 6] = [
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
    (
        "breaker-open",
        "The notification service has failed every request for more than 30 minutes: its \
         circuit breaker is open and deliveries are held, not sent (they fail after \
         WEBHOOK_HOLD_MAX).",
    ),
];

/// Which alarms: all six are named `<prefix>-<alarm>`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct AlarmNames {
    /// Alarm names start with this, then `-failed-deliveries`, `-backlog-age`, ….
    #[arg(long, env = "WEBHOOK_ALARM_PREFIX", default_value = "booking-webhooks")]
    pub prefix: String,
}

impl AlarmNames {
    fn name(&self, alarm: &str) -> String {
        format!("{}-{alarm}", self.prefix.trim())
    }

    fn all(&self) -> Vec<String> {
        ALARMS.iter().map(|(alarm, _)| self.name(alarm)).collect()
    }
}

/// What the alarms must be: the arguments of `infra alarms apply`.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct AlarmSet {
    #[command(flatten)]
    pub names: AlarmNames,
    /// SNS topic told when an alarm fires and when it clears (none: the alarms only show in
    /// the console).
    #[arg(long, env = "WEBHOOK_ALARM_TOPIC_ARN", value_name = "ARN")]
    pub topic_arn: Option<String>,
    /// Name of the retry-sweep function, whose `AWS/Lambda` `Errors` are the sweep errors.
    #[arg(long, env = "WEBHOOK_SWEEP_FUNCTION_NAME")]
    #[arg(default_value = "retry-sweep")]
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
    /// The alarms as `DescribeAlarms` returns them when they are exactly as wanted. Each
    /// fires at the first period above its threshold (0 unless said).
    pub fn wanted(&self) -> Vec<MetricAlarm> {
        let [failed, backlog, sweep, scheduler, missing, breaker] = ALARMS;
        let lambda = dimension("FunctionName", &self.function_name);
        let group = dimension("ScheduleGroup", &self.group);
        vec![
            // Any of the last twelve 5-minute sums: it clears an hour after the last failure.
            self.alarm(failed, "DeliveriesFailed", Statistic::Sum, 5)
                .evaluation_periods(12)
                .build(),
            // Every sweep writes it (0 when nothing is due): no data means no sweep at all.
            self.alarm(backlog, "OldestDueAge", Statistic::Maximum, 15)
                .threshold(BACKLOG_AGE_LIMIT_S as f64)
                .treat_missing_data("breaching")
                .build(),
            // Lambda's own count: it also sees timeouts and crashes.
            (self.alarm(sweep, "Errors", Statistic::Sum, 5))
                .namespace("AWS/Lambda")
                .dimensions(lambda)
                .build(),
            (self.alarm(scheduler, "TargetErrorCount", Statistic::Sum, 5))
                .namespace("AWS/Scheduler")
                .dimensions(group)
                .build(),
            // A silent sweep is the backlog alarm's to report, not this one's.
            (self.alarm(missing, "MissingDeliveries", Statistic::Maximum, 15)).build(),
            // Every sweep writes it (0 when closed); a silent sweep is the backlog alarm's.
            (self.alarm(breaker, "BreakerOpenFor", Statistic::Maximum, 15))
                .threshold(BREAKER_OPEN_LIMIT_S as f64)
                .build(),
        ]
    }

    /// What every alarm shares: name, description, topic, our namespace, above 0 in one
    /// period, and no data meaning no invocation, hence nothing wrong.
    fn alarm(
        &self,
        alarm: (&str, &str),
        metric: &str,
        statistic: Statistic,
        minutes: i32,
    ) -> MetricAlarmBuilder {
        let topic = non_empty(&self.topic_arn).map(|t| vec![t.to_owned()]);
        let (name, meaning) = (self.names.name(alarm.0), alarm.1);
        let what_to_do = "What to do: docs/operations.md, \"Alarms\".";
        MetricAlarm::builder()
            .alarm_name(name)
            .alarm_description(format!(
                "{meaning} {what_to_do} Managed by `infra alarms apply`."
            ))
            .actions_enabled(true)
            .set_alarm_actions(topic.clone())
            .set_ok_actions(topic)
            .namespace(NAMESPACE)
            .metric_name(metric)
            .statistic(statistic)
            .period(minutes * 60)
            .evaluation_periods(1)
            .datapoints_to_alarm(1)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .threshold(0.0)
            .treat_missing_data("notBreaching")
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
    let insufficient_data_actions = a.insufficient_data_actions();
    let comparison = a.comparison_operator().map(|c| c.as_str());
    vec![
        ("AlarmDescription", json!(a.alarm_description())),
        ("ActionsEnabled", json!(a.actions_enabled())),
        ("AlarmActions", json!(a.alarm_actions())),
        ("OKActions", json!(a.ok_actions())),
        ("InsufficientDataActions", json!(insufficient_data_actions)),
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
        ("ComparisonOperator", json!(comparison)),
        ("TreatMissingData", json!(a.treat_missing_data())),
    ]
}

/// The alarms that exist, in order, as `show` prints them: name, ARN, state, and [`fields`].
/// Fails with [`Missing`] when none exists, and on AWS errors.
pub async fn show(clients: &Clients, names: &AlarmNames) -> anyhow::Result<Value> {
    let mut existing = get(clients, names).await?;
    let shown: Vec<_> = names
        .all()
        .iter()
        .filter_map(|name| existing.remove(name))
        .collect();
    if shown.is_empty() {
        let prefix = names.prefix.trim();
        let missing = format!("no alarm {prefix}-… exists: run `infra alarms apply`");
        return Err(Missing(missing).into());
    }
    let to_json = |a: MetricAlarm| {
        let state = [
            ("AlarmName", json!(a.alarm_name())),
            ("AlarmArn", json!(a.alarm_arn())),
            ("StateValue", json!(a.state_value().map(|s| s.as_str()))),
            ("StateReason", json!(a.state_reason())),
        ];
        crate::change::to_json(state.into_iter().chain(fields(&a)))
    };
    Ok(shown.into_iter().map(to_json).collect())
}

async fn get(
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

/// Makes the six alarms exist exactly as `wanted` says, each reported created, updated (with
/// the fields that changed) or unchanged; writes only what differs, nothing with `dry_run`.
/// Fails on AWS errors.
pub async fn apply(clients: &Clients, wanted: &AlarmSet) -> anyhow::Result<Report> {
    let existing = get(clients, &wanted.names).await?;
    let mut report = Report::new(wanted.dry_run);
    for alarm in wanted.wanted() {
        let name = alarm.alarm_name().unwrap_or_default().to_owned();
        let now = existing.get(&name);
        let change = Change::plan(now, &alarm, fields);
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
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct AlarmDelete {
    #[command(flatten)]
    pub names: AlarmNames,
    /// Only read, and print what would be deleted.
    #[arg(long)]
    pub dry_run: bool,
}

/// Deletes the six alarms; those that do not exist are reported absent. Fails on AWS errors.
pub async fn delete(clients: &Clients, options: &AlarmDelete) -> anyhow::Result<Report> {
    let existing = get(clients, &options.names).await?;
    let doomed: Vec<String> = existing.keys().cloned().collect();
    if !doomed.is_empty() && !options.dry_run {
        // One call for all; one deleted by someone else meanwhile leaves the same result.
        let delete = clients
            .cloudwatch
            .delete_alarms()
            .set_alarm_names(Some(doomed));
        none_if_not_found(delete.send().await).context("deleting the alarms")?;
    }
    let mut report = Report::new(options.dry_run);
    for name in options.names.all() {
        let change = if existing.contains_key(&name) {
            Change::Deleted
        } else {
            Change::Absent
        };
        report.push("alarm", &name, None, change);
    }
    Ok(report)
}
