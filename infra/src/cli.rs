//! The command line: `infra schedule apply | show | delete`, flags with environment
//! fallbacks (a flag wins over its variable).

use std::fmt::Write as _;

use anyhow::Context as _;
use aws_config::SdkConfig;
use clap::{Args, Parser, Subcommand};

use crate::aws::Clients;
use crate::schedule::{
    self, ApplyOptions, DEFAULT_EXPRESSION, DEFAULT_GROUP, DEFAULT_NAME, DeleteOptions,
    ExecutionRole, SweepSchedule,
};
use crate::validate::FunctionArn;

/// Deploy-time tool of the booking webhooks: the EventBridge Scheduler schedule that runs
/// the retry sweep.
#[derive(Debug, Parser)]
#[command(name = "infra", version, about, long_about = None)]
pub struct Cli {
    /// What to manage.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The EventBridge Scheduler schedule that invokes the retry-sweep function.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
}

/// `infra schedule …`
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Create or update the schedule group, execution role and schedule; report what changed
    /// (created / updated / unchanged).
    Apply(ApplyArgs),
    /// Print the schedule as JSON, with the API's field names.
    Show(ShowArgs),
    /// Delete the schedule (absent is fine); `--purge` also removes the group and the role.
    Delete(DeleteArgs),
}

/// Where the AWS calls go.
#[derive(Debug, Clone, Args)]
pub struct AwsArgs {
    /// AWS region of the schedule and the function (else the profile's region).
    #[arg(long, env = "AWS_REGION")]
    pub region: Option<String>,
    /// Send every AWS call here, e.g. an emulator (AWS_ENDPOINT_URL is honoured as well).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
}

/// Which schedule.
#[derive(Debug, Clone, Args)]
pub struct ScheduleIdArgs {
    /// Schedule name.
    #[arg(long = "name", env = "WEBHOOK_SCHEDULE_NAME", default_value = DEFAULT_NAME)]
    pub name: String,
    /// Schedule group (created by apply when missing).
    #[arg(long, env = "WEBHOOK_SCHEDULE_GROUP", default_value = DEFAULT_GROUP)]
    pub group: String,
}

/// Which execution role.
#[derive(Debug, Clone, Args)]
pub struct RoleArgs {
    /// Use this existing execution role as is; without it, apply manages a role of its own.
    #[arg(long, env = "WEBHOOK_SCHEDULER_ROLE_ARN", value_name = "ARN")]
    pub role_arn: Option<String>,
    /// Name of the managed execution role (default: the schedule name + "-scheduler").
    #[arg(long, env = "WEBHOOK_SCHEDULER_ROLE_NAME")]
    pub role_name: Option<String>,
}

/// `infra schedule apply`
#[derive(Debug, Clone, Args)]
pub struct ApplyArgs {
    #[allow(missing_docs)]
    #[command(flatten)]
    pub aws: AwsArgs,
    #[allow(missing_docs)]
    #[command(flatten)]
    pub id: ScheduleIdArgs,
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
    #[arg(long, env = "WEBHOOK_SCHEDULE_DLQ_ARN", value_name = "ARN")]
    pub dlq_arn: Option<String>,
    /// Only read, and print what would change.
    #[arg(long)]
    pub dry_run: bool,
}

/// `infra schedule show`
#[derive(Debug, Clone, Args)]
pub struct ShowArgs {
    #[allow(missing_docs)]
    #[command(flatten)]
    pub aws: AwsArgs,
    #[allow(missing_docs)]
    #[command(flatten)]
    pub id: ScheduleIdArgs,
}

/// `infra schedule delete`
#[derive(Debug, Clone, Args)]
pub struct DeleteArgs {
    #[allow(missing_docs)]
    #[command(flatten)]
    pub aws: AwsArgs,
    #[allow(missing_docs)]
    #[command(flatten)]
    pub id: ScheduleIdArgs,
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

impl Cli {
    /// Parses `args` (the first is the program name) as `main` parses the process's own,
    /// environment fallbacks included; for callers that do not depend on clap.
    ///
    /// Fails with clap's usage message on unknown or malformed arguments.
    pub fn parse_args<I, T>(args: I) -> anyhow::Result<Self>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Ok(Self::try_parse_from(args)?)
    }

