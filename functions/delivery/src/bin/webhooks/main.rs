//! `webhooks`: the local and operations command line over the `delivery` library —
//! migrate, listen (dispatch on NOTIFY), sweep, dispatch, send and replay by hand; and the
//! operator's read and repair commands (stats, failures, show, cleanup, verify, doctor), whose
//! logic lives in the library's modules of the same nouns; and a local receiver to send to.
//!
//! Every argument is checked by the parser, so a bad value is a usage error naming the
//! argument, never a panic.

mod migrate;
mod ops;
mod parse;
#[cfg(test)]
mod tests;

use std::process::ExitCode;
use std::time::Duration;

use chrono::Utc;
use clap::{Parser, Subcommand};
use delivery::backoff::parse_duration;
use delivery::listen::ListenOptions;
use delivery::replay::Requeue;
use delivery::schema::{self, MigrateOptions};
use delivery::sweep::SweepOptions;
use delivery::{Clock, DbConfig, Deps, out};
use uuid::Uuid;

use ops::Operation;
use parse::{Since, SweepEvery, since, sweep_every};

/// How every command exits, so scripts can tell "found something wrong" from "could not look".
const EXIT_STATUS: &str = "\
Exit status:
  0  done; nothing wrong found
  1  a problem was found: verify (missing or undatable), doctor (a problem), show (no such id)
  2  could not run: bad arguments, configuration, the database could not be queried or has
     no schema yet (webhooks migrate), verify's --window leaves no booking in range";

