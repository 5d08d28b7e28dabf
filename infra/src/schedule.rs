//! The EventBridge Scheduler schedule that runs the retry sweep: `apply`, `show`, `delete`.
//!
//! `apply` reads first and writes only what differs: the group is created if missing, the
//! execution role ensured ([`crate::role`]), the schedule created or, when a field differs,
//! updated. The wanted schedule is built once in the SDK's own types, as the `GetSchedule`
//! answer it should produce, and compared with the real answer field by field ([`fields`]).
//! `UpdateSchedule` replaces the whole schedule, so fields we never set (KMS key, start and
//! end dates) are reported and cleared if someone added them. Why the period, retry policy
//! and window are what they are: docs/deploy.md, "The schedule".

use anyhow::{Context as _, bail};
use aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput;
use aws_sdk_scheduler::primitives::{DateTime, DateTimeFormat};
use aws_sdk_scheduler::types::{
    DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode as Mode, RetryPolicy,
    ScheduleState, Target,
};
use clap::Args;
use serde_json::json;

use crate::aws::{Clients, none_if_not_found};
use crate::change::{Change, Field, Report};
use crate::cli::non_empty;
use crate::role::RoleArgs;
use crate::{group, role};

/// Sets every field `apply` manages, from the wanted schedule, on a `CreateSchedule` or
/// `UpdateSchedule` request: the two take the same fields but are different builder types.
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

/// Default schedule name (`WEBHOOK_SCHEDULE_NAME`).
pub const DEFAULT_NAME: &str = "retry-sweep";

/// Default schedule group (`WEBHOOK_SCHEDULE_GROUP`). Our own rather than `default`: it
/// scopes the execution role's trust, keeps our `retry-sweep` apart from any other
/// application's, and a teardown removes everything with it.
pub const DEFAULT_GROUP: &str = "booking-webhooks";

/// Default schedule expression (`WEBHOOK_SCHEDULE_EXPRESSION`): retries fall due 5, 15 and
/// 45 minutes after a failure and go out at the next sweep; change the two together.
pub const DEFAULT_EXPRESSION: &str = "rate(10 minutes)";

/// The schedule's description.
pub const DESCRIPTION: &str = "Invokes the booking-webhooks retry sweep, the safety net that \
     redelivers due webhook retries and reclaims expired leases. Managed by \
     `infra schedule apply`: edits made elsewhere are overwritten.";

/// Which schedule.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ScheduleId {
    /// Schedule name.
    #[arg(long = "name", env = "WEBHOOK_SCHEDULE_NAME", default_value = DEFAULT_NAME)]
    pub name: String,
    /// Schedule group (created by apply when missing).
    #[arg(long, env = "WEBHOOK_SCHEDULE_GROUP", default_value = DEFAULT_GROUP)]
    pub group: String,
}

impl Default for ScheduleId {
    fn default() -> Self {
        let (name, group) = (DEFAULT_NAME.to_owned(), DEFAULT_GROUP.to_owned());
        Self { name, group }
    }
}

/// What the sweep schedule must be: the arguments of `infra schedule apply`, each with an
/// environment fallback (a flag wins over its variable; a variable set to "" is unset).
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct SweepSchedule {
    #[allow(missing_docs)]
    #[command(flatten)]
    pub id: ScheduleId,
    #[allow(missing_docs)]
    #[command(flatten)]
    pub role: RoleArgs,
    /// rate(…) or cron(…); keep it in step with the retry backoff (5m, 15m, 45m).
    #[arg(long, env = "WEBHOOK_SCHEDULE_EXPRESSION", default_value = DEFAULT_EXPRESSION)]
    pub expression: String,
    /// ARN of the retry-sweep function (else built from --function-name and --account-id).
    #[arg(long, env = "WEBHOOK_SWEEP_FUNCTION_ARN", value_name = "ARN")]
    pub function_arn: Option<String>,
    /// Name of the retry-sweep function, used with --account-id.
    #[arg(
        long,
        env = "WEBHOOK_SWEEP_FUNCTION_NAME",
        default_value = "retry-sweep"
    )]
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

