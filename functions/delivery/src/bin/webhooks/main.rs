//! `webhooks`: the local and operations command line over the `delivery` library —
//! migrate, listen (dispatch on NOTIFY), sweep, dispatch, send and replay by hand; and the
//! operator's read and repair commands (stats, failures, show, cleanup, verify, doctor), whose
//! logic lives in the library's modules of the same nouns; and a local receiver to send to.
//!
//! Every argument is checked by the parser, so a bad value is a usage error naming the
//! argument, never a panic.

mod deliver;
mod ids;
mod migrate;
mod ops;
mod parse;
mod pause;
#[cfg(test)]
mod tests;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use delivery::backoff::parse_duration;
use delivery::out;
use delivery::schema::{self, MigrateOptions};

use deliver::Delivery;
use ops::Operation;

/// How every command exits, so scripts can tell "found something wrong" from "could not look".
const EXIT_STATUS: &str = "\
Exit status:
  0  done; nothing wrong found
  1  a problem was found: verify (missing or undatable), doctor (a problem), an id that names
     no delivery (show, replay, dispatch, send)
  2  could not run: bad arguments (an id prefix that names several deliveries), configuration
     (every missing variable named), the database could not be reached or queried or has
     no schema yet (webhooks migrate)";

/// Booking webhooks: operate the delivery engine. Configuration comes from the environment
/// (see .env.example): migrate and the read and repair commands need only DATABASE_URL; listen,
/// sweep, dispatch and send the functions' whole configuration.
#[derive(Parser, Debug)]
#[command(version, after_help = EXIT_STATUS)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Apply the migrations to DATABASE_URL (only DATABASE_URL is needed), in one transaction:
    /// all of it or nothing. Refuses a database running the old pg_net system unless
    /// --adopt-seed is given.
    Migrate {
        /// Take over the old pg_net system in the same transaction: its rows imported with
        /// their ids, its triggers, functions and views replaced, its pg_cron job unscheduled
        /// (docs/switching-from-pg-net.md). Prints each step and a rollback script.
        #[arg(long)]
        adopt_seed: bool,
        /// With --adopt-seed: how long to wait for a run of the old system's retry function in
        /// progress before refusing (its pg_cron jobs are unscheduled first), e.g. 2m.
        #[arg(long, default_value = "60s", value_parser = parse_duration, requires = "adopt_seed")]
        wait_for_old_sender: Duration,
        /// Reinstall the current definition of every function, trigger and view that is not
        /// this build's (after a rollback to the pg_net system, a hand edit, an old migration's
        /// text run by hand), and enable the capture triggers; what `webhooks doctor` advises.
        #[arg(long)]
        repair: bool,
        /// Do everything and print it, then roll back: nothing changes.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as one JSON object (applied migrations, import counts, rollback
        /// script); the steps go to stderr.
        #[arg(long)]
        json: bool,
        /// Change nothing: print what would be applied as one psql script, in version order,
        /// with the history rows refinery keeps (`webhooks migrate --print-sql > m.sql`, then
        /// `psql -v ON_ERROR_STOP=1 -f m.sql "$DATABASE_URL"`).
        #[arg(long, conflicts_with_all = ["adopt_seed", "repair", "dry_run", "json", "wait_for_old_sender"])]
        print_sql: bool,
    },
    #[command(flatten)]
    Deliver(Delivery),
    #[command(flatten)]
    Operate(Operation),
    /// Hold every delivery to the notification service (WEBHOOK_URL's origin) for its
    /// maintenance window, as an open circuit breaker holds them: dispatch, listen and the
    /// sweep send nothing, not even a probe, and spend no attempt. Shared by every worker.
    #[command(after_help = "Examples:
  webhooks pause --for 2h --reason \"notification service maintenance\"
  webhooks pause --until 2026-12-07T06:00:00Z

Deliveries held longer than WEBHOOK_HOLD_MAX (default 3d) fail, saying so (webhooks replay).
Needs DATABASE_URL and WEBHOOK_URL. Exit status: 0 done; 2 could not run.")]
    Pause {
        #[command(flatten)]
        duration: pause::PauseFor,
        /// Why, shown by `webhooks stats` and `doctor` (at most 200 characters).
        #[arg(long)]
        reason: Option<String>,
        /// Print the endpoints as JSON.
        #[arg(long)]
        json: bool,
    },
    /// End a pause of the notification service (a `webhooks pause`, or a receiver's
    /// Retry-After): the next sweep, dispatch or listen sends what it held.
    #[command(
        after_help = "Needs DATABASE_URL and WEBHOOK_URL. Exit status: 0 done; 2 could not run."
    )]
    Resume {
        /// Print the endpoints as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a local notification service that verifies what is sent (see --help).
    ///
    /// Verifies the bearer token (WEBHOOK_AUTH_TOKEN) and the Standard Webhooks signature
    /// (WEBHOOK_SIGNING_SECRET) and answers 401 when either is wrong, deduplicates by
    /// webhook-id, prints one line per request, and misbehaves on request. Ctrl-C stops it.
    Receiver(delivery::receiver::ReceiverArgs),
}

/// What a command that ran found.
pub(crate) enum Verdict {
    /// Nothing wrong (exit 0).
    Fine,
    /// Something wrong (exit 1).
    Problem,
}

#[tokio::main]
async fn main() -> ExitCode {
    delivery::telemetry::init();
    match run(Cli::parse()).await {
        Ok(Verdict::Fine) => ExitCode::SUCCESS,
        Ok(Verdict::Problem) => ExitCode::from(1),
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Result<Verdict, Box<dyn std::error::Error>> {
    match cli.command {
        Command::Operate(operation) => ops::operate(operation).await,
        Command::Pause {
            duration,
            reason,
            json,
        } => pause::run_pause(duration, reason, json).await,
        Command::Resume { json } => pause::run_resume(json).await,
        Command::Receiver(args) => {
            delivery::receiver::args::run(args).await?;
            Ok(Verdict::Fine)
        }
        Command::Migrate {
            print_sql: true, ..
        } => {
            let pool = ops::reachable_pool().await?;
            out::print(&schema::print_sql(&pool).await?);
            Ok(Verdict::Fine)
        }
        Command::Migrate {
            adopt_seed,
            repair,
            dry_run,
            json,
            wait_for_old_sender,
            ..
        } => {
            let options = MigrateOptions {
                adopt_seed,
                repair,
                dry_run,
                old_sender_wait: Some(wait_for_old_sender),
            };
            migrate::migrate(options, json).await
        }
        Command::Deliver(command) => deliver::deliver(command).await,
    }
}
