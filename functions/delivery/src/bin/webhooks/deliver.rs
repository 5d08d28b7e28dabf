//! The commands that send (`listen`, `sweep`, `dispatch`, `send`): they need the functions'
//! whole configuration — `DATABASE_URL`, `WEBHOOK_URL`, `WEBHOOK_AUTH_TOKEN`,
//! `WEBHOOK_SIGNING_SECRET`, every missing one named at once — and a database that
//! `webhooks migrate` has installed; they never migrate it themselves.

use clap::Subcommand;
use delivery::dispatch::DispatchReport;
use delivery::dispatch::now::{send_now, send_retrying};
use delivery::dispatch::report::render_dispatch;
use delivery::listen::ListenOptions;
use delivery::ops::ids::IdPrefix;
use delivery::ops::output::render;
use delivery::sweep::SweepOptions;
use delivery::sweep::report::render_sweep;
use delivery::{Clock, Deps, out, schema};

use crate::Verdict;
use crate::ids::resolve;
use crate::parse::{SweepEvery, sweep_every};

/// The commands that send: they need the functions' whole configuration.
#[derive(Subcommand, Debug)]
pub(crate) enum Delivery {
    /// Dispatch each delivery the moment its booking commits (LISTEN/NOTIFY), until Ctrl-C or SIGTERM.
    /// Needs a session connection: not a transaction pooler (docs/connecting.md).
    Listen {
        /// Also run the retry sweep this often, at least 1s, e.g. 10m; `off` to leave retries
        /// to the schedule.
        #[arg(long, default_value = "10m", value_parser = sweep_every)]
        sweep_every: SweepEvery,
    },
    /// Run one retry sweep now and print its statistics: what is due (retries whose time has
    /// come, deliveries never dispatched, expired leases); `send --retrying` sends the rest.
    Sweep {
        /// Deliveries per batch, 1 to 10000 (default WEBHOOK_SWEEP_BATCH).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=10_000))]
        batch_size: Option<u16>,
        /// Print JSON (the retry-sweep function's report) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Deliver the given ids now if they are due (or never attempted), or up to --limit
    /// never-attempted deliveries.
    Dispatch {
        /// Delivery ids, whole or their first digits (e.g. 381ff777).
        #[arg(required_unless_present = "limit")]
        ids: Vec<IdPrefix>,
        /// Deliver up to this many pending deliveries instead, 1 to 10000.
        #[arg(long, conflicts_with = "ids", value_parser = clap::value_parser!(u16).range(1..=10_000))]
        limit: Option<u16>,
        /// Print JSON (the dispatch function's report) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Send deliveries now, due or not: the given ids, or every one waiting for a retry.
    ///
    /// Claimed as dispatch and the sweep claim (a lease, so nothing is sent twice; a replaced
    /// approved/rejected notification ends superseded, unsent), without waiting for the next
    /// retry's time. One that fails again gets its next retry as after any attempt.
    Send {
        /// Delivery ids, whole or their first digits (e.g. 381ff777).
        #[arg(required_unless_present = "retrying", conflicts_with = "retrying")]
        ids: Vec<IdPrefix>,
        /// Send every delivery waiting for a retry instead (next due first).
        #[arg(long)]
        retrying: bool,
        /// With --retrying: send at most this many, 1 to 100000.
        #[arg(long, default_value_t = 1_000, requires = "retrying", value_parser = clap::value_parser!(u32).range(1..=100_000))]
        limit: u32,
        /// Print JSON (shaped like the dispatch function's report) instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// The whole configuration and a database with the schema installed, or why not.
async fn ready() -> Result<Deps, Box<dyn std::error::Error>> {
    let deps = Deps::from_env()?;
    let db = deps.pool.get().await;
    let db = db.map_err(|e| delivery::Error::from(e).reaching(&deps.config.db))?;
    schema::require_installed(&db).await?;
    Ok(deps)
}

/// Runs a command that sends.
pub(crate) async fn deliver(command: Delivery) -> Result<Verdict, Box<dyn std::error::Error>> {
    let clock = Clock::System;
    let deps = ready().await?;
    let (report, json): (DispatchReport, bool) = match command {
        Delivery::Listen { sweep_every } => {
            // Ctrl-C or SIGTERM (what systemd, ECS and Kubernetes send): finish the batch in
            // flight and exit 0, rather than die with deliveries leased until their lease ends.
            let shutdown = delivery::signal::stop_requested();
            let options = ListenOptions {
                sweep_every: sweep_every.0,
            };
            delivery::listen::listen(&deps, clock, options, shutdown).await?;
            return Ok(Verdict::Fine);
        }
        Delivery::Sweep { batch_size, json } => {
            let options = SweepOptions {
                batch_size: batch_size.map_or(deps.config.sweep_batch, usize::from),
                budget: deps.config.sweep_budget,
                deadline: None,
            };
            let report = delivery::sweep::sweep(&deps, options, clock).await?;
            out::print(&render(&report, json, |style| {
                render_sweep(&report, style)
            })?);
            return Ok(Verdict::Fine);
        }
        Delivery::Dispatch {
            limit: Some(limit),
            json,
            ..
        } => (
            delivery::dispatch::dispatch_fresh(&deps, limit.into(), clock, None).await?,
            json,
        ),
        Delivery::Dispatch { ids, json, .. } => {
            let Some(ids) = resolve_on(&deps, &ids).await? else {
                return Ok(Verdict::Problem);
            };
            let wait = deps.config.dispatch_wait;
            let report = delivery::dispatch::dispatch_ids(&deps, &ids, clock, wait).await?;
            (report, json)
        }
        Delivery::Send {
            retrying: true,
            limit,
            json,
            ..
        } => (send_retrying(&deps, limit as usize, clock).await?, json),
        Delivery::Send { ids, json, .. } => {
            let Some(ids) = resolve_on(&deps, &ids).await? else {
                return Ok(Verdict::Problem);
            };
            (send_now(&deps, &ids, clock).await?, json)
        }
    };
    out::print(&render(&report, json, |style| {
        render_dispatch(&report, style)
    })?);
    Ok(Verdict::Fine)
}

/// The whole ids `given` name, on a pooled connection.
async fn resolve_on(
    deps: &Deps,
    given: &[IdPrefix],
) -> Result<Option<Vec<uuid::Uuid>>, Box<dyn std::error::Error>> {
    let db = deps.pool.get().await.map_err(delivery::Error::from)?;
    let named = resolve(&db, given).await?;
    Ok(named.map(|named| named.into_iter().map(|n| n.id).collect()))
}
