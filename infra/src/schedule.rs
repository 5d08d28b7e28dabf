//! The EventBridge Scheduler schedule that runs the retry sweep: the desired spec, the diff
//! against what exists, and `apply`, `show` and `delete`.
//!
//! `apply` is idempotent. It reads first and writes only what differs: the schedule group
//! is created if missing, the execution role ensured (see [`crate::role`]), and the
//! schedule created, or updated only when a field we manage differs. `UpdateSchedule`
//! replaces the whole schedule, so an update always sends the complete spec; fields we never
//! set (KMS key, start and end dates) are reported and cleared if someone added them.
//!
//! # The period and the retry schedule
//! The sweep is the safety net: `dispatch` delivers at once, and every failed attempt is
//! retried by the sweep when its `next_retry_at` is due (default backoff 5 m, 15 m, 45 m).
//! A retry therefore runs up to one sweep period after it is due, so the default
//! `rate(10 minutes)` makes those retries happen 5–15, 15–25 and 45–55 minutes after the
//! failures. A period much longer than the first backoff step stretches every retry; change
//! one only together with the other.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use aws_sdk_scheduler::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput;
use aws_sdk_scheduler::primitives::DateTimeFormat;
use aws_sdk_scheduler::types::{
    DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode, RetryPolicy, ScheduleState,
    Target,
};
use serde::Serialize;

use crate::aws::Clients;
use crate::change::{Change, diff_fields};
use crate::error::sdk_error;
use crate::role::{self, RoleRemoval, RoleReport, RoleSpec};
use crate::validate::{self, FunctionArn};

/// Sets every field `apply` manages on a `CreateSchedule` or `UpdateSchedule` request: the two
/// take the same fields (an update replaces the whole schedule) but are different builder types.
macro_rules! managed_fields {
    ($request:expr, $wanted:expr, $window:expr, $target:expr) => {
        $request
            .name(&$wanted.name)
            .group_name(&$wanted.group_name)
            .schedule_expression(&$wanted.schedule_expression)
            .set_schedule_expression_timezone($wanted.schedule_expression_timezone.clone())
            .set_description($wanted.description.clone())
            .set_state($wanted.state.as_deref().map(ScheduleState::from))
            .flexible_time_window($window.clone())
            .target($target.clone())
    };
}

/// Default schedule name (`WEBHOOK_SCHEDULE_NAME`).
pub const DEFAULT_NAME: &str = "retry-sweep";

/// Default schedule group (`WEBHOOK_SCHEDULE_GROUP`). A group of our own rather than
/// `default`: it scopes the execution role's trust (`aws:SourceArn` names the group), keeps
/// our `retry-sweep` apart from any other application's schedule of that name, and lets a
/// teardown remove everything with the group.
pub const DEFAULT_GROUP: &str = "booking-webhooks";

/// The group every account has; it can be neither created nor deleted.
pub const AWS_DEFAULT_GROUP: &str = "default";

/// Default schedule expression (`WEBHOOK_SCHEDULE_EXPRESSION`); see the module docs for how
/// it relates to the retry backoff.
pub const DEFAULT_EXPRESSION: &str = "rate(10 minutes)";

/// Time zone the expression is evaluated in. UTC: `rate(…)` ignores it, and a `cron(…)`
/// sweep must not skip or double a run at daylight-saving changes.
pub const TIMEZONE: &str = "UTC";

/// The sweep's input: it takes no parameters (everything comes from its environment).
pub const TARGET_INPUT: &str = "{}";

/// Retry policy, maximum event age: 5 minutes, half the default period.
///
/// Scheduler retries only its own failed attempts to hand the event to Lambda (throttling,
/// a Lambda service error); the sweep's own failures are Lambda's business. Past five
/// minutes a late sweep gains little over the next tick, and a failure that long is not
/// transient (a deleted function, a broken role): it should land in the dead-letter queue
/// and be looked at.
pub const MAX_EVENT_AGE_SECONDS: i32 = 300;

