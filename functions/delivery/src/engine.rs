//! The delivery engine shared by dispatch, sweep and listen: send a batch of claimed
//! deliveries with bounded concurrency, decide each next state, and record the outcomes as
//! they complete.
//!
//! Recording is incremental and still batched: completed attempts are written together once
//! [`RECORD_EVERY`] have completed or [`RECORD_AFTER`] after the oldest unwritten one, while
//! the rest of the batch is still being sent. An invocation killed mid-batch loses only the
//! requests in flight and the completions of the last [`RECORD_AFTER`]; their leases expire
//! and a later sweep sends them again under the same `webhook-id`.
//!
//! If writing a group fails on the statement (a row the database refuses, e.g. its delivery
//! was deleted mid-send), the group is written row by row: the bad row is logged and skipped,
//! the others are recorded. If the connection fails (after one retry on a fresh one), no
//! further request is started and the error is returned.
//!
//! Deliveries the claim ended `superseded` are reported (and logged), never sent. And a status
//! notification whose turn had not come when it was claimed for — an earlier one of its
//! booking was in flight here — is handed on: once the batch is recorded, the worker claims
//! and sends the later notifications of the bookings it just recorded ([`HAND_OFF_ROUNDS`] at
//! most, and only as many as the deadline leaves time for). The sweep remains the safety net.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use futures::StreamExt as _;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::claim::{Claim, Claimed, Superseded, claim_followers, lease_for, rows_that_fit};
use crate::clock::{BatchClock, BootInstant};
use crate::db::with_retry;
use crate::outcome::decide;
use crate::record::{Attempted, record_outcomes, release_unsent};
use crate::send::Sender;
use crate::status::DeliveryStatus;
use crate::{Clock, Config, Result};

/// Outcomes are written at the latest once this many have completed (each statement costs
/// about half a millisecond of parsing and planning however many rows it writes: at 50 rows a
/// group that was the tenth of Postgres's time in a fast drain)...
pub(crate) const RECORD_EVERY: usize = 200;
/// ...or this long after the oldest of them completed.
pub(crate) const RECORD_AFTER: Duration = Duration::from_millis(200);
/// Hand-offs after one batch, at most: each takes only notifications captured later than the
/// ones just recorded, so the chain ends by itself; this bounds it anyway.
pub(crate) const HAND_OFF_ROUNDS: usize = 8;

/// What a handler needs, built once per process (Lambda cold start) and shared by reference.
#[derive(Debug, Clone)]
pub struct Deps {
    /// Validated configuration.
    pub config: Config,
    /// Postgres pool.
    pub pool: Pool,
    /// HTTP client for the notification service.
    pub sender: Sender,
}

impl Deps {
    /// Builds the pool and the HTTP client. Connects lazily: a database that is down shows up
    /// as an error on first use, not here.
    pub fn new(config: Config) -> Result<Self> {
        Ok(Deps {
            pool: config.db.pool()?,
            sender: Sender::new(&config)?,
            config,
        })
    }

    /// Reads and validates the environment, then builds everything.
    pub fn from_env() -> Result<Self> {
        Self::new(Config::from_env()?)
    }
}

/// Whether an attempt's outcome was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The attempt and the delivery's new state are stored.
    Yes,
    /// The attempt is stored, but another worker took the delivery over while this attempt
    /// was in flight: the state is theirs.
    LeaseLost,
    /// Nothing is stored: the database refused the row (e.g. the delivery was deleted while
    /// it was being sent). Logged.
    Refused,
    /// Never sent: the lease might have lapsed before the request could end (this worker was
    /// stopped or its machine suspended), or the invocation's time was up. Given back for the
    /// next claim, its attempt number returned; no attempt is stored.
    Returned,
}

/// What became of one claimed delivery: its attempt made and its outcome recorded — or, for
/// one the claim ended `superseded`, that and what replaced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryOutcome {
    /// Delivery id.
    pub id: Uuid,
    /// Its new status (as decided; stored only when `recorded` is [`Recorded::Yes`]).
    pub status: DeliveryStatus,
    /// True when it was reclaimed from a worker whose lease had expired.
    pub reclaimed: bool,
    /// Whether the outcome was written.
    pub recorded: Recorded,
    /// For a superseded delivery: the one that replaced it.
    pub superseded_by: Option<Uuid>,
    /// A later status notification of its booking was unresolved when this was recorded.
    followed: bool,
}

