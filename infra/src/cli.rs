//! The command line: `infra schedule apply | show | delete`, flags with environment
//! fallbacks (a flag wins over its variable; a variable set to "" counts as unset).

use anyhow::Context as _;
use aws_config::SdkConfig;
use clap::{Args, Parser, Subcommand};

use crate::aws::Clients;
use crate::schedule::{self, DeleteOptions, ExecutionRole, SweepSchedule};

/// Deploy-time tool of the booking webhooks: the EventBridge Scheduler schedule that runs
/// the retry sweep.
#[derive(Debug, Parser)]
#[command(name = "infra", version, about, long_about = None)]
pub struct Cli {
    /// AWS region of the schedule and the function (else the profile's region).
    #[arg(long, env = "AWS_REGION", global = true)]
    pub region: Option<String>,
    /// Send every AWS call here, e.g. an emulator (AWS_ENDPOINT_URL is honoured as well).
    #[arg(long, value_name = "URL", global = true)]
    pub endpoint_url: Option<String>,
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
    Show(ScheduleId),
    /// Delete the schedule (absent is fine); `--purge` also removes the group and the role.
    Delete(DeleteArgs),
}

/// Which schedule.
#[derive(Debug, Clone, Args)]
pub struct ScheduleId {
    /// Schedule name.
    #[arg(long = "name", env = "WEBHOOK_SCHEDULE_NAME", default_value = schedule::DEFAULT_NAME)]
    pub name: String,
    /// Schedule group (created by apply when missing).
    #[arg(long, env = "WEBHOOK_SCHEDULE_GROUP", default_value = schedule::DEFAULT_GROUP)]
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
    pub id: ScheduleId,
    #[allow(missing_docs)]
    #[command(flatten)]
    pub role: RoleArgs,
    /// rate(…) or cron(…); keep it in step with the retry backoff (5m, 15m, 45m).
    #[arg(long, env = "WEBHOOK_SCHEDULE_EXPRESSION", default_value = schedule::DEFAULT_EXPRESSION)]
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

/// `infra schedule delete`
#[derive(Debug, Clone, Args)]
pub struct DeleteArgs {
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

/// An unset variable and one set to "" (common in env files) mean the same.
fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl RoleArgs {
    /// The name of the managed execution role: `--role-name`, else derived from `schedule`.
    pub fn managed_name(&self, schedule: &str) -> String {
        let name = non_empty(&self.role_name);
        name.map_or_else(|| schedule::default_role_name(schedule), Into::into)
    }
}

impl ApplyArgs {
    /// The schedule these arguments ask for, in `region` (which names the function when only
    /// its name and account are given).
    ///
    /// Fails when neither a function ARN nor an account id is given.
    pub fn sweep_schedule(&self, region: &str) -> anyhow::Result<SweepSchedule> {
        let function_arn = match (non_empty(&self.function_arn), non_empty(&self.account_id)) {
            (Some(arn), _) => arn.to_owned(),
            (None, Some(account)) => {
                let name = self.function_name.trim();
                format!("arn:aws:lambda:{region}:{account}:function:{name}")
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
        Ok(SweepSchedule {
            name: self.id.name.clone(),
            group: self.id.group.clone(),
            expression: self.expression.trim().to_owned(),
            function_arn,
            role,
            dead_letter_arn: non_empty(&self.dlq_arn).map(str::to_owned),
        })
    }
}

/// Runs `cli` against the AWS APIs `config` points at and returns what to print.
///
/// Fails on invalid inputs (before any call), on AWS errors, and for `show` when the
/// schedule does not exist.
pub async fn run(cli: &Cli, config: &SdkConfig) -> anyhow::Result<String> {
    let clients = Clients::new(config)?;
    Ok(match &cli.command {
        Command::Schedule(ScheduleCommand::Apply(args)) => {
            let desired = args.sweep_schedule(&clients.region)?;
            schedule::apply(&clients, &desired, args.dry_run)
                .await?
                .to_string()
        }
        Command::Schedule(ScheduleCommand::Show(id)) => {
            let shown = schedule::get(&clients, &id.group, &id.name).await?;
            let shown = shown
                .with_context(|| format!("schedule {}/{} does not exist", id.group, id.name))?;
            let json = schedule::to_json(&shown);
            format!("{}\n", serde_json::to_string_pretty(&json)?)
        }
        Command::Schedule(ScheduleCommand::Delete(args)) => {
            let options = DeleteOptions {
                dry_run: args.dry_run,
                purge_group: args.purge,
                // A role passed by ARN belongs to someone else: never delete it.
                purge_role: (args.purge && non_empty(&args.role.role_arn).is_none())
                    .then(|| args.role.managed_name(&args.id.name)),
            };
            let id = &args.id;
            schedule::delete(&clients, &id.group, &id.name, &options)
                .await?
                .to_string()
        }
    })
}