    /// The region and endpoint flags of whichever command was given.
    pub fn aws(&self) -> &AwsArgs {
        match &self.command {
            Command::Schedule(ScheduleCommand::Apply(a)) => &a.aws,
            Command::Schedule(ScheduleCommand::Show(a)) => &a.aws,
            Command::Schedule(ScheduleCommand::Delete(a)) => &a.aws,
        }
    }
}

/// An unset variable and one set to "" (common in env files) mean the same.
fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl ApplyArgs {
    /// The schedule these arguments ask for, in `region` (which names the function when only
    /// its name and account are given).
    ///
    /// Fails when neither a function ARN nor an account id is given, or a value is invalid.
    pub fn sweep_schedule(&self, region: &str) -> anyhow::Result<SweepSchedule> {
        let function_arn = match (non_empty(&self.function_arn), non_empty(&self.account_id)) {
            (Some(arn), _) => arn.to_owned(),
            (None, Some(account)) => {
                FunctionArn::new(region, account, self.function_name.trim())?.to_string()
            }
            (None, None) => anyhow::bail!(
                "which function? set WEBHOOK_SWEEP_FUNCTION_ARN (--function-arn), or AWS_ACCOUNT_ID \
                 (--account-id) with WEBHOOK_SWEEP_FUNCTION_NAME (--function-name, default retry-sweep)"
            ),
        };
        let role = match non_empty(&self.role.role_arn) {
            Some(arn) => ExecutionRole::Existing(arn.to_owned()),
            None => ExecutionRole::Managed(self.role.managed_name(&self.id.name)),
        };
        let desired = SweepSchedule {
            name: self.id.name.clone(),
            group: self.id.group.clone(),
            expression: self.expression.trim().to_owned(),
            function_arn,
            role,
            dead_letter_arn: non_empty(&self.dlq_arn).map(str::to_owned),
        };
        desired.validate(region)?;
        Ok(desired)
    }
}

impl RoleArgs {
    fn managed_name(&self, schedule_name: &str) -> String {
        non_empty(&self.role_name)
            .map(str::to_owned)
            .unwrap_or_else(|| schedule::default_role_name(schedule_name))
    }
}

