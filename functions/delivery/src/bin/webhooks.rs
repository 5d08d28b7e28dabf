//! `webhooks`: the local and operations command line over the `delivery` library —
//! migrate, listen (dispatch on NOTIFY), sweep, dispatch and replay by hand; and the
//! operator's read and repair commands (stats, failures, show, cleanup, verify, doctor), whose
//! logic lives in the library's modules of the same nouns; and a local receiver to send to.
//!
//! Every argument is checked by the parser, so a bad value is a usage error naming the
//! argument, never a panic (tested below over many values).

use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use delivery::backoff::parse_duration;
use delivery::failures::FailureFilter;
use delivery::listen::ListenOptions;
use delivery::replay::Requeue;
use delivery::retention::Cleanup;
use delivery::schema::{self, MigrateOptions};
use delivery::sweep::SweepOptions;
use delivery::{Clock, DbConfig, Deps, out};
use uuid::Uuid;

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

/// The operator's read and repair commands: they need only DATABASE_URL, print tables (or
/// JSON with `--json`), and exit 1 when they find a problem.
#[derive(Subcommand, Debug)]
enum Operation {
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

", "Exit status: 0 found; 1 no delivery has this id; 2 could not run."))]
    Show {
        /// The delivery id (the `webhook-id` the receiver saw).
        id: Uuid,
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

", "Exit status: 0 complete; 1 deliveries are missing (or bookings cannot be dated); 2 could not run
(also when --window reaches back before the horizon, so that no booking is in range)."))]
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
enum TroubleStatus {
    /// Failed for good.
    Failed,
    /// Failed at least once, another attempt scheduled.
    Retrying,
    /// Never sent: a later approved/rejected notification of the booking replaced it.
    Superseded,
}

/// What a command that ran found.
enum Verdict {
    /// Nothing wrong (exit 0).
    Fine,
    /// Something wrong (exit 1).
    Problem,
}

/// `--sweep-every`: a period of at least a second, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SweepEvery(Option<Duration>);

fn sweep_every(text: &str) -> Result<SweepEvery, String> {
    if text == "off" {
        return Ok(SweepEvery(None));
    }
    let every = parse_duration(text)?;
    if every < Duration::from_secs(1) {
        return Err(format!(
            "{text:?} is shorter than 1s; use `off` for no sweep"
        ));
    }
    Ok(SweepEvery(Some(every)))
}

/// `--since`: a time, or an age counted back from when the command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Since {
    At(DateTime<Utc>),
    Ago(chrono::Duration),
}

fn since(text: &str) -> Result<Since, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(Since::At(at.to_utc()));
    }
    let age = parse_duration(text)
        .map_err(|_| format!("{text:?} is neither RFC 3339 nor an age like 2h"))?;
    chrono::Duration::from_std(age)
        .map(Since::Ago)
        .map_err(|_| format!("{text:?} is too long ago"))
}

