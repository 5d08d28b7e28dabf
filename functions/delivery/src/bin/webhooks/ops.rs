//! The operator's read and repair commands (`replay`, `stats`, `failures`, `show`, `cleanup`,
//! `verify`, `doctor`): they need only `DATABASE_URL`, print tables (or JSON with `--json`),
//! and exit 1 when they find a problem. Their logic lives in the library's `ops` modules.

use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Subcommand, ValueEnum};
use delivery::backoff::parse_duration;
use delivery::failures::FailureFilter;
use delivery::ops::ids::IdPrefix;
use delivery::ops::output::render;
use delivery::replay::Requeue;
use delivery::retention::Cleanup;
use delivery::schema;
use delivery::{Clock, DbConfig, out};

use crate::Verdict;
use crate::ids::resolve;
use crate::parse::{Since, since};

/// The operator's read and repair commands: they need only DATABASE_URL, print tables (or
/// JSON with `--json`), and exit 1 when they find a problem.
#[derive(Subcommand, Debug)]
pub(crate) enum Operation {
    /// Requeue failed deliveries with a fresh retry budget; the next sweep sends them.
    #[command(after_help = concat!("Examples:
  webhooks replay 381ff777
  webhooks replay --failed --since 2h

", "Exit status: 0 done; 1 an id names no delivery; 2 could not run."))]
    Replay {
        /// Delivery ids to requeue, whole or their first digits (e.g. 381ff777).
        #[arg(required_unless_present = "failed", conflicts_with = "failed")]
        ids: Vec<IdPrefix>,
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
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Delivery health per type and overall: counts by status, success rate, attempts to
    /// succeed, attempt latency percentiles (24 h), age of the oldest undelivered row.
    #[command(after_help = concat!("Examples:
  webhooks stats
  webhooks stats --json

", "Exit status: 0 done; 2 could not run."))]
    Stats {
        /// Print JSON (one object per type, `all` last) instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Deliveries in trouble (failed, or waiting for a retry), with last error and next retry,
    /// most recently attempted first.
    #[command(after_help = concat!("Examples:
  webhooks failures
  webhooks failures --status failed --since 2h
  webhooks failures --status retrying --limit 10 --json

", "Exit status: 0 done (also when nothing is in trouble); 2 could not run."))]
    Failures {
        /// Only this status (default: both).
        #[arg(long, value_enum)]
        status: Option<TroubleStatus>,
        /// Only those last attempted since: an age such as 2h, or RFC 3339.
        #[arg(long, value_parser = since)]
        since: Option<Since>,
        /// List at most this many (the total is still counted).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One delivery and every attempt made for it (code, kind, latency, error excerpt).
    #[command(after_help = concat!("Example:
  webhooks show 0b7e3c1e-6a0e-4c1b-9a51-2f1f3a7d9c10
  webhooks show 381ff777

", "Exit status: 0 found; 1 no delivery has this id; 2 could not run (also: the digits begin
several ids)."))]
    Show {
        /// The delivery id (the `webhook-id` the receiver saw), whole or its first digits.
        id: IdPrefix,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Retention: delete resolved deliveries (succeeded, failed, skipped, superseded) resolved
    /// longer ago than --older-than, with their attempts, in batches. Never touches pending or
    /// retrying.
    #[command(after_help = concat!("Examples:
  webhooks cleanup --older-than 30d --dry-run
  webhooks cleanup --older-than 30d

", "Exit status: 0 done; 2 could not run (what earlier batches removed stays removed)."))]
    Cleanup {
        /// Remove what was resolved longer ago than this, e.g. 30d (at least 1d).
        #[arg(long, value_parser = parse_duration)]
        older_than: Duration,
        /// Only count what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// Deliveries deleted per transaction.
        #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(i64).range(1..=100_000))]
        batch_size: i64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Completeness check: list bookings whose expected delivery (new_request; approved or
    /// rejected for their current status) does not exist — a disabled trigger, a restore
    /// that skipped the outbox, rows deleted by hand.
    #[command(after_help = concat!("Examples:
  webhooks verify
  webhooks verify --window 10m --json

", "Exit status: 0 complete (or nothing to check yet: --window reaches back before the horizon,
the first hour after installing); 1 deliveries are missing (or bookings cannot be dated); 2
could not run."))]
    Verify {
        /// Leave out bookings younger than this (their capture may be in flight), e.g. 1h.
        #[arg(long, default_value = "1h", value_parser = parse_duration)]
        window: Duration,
        /// List at most this many (the total is still counted).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..=100_000))]
        limit: i64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check the deployment's posture and say what is wrong in plain words: capture triggers,
    /// capture functions, row level security, backlog, migrations, NOTIFY, wake-up trigger.
    #[command(after_help = concat!("Examples:
  webhooks doctor
  webhooks doctor --json

", "Exit status: 0 no problem (warnings allowed); 1 a problem was found; 2 could not run."))]
    Doctor {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// The statuses `failures` can select.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum TroubleStatus {
    /// Failed for good.
    Failed,
    /// Failed at least once, another attempt scheduled.
    Retrying,
    /// Never sent: a later approved/rejected notification of the booking replaced it.
    Superseded,
}

/// A pool of one connection from DATABASE_URL (and WEBHOOK_DB_CA_FILE) alone, tried once: a
/// database that cannot be reached is said at once, with where it is (host, port, database).
pub(crate) async fn reachable_pool() -> Result<deadpool_postgres::Pool, Box<dyn std::error::Error>>
{
    let mut db = DbConfig::from_env()?;
    db.pool_size = 1;
    let pool = db.pool()?;
    drop(
        pool.get()
            .await
            .map_err(|e| delivery::Error::from(e).reaching(&db))?,
    );
    Ok(pool)
}

/// One connection for an operator command, from DATABASE_URL (and WEBHOOK_DB_CA_FILE) alone.
pub(crate) async fn connect() -> Result<deadpool_postgres::Object, Box<dyn std::error::Error>> {
    Ok(reachable_pool()
        .await?
        .get()
        .await
        .map_err(delivery::Error::from)?)
}

/// Runs an operator command: text for people, `--json` for scripts.
pub(crate) async fn operate(operation: Operation) -> Result<Verdict, Box<dyn std::error::Error>> {
    let db = connect().await?;
    // Ages and cut-offs on the database's clock, like the engine's.
    let now = delivery::db::now(&db, Clock::System).await?;
    // Where `webhooks migrate` never ran, or ran an older build, say so and what to do
    // instead of the server's "relation … does not exist".
    schema::require_installed(&db).await?;
    operate_on(&db, now, operation)
        .await
        .map_err(|err| match err.downcast::<delivery::Error>() {
            Ok(err) => Box::new(schema::explain_missing(*err)),
            Err(other) => other,
        })
}

/// The command itself, on a database whose schema is installed.
async fn operate_on(
    db: &tokio_postgres::Client,
    now: DateTime<Utc>,
    operation: Operation,
) -> Result<Verdict, Box<dyn std::error::Error>> {
    let verdict = match operation {
        Operation::Stats { json } => {
            let rows = delivery::health::read_health(db, now).await?;
            // The notification service: breaker, pause, held deliveries, pace (people only:
            // the JSON keeps its shape; `webhooks doctor --json` has the service's state).
            let rate = delivery::endpoint::max_rate_from_env();
            let endpoints = delivery::endpoint::read_endpoints(db, Some(now), rate).await?;
            out::print(&render(&rows, json, |style| {
                format!(
                    "{}\n{}",
                    delivery::health::render_health(&rows, now, style),
                    delivery::endpoint::render_endpoints(&endpoints, now, style)
                )
            })?);
            Verdict::Fine
        }
        Operation::Failures {
            status,
            since,
            limit,
            json,
        } => {
            let filter = FailureFilter {
                statuses: match status {
                    None => FailureFilter::default().statuses,
                    Some(TroubleStatus::Failed) => vec!["failed".into()],
                    Some(TroubleStatus::Retrying) => vec!["retrying".into()],
                    Some(TroubleStatus::Superseded) => vec!["superseded".into()],
                },
                since: since.map(|s| s.at(now)).transpose()?,
                limit,
            };
            let found = delivery::failures::list_failures(db, &filter).await?;
            out::print(&render(&found, json, |style| {
                delivery::failures::render_failures(&found, now, style)
            })?);
            Verdict::Fine
        }
        Operation::Show { id, json } => {
            let Some(named) = resolve(db, std::slice::from_ref(&id)).await? else {
                return Ok(Verdict::Problem);
            };
            let Some(history) = delivery::history::read_history(db, named[0].id).await? else {
                eprintln!("no delivery with id {id}");
                return Ok(Verdict::Problem);
            };
            out::print(&render(&history, json, |style| {
                delivery::history::render_history(&history, style)
            })?);
            Verdict::Fine
        }
        Operation::Replay {
            ids,
            failed,
            since,
            max_retries,
            include_replaced,
            json,
        } => {
            let ids = if failed {
                None
            } else {
                let Some(named) = resolve(db, &ids).await? else {
                    return Ok(Verdict::Problem);
                };
                for n in named.iter().filter(|n| n.status != "failed") {
                    eprintln!(
                        "{} is {}, not failed: nothing to requeue{}",
                        n.id,
                        n.status,
                        match n.status.as_str() {
                            "pending" | "retrying" => " (`webhooks send` sends it now)",
                            _ => "",
                        }
                    );
                }
                Some(named.into_iter().map(|n| n.id).collect())
            };
            let what = Requeue {
                ids,
                since: since.map(|s| s.at(now)).transpose()?,
                max_retries,
                include_replaced,
            };
            let report = delivery::replay::requeue_on(db, &what, Clock::System).await?;
            out::print(&render(&report, json, |style| {
                delivery::replay::render_requeue(&report, style)
            })?);
            Verdict::Fine
        }
        Operation::Cleanup {
            older_than,
            dry_run,
            batch_size,
            json,
        } => {
            let mut what =
                Cleanup::older_than(older_than, now).map_err(|e| format!("--older-than: {e}"))?;
            what.batch_size = batch_size;
            what.dry_run = dry_run;
            let report = delivery::retention::clean_up(db, &what).await?;
            out::print(&render(&report, json, |style| {
                delivery::retention::render_cleanup(&report, style)
            })?);
            Verdict::Fine
        }
        Operation::Verify {
            window,
            limit,
            json,
        } => {
            let check = delivery::completeness::check_completeness(db, now, window, limit).await?;
            out::print(&render(&check, json, |style| {
                delivery::completeness::render_completeness(&check, style)
            })?);
            if check.is_complete() {
                Verdict::Fine
            } else {
                Verdict::Problem
            }
        }
        Operation::Doctor { json } => {
            let posture = delivery::posture::check_posture(db, now).await?;
            out::print(&render(&posture, json, |style| {
                delivery::posture::render_posture(&posture, style)
            })?);
            if posture.is_healthy() {
                Verdict::Fine
            } else {
                Verdict::Problem
            }
        }
    };
    Ok(verdict)
}
