//! The command line: `infra schedule | alarms | dashboard`, each `apply | show | delete`.
//! The arguments of each command are the inputs of the function it runs
//! ([`SweepSchedule`], [`AlarmSet`], …), so they are described once, for `--help` and rustdoc.

use aws_config::SdkConfig;
use clap::{Parser, Subcommand};

use crate::alarms::{self, AlarmDelete, AlarmNames, AlarmSet};
use crate::aws::Clients;
use crate::change::Missing;
use crate::dashboard::{self, DashboardDelete, DashboardName, DashboardSet};
use crate::schedule::{self, DeleteOptions, ScheduleId, SweepSchedule};

/// How `infra` exits, as `webhooks` does, so scripts can tell "not there" from "could not run".
pub const EXIT_STATUS: &str = "\
Exit status:
  0  done (apply and delete also when nothing had to change)
  1  show found nothing: the schedule, the alarms or the dashboard do not exist
  2  could not run: bad arguments, no AWS credentials or region, an input AWS would refuse,
     an error from AWS";

/// Deploy-time tool of the booking webhooks: the EventBridge Scheduler schedule that runs
/// the retry sweep, the CloudWatch alarms that say when something is wrong, and a dashboard.
#[derive(Debug, Parser)]
#[command(name = "infra", version, about, long_about = None, after_help = EXIT_STATUS)]
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

/// What to manage.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The EventBridge Scheduler schedule that invokes the retry-sweep function.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// The CloudWatch alarms on failed deliveries, backlog age, sweep and scheduler errors,
    /// and missing deliveries.
    #[command(subcommand)]
    Alarms(AlarmsCommand),
    /// The CloudWatch dashboard: deliveries, backlog, latency, errors, the scheduler.
    #[command(subcommand)]
    Dashboard(DashboardCommand),
}

/// `infra schedule …`
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Create or update the schedule group, execution role and schedule; report what changed
    /// (created / updated / unchanged).
    Apply(SweepSchedule),
    /// Print the schedule as JSON, with the API's field names.
    Show(ScheduleId),
    /// Delete the schedule (absent is fine); `--purge` also removes the group and the role.
    Delete(DeleteOptions),
}

/// `infra alarms …`
#[derive(Debug, Subcommand)]
pub enum AlarmsCommand {
    /// Create or update the six alarms; report what changed (created / updated / unchanged).
    Apply(AlarmSet),
    /// Print the alarms that exist as JSON, with their state and the API's field names.
    Show(AlarmNames),
    /// Delete the six alarms (absent ones are fine).
    Delete(AlarmDelete),
}

/// `infra dashboard …`
#[derive(Debug, Subcommand)]
pub enum DashboardCommand {
    /// Create or update the dashboard; report what changed (created / updated / unchanged).
    Apply(DashboardSet),
    /// Print the dashboard as JSON: name, ARN and body.
    Show(DashboardName),
    /// Delete the dashboard (absent is fine).
    Delete(DashboardDelete),
}

/// Runs `cli` against the AWS APIs `config` points at and returns what to print. Fails on
/// invalid inputs (before any call), on AWS errors (no credentials: [`NoCredentials`]), and for
/// `show` when nothing exists ([`Missing`]).
///
/// [`NoCredentials`]: crate::aws::NoCredentials
pub async fn run(cli: &Cli, config: &SdkConfig) -> anyhow::Result<String> {
    let clients = &Clients::new(config)?;
    let json = |value: serde_json::Value| format!("{value:#}\n");
    Ok(match &cli.command {
        Command::Schedule(command) => match command {
            ScheduleCommand::Apply(desired) => schedule::apply(clients, desired).await?.to_string(),
            ScheduleCommand::Show(ScheduleId { name, group }) => {
                let shown = schedule::get(clients, group, name).await?;
                let missing = || {
                    let what = format!("schedule {group}/{name} does not exist");
                    Missing(format!("{what}: run `infra schedule apply`"))
                };
                json(schedule::to_json(&shown.ok_or_else(missing)?))
            }
            ScheduleCommand::Delete(options) => {
                schedule::delete(clients, options).await?.to_string()
            }
        },
        Command::Alarms(command) => match command {
            AlarmsCommand::Apply(wanted) => alarms::apply(clients, wanted).await?.to_string(),
            AlarmsCommand::Show(names) => json(alarms::show(clients, names).await?),
            AlarmsCommand::Delete(options) => alarms::delete(clients, options).await?.to_string(),
        },
        Command::Dashboard(command) => match command {
            DashboardCommand::Apply(wanted) => dashboard::apply(clients, wanted).await?.to_string(),
            DashboardCommand::Show(name) => json(dashboard::show(clients, name).await?),
            DashboardCommand::Delete(options) => {
                dashboard::delete(clients, options).await?.to_string()
            }
        },
    })
}