/// The function the schedule invokes, and the parts of its ARN the managed role needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    /// `arn:{partition}:lambda:{region}:{account}:function:{name}[:{qualifier}]`
    pub arn: String,
    /// `aws`, `aws-cn` or `aws-us-gov`.
    pub partition: String,
    /// The account that owns the function.
    pub account: String,
}

impl SweepSchedule {
    /// The default schedule for `function_arn`, with a managed role named after the schedule.
    pub fn new(function_arn: &str) -> Self {
        Self {
            id: ScheduleId::default(),
            role: RoleArgs::default(),
            expression: DEFAULT_EXPRESSION.to_owned(),
            function_arn: Some(function_arn.to_owned()),
            function_name: "retry-sweep".to_owned(),
            account_id: None,
            dead_letter_arn: None,
            dry_run: false,
        }
    }

    /// The dead-letter queue, if one is set.
    pub fn dead_letter_queue(&self) -> Option<&str> {
        non_empty(&self.dead_letter_arn)
    }

    /// The function to invoke in `region`: `--function-arn`, else built from the name and
    /// the account. Refuses, before any call, what AWS would accept but cannot work.
    ///
    /// Fails when neither an ARN nor an account is given, on an ARN whose parts cannot be
    /// read or whose account is not 12 digits, on a function in another region than the
    /// schedule (Scheduler invokes Lambda only in its own; usually a wrong `AWS_REGION`), and
    /// on a FIFO dead-letter queue (Scheduler supports only standard ones). AWS checks the rest.
    pub fn function(&self, region: &str) -> anyhow::Result<Function> {
        let arn = match (non_empty(&self.function_arn), non_empty(&self.account_id)) {
            (Some(arn), _) => arn.to_owned(),
            (None, Some(account)) => {
                let name = self.function_name.trim();
                format!("arn:aws:lambda:{region}:{account}:function:{name}")
            }
            (None, None) => bail!(
                "which function? set WEBHOOK_SWEEP_FUNCTION_ARN (--function-arn), or \
                 AWS_ACCOUNT_ID (--account-id) with WEBHOOK_SWEEP_FUNCTION_NAME \
                 (--function-name, default retry-sweep)"
            ),
        };
        let part = |i| arn.split(':').nth(i).unwrap_or_default().to_owned();
        let (partition, in_region, account) = (part(1), part(3), part(4));
        if [part(0), part(2), part(5)] != ["arn", "lambda", "function"] || part(6).is_empty() {
            let expected = "arn:aws:lambda:<region>:<account>:function:<name>";
            bail!("invalid Lambda function ARN {arn:?}: expected {expected}");
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            bail!("invalid Lambda function ARN {arn:?}: the account part must be 12 digits");
        }
        if in_region != region {
            bail!(
                "invalid Lambda function ARN {arn:?}: the function is in {in_region} but the \
                 schedule would be in {region}"
            );
        }
        if let Some(queue) = self.dead_letter_queue().filter(|q| q.ends_with(".fifo")) {
            bail!("invalid SQS dead-letter queue ARN {queue:?}: Scheduler cannot use a FIFO queue");
        }
        Ok(Function {
            arn,
            partition,
            account,
        })
    }

    /// The schedule as `GetSchedule` returns it when it is exactly as wanted, invoking
    /// `function_arn` as `role_arn`: UTC (a `cron(…)` sweep must not skip or double a run at
    /// daylight-saving changes), no flexible window (the sweep runs on the period), input `{}`
    /// (the sweep takes no parameters), Scheduler's own retries bounded to 300 s and 3 attempts.
    pub fn wanted(&self, function_arn: &str, role_arn: &str) -> anyhow::Result<GetScheduleOutput> {
        let retry_policy = RetryPolicy::builder()
            .maximum_event_age_in_seconds(300)
            .maximum_retry_attempts(3)
            .build();
        let dead_letter =
            (self.dead_letter_queue()).map(|arn| DeadLetterConfig::builder().arn(arn).build());
        let target = Target::builder()
            .arn(function_arn)
            .role_arn(role_arn)
            .input("{}")
            .retry_policy(retry_policy)
            .set_dead_letter_config(dead_letter)
            .build()?;
        Ok(GetScheduleOutput::builder()
            .name(&self.id.name)
            .group_name(&self.id.group)
            .schedule_expression(self.expression.trim())
            .schedule_expression_timezone("UTC")
            .description(DESCRIPTION)
            .state(ScheduleState::Enabled)
            .flexible_time_window(FlexibleTimeWindow::builder().mode(Mode::Off).build()?)
            .target(target)
            .build())
    }
}

