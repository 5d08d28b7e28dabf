//! The EventBridge Scheduler schedule that runs the retry sweep: `apply`, `show`, `delete`.
//!
//! `apply` reads first and writes only what differs: the group is created if missing, the
//! execution role ensured ([`crate::role`]), the schedule created or, when a field differs,
//! updated. The wanted schedule is built once in the SDK's own types, as the `GetSchedule`
//! answer it should produce, and compared with the real answer field by field ([`fields`]).
//! `UpdateSchedule` replaces the whole schedule, so fields we never set (KMS key, start and
//! end dates) are reported and cleared if someone added them. Why the period, retry policy
//! and window are what they are: docs/deploy.md, "The schedule".

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use aws_sdk_scheduler::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput;
use aws_sdk_scheduler::primitives::{DateTime, DateTimeFormat};
use aws_sdk_scheduler::types::{
    DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode as Mode, RetryPolicy,
    ScheduleState, Target,
};
use serde_json::json;

use crate::aws::{Clients, none_if_not_found, sdk_error};
use crate::change::{Change, Field, Report};
use crate::role;

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

/// The group every account has; it can be neither created nor deleted.
const AWS_DEFAULT_GROUP: &str = "default";

/// How long `apply` retries a schedule write refused because a fresh execution role has not
/// reached every IAM endpoint yet.
const ROLE_PROPAGATION_TIMEOUT: Duration = Duration::from_secs(60);

/// Which execution role the schedule uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionRole {
    /// A role that already exists and is left as it is (`WEBHOOK_SCHEDULER_ROLE_ARN`).
    Existing(String),
    /// A role of this name that `apply` creates and keeps in line.
    Managed(String),
}

/// The inputs of `apply`: what the sweep schedule must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepSchedule {
    /// Schedule name.
    pub name: String,
    /// Schedule group.
    pub group: String,
    /// `rate(…)` or `cron(…)`.
    pub expression: String,
    /// The retry-sweep function to invoke.
    pub function_arn: String,
    /// The execution role.
    pub role: ExecutionRole,
    /// A standard SQS queue for events Scheduler could not deliver, if any.
    pub dead_letter_arn: Option<String>,
}

impl SweepSchedule {
    /// The default schedule for `function_arn`, with a managed role named after the schedule.
    pub fn new(function_arn: impl Into<String>) -> Self {
        Self {
            name: DEFAULT_NAME.to_owned(),
            group: DEFAULT_GROUP.to_owned(),
            expression: DEFAULT_EXPRESSION.to_owned(),
            function_arn: function_arn.into(),
            role: ExecutionRole::Managed(default_role_name(DEFAULT_NAME)),
            dead_letter_arn: None,
        }
    }

