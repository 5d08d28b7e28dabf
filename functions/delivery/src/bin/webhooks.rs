//! `webhooks`: the local and operations command line over the `delivery` library —
//! migrate, listen (dispatch on NOTIFY), sweep, dispatch and replay by hand.

use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use delivery::backoff::parse_duration;
use delivery::listen::ListenOptions;
use delivery::replay::Requeue;
use delivery::sweep::SweepOptions;
use delivery::{Clock, DbConfig, Deps};
use uuid::Uuid;

/// Booking webhooks: operate the delivery engine. Configuration comes from the environment
/// (see .env.example).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply the migrations to DATABASE_URL (only DATABASE_URL is needed).
    Migrate,
    /// Dispatch each delivery the moment its booking commits (LISTEN/NOTIFY), until Ctrl-C.
    Listen {
        /// Also run the retry sweep this often, e.g. 10m; `off` to leave retries to the schedule.
        #[arg(long, default_value = "10m")]
        sweep_every: String,
    },
    /// Run one retry sweep now and print its statistics.
    Sweep {
        /// Deliveries per batch (default WEBHOOK_SWEEP_BATCH).
        #[arg(long)]
        batch_size: Option<usize>,
    },
    /// Deliver the given ids now, or up to --limit never-attempted deliveries.
    Dispatch {
        /// Delivery ids.
        ids: Vec<Uuid>,
        /// Deliver up to this many pending deliveries instead.
        #[arg(long, conflicts_with = "ids")]
        limit: Option<usize>,
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
        #[arg(long, requires = "failed")]
        since: Option<String>,
        /// Retries granted after the immediate attempt.
        #[arg(long, default_value_t = 3)]
        max_retries: i32,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    delivery::telemetry::init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    if let Command::Migrate = cli.command {
        let mut db = DbConfig::from_env()?;
        db.pool_size = 1;
        let applied = delivery::db::migrate(&db.pool()?).await?;
        println!("{}", serde_json::json!({ "applied": applied }));
        return Ok(());
    }
    let deps = Deps::from_env()?;
    let clock = Clock::System;
    let report = match cli.command {
        Command::Migrate => unreachable!("handled above"),
        Command::Listen { sweep_every } => {
            let sweep_every = match sweep_every.as_str() {
                "off" => None,
                text => Some(parse_duration(text).map_err(|e| format!("--sweep-every: {e}"))?),
            };
            let shutdown = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            delivery::listen::listen(&deps, clock, ListenOptions { sweep_every }, shutdown).await?;
            return Ok(());
        }
        Command::Sweep { batch_size } => {
            let options = SweepOptions {
                batch_size: batch_size.unwrap_or(deps.config.sweep_batch).max(1),
                budget: deps.config.sweep_budget,
            };
            serde_json::to_value(delivery::sweep::sweep(&deps, options, clock).await?)?
        }
        Command::Dispatch { ids, limit } => {
            let report = match limit {
                Some(limit) => delivery::dispatch::dispatch_fresh(&deps, limit, clock).await?,
                None => {
                    delivery::dispatch::dispatch_ids(&deps, &ids, clock, deps.config.dispatch_wait)
                        .await?
                }
            };
            serde_json::to_value(report)?
        }
        Command::Replay {
            ids,
            failed,
            since,
            max_retries,
        } => {
            let since = since.map(|s| parse_since(&s, clock.now())).transpose()?;
            let what = Requeue {
                ids: (!failed).then_some(ids),
                since,
                max_retries,
            };
            serde_json::to_value(delivery::replay::requeue(&deps.pool, &what, clock.now()).await?)?
        }
    };
    println!("{report}");
    Ok(())
}

fn parse_since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.to_utc());
    }
    let age: Duration = parse_duration(text)
        .map_err(|_| format!("--since: {text:?} is neither RFC 3339 nor an age like 2h"))?;
    Ok(now - chrono::Duration::from_std(age).map_err(|_| "--since: too long ago".to_owned())?)
}