/// Retry policy, maximum retry attempts: enough to ride out throttling, few enough that a
/// broken target reaches the dead-letter queue quickly. Overlapping sweeps would be safe
/// (claims use `FOR UPDATE SKIP LOCKED` and a lease) but are wasted work.
pub const MAX_RETRY_ATTEMPTS: i32 = 3;

/// The schedule's description.
pub const DESCRIPTION: &str = "Invokes the booking-webhooks retry sweep, the safety net that \
     redelivers due webhook retries and reclaims expired leases. Managed by \
     `infra schedule apply`: edits made elsewhere are overwritten.";

/// How long `apply` keeps retrying a schedule write that fails because a just-created or
/// just-changed execution role has not reached every IAM endpoint yet.
pub const ROLE_PROPAGATION_TIMEOUT: Duration = Duration::from_secs(60);

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

    /// Checks every input before any AWS call, for a schedule in `region`.
    ///
    /// Fails on a malformed name, expression or ARN, and on a function in another region
    /// than the schedule (usually a wrong `AWS_REGION`).
    pub fn validate(&self, region: &str) -> Result<FunctionArn, validate::ValidationError> {
        validate::schedule_name("schedule name", &self.name)?;
        validate::schedule_name("schedule group", &self.group)?;
        validate::schedule_expression(&self.expression)?;
        let function = validate::lambda_function_arn(&self.function_arn)?;
        if function.region != region {
            return Err(validate::ValidationError {
                what: "Lambda function ARN",
                value: self.function_arn.clone(),
                reason: format!(
                    "the function is in {} but the schedule would be created in {region}",
                    function.region
                ),
            });
        }
        match &self.role {
            ExecutionRole::Existing(arn) => {
                validate::iam_role_arn(arn)?;
            }
            ExecutionRole::Managed(name) => validate::role_name(name)?,
        }
        if let Some(queue) = &self.dead_letter_arn {
            validate::sqs_queue_arn(queue)?;
        }
        Ok(function)
    }

    /// The complete schedule as it must exist, using execution role `role_arn`.
    pub fn spec(&self, role_arn: &str) -> ScheduleSpec {
        ScheduleSpec {
            name: self.name.clone(),
            group_name: self.group.clone(),
            schedule_expression: self.expression.clone(),
            schedule_expression_timezone: Some(TIMEZONE.to_owned()),
            description: Some(DESCRIPTION.to_owned()),
            state: Some(ScheduleState::Enabled.as_str().to_owned()),
            flexible_time_window: FlexibleWindowSpec {
                mode: FlexibleTimeWindowMode::Off.as_str().to_owned(),
                maximum_window_in_minutes: None,
            },
            target: TargetSpec {
                arn: self.function_arn.clone(),
                role_arn: role_arn.to_owned(),
                input: Some(TARGET_INPUT.to_owned()),
                retry_policy: Some(RetryPolicySpec {
                    maximum_event_age_in_seconds: Some(MAX_EVENT_AGE_SECONDS),
                    maximum_retry_attempts: Some(MAX_RETRY_ATTEMPTS),
                }),
                dead_letter_config: self.dead_letter_arn.as_ref().map(|arn| DeadLetterSpec {
                    arn: Some(arn.clone()),
                }),
            },
            kms_key_arn: None,
            start_date: None,
            end_date: None,
        }
    }
}

/// The managed execution role's default name for schedule `schedule_name`.
pub fn default_role_name(schedule_name: &str) -> String {
    format!("{schedule_name}-scheduler")
}

/// A schedule as the API describes it, limited to what `apply` manages (plus the fields it
/// never sets, so that a schedule carrying them counts as different). Serializes with the
/// API's field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScheduleSpec {
    /// Schedule name.
    pub name: String,
    /// Schedule group.
    pub group_name: String,
    /// `rate(…)` or `cron(…)`.
    pub schedule_expression: String,
    /// Time zone of the expression.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_expression_timezone: Option<String>,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `ENABLED` or `DISABLED`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Flexible time window.
    pub flexible_time_window: FlexibleWindowSpec,
    /// What is invoked, as whom, with what input and retry policy.
    pub target: TargetSpec,
    /// Customer managed KMS key (never set by `apply`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
    /// Start date (never set by `apply`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    /// End date (never set by `apply`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
}

