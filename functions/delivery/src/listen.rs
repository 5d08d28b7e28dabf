//! Listen mode (`webhooks listen`): dispatch each delivery the moment its booking commits.
//!
//! The capture triggers NOTIFY channel `webhook_delivery` with the delivery id, and Postgres
//! delivers a NOTIFY only when the transaction commits — so no invocation and no polling is
//! needed. On every (re)connect a catch-up pass sends what was captured while nobody was
//! listening. If the connection drops, it reconnects with backoff (1 s doubling to 30 s).
//! Optionally it also runs the retry sweep on a period, so a laptop gets the full behaviour.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures::StreamExt as _;
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;
use uuid::Uuid;

use crate::dispatch::{dispatch_fresh, dispatch_ids};
use crate::sweep::{SweepOptions, sweep};
use crate::text::truncate;
use crate::{Clock, Deps, Result, sql};

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How listen mode runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenOptions {
    /// Also run the retry sweep this often (`None`: leave retries to the scheduled sweep).
    pub sweep_every: Option<Duration>,
}

/// Listens until `shutdown` completes; a batch in flight is finished and recorded first.
/// Errors are logged and followed by a reconnect; only the shutdown ends it.
pub async fn listen(
    deps: &Deps,
    clock: Clock,
    options: ListenOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    tokio::pin!(shutdown);
    let mut backoff = FIRST_BACKOFF;
    loop {
        match session(deps, clock, options, &mut backoff, shutdown.as_mut()).await {
            Ok(Ended::Shutdown) => return Ok(()),
            Ok(Ended::Disconnected) => tracing::warn!("listen connection closed; reconnecting"),
            Err(err) => tracing::warn!(error = %err, "listen failed; reconnecting"),
        }
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

enum Ended {
    Shutdown,
    Disconnected,
}

/// One connection's life: LISTEN, catch up, then dispatch ids as they arrive. Returns when the
/// connection ends, or on shutdown — checked between batches, never in the middle of one.
async fn session(
    deps: &Deps,
    clock: Clock,
    options: ListenOptions,
    backoff: &mut Duration,
    mut shutdown: Pin<&mut impl Future<Output = ()>>,
) -> Result<Ended> {
    let (client, messages) = deps.config.db.connect("booking-webhooks-listen").await?;
    let (ids_tx, mut ids_rx) = mpsc::unbounded_channel::<String>();
    // The connection must be polled for notifications to arrive; it ends when the client is
    // dropped or the server goes away, which closes the channel.
    let pump = tokio::spawn(async move {
        let mut messages = std::pin::pin!(messages);
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if ids_tx.send(n.payload().to_owned()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(error = %crate::error::chain(&err), "listen connection error");
                    break;
                }
            }
        }
    });
    let _stop_pump = AbortOnDrop(pump);
    client.batch_execute(sql::CAPTURE_LISTEN).await?;
    tracing::info!(channel = sql::CAPTURE_CHANNEL, "listening");
    *backoff = FIRST_BACKOFF;
    catch_up(deps, clock).await?;

    let mut sweeps = options.sweep_every.map(|every| {
        let mut timer = tokio::time::interval(every);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        timer
    });
    loop {
        tokio::select! {
            () = &mut shutdown => return Ok(Ended::Shutdown),
            received = ids_rx.recv() => {
                let Some(first) = received else { return Ok(Ended::Disconnected) };
                // Take everything that has arrived so far as one batch: one claim, one record.
                let mut payloads = vec![first];
                while let Ok(more) = ids_rx.try_recv() {
                    payloads.push(more);
                }
                let ids: Vec<Uuid> = payloads
                    .iter()
                    .filter_map(|p| match Uuid::parse_str(p) {
                        Ok(id) => Some(id),
                        Err(_) => {
                            tracing::warn!(payload = %truncate(p, 60), "ignoring a notification that is not a delivery id");
                            None
                        }
                    })
                    .collect();
                // The NOTIFY arrives after commit, so the rows are visible: no waiting.
                let report = dispatch_ids(deps, &ids, clock, Duration::ZERO).await?;
                tracing::info!(counts = ?report.counts, "dispatched on notify");
            }
            _ = tick(&mut sweeps) => {
                let options = SweepOptions { batch_size: deps.config.sweep_batch, budget: deps.config.sweep_budget };
                let report = sweep(deps, options, clock).await?;
                tracing::info!(report = ?report, "periodic sweep finished");
            }
        }
    }
}

/// Sends everything captured while nobody was listening.
async fn catch_up(deps: &Deps, clock: Clock) -> Result<()> {
    loop {
        let report = dispatch_fresh(deps, deps.config.sweep_batch, clock).await?;
        let sent = report.counts.succeeded + report.counts.retrying + report.counts.failed;
        if sent > 0 {
            tracing::info!(counts = ?report.counts, "catch-up batch dispatched");
        }
        if sent < deps.config.sweep_batch {
            return Ok(());
        }
    }
}

async fn tick(timer: &mut Option<tokio::time::Interval>) {
    match timer {
        Some(timer) => {
            timer.tick().await;
        }
        None => std::future::pending().await,
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