/// Runs `cli` against the AWS APIs `config` points at and returns what to print.
///
/// Fails on invalid inputs (before any call), on AWS errors, and for `show` when the
/// schedule does not exist.
pub async fn run(cli: &Cli, config: &SdkConfig) -> anyhow::Result<String> {
    let clients = Clients::new(config)?;
    let mut out = String::new();
    match &cli.command {
        Command::Schedule(ScheduleCommand::Apply(args)) => {
            let desired = args.sweep_schedule(&clients.region)?;
            let options = ApplyOptions {
                dry_run: args.dry_run,
                ..ApplyOptions::default()
            };
            let report = schedule::apply(&clients, &desired, options).await?;
            write!(out, "{report}")?;
        }
        Command::Schedule(ScheduleCommand::Show(args)) => {
            let shown = schedule::show(&clients, &args.id.group, &args.id.name)
                .await?
                .with_context(|| {
                    format!("schedule {}/{} does not exist", args.id.group, args.id.name)
                })?;
            writeln!(out, "{}", serde_json::to_string_pretty(&shown)?)?;
        }
        Command::Schedule(ScheduleCommand::Delete(args)) => {
            let options = DeleteOptions {
                dry_run: args.dry_run,
                purge_group: args.purge,
                // A role passed by ARN belongs to someone else: never delete it.
                purge_role: (args.purge && non_empty(&args.role.role_arn).is_none())
                    .then(|| args.role.managed_name(&args.id.name)),
            };
            let report =
                schedule::delete(&clients, &args.id.group, &args.id.name, &options).await?;
            write!(out, "{report}")?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply_args(extra: &[&str]) -> ApplyArgs {
        let argv = ["infra", "schedule", "apply"].iter().chain(extra);
        match Cli::try_parse_from(argv).expect("parses").command {
            Command::Schedule(ScheduleCommand::Apply(args)) => args,
            other => panic!("not apply: {other:?}"),
        }
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }

    #[test]
    fn the_function_arn_is_built_from_name_and_account() {
        let args = apply_args(&["--account-id", "123456789012", "--function-name", "sweeper"]);
        let desired = args.sweep_schedule("eu-west-1").expect("valid");
        assert_eq!(
            desired.function_arn,
            "arn:aws:lambda:eu-west-1:123456789012:function:sweeper"
        );
        assert_eq!(
            desired.role,
            ExecutionRole::Managed("retry-sweep-scheduler".into())
        );
        assert_eq!(desired.group, "booking-webhooks");
        assert_eq!(desired.expression, "rate(10 minutes)");
        assert_eq!(desired.dead_letter_arn, None);
    }

    #[test]
    fn flags_override_the_defaults() {
        let args = apply_args(&[
            "--function-arn",
            "arn:aws:lambda:eu-west-1:123456789012:function:retry-sweep",
            "--role-arn",
            "arn:aws:iam::123456789012:role/mine",
            "--name",
            "sweep",
            "--group",
            "default",
            "--expression",
            "rate(5 minutes)",
            "--dlq-arn",
            "arn:aws:sqs:eu-west-1:123456789012:dlq",
            "--dry-run",
        ]);
        assert!(args.dry_run);
        let desired = args.sweep_schedule("eu-west-1").expect("valid");
        assert_eq!(
            desired.role,
            ExecutionRole::Existing("arn:aws:iam::123456789012:role/mine".into())
        );
        assert_eq!(
            (desired.name.as_str(), desired.group.as_str()),
            ("sweep", "default")
        );
        assert_eq!(desired.expression, "rate(5 minutes)");
        assert_eq!(
            desired.dead_letter_arn.as_deref(),
            Some("arn:aws:sqs:eu-west-1:123456789012:dlq")
        );
    }

    #[test]
    fn a_managed_role_is_named_after_the_schedule_unless_named() {
        let arn = "arn:aws:lambda:eu-west-1:123456789012:function:retry-sweep";
        let named = apply_args(&["--function-arn", arn, "--name", "nightly"]);
        assert_eq!(
            named.sweep_schedule("eu-west-1").map(|d| d.role).ok(),
            Some(ExecutionRole::Managed("nightly-scheduler".into()))
        );
        let explicit = apply_args(&["--function-arn", arn, "--role-name", "ops-sweeper"]);
        assert_eq!(
            explicit.sweep_schedule("eu-west-1").map(|d| d.role).ok(),
            Some(ExecutionRole::Managed("ops-sweeper".into()))
        );
    }

    #[test]
    fn empty_values_count_as_unset() {
        let args = apply_args(&[
            "--function-arn",
            "arn:aws:lambda:eu-west-1:123456789012:function:retry-sweep",
            "--role-arn",
            "",
            "--dlq-arn",
            " ",
        ]);
        let desired = args.sweep_schedule("eu-west-1").expect("valid");
        assert_eq!(desired.dead_letter_arn, None);
        assert!(matches!(desired.role, ExecutionRole::Managed(_)));
    }

    #[test]
    fn missing_or_bad_inputs_fail_with_the_variable_to_set() {
        let err = apply_args(&[])
            .sweep_schedule("eu-west-1")
            .expect_err("no function");
        assert!(
            err.to_string().contains("WEBHOOK_SWEEP_FUNCTION_ARN"),
            "{err}"
        );

        let err = apply_args(&[
            "--account-id",
            "123456789012",
            "--expression",
            "rate(10 minute)",
        ])
        .sweep_schedule("eu-west-1")
        .expect_err("bad rate");
        assert!(err.to_string().contains("schedule expression"), "{err}");

        let err = apply_args(&["--account-id", "12345"])
            .sweep_schedule("eu-west-1")
            .expect_err("bad account");
        assert!(err.to_string().contains("account"), "{err}");
    }
}