/// The flexible time window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FlexibleWindowSpec {
    /// `OFF` or `FLEXIBLE`. OFF: the sweep should run on the period, not drift within it.
    pub mode: String,
    /// Window length when flexible.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum_window_in_minutes: Option<i32>,
}

/// The schedule's target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TargetSpec {
    /// The function ARN.
    pub arn: String,
    /// The execution role ARN.
    pub role_arn: String,
    /// The event sent to the function.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// Scheduler's own retries of a failed invocation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicySpec>,
    /// Where undeliverable events go.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letter_config: Option<DeadLetterSpec>,
}

/// The target's retry policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RetryPolicySpec {
    /// How long an undelivered event is kept and retried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum_event_age_in_seconds: Option<i32>,
    /// How many times it is retried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum_retry_attempts: Option<i32>,
}

/// The target's dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeadLetterSpec {
    /// SQS queue ARN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
}

impl ScheduleSpec {
    /// Reads a `GetSchedule` answer.
    pub fn from_remote(out: &GetScheduleOutput) -> Self {
        let date = |d: Option<&aws_sdk_scheduler::primitives::DateTime>| {
            d.and_then(|d| d.fmt(DateTimeFormat::DateTime).ok())
        };
        let target = out.target.as_ref();
        Self {
            name: out.name.clone().unwrap_or_default(),
            group_name: out.group_name.clone().unwrap_or_default(),
            schedule_expression: out.schedule_expression.clone().unwrap_or_default(),
            schedule_expression_timezone: out.schedule_expression_timezone.clone(),
            description: out.description.clone(),
            state: out.state.as_ref().map(|s| s.as_str().to_owned()),
            flexible_time_window: FlexibleWindowSpec {
                mode: out
                    .flexible_time_window
                    .as_ref()
                    .map(|w| w.mode.as_str().to_owned())
                    .unwrap_or_default(),
                maximum_window_in_minutes: out
                    .flexible_time_window
                    .as_ref()
                    .and_then(|w| w.maximum_window_in_minutes),
            },
            target: TargetSpec {
                arn: target.map(|t| t.arn.clone()).unwrap_or_default(),
                role_arn: target.map(|t| t.role_arn.clone()).unwrap_or_default(),
                input: target.and_then(|t| t.input.clone()),
                retry_policy: target.and_then(|t| t.retry_policy.as_ref()).map(|p| {
                    RetryPolicySpec {
                        maximum_event_age_in_seconds: p.maximum_event_age_in_seconds,
                        maximum_retry_attempts: p.maximum_retry_attempts,
                    }
                }),
                // An empty DeadLetterConfig is the same as none.
                dead_letter_config: target
                    .and_then(|t| t.dead_letter_config.as_ref())
                    .and_then(|d| d.arn.clone())
                    .map(|arn| DeadLetterSpec { arn: Some(arn) }),
            },
            kms_key_arn: out.kms_key_arn.clone(),
            start_date: date(out.start_date.as_ref()),
            end_date: date(out.end_date.as_ref()),
        }
    }

