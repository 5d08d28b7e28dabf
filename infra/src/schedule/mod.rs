//! The EventBridge Scheduler schedule that runs the retry sweep: `infra schedule apply | show
//! | delete`. The wanted schedule is built in the SDK's own types, as the `GetSchedule` answer
//! it should produce, and compared with the real answer field by field ([`fields`]). Why its
//! period, retry policy and window are what they are: docs/deploy.md, "The schedule".
//!
//! # Layout
//! - [`target`]: the function the schedule invokes, and the `Target` that invokes it.
//! - [`role`]: the IAM execution role Scheduler assumes (trust + least-privilege policy).
//! - [`group`]: the schedule group, created when missing, purged only when empty.

use anyhow::Context as _;
use aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput;
use aws_sdk_scheduler::primitives::{DateTime, DateTimeFormat};
use aws_sdk_scheduler::types::{FlexibleTimeWindow, FlexibleTimeWindowMode, ScheduleState, Target};
use clap::Args;
use serde_json::{Value, json};

use crate::args::non_empty;
use crate::aws::{Clients, none_if_not_found};
use crate::change::{Change, Field, Report};

pub mod group;
pub mod role;
pub mod target;

use group::DEFAULT_GROUP;
use role::RoleArgs;
pub use target::Function;

/// Sets every field `apply` manages on a `CreateSchedule` or `UpdateSchedule` request: the
/// two take the same fields but are different builder types.
macro_rules! with_fields_of {
    ($request:expr, $wanted:expr) => {
        $request
            .set_name($wanted.name.clone())
            .set_group_name($wanted.group_name.clone())
            .set_schedule_expression($wanted.schedule_expression.clone())
            .set_schedule_expression_timezone($wanted.schedule_expression_timezone.clone())
            .set_description($wanted.description.clone())
            .set_state($wanted.state.clone())
            .set_flexible_time_window($wanted.flexible_time_window.clone())
            .set_target($wanted.target.clone())
    };
}

/// The schedule's description.
pub const DESCRIPTION: &str = "Invokes the booking-webhooks retry sweep, the safety net that \
     redelivers due webhook retries and reclaims expired leases. Managed by \
     `infra schedule apply`: edits made elsewhere are overwritten.";

/// Which schedule.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ScheduleId {
    /// Schedule name.
    #[arg(long, env = "WEBHOOK_SCHEDULE_NAME", default_value = "retry-sweep")]
    pub name: String,
    /// Schedule group (created by apply when missing).
    #[arg(long, env = "WEBHOOK_SCHEDULE_GROUP", default_value = DEFAULT_GROUP)]
    pub group: String,
}

/// What the sweep schedule must be: the arguments of `infra schedule apply`, each with an
/// environment fallback (a flag wins over its variable; a variable set to "" is unset).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct SweepSchedule {
    #[command(flatten)]
    pub id: ScheduleId,
    #[command(flatten)]
    pub role: RoleArgs,
    /// rate(…) or cron(…); keep it in step with the retry backoff (5m, 15m, 45m).
    #[arg(long, env = "WEBHOOK_SCHEDULE_EXPRESSION")]
    #[arg(default_value = "rate(10 minutes)")]
    pub expression: String,
    /// ARN of the retry-sweep function (else built from --function-name and --account-id).
    #[arg(long, env = "WEBHOOK_SWEEP_FUNCTION_ARN", value_name = "ARN")]
    pub function_arn: Option<String>,
    /// Name of the retry-sweep function, used with --account-id.
    #[arg(long, env = "WEBHOOK_SWEEP_FUNCTION_NAME")]
    #[arg(default_value = "retry-sweep")]
    pub function_name: String,
    /// AWS account that owns the function, used with --function-name.
    #[arg(long, env = "AWS_ACCOUNT_ID")]
    pub account_id: Option<String>,
    /// Standard SQS queue for invocations Scheduler gave up on.
    #[arg(long = "dlq-arn", env = "WEBHOOK_SCHEDULE_DLQ_ARN", value_name = "ARN")]
    pub dead_letter_arn: Option<String>,
    /// Only read, and print what would change.
    #[arg(long)]
    pub dry_run: bool,
}

impl SweepSchedule {
    /// The dead-letter queue, if one is set.
    pub fn dead_letter_queue(&self) -> Option<&str> {
        non_empty(&self.dead_letter_arn)
    }

