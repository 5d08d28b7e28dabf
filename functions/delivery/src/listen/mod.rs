//! Listen mode (`webhooks listen`): dispatch each delivery the moment its booking commits.
//!
//! The capture triggers NOTIFY channel `webhook_delivery` with the delivery id, and Postgres
//! delivers a NOTIFY only when the transaction commits — so no invocation and no polling is
//! needed. On every (re)connect a catch-up pass sends what was captured while nobody was
//! listening. If the connection drops, it reconnects with backoff (1 s doubling to 30 s) —
//! once it has listened: a first connection that fails is an error at once (a wrong URL, a
//! server that is not there), not a wait that looks like a hang.
//! Optionally it also runs the retry sweep on a period, so a laptop gets the full behaviour.
//!
//! While bookings stream in, it polls instead and tells capture not to NOTIFY (V18): each
//! NOTIFY costs the booking's commit a database-wide lock. Protocol and guarantees in
//! [`awake`].
//!
//! LISTEN needs a session of its own: through a transaction pooler (PgBouncer in transaction
//! mode, Supabase's port 6543, RDS Proxy without pinning) notifications never reach the
//! client. So before listening it checks: a NOTIFY sent from a pooled connection must arrive
//! on the listening one within [`PROBE_WAIT`]. If it does not, listen stops with
//! [`Error::SessionRequired`] instead of waiting forever for notifications.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures::StreamExt as _;
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;
use tokio_postgres::types::Type;
use uuid::Uuid;

use crate::clock::Clock;
use crate::db::sql;
use crate::db::{query, with_retry};
use crate::deps::Deps;
use crate::dispatch::{dispatch_fresh, dispatch_ids_claiming_on};
use crate::engine::claim::SessionClaims;
use crate::error::Error;
use crate::error::Result;
use crate::sweep::{SweepOptions, sweep};
use crate::telemetry::json;

mod awake;

use awake::Poller;

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a probe NOTIFY may take to arrive, per try (three tries).
pub(crate) const PROBE_WAIT: Duration = Duration::from_secs(2);
/// The shortest sweep period accepted; shorter ones are raised to it.
pub(crate) const MIN_SWEEP_EVERY: Duration = Duration::from_secs(1);

/// How listen mode runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenOptions {
    /// Also run the retry sweep this often (`None`: leave retries to the scheduled sweep);
    /// at least [`MIN_SWEEP_EVERY`].
    pub sweep_every: Option<Duration>,
}