/// Booking webhooks: operate the delivery engine. Configuration comes from the environment
/// (see .env.example); the read and repair commands need only DATABASE_URL.
#[derive(Parser, Debug)]
#[command(version, about, after_help = EXIT_STATUS)]
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
    /// Dispatch each delivery the moment its booking commits (LISTEN/NOTIFY), until Ctrl-C or SIGTERM.
    /// Needs a session connection: not a transaction pooler (docs/connecting.md).
    Listen {
        /// Also run the retry sweep this often, at least 1s, e.g. 10m; `off` to leave retries
        /// to the schedule.
        #[arg(long, default_value = "10m", value_parser = sweep_every)]
        sweep_every: SweepEvery,
    },
    /// Run one retry sweep now and print its statistics.
    Sweep {
        /// Deliveries per batch, 1 to 10000 (default WEBHOOK_SWEEP_BATCH).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=10_000))]
        batch_size: Option<u16>,
    },
    /// Deliver the given ids now, or up to --limit never-attempted deliveries.
    Dispatch {
        /// Delivery ids.
        #[arg(required_unless_present = "limit")]
        ids: Vec<Uuid>,
        /// Deliver up to this many pending deliveries instead, 1 to 10000.
        #[arg(long, conflicts_with = "ids", value_parser = clap::value_parser!(u16).range(1..=10_000))]
        limit: Option<u16>,
    },
    /// Send deliveries now, due or not: the given ids, or every one waiting for a retry.
    ///
    /// Claimed as dispatch and the sweep claim (a lease, so nothing is sent twice; a replaced
    /// approved/rejected notification ends superseded, unsent), without waiting for the next
    /// retry's time. One that fails again gets its next retry as after any attempt.
    Send {
        /// Delivery ids.
        #[arg(required_unless_present = "retrying", conflicts_with = "retrying")]
        ids: Vec<Uuid>,
        /// Send every delivery waiting for a retry instead (next due first).
        #[arg(long)]
        retrying: bool,
        /// With --retrying: send at most this many, 1 to 100000.
        #[arg(long, default_value_t = 1_000, requires = "retrying", value_parser = clap::value_parser!(u32).range(1..=100_000))]
        limit: u32,
    },
    /// Requeue failed deliveries with a fresh retry budget; the next sweep sends them.
    Replay {
        /// Delivery ids to requeue.
        #[arg(required_unless_present = "failed", conflicts_with = "failed")]
        ids: Vec<Uuid>,
        /// Requeue every failed delivery (optionally only those failed since --since).
        #[arg(long)]
        failed: bool,
        /// Only deliveries that failed since this time: RFC 3339 (2026-11-29T10:00:00Z) or an
        /// age such as 2h.
        #[arg(long, requires = "failed", value_parser = since)]
        since: Option<Since>,
        /// Retries granted after the immediate attempt, 0 to 100.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(0..=100))]
        max_retries: i32,
        /// Also requeue failed approved/rejected notifications that a later one of the same
        /// booking replaced (left failed and counted as `replaced` otherwise): the student then
        /// gets the old decision after the current one.
        #[arg(long)]
        include_replaced: bool,
    },
    /// Run a local notification service that verifies what is sent (see --help).
    ///
    /// Verifies the bearer token (WEBHOOK_AUTH_TOKEN) and the Standard Webhooks signature
    /// (WEBHOOK_SIGNING_SECRET) and answers 401 when either is wrong, deduplicates by
    /// webhook-id, prints one line per request, and misbehaves on request. Ctrl-C stops it.
    Receiver(delivery::receiver::ReceiverArgs),
    #[command(flatten)]
    Operate(Operation),
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
    let clock = Clock::System;
    let report = match cli.command {
        Command::Operate(operation) => return ops::operate(operation).await,
        Command::Receiver(args) => {
            delivery::receiver::args::run(args).await?;
            return Ok(Verdict::Fine);
        }
        Command::Migrate {
            print_sql: true, ..
        } => {
            let mut db = DbConfig::from_env()?;
            db.pool_size = 1;
            out::print(&schema::print_sql(&db.pool()?).await?);
            return Ok(Verdict::Fine);
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
            return migrate::migrate(options, json).await;
        }
        Command::Listen { sweep_every } => {
            let deps = Deps::from_env()?;
            // Ctrl-C or SIGTERM (what systemd, ECS and Kubernetes send): finish the batch in
            // flight and exit 0, rather than die with deliveries leased until their lease ends.
            let shutdown = delivery::signal::stop_requested();
            let options = ListenOptions {
                sweep_every: sweep_every.0,
            };
            delivery::listen::listen(&deps, clock, options, shutdown).await?;
            return Ok(Verdict::Fine);
        }
        Command::Sweep { batch_size } => {
            let deps = Deps::from_env()?;
            let options = SweepOptions {
                batch_size: batch_size.map_or(deps.config.sweep_batch, usize::from),
                budget: deps.config.sweep_budget,
                deadline: None,
            };
            serde_json::to_value(delivery::sweep::sweep(&deps, options, clock).await?)?
        }
        Command::Dispatch { ids, limit } => {
            let deps = Deps::from_env()?;
            let report = match limit {
                Some(limit) => {
                    delivery::dispatch::dispatch_fresh(&deps, limit.into(), clock, None).await?
                }
                None => {
                    let wait = deps.config.dispatch_wait;
                    delivery::dispatch::dispatch_ids(&deps, &ids, clock, wait).await?
                }
            };
            serde_json::to_value(report)?
        }
        Command::Send {
            ids,
            retrying,
            limit,
        } => {
            let deps = Deps::from_env()?;
            let report = if retrying {
                delivery::dispatch::now::send_retrying(&deps, limit as usize, clock).await?
            } else {
                delivery::dispatch::now::send_now(&deps, &ids, clock).await?
            };
            serde_json::to_value(report)?
        }
        Command::Replay {
            ids,
            failed,
            since,
            max_retries,
            include_replaced,
        } => {
            let deps = Deps::from_env()?;
            let what = Requeue {
                ids: (!failed).then_some(ids),
                since: since.map(|s| s.at(Utc::now())).transpose()?,
                max_retries,
                include_replaced,
            };
            serde_json::to_value(delivery::replay::requeue(&deps.pool, &what, clock).await?)?
        }
    };
    out::line(&report.to_string());
    Ok(Verdict::Fine)
}