impl DeliveryOutcome {
    pub(crate) fn superseded(s: &Superseded) -> Self {
        tracing::info!(
            delivery_id = %s.id, webhook_type = s.webhook_type, superseded_by = %s.by,
            reclaimed = s.reclaimed,
            "superseded by a later notification of the same booking; not sent"
        );
        crate::metrics::observe_superseded(s.reclaimed);
        DeliveryOutcome {
            id: s.id,
            status: DeliveryStatus::Superseded,
            reclaimed: s.reclaimed,
            recorded: Recorded::Yes,
            superseded_by: Some(s.by),
            followed: false,
        }
    }

    /// Whether a notification that waited for this one may now have its turn: this worker
    /// recorded it, a later one is unresolved, and it is no longer in flight (supersede on) or
    /// final (off: strict order).
    fn hands_on(&self, supersede: bool) -> bool {
        self.recorded == Recorded::Yes && self.followed && (supersede || self.status.is_final())
    }
}

/// Sends every delivery `claim` leased (at most `config.sweep_concurrency` at a time),
/// records the outcomes as they complete, reports the ones it superseded, and hands on to
/// notifications that waited (see the module documentation). Fails only if the database
/// cannot be reached to record them; the unrecorded leases then expire and a later sweep
/// sends those deliveries again under the same `webhook-id`.
pub async fn deliver(deps: &Deps, claim: Claim, clock: Clock) -> Result<Vec<DeliveryOutcome>> {
    deliver_until(deps, claim, clock, None).await
}

/// [`deliver`], handing on only as long as `deadline` leaves time for a whole wave.
pub(crate) async fn deliver_until(
    deps: &Deps,
    mut claim: Claim,
    clock: Clock,
    deadline: Option<Instant>,
) -> Result<Vec<DeliveryOutcome>> {
    let (concurrency, timeout) = (deps.config.sweep_concurrency, deps.config.timeout);
    let supersede = deps.config.supersede;
    let mut outcomes: Vec<DeliveryOutcome> = Vec::new();
    for round in 0..=HAND_OFF_ROUNDS {
        outcomes.extend(claim.superseded.iter().map(DeliveryOutcome::superseded));
        let sent = send_and_record(deps, claim.to_send, clock).await?;
        let recorded: Vec<Uuid> = sent
            .iter()
            .filter(|o| o.hands_on(supersede))
            .map(|o| o.id)
            .collect();
        outcomes.extend(sent);
        let limit = rows_that_fit(deadline, deps.config.sweep_batch, concurrency, timeout);
        if recorded.is_empty() || round == HAND_OFF_ROUNDS || limit == 0 {
            break;
        }
        let (lease, now, recorded) = (lease_for(limit, &deps.config), clock.sql_now(), &recorded);
        claim = with_retry(&deps.pool, |db| async move {
            claim_followers(&db, recorded, now, lease, limit, supersede).await
        })
        .await?;
        if claim.is_empty() {
            break;
        }
    }
    Ok(outcomes)
}

/// Sends `batch` and records the outcomes as they complete.
async fn send_and_record(
    deps: &Deps,
    batch: Vec<Claimed>,
    clock: Clock,
) -> Result<Vec<DeliveryOutcome>> {
    let Some(first) = batch.first() else {
        return Ok(Vec::new());
    };
    let clock = BatchClock::start(clock, first.claimed_at);
    let batch_len = batch.len();
    let (completed, completions) = mpsc::unbounded_channel();
    // Dispatch has no time budget of its own: only the lease check can hold a send back.
    let never = AtomicBool::new(false);
    let never = &never;
    let sending = async move {
        futures::stream::iter(batch)
            .map(|claimed| attempt(deps, claimed, clock, never))
            .buffer_unordered(deps.config.sweep_concurrency)
            .for_each(|completion| {
                // The receiver lives until every completion is taken, or the batch is abandoned.
                let _ = completed.send((Instant::now(), completion));
                async {}
            })
            .await;
        Ok(())
    };
    // Both run at once; if recording fails, the sends not yet finished are dropped.
    let mut outcomes = Vec::with_capacity(batch_len);
    let recording = record_as_completed(deps, completions, None, |o| outcomes.push(o));
    tokio::try_join!(sending, recording)?;
    Ok(outcomes)
}