    /// Every compared field, named as in the API, rendered as text (`None` when unset).
    pub fn fields(&self) -> Vec<(&'static str, Option<String>)> {
        let text = |v: &str| Some(v.to_owned());
        let number = |v: Option<i32>| v.map(|v| v.to_string());
        let retry = self.target.retry_policy.as_ref();
        vec![
            ("ScheduleExpression", text(&self.schedule_expression)),
            (
                "ScheduleExpressionTimezone",
                self.schedule_expression_timezone.clone(),
            ),
            ("Description", self.description.clone()),
            ("State", self.state.clone()),
            (
                "FlexibleTimeWindow.Mode",
                text(&self.flexible_time_window.mode),
            ),
            (
                "FlexibleTimeWindow.MaximumWindowInMinutes",
                number(self.flexible_time_window.maximum_window_in_minutes),
            ),
            ("Target.Arn", text(&self.target.arn)),
            ("Target.RoleArn", text(&self.target.role_arn)),
            ("Target.Input", self.target.input.clone()),
            (
                "Target.RetryPolicy.MaximumEventAgeInSeconds",
                number(retry.and_then(|r| r.maximum_event_age_in_seconds)),
            ),
            (
                "Target.RetryPolicy.MaximumRetryAttempts",
                number(retry.and_then(|r| r.maximum_retry_attempts)),
            ),
            (
                "Target.DeadLetterConfig.Arn",
                self.target
                    .dead_letter_config
                    .as_ref()
                    .and_then(|d| d.arn.clone()),
            ),
            ("KmsKeyArn", self.kms_key_arn.clone()),
            ("StartDate", self.start_date.clone()),
            ("EndDate", self.end_date.clone()),
        ]
    }

    /// What must change to turn `self` (what exists) into `desired`.
    pub fn diff(&self, desired: &Self) -> Change {
        Change::from_changes(diff_fields(&self.fields(), &desired.fields()))
    }

    fn sdk_target(&self) -> anyhow::Result<Target> {
        let mut target = Target::builder()
            .arn(&self.target.arn)
            .role_arn(&self.target.role_arn)
            .set_input(self.target.input.clone());
        if let Some(policy) = &self.target.retry_policy {
            target = target.retry_policy(
                RetryPolicy::builder()
                    .set_maximum_event_age_in_seconds(policy.maximum_event_age_in_seconds)
                    .set_maximum_retry_attempts(policy.maximum_retry_attempts)
                    .build(),
            );
        }
        if let Some(dlq) = &self.target.dead_letter_config {
            target = target
                .dead_letter_config(DeadLetterConfig::builder().set_arn(dlq.arn.clone()).build());
        }
        target.build().context("building the schedule target")
    }

    fn sdk_window(&self) -> anyhow::Result<FlexibleTimeWindow> {
        FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::from(
                self.flexible_time_window.mode.as_str(),
            ))
            .set_maximum_window_in_minutes(self.flexible_time_window.maximum_window_in_minutes)
            .build()
            .context("building the flexible time window")
    }
}

/// Options of [`apply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Only read, and report what would change.
    pub dry_run: bool,
    /// See [`ROLE_PROPAGATION_TIMEOUT`].
    pub role_propagation_timeout: Duration,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            role_propagation_timeout: ROLE_PROPAGATION_TIMEOUT,
        }
    }
}

/// What [`apply`] did, or in a dry run would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyReport {
    /// Whether this was a dry run (nothing written).
    pub dry_run: bool,
    /// Schedule group name.
    pub group_name: String,
    /// The schedule group.
    pub group: Change,
    /// The managed execution role; `None` when an existing role ARN was given.
    pub role: Option<RoleReport>,
    /// `group/name` of the schedule.
    pub schedule_id: String,
    /// The schedule ARN, once it exists.
    pub schedule_arn: Option<String>,
    /// The schedule.
    pub schedule: Change,
}

impl std::fmt::Display for ApplyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.dry_run {
            writeln!(f, "dry run: nothing was changed; the plan is")?;
        }
        writeln!(
            f,
            "schedule group {}: {}",
            self.group_name,
            self.group.verb(self.dry_run)
        )?;
        if let Some(role) = &self.role {
            writeln!(
                f,
                "execution role {}: {} ({})",
                role.name,
                role.change.verb(self.dry_run),
                role.arn
            )?;
            for change in role.change.fields() {
                writeln!(f, "  {change}")?;
            }
        }
        write!(
            f,
            "schedule {}: {}",
            self.schedule_id,
            self.schedule.verb(self.dry_run)
        )?;
        if let Some(arn) = &self.schedule_arn {
            write!(f, " ({arn})")?;
        }
        writeln!(f)?;
        for change in self.schedule.fields() {
            writeln!(f, "  {change}")?;
        }
        Ok(())
    }
}