/// Listens until `shutdown` completes; a batch in flight is finished and recorded first.
/// Once it has listened, errors are logged and followed by a reconnect; only the shutdown ends
/// it, or [`Error::SessionRequired`] when the connection cannot hold a LISTEN session. Before
/// that, the first error is returned: a listener that never started is not left retrying.
pub async fn listen(
    deps: &Deps,
    clock: Clock,
    options: ListenOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    tokio::pin!(shutdown);
    let mut backoff = FIRST_BACKOFF;
    let mut listened = false;
    loop {
        let ended = session(
            deps,
            clock,
            options,
            &mut backoff,
            &mut listened,
            shutdown.as_mut(),
        );
        match ended.await {
            Ok(Ended::Shutdown) => return Ok(()),
            Ok(Ended::Disconnected) => tracing::warn!("listen connection closed; reconnecting"),
            Err(err @ Error::SessionRequired(_)) => return Err(err),
            Err(err) if !listened => return Err(err),
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
    listened: &mut bool,
    mut shutdown: Pin<&mut impl Future<Output = ()>>,
) -> Result<Ended> {
    let (client, messages) = deps.config.db.connect("booking-webhooks-listen").await?;
    let (ids_tx, mut ids_rx) = mpsc::unbounded_channel::<(String, String)>();
    // The connection must be polled for notifications to arrive; it ends when the client is
    // dropped or the server goes away, which closes the channel.
    let pump = tokio::spawn(async move {
        let mut messages = std::pin::pin!(messages);
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    let message = (n.channel().to_owned(), n.payload().to_owned());
                    if ids_tx.send(message).is_err() {
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
    probe_session(deps, &client, &mut ids_rx).await?;
    client.batch_execute(sql::CAPTURE_LISTEN).await?;
    // Notified ids are claimed on a second session connection with the claim prepared once:
    // the notification's way to the receiver skips the pool's check and the planner. (Not on
    // the listening connection: `webhooks doctor` finds listeners by their last statement.)
    let (claims, claims_connection) = deps.config.db.connect("booking-webhooks-listen").await?;
    let claims_connection = tokio::spawn(async move {
        let mut messages = std::pin::pin!(claims_connection);
        while let Some(Ok(_)) = messages.next().await {}
    });
    let _stop_claims_connection = AbortOnDrop(claims_connection);
    let claims = SessionClaims::prepare(claims).await?;
    // Before the catch-up: it must see what a booking that trusted a stale flag committed.
    let mut poller = Poller::start(&claims).await?;
    tracing::info!(channel = sql::CAPTURE_CHANNEL, "listening");
    *backoff = FIRST_BACKOFF;
    *listened = true;
    catch_up(deps, clock).await?;

    let mut sweeps = options.sweep_every.map(|every| {
        let mut timer = tokio::time::interval(every.max(MIN_SWEEP_EVERY));
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        timer
    });
    loop {
        let due = poller.next_due();
        tokio::select! {
            () = &mut shutdown => {
                poller.stop(&claims).await;
                return Ok(Ended::Shutdown);
            }
            received = ids_rx.recv() => {
                let Some(first) = received else { return Ok(Ended::Disconnected) };
                // Take everything that has arrived so far as one batch: one claim, one record.
                let mut payloads = vec![first];
                while let Ok(more) = ids_rx.try_recv() {
                    payloads.push(more);
                }
                let ids = delivery_ids(&payloads);
                // The NOTIFY arrives after commit, so the rows are visible: no waiting.
                let report = dispatch_ids_claiming_on(&claims, deps, &ids, clock).await?;
                tracing::info!(counts = %json(&report.counts), "dispatched on notify");
                poller.notified(&claims, ids.len()).await?;
            }
            () = until(due) => {
                if let Some(report) = poller.due(&claims, deps, clock).await?
                    && report.counts.taken() > 0
                {
                    tracing::info!(counts = %json(&report.counts), "dispatched on poll");
                }
            }
            _ = tick(&mut sweeps) => {
                let options = SweepOptions { batch_size: deps.config.sweep_batch, budget: deps.config.sweep_budget, deadline: None };
                let report = sweep(deps, options, clock).await?;
                tracing::info!(report = %json(&report), "periodic sweep finished");
            }
        }
    }
}

/// The delivery ids among `payloads` (channel, payload). Any role that may NOTIFY can put
/// anything up to 8000 bytes on the channel, so what is not an id is counted, never logged:
/// its text could forge log lines (newlines), drive a terminal (escape codes) or flood.
fn delivery_ids(payloads: &[(String, String)]) -> Vec<Uuid> {
    let (mut ids, mut ignored, mut longest) = (Vec::new(), 0_usize, 0_usize);
    for (_, payload) in payloads.iter().filter(|(c, _)| c == sql::CAPTURE_CHANNEL) {
        match Uuid::parse_str(payload) {
            Ok(id) => ids.push(id),
            Err(_) => {
                ignored += 1;
                longest = longest.max(payload.len());
            }
        }
    }
    if ignored > 0 {
        tracing::warn!(
            ignored,
            longest_bytes = longest,
            "ignoring notifications that are not delivery ids (their text is not logged)"
        );
    }
    ids
}

/// Sends everything captured while nobody was listening: batch after batch, as long as they
/// come back full — counting every row a batch took, sent or not (superseded, given back, lost
/// to another worker), or a batch that happened to hold one of those would end it early.
async fn catch_up(deps: &Deps, clock: Clock) -> Result<()> {
    loop {
        let report = dispatch_fresh(deps, deps.config.sweep_batch, clock, None).await?;
        let taken = report.counts.taken();
        if taken > 0 {
            tracing::info!(counts = %json(&report.counts), "catch-up batch dispatched");
        }
        if taken < deps.config.sweep_batch {
            return Ok(());
        }
    }
}

/// Checks that `client` holds a session: a NOTIFY sent from a pooled connection reaches it.
/// Through a transaction pooler it never does (the pooler hands the server connection to
/// other clients between transactions).
async fn probe_session(
    deps: &Deps,
    client: &tokio_postgres::Client,
    messages: &mut mpsc::UnboundedReceiver<(String, String)>,
) -> Result<()> {
    client.batch_execute(sql::SESSION_PROBE_LISTEN).await?;
    for _ in 0..3 {
        let token = Uuid::new_v4().to_string();
        let sent = token.as_str();
        with_retry(&deps.pool, |db| async move {
            query(&db, sql::SESSION_PROBE, &[(&sent, Type::TEXT)]).await
        })
        .await?;
        let arrived = tokio::time::timeout(PROBE_WAIT, async {
            while let Some((channel, payload)) = messages.recv().await {
                if channel == sql::SESSION_PROBE_CHANNEL && payload == token {
                    return true;
                }
            }
            false
        })
        .await;
        match arrived {
            Ok(true) => {
                client.batch_execute(sql::SESSION_PROBE_UNLISTEN).await?;
                return Ok(());
            }
            // The connection closed: let the caller reconnect.
            Ok(false) => return Err(Error::DatabaseTimeout(PROBE_WAIT)),
            Err(_) => {}
        }
    }
    Err(Error::SessionRequired(
        "a NOTIFY never reached the LISTEN connection, so DATABASE_URL looks like a transaction \
         pooler (PgBouncer in transaction mode, Supabase's port 6543, RDS Proxy); give listen a \
         direct or session-mode URL (docs/connecting.md)"
            .into(),
    ))
}

/// Waits until `at`, or forever without one.
async fn until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
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