impl Since {
    fn at(self, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
        match self {
            Since::At(at) => Ok(at),
            Since::Ago(age) => now
                .checked_sub_signed(age)
                .ok_or_else(|| "--since: too long ago".to_owned()),
        }
    }
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
        Command::Operate(operation) => return operate(operation).await,
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
            return migrate(options, json).await;
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

/// One connection for an operator command, from DATABASE_URL (and WEBHOOK_DB_CA_FILE) alone;
/// a refused connection reads "database pool: …".
async fn connect() -> Result<deadpool_postgres::Object, Box<dyn std::error::Error>> {
    let mut db = DbConfig::from_env()?;
    db.pool_size = 1;
    Ok(db.pool()?.get().await.map_err(delivery::Error::from)?)
}

/// `webhooks migrate`: each step as it completes, then the outcome and, when adopting, the
/// rollback script; with `json`, the steps on stderr and the report as JSON on stdout.
async fn migrate(
    options: MigrateOptions,
    json: bool,
) -> Result<Verdict, Box<dyn std::error::Error>> {
    let mut db = DbConfig::from_env()?;
    db.pool_size = 1;
    let pool = db.pool()?;
    let say = |line: &str| {
        if json {
            eprintln!("{line}");
        } else {
            out::line(line);
        }
    };
    if options.dry_run {
        say("dry run: every step runs in a transaction that is rolled back at the end");
    }
    let report = schema::migrate(&pool, options, &mut |line| say(line))
        .await
        .map_err(|e| {
            format!("{e}\nNothing was changed: `webhooks migrate` runs in one transaction.")
        })?;
    if json {
        out::line(&serde_json::to_string_pretty(&report)?);
        return Ok(Verdict::Fine);
    }
    if report.committed {
        out::line("committed");
    } else {
        out::line("dry run: rolled back, nothing was changed");
    }
    if let Some(script) = report.rollback_script {
        out::line(&format!("\n{script}"));
    }
    Ok(Verdict::Fine)
}

/// Runs an operator command: text for people, `--json` for scripts.
async fn operate(operation: Operation) -> Result<Verdict, Box<dyn std::error::Error>> {
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
    let print =
        |json: bool, value: serde_json::Value, text: String| -> Result<(), serde_json::Error> {
            if json {
                out::line(&serde_json::to_string_pretty(&value)?);
            } else {
                out::print(&text);
            }
            Ok(())
        };
    let verdict = match operation {
        Operation::Stats { json } => {
            let rows = delivery::health::read_health(db, now).await?;
            print(
                json,
                serde_json::to_value(&rows)?,
                delivery::health::render_health(&rows),
            )?;
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
            print(
                json,
                serde_json::to_value(&found)?,
                delivery::failures::render_failures(&found),
            )?;
            Verdict::Fine
        }
        Operation::Show { id, json } => match delivery::history::read_history(db, id).await? {
            Some(history) => {
                print(
                    json,
                    serde_json::to_value(&history)?,
                    delivery::history::render_history(&history),
                )?;
                Verdict::Fine
            }
            None => {
                eprintln!("no delivery with id {id}");
                Verdict::Problem
            }
        },
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
            print(
                json,
                serde_json::to_value(&report)?,
                delivery::retention::render_cleanup(&report),
            )?;
            Verdict::Fine
        }
        Operation::Verify {
            window,
            limit,
            json,
        } => {
            let check = delivery::completeness::check_completeness(db, now, window, limit).await?;
            // An undatable table is a problem whatever the window (exit 1, below).
            if let Some(why) = check.empty_range(window).filter(|_| check.bookings_dated) {
                return Err(why.into());
            }
            print(
                json,
                serde_json::to_value(&check)?,
                delivery::completeness::render_completeness(&check),
            )?;
            if check.is_complete() {
                Verdict::Fine
            } else {
                Verdict::Problem
            }
        }
        Operation::Doctor { json } => {
            let posture = delivery::posture::check_posture(db, now).await?;
            print(
                json,
                serde_json::to_value(&posture)?,
                delivery::posture::render_posture(&posture),
            )?;
            if posture.is_healthy() {
                Verdict::Fine
            } else {
                Verdict::Problem
            }
        }
    };
    Ok(verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Durations and numbers an operator might type, plus hostile ones.
    const VALUES: &[&str] = &[
        "",
        " ",
        "0",
        "1",
        "-1",
        "0s",
        "0ms",
        "999ms",
        "1s",
        "10m",
        "2h",
        "1d",
        "off",
        "OFF",
        "1.5h",
        "1e9s",
        "5 m",
        "m",
        "s5",
        "10000",
        "10001",
        "65535",
        "65536",
        "2147483647",
        "2147483648",
        "-2147483649",
        "100000000d",
        "18446744073709551615ms",
        "18446744073709551615d",
        "99999999999999999999999s",
        "2026-11-29T10:00:00Z",
        "9999-12-31T23:59:59Z",
        "0000-01-01T00:00:00Z",
        "2026-13-45T99:99:99Z",
        "NaN",
        "∞",
        "💥",
    ];

    fn args_with(value: &str) -> Vec<Vec<String>> {
        let uuid = Uuid::nil().to_string();
        [
            vec!["listen", "--sweep-every", value],
            vec!["sweep", "--batch-size", value],
            vec!["dispatch", "--limit", value],
            vec!["dispatch", value],
            vec!["replay", "--failed", "--since", value],
            vec!["replay", &uuid, "--max-retries", value],
            vec!["replay", value],
            vec!["failures", "--since", value],
            vec!["failures", "--limit", value],
            vec!["show", value],
            vec!["cleanup", "--older-than", value],
            vec!["cleanup", "--older-than", "30d", "--batch-size", value],
            vec!["verify", "--window", value],
            vec!["verify", "--limit", value],
        ]
        .into_iter()
        .map(|args| {
            std::iter::once("webhooks")
                .chain(args)
                .map(str::to_owned)
                .collect()
        })
        .collect()
    }

    #[test]
    fn no_argument_value_panics_and_bad_ones_are_usage_errors() {
        let mut accepted = 0;
        for value in VALUES {
            for args in args_with(value) {
                let Ok(cli) = Cli::try_parse_from(&args) else {
                    continue;
                };
                accepted += 1;
                // What run() computes from the arguments before touching the network.
                match cli.command {
                    Command::Replay {
                        since: Some(since), ..
                    }
                    | Command::Operate(Operation::Failures {
                        since: Some(since), ..
                    }) => {
                        let _ = since.at(Utc::now());
                    }
                    Command::Operate(Operation::Cleanup { older_than, .. }) => {
                        let _ = Cleanup::older_than(older_than, Utc::now());
                    }
                    Command::Operate(Operation::Verify { window, .. }) => {
                        let _ = delivery::completeness::checked_before(Utc::now(), window);
                    }
                    _ => {}
                }
            }
        }
        assert!(accepted > 10, "the good values parse: {accepted}");
    }

    #[test]
    fn the_reported_panics_are_clear_errors() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("webhooks").chain(args.iter().copied()))
                .map_err(|e| e.to_string())
        };
        let zero = parse(&["listen", "--sweep-every", "0s"])
            .err()
            .unwrap_or_default();
        assert!(zero.contains("shorter than 1s"), "{zero}");
        assert!(parse(&["listen", "--sweep-every", "off"]).is_ok());
        let huge = parse(&["replay", "--failed", "--since", "100000000d"]);
        let huge = match huge {
            Ok(Cli {
                command:
                    Command::Replay {
                        since: Some(since), ..
                    },
            }) => since.at(Utc::now()).err().unwrap_or_default(),
            other => format!("{other:?}"),
        };
        assert!(huge.contains("too long ago"), "{huge}");
        let batch = parse(&["sweep", "--batch-size", "0"])
            .err()
            .unwrap_or_default();
        assert!(batch.contains("--batch-size"), "{batch}");
        let retries = parse(&["replay", "--failed", "--max-retries", "-1"]);
        assert!(retries.is_err());
    }

    #[test]
    fn sweep_every_and_since_parse_what_they_document() {
        assert_eq!(
            sweep_every("10m"),
            Ok(SweepEvery(Some(Duration::from_secs(600))))
        );
        assert_eq!(sweep_every("off"), Ok(SweepEvery(None)));
        assert!(sweep_every("999ms").is_err());
        let now = Utc::now();
        assert_eq!(
            since("2h").and_then(|s| s.at(now)),
            Ok(now - chrono::Duration::hours(2))
        );
        assert_eq!(
            since("2026-11-29T10:00:00Z")
                .and_then(|s| s.at(now))
                .map(|t| t.to_rfc3339()),
            Ok("2026-11-29T10:00:00+00:00".to_owned())
        );
    }
}