/// Makes the schedule exist exactly as `desired` says: group, execution role (when
/// managed), schedule. Writes nothing that is already right; with `options.dry_run`,
/// writes nothing at all.
///
/// Fails before any AWS call on invalid inputs, and on any AWS error other than "not
/// found" (the message names the call and carries the service's error code).
pub async fn apply(
    clients: &Clients,
    desired: &SweepSchedule,
    options: ApplyOptions,
) -> anyhow::Result<ApplyReport> {
    let function = desired.validate(&clients.region)?;
    let dry_run = options.dry_run;
    let scheduler = &clients.scheduler;

    let group = ensure_group(clients, &desired.group, dry_run).await?;

    let (role, role_arn) = match &desired.role {
        ExecutionRole::Existing(arn) => (None, arn.clone()),
        ExecutionRole::Managed(name) => {
            let spec = RoleSpec {
                name: name.clone(),
                partition: function.partition.clone(),
                account: function.account.clone(),
                region: clients.region.clone(),
                group: desired.group.clone(),
                function_arn: desired.function_arn.clone(),
                dead_letter_arn: desired.dead_letter_arn.clone(),
            };
            let report = role::ensure(clients, &spec, dry_run).await?;
            let arn = report.arn.clone();
            (Some(report), arn)
        }
    };
    let role_changed = role.as_ref().is_some_and(|r| r.change != Change::Unchanged);
    let wanted = desired.spec(&role_arn);

    // A group that does not exist yet holds no schedule (and asking moto would be an error).
    let current = if group == Change::Created {
        None
    } else {
        get(clients, &desired.group, &desired.name).await?
    };

    let (schedule, schedule_arn) = match current {
        None => {
            let mut arn = None;
            if !dry_run {
                let target = wanted.sdk_target()?;
                let window = wanted.sdk_window()?;
                let out = retry_while_role_propagates(
                    role_changed,
                    options.role_propagation_timeout,
                    || managed_fields!(scheduler.create_schedule(), wanted, window, target).send(),
                )
                .await
                .with_context(|| {
                    format!("creating schedule {}/{}", wanted.group_name, wanted.name)
                })?;
                arn = Some(out.schedule_arn);
            }
            (Change::Created, arn)
        }
        Some((existing, arn)) => {
            let change = existing.diff(&wanted);
            if change != Change::Unchanged && !dry_run {
                let target = wanted.sdk_target()?;
                let window = wanted.sdk_window()?;
                retry_while_role_propagates(role_changed, options.role_propagation_timeout, || {
                    managed_fields!(scheduler.update_schedule(), wanted, window, target).send()
                })
                .await
                .with_context(|| {
                    format!("updating schedule {}/{}", wanted.group_name, wanted.name)
                })?;
            }
            (change, arn)
        }
    };

    Ok(ApplyReport {
        dry_run,
        group_name: desired.group.clone(),
        group,
        role,
        schedule_id: format!("{}/{}", desired.group, desired.name),
        schedule_arn,
        schedule,
    })
}

/// Creates the schedule group unless it exists (`default` always does).
async fn ensure_group(clients: &Clients, group: &str, dry_run: bool) -> anyhow::Result<Change> {
    if group == AWS_DEFAULT_GROUP || group_exists(clients, group).await? {
        return Ok(Change::Unchanged);
    }
    if !dry_run {
        clients
            .scheduler
            .create_schedule_group()
            .name(group)
            .send()
            .await
            .map_err(sdk_error)
            .with_context(|| format!("creating schedule group {group}"))?;
    }
    Ok(Change::Created)
}