    /// Refuses, before any call, what AWS would accept but cannot work, and returns the
    /// function's partition and account (the managed role's ARN and trust need them).
    ///
    /// Fails on a function in another region than the schedule (Scheduler invokes Lambda only
    /// in its own; usually a wrong `AWS_REGION`), an account id that is not 12 digits, a
    /// FIFO dead-letter queue (Scheduler supports only standard ones), or a function ARN
    /// whose parts cannot be read. AWS checks everything else itself.
    pub fn validate(&self, region: &str) -> anyhow::Result<(&str, &str)> {
        let arn = &self.function_arn;
        let parts: Vec<&str> = arn.split(':').collect();
        let [
            "arn",
            partition,
            "lambda",
            in_region,
            account,
            "function",
            _,
            ..,
        ] = parts[..]
        else {
            bail!(
                "invalid Lambda function ARN {arn:?}: expected arn:aws:lambda:<region>:<account>:function:<name>"
            );
        };
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            bail!("invalid Lambda function ARN {arn:?}: the account part must be 12 digits");
        }
        if in_region != region {
            bail!(
                "invalid Lambda function ARN {arn:?}: the function is in {in_region} but the schedule would be in {region}"
            );
        }
        if let Some(queue) = self
            .dead_letter_arn
            .as_ref()
            .filter(|q| q.ends_with(".fifo"))
        {
            bail!("invalid SQS dead-letter queue ARN {queue:?}: Scheduler cannot use a FIFO queue");
        }
        Ok((partition, account))
    }

    /// The schedule as `GetSchedule` returns it when it is exactly as wanted, with execution
    /// role `role_arn`: UTC (a `cron(…)` sweep must not skip or double a run at daylight-saving
    /// changes), no flexible window (the sweep runs on the period), input `{}` (the sweep takes
    /// no parameters), Scheduler's own retries bounded to 300 s and 3 attempts.
    pub fn wanted(&self, role_arn: &str) -> anyhow::Result<GetScheduleOutput> {
        let retry_policy = RetryPolicy::builder()
            .maximum_event_age_in_seconds(300)
            .maximum_retry_attempts(3)
            .build();
        let dead_letter =
            (self.dead_letter_arn.as_ref()).map(|arn| DeadLetterConfig::builder().arn(arn).build());
        let target = Target::builder()
            .arn(&self.function_arn)
            .role_arn(role_arn)
            .input("{}")
            .retry_policy(retry_policy)
            .set_dead_letter_config(dead_letter)
            .build()?;
        Ok(GetScheduleOutput::builder()
            .name(&self.name)
            .group_name(&self.group)
            .schedule_expression(&self.expression)
            .schedule_expression_timezone("UTC")
            .description(DESCRIPTION)
            .state(ScheduleState::Enabled)
            .flexible_time_window(FlexibleTimeWindow::builder().mode(Mode::Off).build()?)
            .target(target)
            .build())
    }
}

/// The managed execution role's default name for schedule `schedule_name`.
pub fn default_role_name(schedule_name: &str) -> String {
    format!("{schedule_name}-scheduler")
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
/// Fails before any AWS call on the inputs [`SweepSchedule::validate`] refuses, and on any
/// AWS error other than "not found" (the message names the call and the service's error code).
pub async fn apply(
    clients: &Clients,
    desired: &SweepSchedule,
    dry_run: bool,
) -> anyhow::Result<Report> {
    let (partition, account) = desired.validate(&clients.region)?;
    let (scheduler, group, name) = (&clients.scheduler, &desired.group, &desired.name);
    let mut report = Report::new(dry_run);
    let group_existed = group == AWS_DEFAULT_GROUP || group_exists(clients, group).await?;
    if !group_existed && !dry_run {
        let created = scheduler.create_schedule_group().name(group).send().await;
        (created.map_err(sdk_error)).with_context(|| format!("creating schedule group {group}"))?;
    }
    report.push("schedule group", group, None, created_unless(group_existed));

    let (role_arn, role_is_fresh) = match &desired.role {
        ExecutionRole::Existing(arn) => (arn.clone(), false),
        ExecutionRole::Managed(role) => {
            let trust = role::trust_policy(partition, account, &clients.region, group);
            let dlq = desired.dead_letter_arn.as_deref();
            let permissions = role::permissions_policy(&desired.function_arn, dlq);
            let arn = format!("arn:{partition}:iam::{account}:role/{role}");
            let ensured = role::ensure(clients, role, arn, [trust, permissions], dry_run).await;
            let (arn, change) = ensured?;
            let fresh = change != Change::Unchanged;
            report.push("execution role", role, Some(arn.clone()), change);
            (arn, fresh)
        }
    };

    let wanted = desired.wanted(&role_arn)?;
    // A group that does not exist yet holds no schedule (and asking moto would be an error).
    let current = match group_existed {
        true => get(clients, group, name).await?,
        false => None,
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
            let created = retry_while_role_propagates(role_is_fresh, create).await;
            let created = created.with_context(|| format!("creating schedule {group}/{name}"))?;
            arn = Some(created.schedule_arn);
        }
        Change::Updated(_) => {
            let update = || with_fields_of!(scheduler.update_schedule(), wanted).send();
            let updated = retry_while_role_propagates(role_is_fresh, update).await;
            updated.with_context(|| format!("updating schedule {group}/{name}"))?;
        }
        _ => {}
    }
    report.push("schedule", &format!("{group}/{name}"), arn, change);
    Ok(report)
}