/// Every field `apply` manages, and those it never sets (so that a schedule carrying them
/// counts as different). An empty `DeadLetterConfig` reads the same as none.
pub fn fields(s: &GetScheduleOutput) -> Vec<Field> {
    let (window, target) = (s.flexible_time_window(), s.target());
    let retry = target.and_then(Target::retry_policy);
    let date = |d: Option<&DateTime>| json!(d.and_then(|d| d.fmt(DateTimeFormat::DateTime).ok()));
    vec![
        ("ScheduleExpression", json!(s.schedule_expression())),
        (
            "ScheduleExpressionTimezone",
            json!(s.schedule_expression_timezone()),
        ),
        ("Description", json!(s.description())),
        ("State", json!(s.state().map(ScheduleState::as_str))),
        (
            "FlexibleTimeWindow.Mode",
            json!(window.map(|w| w.mode().as_str())),
        ),
        (
            "FlexibleTimeWindow.MaximumWindowInMinutes",
            json!(window.and_then(|w| w.maximum_window_in_minutes)),
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
pub fn to_json(s: &GetScheduleOutput) -> serde_json::Value {
    let ids = [
        ("Arn", s.arn()),
        ("Name", s.name()),
        ("GroupName", s.group_name()),
    ];
    crate::change::to_json(ids.map(|(k, v)| (k, json!(v))).into_iter().chain(fields(s)))
}

/// Makes the schedule exist exactly as `desired` says: group, execution role (when
/// managed), schedule, reported in that order. Writes nothing that is already right; with
/// `dry_run`, writes nothing at all.
///
/// Fails before any AWS call on the inputs [`SweepSchedule::function`] refuses, and on any
/// AWS error other than "not found" (the message names the call and the service's error code).
pub async fn apply(clients: &Clients, desired: &SweepSchedule) -> anyhow::Result<Report> {
    let function = desired.function(&clients.region)?;
    let (dry_run, group, name) = (desired.dry_run, &desired.id.group, &desired.id.name);
    let scheduler = &clients.scheduler;
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
    let change = match &current {
        Some(now) => Change::between(&fields(now), &fields(&wanted)),
        None => Change::Created,
    };
    let mut arn = current.and_then(|now| now.arn);
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
    let scheduler = &clients.scheduler;
    let got = scheduler.get_schedule().group_name(group).name(name);
    none_if_not_found(got.send().await).with_context(|| format!("reading schedule {group}/{name}"))
}

/// What `infra schedule delete` removes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Args)]
pub struct DeleteOptions {
    #[allow(missing_docs)]
    #[command(flatten)]
    pub id: ScheduleId,
    #[allow(missing_docs)]
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

/// Deletes the schedule, and with `purge` its group (unless `default` or holding other
/// schedules) and its managed role (only if it carries [`role::MANAGED_TAG`]); what does not
/// exist is reported absent, not an error.
///
/// Fails on any AWS error other than "not found".
pub async fn delete(clients: &Clients, options: &DeleteOptions) -> anyhow::Result<Report> {
    let (group, name) = (&options.id.group, &options.id.name);
    let (scheduler, dry_run) = (&clients.scheduler, options.dry_run);
    let mut report = Report::new(dry_run);
    let exists = get(clients, group, name).await?.is_some();
    if exists && !dry_run {
        // Someone else deleting it in between gives the same result: not an error.
        let deleted = scheduler.delete_schedule().group_name(group).name(name);
        (none_if_not_found(deleted.send().await))
            .with_context(|| format!("deleting schedule {group}/{name}"))?;
    }
    let change = if exists {
        Change::Deleted
    } else {
        Change::Absent
    };
    report.push("schedule", &format!("{group}/{name}"), None, change);
    if !options.purge {
        return Ok(report);
    }
    let change = group::purge(clients, group, name, dry_run).await?;
    report.push("schedule group", group, None, change);
    if options.role.given().is_none() {
        let role = options.role.managed_name(name);
        let change = role::delete(clients, &role, dry_run).await?;
        report.push("execution role", &role, None, change);
    }
    Ok(report)
}