async fn group_exists(clients: &Clients, group: &str) -> anyhow::Result<bool> {
    match clients
        .scheduler
        .get_schedule_group()
        .name(group)
        .send()
        .await
    {
        Ok(out) => {
            // A group being deleted still answers, but schedules cannot be created in it.
            if out.state.as_ref().is_some_and(|s| s.as_str() == "DELETING") {
                anyhow::bail!(
                    "schedule group {group} is being deleted; run apply again once it is gone"
                );
            }
            Ok(true)
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(sdk_error(e)).with_context(|| format!("reading schedule group {group}")),
    }
}

/// Reads schedule `group/name`: its spec and ARN, or `None` if it (or its group) does not
/// exist.
pub async fn get(
    clients: &Clients,
    group: &str,
    name: &str,
) -> anyhow::Result<Option<(ScheduleSpec, Option<String>)>> {
    match clients
        .scheduler
        .get_schedule()
        .group_name(group)
        .name(name)
        .send()
        .await
    {
        Ok(out) => Ok(Some((ScheduleSpec::from_remote(&out), out.arn.clone()))),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(sdk_error(e)).with_context(|| format!("reading schedule {group}/{name}")),
    }
}

/// Runs a schedule write; while the execution role is fresh, retries the `ValidationException`
/// Scheduler answers until IAM has propagated it ("…must allow AWS EventBridge Scheduler to
/// assume the role"), for at most `timeout`.
async fn retry_while_role_propagates<T, E, R, F, Fut>(
    role_is_fresh: bool,
    timeout: Duration,
    mut call: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, R>>>,
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_secs(2);
    loop {
        match call().await {
            Ok(out) => return Ok(out),
            Err(e)
                if role_is_fresh
                    && e.code() == Some("ValidationException")
                    && Instant::now() + pause < deadline =>
            {
                tracing::info!(
                    error = %crate::error::sdk_error(e),
                    "execution role not usable yet (IAM propagation); retrying in {pause:?}"
                );
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(sdk_error(e)),
        }
    }
}

/// A schedule as `show` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ShownSchedule {
    /// Schedule ARN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// Everything `apply` manages.
    #[serde(flatten)]
    pub spec: ScheduleSpec,
}

/// Reads schedule `group/name`, or `None` if it does not exist.
pub async fn show(
    clients: &Clients,
    group: &str,
    name: &str,
) -> anyhow::Result<Option<ShownSchedule>> {
    validate::schedule_name("schedule name", name)?;
    validate::schedule_name("schedule group", group)?;
    Ok(get(clients, group, name)
        .await?
        .map(|(spec, arn)| ShownSchedule { arn, spec }))
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

/// What happened to one resource in `delete`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// Deleted (or, in a dry run, would be).
    Deleted,
    /// Did not exist.
    Absent,
    /// Left in place, for the reason given.
    Kept(String),
}

impl Removal {
    fn describe(&self, dry_run: bool) -> String {
        match (self, dry_run) {
            (Self::Deleted, false) => "deleted".to_owned(),
            (Self::Deleted, true) => "would be deleted".to_owned(),
            (Self::Absent, _) => "absent".to_owned(),
            (Self::Kept(why), _) => format!("kept ({why})"),
        }
    }
}

/// What [`delete`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteReport {
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// `group/name` of the schedule.
    pub schedule_id: String,
    /// The schedule.
    pub schedule: Removal,
    /// The group, when purging it was asked for.
    pub group: Option<(String, Removal)>,
    /// The role, when purging it was asked for.
    pub role: Option<(String, Removal)>,
}

impl std::fmt::Display for DeleteReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.dry_run {
            writeln!(f, "dry run: nothing was changed; the plan is")?;
        }
        writeln!(
            f,
            "schedule {}: {}",
            self.schedule_id,
            self.schedule.describe(self.dry_run)
        )?;
        if let Some((name, removal)) = &self.group {
            writeln!(
                f,
                "schedule group {name}: {}",
                removal.describe(self.dry_run)
            )?;
        }
        if let Some((name, removal)) = &self.role {
            writeln!(
                f,
                "execution role {name}: {}",
                removal.describe(self.dry_run)
            )?;
        }
        Ok(())
    }
}