    /// The function to invoke in `region`: `--function-arn`, else built from the name and the
    /// account ([`Function::resolve`]). Refuses, before any call, what that refuses and a FIFO
    /// dead-letter queue (Scheduler cannot use one).
    pub fn function(&self, region: &str) -> anyhow::Result<Function> {
        let (arn, account) = (non_empty(&self.function_arn), non_empty(&self.account_id));
        let function = Function::resolve(arn, account, &self.function_name, region)?;
        target::check_dead_letter_queue(self.dead_letter_queue())?;
        Ok(function)
    }

    /// The schedule as `GetSchedule` returns it when it is exactly as wanted, invoking
    /// `function_arn` as `role_arn`: UTC (a `cron(…)` sweep must not skip or double a run at
    /// daylight-saving changes), no flexible window, and the [`target::target`].
    pub fn wanted(&self, function_arn: &str, role_arn: &str) -> anyhow::Result<GetScheduleOutput> {
        let target = target::target(function_arn, role_arn, self.dead_letter_queue())?;
        let window = FlexibleTimeWindow::builder().mode(FlexibleTimeWindowMode::Off);
        Ok(GetScheduleOutput::builder()
            .name(&self.id.name)
            .group_name(&self.id.group)
            .schedule_expression(self.expression.trim())
            .schedule_expression_timezone("UTC")
            .description(DESCRIPTION)
            .state(ScheduleState::Enabled)
            .flexible_time_window(window.build()?)
            .target(target)
            .build())
    }
}

/// Every field `apply` manages, and those it never sets: `UpdateSchedule` replaces the whole
/// schedule, so a KMS key or start/end date added by hand counts as a difference and is
/// cleared. An empty `DeadLetterConfig` reads the same as none.
pub fn fields(s: &GetScheduleOutput) -> Vec<Field> {
    let (window, target) = (s.flexible_time_window(), s.target());
    let retry = target.and_then(Target::retry_policy);
    let date = |d: Option<&DateTime>| json!(d.and_then(|d| d.fmt(DateTimeFormat::DateTime).ok()));
    let zone = s.schedule_expression_timezone();
    let (mode, max_window) = (
        window.map(|w| w.mode().as_str()),
        window.map(|w| w.maximum_window_in_minutes),
    );
    vec![
        ("ScheduleExpression", json!(s.schedule_expression())),
        ("ScheduleExpressionTimezone", json!(zone)),
        ("Description", json!(s.description())),
        ("State", json!(s.state().map(ScheduleState::as_str))),
        ("FlexibleTimeWindow.Mode", json!(mode)),
        (
            "FlexibleTimeWindow.MaximumWindowInMinutes",
            json!(max_window.flatten()),
        ),
        ("Target.Arn", json!(target.map(Target::arn))),
        ("Target.RoleArn", json!(target.map(Target::role_arn))),
        ("Target.Input", json!(target.and_then(Target::input))),
        (
            "Target.RetryPolicy.MaximumEventAgeInSeconds",
            json!(retry.and_then(|r| r.maximum_event_age_in_seconds)),
        ),
        (
            "Target.RetryPolicy.MaximumRetryAttempts",
            json!(retry.and_then(|r| r.maximum_retry_attempts)),
        ),
        (
            "Target.DeadLetterConfig.Arn",
            json!(target.and_then(|t| t.dead_letter_config()?.arn())),
        ),
        ("KmsKeyArn", json!(s.kms_key_arn())),
        ("StartDate", date(s.start_date())),
        ("EndDate", date(s.end_date())),
    ]
}

/// The schedule as `show` prints it: JSON with the API's field names, unset fields left out.
pub fn to_json(s: &GetScheduleOutput) -> Value {
    let ids = [
        ("Arn", s.arn()),
        ("Name", s.name()),
        ("GroupName", s.group_name()),
    ];
    crate::change::to_json(ids.map(|(k, v)| (k, json!(v))).into_iter().chain(fields(s)))
}

