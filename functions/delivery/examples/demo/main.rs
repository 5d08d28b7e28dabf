//! `make demo`: the whole delivery story in one run, locally, with no cloud account.
//!
//! It creates a fresh database (`webhooks_demo_<random>`, dropped at the end) on the server
//! `DATABASE_URL` names (`make db` provides one), migrates it with `webhooks migrate`, and
//! starts the real parts: `webhooks receiver` as the notification service, `webhooks listen`
//! as the dispatcher, and the `retry-sweep` Lambda function under `cargo lambda watch`,
//! invoked with `cargo lambda invoke` as EventBridge Scheduler would. Then it tells the story
//! in eight steps and checks every claim it makes against the rows and the receiver's log; any
//! step that does not behave as it says ends the demo with a non-zero exit code.
//!
//! Why a Rust program rather than a shell script: each step asserts typed facts (delivery
//! rows, attempt rows, the receiver's JSON lines parsed with the library's own types, the
//! sweep's report), the child processes are owned by guards that stop them on every exit path
//! — error, panic or Ctrl-C — and waiting is bounded everywhere. A shell script gets each of
//! those only approximately (`set -e` gaps, `trap` ordering, JSON through `grep`).
//!
//! # Layout
//! - `show`: output — steps, checks, tables; colour only on a terminal.
//! - `procs`: child processes, their logs, stopping them.
//! - `demo_db`: the fresh database, the rows shown, moving time forward.
//! - `sweeper`: running the retry sweep through the Lambda runtime (or in-process).
//! - `story`: the eight steps, in order; `steps/`: each step; `stage`: the processes and the
//!   database they play on; `checks`: what the steps check and share.

// A demo: output to the terminal is its job.
#![allow(clippy::print_stdout)]

mod checks;
mod demo_db;
mod procs;
mod show;
mod stage;
mod steps;
mod story;
mod sweeper;

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;

use crate::show::Show;

/// Runs the delivery story end to end against a fresh local database.
#[derive(Parser)]
struct Args {
    /// Keep the demo database afterwards (its URL is printed) to look around with psql.
    #[arg(long)]
    keep: bool,
    /// How to run the retry sweep: `lambda` (cargo lambda watch + invoke), `library` (the same
    /// handler, called in-process) or `auto` (lambda when cargo-lambda is installed).
    #[arg(long, default_value = "auto", value_parser = ["auto", "lambda", "library"])]
    sweep_via: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let show = Show::new();
    let started = Instant::now();
    let mut stage = stage::Stage::default();
    let outcome = tokio::select! {
        outcome = story::run(&args.sweep_via, &show, &mut stage) => outcome,
        () = delivery::signal::stop_requested() => Err(anyhow::anyhow!("interrupted")),
    };
    let elapsed = started.elapsed();
    // Whatever happened, stop what was started and drop the database.
    let cleanup = stage.tear_down(&show, args.keep).await;
    match (outcome, cleanup) {
        (Ok(()), Ok(())) => {
            show.heading(&format!(
                "Every step behaved as described ({:.1} s).",
                elapsed.as_secs_f64()
            ));
            show.say("Next: `make test` runs the test suite; docs/how-it-works.md explains the design; docs/deploy.md takes it to AWS.");
            ExitCode::SUCCESS
        }
        (Err(err), _) | (Ok(()), Err(err)) => {
            show.failed(&format!("{err:#}"));
            show.say("Logs of the processes the demo ran: target/demo/*.log");
            ExitCode::FAILURE
        }
    }
}