/// Deletes schedule `group/name`; deleting one that does not exist is not an error. With
/// the options, also the group and the managed role.
///
/// Fails on any AWS error other than "not found".
pub async fn delete(
    clients: &Clients,
    group: &str,
    name: &str,
    options: &DeleteOptions,
) -> anyhow::Result<DeleteReport> {
    validate::schedule_name("schedule name", name)?;
    validate::schedule_name("schedule group", group)?;
    if let Some(role) = &options.purge_role {
        validate::role_name(role)?;
    }
    let dry_run = options.dry_run;
    let scheduler = &clients.scheduler;

    let exists = get(clients, group, name).await?.is_some();
    let schedule = if !exists {
        Removal::Absent
    } else {
        if !dry_run {
            match scheduler
                .delete_schedule()
                .group_name(group)
                .name(name)
                .send()
                .await
            {
                Ok(_) => {}
                // Someone else deleted it in between: the result is the same.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception()) => {}
                Err(e) => {
                    return Err(sdk_error(e))
                        .with_context(|| format!("deleting schedule {group}/{name}"));
                }
            }
        }
        Removal::Deleted
    };

    let group_removal = if !options.purge_group {
        None
    } else if group == AWS_DEFAULT_GROUP {
        Some(Removal::Kept(
            "the default group cannot be deleted".to_owned(),
        ))
    } else if !group_exists(clients, group).await? {
        Some(Removal::Absent)
    } else {
        // Deleting a group deletes every schedule in it: only ever delete an empty one.
        let others = other_schedules(clients, group, name).await?;
        if !others.is_empty() {
            Some(Removal::Kept(format!(
                "it still holds {}",
                others.join(", ")
            )))
        } else {
            if !dry_run {
                scheduler
                    .delete_schedule_group()
                    .name(group)
                    .send()
                    .await
                    .map_err(sdk_error)
                    .with_context(|| format!("deleting schedule group {group}"))?;
            }
            Some(Removal::Deleted)
        }
    };

    let role_removal = match &options.purge_role {
        None => None,
        Some(role_name) => Some((
            role_name.clone(),
            match role::delete(clients, role_name, dry_run).await? {
                RoleRemoval::Deleted => Removal::Deleted,
                RoleRemoval::Absent => Removal::Absent,
                RoleRemoval::NotManaged => Removal::Kept(format!(
                    "not created by this tool (no {} tag)",
                    role::MANAGED_TAG.0
                )),
            },
        )),
    };

    Ok(DeleteReport {
        dry_run,
        schedule_id: format!("{group}/{name}"),
        schedule,
        group: group_removal.map(|r| (group.to_owned(), r)),
        role: role_removal,
    })
}