/// Makes the schedule exist exactly as `desired` says: group, execution role (unless given),
/// schedule, reported in that order; writes only what differs, nothing with `dry_run`.
/// Fails before any call on what [`SweepSchedule::function`] refuses, and on AWS errors.
pub async fn apply(clients: &Clients, desired: &SweepSchedule) -> anyhow::Result<Report> {
    let function = desired.function(&clients.region)?;
    let (dry_run, group, name) = (desired.dry_run, &desired.id.group, &desired.id.name);
    let mut report = Report::new(dry_run);
    let group_change = group::ensure(clients, group, dry_run).await?;
    let group_is_new = group_change == Change::Created;
    report.push("schedule group", group, None, group_change);

    let (role_arn, role_is_fresh) = match desired.role.given() {
        Some(arn) => (arn.to_owned(), false),
        None => {
            let role = desired.role.managed_name(name);
            let dlq = desired.dead_letter_queue();
            let ensured = role::ensure(clients, &role, &function, group, dlq, dry_run).await;
            let (arn, change) = ensured?;
            let fresh = change != Change::Unchanged;
            report.push("execution role", &role, Some(arn.clone()), change);
            (arn, fresh)
        }
    };

    let wanted = desired.wanted(&function.arn, &role_arn)?;
    // A group that does not exist yet holds no schedule (and asking moto would be an error).
    let current = match group_is_new {
        true => None,
        false => get(clients, group, name).await?,
    };
    let change = Change::plan(current.as_ref(), &wanted, fields);
    let mut arn = current.and_then(|now| now.arn);
    let scheduler = &clients.scheduler;
    match &change {
        _ if dry_run => {}
        Change::Created => {
            let create = || with_fields_of!(scheduler.create_schedule(), wanted).send();
            let created = role::retry_while_propagating(role_is_fresh, create).await;
            let created = created.with_context(|| format!("creating schedule {group}/{name}"))?;
            arn = Some(created.schedule_arn);
        }
        Change::Updated(_) => {
            let update = || with_fields_of!(scheduler.update_schedule(), wanted).send();
            let updated = role::retry_while_propagating(role_is_fresh, update).await;
            updated.with_context(|| format!("updating schedule {group}/{name}"))?;
        }
        _ => {}
    }
    report.push("schedule", &format!("{group}/{name}"), arn, change);
    Ok(report)
}

/// Reads schedule `group/name`, or `None` if it (or its group) does not exist.
pub async fn get(
    clients: &Clients,
    group: &str,
    name: &str,
) -> anyhow::Result<Option<GetScheduleOutput>> {
    let got = clients
        .scheduler
        .get_schedule()
        .group_name(group)
        .name(name);
    none_if_not_found(got.send().await).with_context(|| format!("reading schedule {group}/{name}"))
}

/// What `infra schedule delete` removes.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct DeleteOptions {
    #[command(flatten)]
    pub id: ScheduleId,
    #[command(flatten)]
    pub role: RoleArgs,
    /// Also delete the group if it is then empty, and the managed role (never one given by
    /// --role-arn, never one this tool did not create).
    #[arg(long)]
    pub purge: bool,
    /// Only read, and print what would be deleted.
    #[arg(long)]
    pub dry_run: bool,
}

/// Deletes the schedule, and with `purge` its group ([`group::purge`]) and its managed role
/// ([`role::delete`]); what does not exist is reported absent. Fails on AWS errors.
pub async fn delete(clients: &Clients, options: &DeleteOptions) -> anyhow::Result<Report> {
    let (group, name, dry_run) = (&options.id.group, &options.id.name, options.dry_run);
    let mut report = Report::new(dry_run);
    let exists = get(clients, group, name).await?.is_some();
    if exists && !dry_run {
        // Someone else deleting it in between gives the same result: not an error.
        let deleted = clients
            .scheduler
            .delete_schedule()
            .group_name(group)
            .name(name);
        (none_if_not_found(deleted.send().await))
            .with_context(|| format!("deleting schedule {group}/{name}"))?;
    }
    let change = if exists {
        Change::Deleted
    } else {
        Change::Absent
    };
    report.push("schedule", &format!("{group}/{name}"), None, change);
    if options.purge {
        let change = group::purge(clients, group, name, dry_run).await?;
        report.push("schedule group", group, None, change);
    }
    if options.purge && options.role.given().is_none() {
        let role = options.role.managed_name(name);
        let change = role::delete(clients, &role, dry_run).await?;
        report.push("execution role", &role, None, change);
    }
    Ok(report)
}