/// A claimed delivery after its turn with a sender.
#[derive(Debug)]
pub(crate) enum Completion {
    /// Sent: what happened, and the state it leads to.
    Sent(Attempted),
    /// Not sent (see [`Recorded::Returned`]); to be given back.
    Unsent(Claimed),
}

/// Sends `claimed` — unless `stopped` says time is up, or its lease might lapse before the
/// request could end: a request must never leave after its lease may have lapsed, or another
/// worker that reclaimed the row could have sent it, or a later decision of its booking,
/// meanwhile. The lease is read on the boot clock, which counts a stopped process and a
/// suspended machine, and must still cover the request's timeout and half of the lease margin
/// (recording the outcome).
pub(crate) async fn attempt(
    deps: &Deps,
    claimed: Claimed,
    clock: BatchClock,
    stopped: &AtomicBool,
) -> Completion {
    let needed = deps.config.timeout + deps.config.lease_margin / 2;
    if stopped.load(Ordering::Relaxed) || BootInstant::now().until(claimed.lease_ends) < needed {
        return Completion::Unsent(claimed);
    }
    let attempt = deps
        .sender
        .send(claimed.id, &claimed.payload, clock.now())
        .await;
    let finished_at = clock.now();
    let transition = decide(
        claimed.id,
        claimed.attempt.saturating_sub(1),
        claimed.max_retries,
        &attempt,
        &deps.config.retry,
        finished_at,
    );
    Completion::Sent(Attempted {
        claimed,
        attempt,
        transition,
        finished_at,
    })
}

/// What the recorder wrote, for whoever claims more meanwhile ([`crate::pipeline`]).
#[derive(Debug)]
pub(crate) struct Progress {
    /// Outcomes written (or refused) in this group.
    pub(crate) recorded: usize,
    /// Of those, the ones a later notification of their booking may have waited for.
    pub(crate) hands_on: Vec<Uuid>,
}

/// Takes completed attempts as they come and writes them in groups ([`RECORD_EVERY`],
/// [`RECORD_AFTER`]) until every attempt is written, telling `progress` about each group and
/// handing each outcome to `written` (the sweep counts them rather than keeping them all).
pub(crate) async fn record_as_completed(
    deps: &Deps,
    mut completions: mpsc::UnboundedReceiver<(Instant, Completion)>,
    progress: Option<mpsc::UnboundedSender<Progress>>,
    mut written: impl FnMut(DeliveryOutcome),
) -> Result<()> {
    while let Some((completed, oldest)) = completions.recv().await {
        let mut group = vec![oldest];
        // Counted from when the oldest completed, not from when the last write ended.
        let window = tokio::time::sleep_until((completed + RECORD_AFTER).into());
        tokio::pin!(window);
        while group.len() < RECORD_EVERY {
            // Completions already waiting join the group even when the window has passed
            // (the recorder is behind): otherwise the select below would pick the elapsed
            // window about every other time, the groups would shrink to a row or two, and the
            // recorder would fall further behind with every statement.
            tokio::select! {
                biased;
                next = completions.recv() => match next {
                    Some((_, completion)) => group.push(completion),
                    None => break,
                },
                () = &mut window => break,
            }
        }
        let recorded = record(deps, group).await?;
        if let Some(progress) = &progress {
            let hands_on = recorded
                .iter()
                .filter(|o| o.hands_on(deps.config.supersede))
                .map(|o| o.id)
                .collect();
            // The claimer may have stopped listening (a claim failed): nothing to tell.
            let _ = progress.send(Progress {
                recorded: recorded.len(),
                hands_on,
            });
        }
        recorded.into_iter().for_each(&mut written);
    }
    Ok(())
}

/// Writes one group: the attempts in one statement (row by row if the statement fails), and
/// gives back what was never sent.
async fn record(deps: &Deps, group: Vec<Completion>) -> Result<Vec<DeliveryOutcome>> {
    let (mut sent, mut unsent) = (Vec::new(), Vec::new());
    for completion in group {
        match completion {
            Completion::Sent(attempted) => sent.push(attempted),
            Completion::Unsent(claimed) => unsent.push(claimed),
        }
    }
    let mut outcomes = record_sent(deps, &sent).await?;
    if !unsent.is_empty() {
        let unsent = &unsent;
        with_retry(
            &deps.pool,
            |db| async move { release_unsent(&db, unsent).await },
        )
        .await?;
        for claimed in unsent {
            tracing::warn!(
                delivery_id = %claimed.id, webhook_type = claimed.webhook_type, attempt = claimed.attempt,
                "not sent: its lease might lapse before the request could end (was this worker stopped or suspended?) or time was up; given back for the next claim"
            );
        }
        outcomes.extend(unsent.iter().map(|claimed| DeliveryOutcome {
            id: claimed.id,
            status: DeliveryStatus::Retrying,
            reclaimed: claimed.reclaimed,
            recorded: Recorded::Returned,
            superseded_by: None,
            followed: false,
        }));
    }
    Ok(outcomes)
}