/// Names of the schedules in `group` other than `name`.
async fn other_schedules(
    clients: &Clients,
    group: &str,
    name: &str,
) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    let mut pages = clients
        .scheduler
        .list_schedules()
        .group_name(group)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page
            .map_err(sdk_error)
            .with_context(|| format!("listing schedules of group {group}"))?;
        names.extend(
            page.schedules
                .into_iter()
                .filter_map(|s| s.name)
                .filter(|n| n != name),
        );
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FUNCTION: &str = "arn:aws:lambda:eu-west-1:123456789012:function:retry-sweep";

    #[test]
    fn the_default_schedule_is_the_ten_minute_sweep() {
        let desired = SweepSchedule::new(FUNCTION);
        assert_eq!(
            desired.validate("eu-west-1").map(|f| f.name),
            Ok("retry-sweep".to_owned())
        );
        let spec = desired.spec("arn:aws:iam::123456789012:role/retry-sweep-scheduler");
        let fields: std::collections::BTreeMap<_, _> = spec.fields().into_iter().collect();
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(fields["ScheduleExpression"], s("rate(10 minutes)"));
        assert_eq!(fields["ScheduleExpressionTimezone"], s("UTC"));
        assert_eq!(fields["State"], s("ENABLED"));
        assert_eq!(fields["FlexibleTimeWindow.Mode"], s("OFF"));
        assert_eq!(fields["Target.Arn"], s(FUNCTION));
        assert_eq!(fields["Target.Input"], s("{}"));
        assert_eq!(
            fields["Target.RetryPolicy.MaximumEventAgeInSeconds"],
            s("300")
        );
        assert_eq!(fields["Target.RetryPolicy.MaximumRetryAttempts"], s("3"));
        assert_eq!(fields["Target.DeadLetterConfig.Arn"], None);
        assert_eq!(
            desired.role,
            ExecutionRole::Managed("retry-sweep-scheduler".into())
        );
    }

    #[test]
    fn a_function_in_another_region_is_refused() {
        let err = SweepSchedule::new(FUNCTION)
            .validate("us-east-1")
            .expect_err("region");
        assert!(err.reason.contains("us-east-1"), "{err}");
    }

    #[test]
    fn invalid_inputs_are_refused_before_any_call() {
        let base = SweepSchedule::new(FUNCTION);
        let cases = [
            SweepSchedule {
                expression: "rate(10 minute)".into(),
                ..base.clone()
            },
            SweepSchedule {
                name: "has space".into(),
                ..base.clone()
            },
            SweepSchedule {
                group: String::new(),
                ..base.clone()
            },
            SweepSchedule {
                function_arn: "retry-sweep".into(),
                ..base.clone()
            },
            SweepSchedule {
                role: ExecutionRole::Existing("arn:aws:iam::1:role/x".into()),
                ..base.clone()
            },
            SweepSchedule {
                role: ExecutionRole::Managed("bad name".into()),
                ..base.clone()
            },
            SweepSchedule {
                dead_letter_arn: Some("arn:aws:sqs:eu-west-1:123456789012:q.fifo".into()),
                ..base.clone()
            },
        ];
        for case in cases {
            assert!(case.validate("eu-west-1").is_err(), "{case:?}");
        }
    }

    #[test]
    fn a_diff_names_exactly_the_fields_that_differ() {
        let desired = SweepSchedule::new(FUNCTION);
        let role = "arn:aws:iam::123456789012:role/r";
        let wanted = desired.spec(role);
        assert_eq!(wanted.diff(&wanted), Change::Unchanged);

        let mut drifted = wanted.clone();
        drifted.state = Some("DISABLED".into());
        drifted.start_date = Some("2030-01-01T00:00:00Z".into());
        let change = drifted.diff(&wanted);
        let fields: Vec<_> = change.fields().iter().map(|c| c.field).collect();
        assert_eq!(fields, ["State", "StartDate"]);
        assert_eq!(change.fields()[1].to, None);

        let faster = SweepSchedule {
            expression: "rate(5 minutes)".into(),
            ..desired
        }
        .spec(role);
        let change = wanted.diff(&faster);
        assert_eq!(change.fields().len(), 1);
        assert_eq!(
            change.fields()[0].to_string(),
            "ScheduleExpression: \"rate(10 minutes)\" -> \"rate(5 minutes)\""
        );
    }

    #[test]
    fn the_spec_serializes_with_api_field_names() {
        let spec = SweepSchedule {
            dead_letter_arn: Some("arn:aws:sqs:eu-west-1:123456789012:dlq".into()),
            ..SweepSchedule::new(FUNCTION)
        }
        .spec("arn:aws:iam::123456789012:role/r");
        let json = serde_json::to_value(&spec).expect("serializes");
        assert_eq!(json["ScheduleExpression"], "rate(10 minutes)");
        assert_eq!(
            json["FlexibleTimeWindow"],
            serde_json::json!({ "Mode": "OFF" })
        );
        assert_eq!(json["Target"]["RetryPolicy"]["MaximumRetryAttempts"], 3);
        assert_eq!(
            json["Target"]["DeadLetterConfig"]["Arn"],
            "arn:aws:sqs:eu-west-1:123456789012:dlq"
        );
        assert!(json.get("KmsKeyArn").is_none());
    }
}