fn created_unless(exists: bool) -> Change {
    match exists {
        true => Change::Unchanged,
        false => Change::Created,
    }
}

async fn group_exists(clients: &Clients, group: &str) -> anyhow::Result<bool> {
    let got = clients
        .scheduler
        .get_schedule_group()
        .name(group)
        .send()
        .await;
    let got = none_if_not_found(got).with_context(|| format!("reading schedule group {group}"))?;
    // A group being deleted still answers, but schedules cannot be created in it.
    if got
        .as_ref()
        .and_then(|g| g.state())
        .is_some_and(|s| s.as_str() == "DELETING")
    {
        bail!("schedule group {group} is being deleted; run apply again once it is gone");
    }
    Ok(got.is_some())
}

/// Runs a schedule write; while the execution role is fresh, retries the `ValidationException`
/// Scheduler answers until IAM has propagated it ("…must allow AWS EventBridge Scheduler to
/// assume the role"), for at most [`ROLE_PROPAGATION_TIMEOUT`].
async fn retry_while_role_propagates<T, E, R, Fut>(
    role_is_fresh: bool,
    mut call: impl FnMut() -> Fut,
) -> anyhow::Result<T>
where
    Fut: Future<Output = Result<T, SdkError<E, R>>>,
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let deadline = Instant::now() + ROLE_PROPAGATION_TIMEOUT;
    let mut pause = Duration::from_secs(2);
    loop {
        let result = call().await;
        let refused = result.as_ref().err().and_then(|e| e.code()) == Some("ValidationException");
        if !(role_is_fresh && refused && Instant::now() + pause < deadline) {
            return result.map_err(sdk_error);
        }
        tracing::info!("execution role not usable yet (IAM propagation); retrying in {pause:?}");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(10));
    }
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

/// What `delete` removes besides the schedule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteOptions {
    /// Only read, and report what would be deleted.
    pub dry_run: bool,
    /// Also delete the schedule group, if it is not `default` and holds no other schedule.
    pub purge_group: bool,
    /// Also delete this managed execution role (only if it carries [`role::MANAGED_TAG`]).
    pub purge_role: Option<String>,
}

/// Deletes schedule `group/name`, and what `options` ask for besides; what does not exist is
/// reported absent, not an error.
///
/// Fails on any AWS error other than "not found".
pub async fn delete(
    clients: &Clients,
    group: &str,
    name: &str,
    options: &DeleteOptions,
) -> anyhow::Result<Report> {
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
    if options.purge_group {
        let change = purge_group(clients, group, name, dry_run).await?;
        report.push("schedule group", group, None, change);
    }
    if let Some(role) = &options.purge_role {
        let change = role::delete(clients, role, dry_run).await?;
        report.push("execution role", role, None, change);
    }
    Ok(report)
}

/// Deletes `group` unless it is `default` or holds a schedule other than `name`: deleting a
/// group deletes every schedule in it.
async fn purge_group(
    clients: &Clients,
    group: &str,
    name: &str,
    dry_run: bool,
) -> anyhow::Result<Change> {
    let scheduler = &clients.scheduler;
    if group == AWS_DEFAULT_GROUP {
        return Ok(Change::Kept(
            "the default group cannot be deleted".to_owned(),
        ));
    }
    if !group_exists(clients, group).await? {
        return Ok(Change::Absent);
    }
    let listed = scheduler.list_schedules().group_name(group).send().await;
    let listed = (listed.map_err(sdk_error)).with_context(|| format!("listing group {group}"))?;
    let names = listed.schedules.into_iter().filter_map(|s| s.name);
    let others: Vec<_> = names.filter(|n| n != name).collect();
    if !others.is_empty() {
        return Ok(Change::Kept(format!(
            "it still holds {}",
            others.join(", ")
        )));
    }
    if !dry_run {
        let deleted = scheduler.delete_schedule_group().name(group).send().await;
        (deleted.map_err(sdk_error)).with_context(|| format!("deleting schedule group {group}"))?;
    }
    Ok(Change::Deleted)
}