/// Records the attempts of `group` in one statement, or row by row if the statement fails.
async fn record_sent(deps: &Deps, group: &[Attempted]) -> Result<Vec<DeliveryOutcome>> {
    if group.is_empty() {
        return Ok(Vec::new());
    }
    let recorded = match write(deps, group).await {
        Ok(recorded) => recorded,
        Err(err) if err.is_connection() => return Err(err),
        Err(err) => {
            tracing::warn!(error = %err, rows = group.len(), "recording a group of outcomes failed; recording them one by one");
            let mut each = Vec::with_capacity(group.len());
            for attempted in group {
                each.push(match write(deps, std::slice::from_ref(attempted)).await {
                    Ok(recorded) => recorded
                        .into_iter()
                        .next()
                        .unwrap_or((Recorded::Refused, false)),
                    Err(err) if err.is_connection() => return Err(err),
                    Err(err) => {
                        tracing::error!(delivery_id = %attempted.claimed.id, error = %err, "outcome could not be recorded; skipped");
                        (Recorded::Refused, false)
                    }
                });
            }
            each
        }
    };
    Ok(group
        .iter()
        .zip(recorded)
        .map(|(attempted, (recorded, followed))| {
            log(attempted, recorded);
            crate::metrics::observe(
                &attempted.claimed.webhook_type,
                attempted.transition.status,
                attempted.attempt.duration_ms,
                attempted.claimed.reclaimed,
                recorded == Recorded::Yes,
            );
            DeliveryOutcome {
                id: attempted.claimed.id,
                status: attempted.transition.status,
                reclaimed: attempted.claimed.reclaimed,
                recorded,
                superseded_by: None,
                followed,
            }
        })
        .collect())
}

/// One statement for `group`, retried once on a fresh connection if the connection broke
/// (the write is idempotent: it may have committed unseen). With each outcome, whether a later
/// notification of its booking is unresolved.
async fn write(deps: &Deps, group: &[Attempted]) -> Result<Vec<(Recorded, bool)>> {
    let updated = with_retry(
        &deps.pool,
        |db| async move { record_outcomes(&db, group).await },
    )
    .await?;
    Ok(group
        .iter()
        .map(|a| match updated.get(&a.claimed.id) {
            Some(&followed) => (Recorded::Yes, followed),
            None => (Recorded::LeaseLost, false),
        })
        .collect())
}

fn log(o: &Attempted, recorded: Recorded) {
    let t = &o.transition;
    let (id, kind) = (o.claimed.id, o.claimed.webhook_type.as_str());
    let (outcome, latency_ms) = (t.status.as_str(), o.attempt.duration_ms);
    let error_kind = t.error_kind.map(|k| k.as_str());
    match recorded {
        Recorded::Refused | Recorded::Returned => {}
        Recorded::LeaseLost => tracing::warn!(
            delivery_id = %id, webhook_type = kind, attempt = t.attempt, outcome, latency_ms,
            "lease lost while in flight: another worker owns this delivery; attempt kept, state not written"
        ),
        Recorded::Yes if t.status == DeliveryStatus::Succeeded => {
            tracing::info!(delivery_id = %id, webhook_type = kind, attempt = t.attempt, outcome, latency_ms, status_code = t.status_code, "delivered")
        }
        // No error excerpt: receivers echo the address (and worse) in error bodies. The
        // excerpt, token masked, is in webhook_attempts.error.
        Recorded::Yes => tracing::warn!(
            delivery_id = %id, webhook_type = kind, attempt = t.attempt, outcome, latency_ms,
            status_code = t.status_code, error_kind,
            next_retry_at = t.next_retry_at.map(|at| at.to_rfc3339()), "delivery attempt failed"
        ),
    }
}
