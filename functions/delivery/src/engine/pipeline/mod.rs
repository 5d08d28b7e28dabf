//! The sweep's pipeline: the next claim runs while the current batch is on the wire, so neither
//! the receiver nor the database waits for the other.
//!
//! Three parts run at once. The *claimer* takes due deliveries a batch at a time and queues
//! them, and claims the next batch as soon as the current one is queued; the queue holds half
//! a batch (at least `WEBHOOK_SWEEP_CONCURRENCY` rows), so the next claim has that long to
//! come back before the senders run dry. A claim waits while more is claimed and unrecorded
//! than the queue, the requests in flight and two recording groups: the sends never run ahead
//! of the recorder by more than that and a batch. The *senders* take deliveries from the queue, at
//! most `WEBHOOK_SWEEP_CONCURRENCY` at a time. The *recorder* writes completed attempts in groups as they come
//! ([`crate::engine`]: every [`RECORD_EVERY`] completions or [`RECORD_AFTER`]) and tells the
//! claimer what it recorded.
//!
//! Leases and deadlines count what is ahead: each claim is leased for the worst case of
//! everything claimed and not yet recorded plus itself, and takes only as many rows as can
//! still be sent, behind those, before the Lambda deadline. Hand-off is the engine's: when a
//! recorded delivery has a later notification of its booking waiting, the claimer claims it
//! next ([`HAND_OFF_ROUNDS`] links of a chain at most).
//!
//! A claim that fails stops further claims; what is already claimed is still sent and
//! recorded, then the error is returned. A recording that fails (after its retry on a fresh
//! connection) ends everything at once, as in the engine.
//!
//! The claimer's decisions are [`turns`]: it never waits for the recorder while nothing is
//! outstanding (nobody would wake it), and every drain ends. Before a claim it asks the
//! notification service ([`gate`]): held, probed, paced or free. And should anything stall anyway,
//! time is watched: at the drain's `stop_at` no more is claimed, nothing queued is sent (it is
//! given back), and what is in flight is recorded.
//!
//! [`RECORD_AFTER`]: crate::engine::RECORD_AFTER

pub(crate) mod gate;
mod turns;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::clock::BatchClock;
use crate::clock::Clock;
use crate::db::with_retry;
use crate::deps::Deps;
use crate::engine::attempt::attempt;
use crate::engine::claim::{Claim, Claimed, claim_due, claim_followers};
use crate::engine::deliver::HAND_OFF_ROUNDS;
use crate::engine::delivered::DeliveryOutcome;
use crate::engine::endpoint::{Gate, Hold, pace};
use crate::engine::lease::{lease_for, rows_that_fit};
use crate::engine::record::{Progress, RECORD_EVERY, record_as_completed};

use crate::error::Error;
use crate::error::Result;
use turns::{DuePlan, Step, Turns, plan_due};

/// How the sweep drains.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// Rows per claim, at most.
    pub(crate) batch_size: usize,
    /// No due batch is claimed once this much time has passed since `started` (the first is).
    pub(crate) budget: Duration,
    pub(crate) started: Instant,
    /// The Lambda deadline.
    pub(crate) deadline: Option<Instant>,
    /// The watchdog: should the drain still run then (something stalled), nothing more is
    /// claimed or sent, and it ends once what is in flight is recorded.
    pub(crate) stop_at: Option<Instant>,
}

/// What a drain did, besides the outcomes it handed over as they were recorded.
#[derive(Debug, Default)]
pub(crate) struct Drained {
    /// The deliveries the claims ended `superseded` (never sent).
    pub(crate) superseded: Vec<DeliveryOutcome>,
    /// Due claims that took something.
    pub(crate) batches: usize,
    /// Time (the budget or the deadline) stopped the claims.
    pub(crate) budget_exhausted: bool,
    /// The watchdog stopped the drain ([`Plan::stop_at`]).
    pub(crate) stopped: bool,
    /// Why the endpoint held the due deliveries, if it did ([`crate::engine::endpoint`]).
    pub(crate) held: Option<Hold>,
    /// Probes sent (one at most, each time the breaker's cool-down has passed).
    pub(crate) probes: usize,
}

/// Claims, sends and records due deliveries until nothing due is left or time is up, handing
/// each recorded outcome to `written` as it is written: a long drain keeps no list of them.
pub(crate) async fn drain(
    deps: &Deps,
    clock: Clock,
    plan: Plan,
    written: impl FnMut(DeliveryOutcome),
) -> Result<Drained> {
    let concurrency = deps.config.sweep_concurrency.max(1);
    let (queue, mut queued) = mpsc::channel::<(Claimed, BatchClock)>(queue_len(&plan, deps));
    let (completed, completions) = mpsc::unbounded_channel();
    let (progress, progressed) = mpsc::unbounded_channel();
    // Set by the claimer when the watchdog fires: the senders give back what they still hold.
    let stopped = AtomicBool::new(false);
    let stopped = &stopped;
    let sending = async move {
        futures::stream::poll_fn(move |cx| queued.poll_recv(cx))
            .map(|(claimed, batch_clock)| attempt(deps, claimed, batch_clock, stopped))
            .buffer_unordered(concurrency)
            .for_each(|completion| {
                // The recorder lives until every completion is taken, or the drain is abandoned.
                let _ = completed.send((Instant::now(), completion));
                async {}
            })
            .await;
        Ok(())
    };
    let recording = record_as_completed(deps, completions, Some(progress), written);
    let claiming = async move {
        let claimer = Claimer::new(deps, clock, plan, stopped);
        Ok(claimer.run(queue, progressed).await)
    };
    let ((), (), claimed) = tokio::try_join!(sending, recording, claiming)?;
    match claimed.error {
        Some(err) => Err(err),
        None => Ok(claimed.drained),
    }
}

/// Claimed deliveries waiting for a sender, at most: half a batch, at least the concurrency.
fn queue_len(plan: &Plan, deps: &Deps) -> usize {
    (plan.batch_size / 2)
        .max(deps.config.sweep_concurrency)
        .max(1)
}

/// The claiming side of a drain: runs the [`Turns`] against the database.
struct Claimer<'a> {
    deps: &'a Deps,
    clock: Clock,
    plan: Plan,
    stopped: &'a AtomicBool,
    /// Only rows due when the sweep started: the first claim's time, on the database's clock.
    cutoff: Option<chrono::DateTime<chrono::Utc>>,
    turns: Turns,
    /// The hand-off round that claimed a delivery (due claims are round 0).
    rounds: HashMap<Uuid, usize>,
    drained: Drained,
    error: Option<Error>,
}

impl<'a> Claimer<'a> {
    fn new(deps: &'a Deps, clock: Clock, plan: Plan, stopped: &'a AtomicBool) -> Self {
        Claimer {
            deps,
            clock,
            plan,
            stopped,
            cutoff: clock.sql_now(),
            turns: Turns::default(),
            rounds: HashMap::new(),
            drained: Drained::default(),
            error: None,
        }
    }

    /// Claims until nothing is left to claim and everything claimed is recorded, a claim
    /// fails, or the watchdog fires. Dropping `queue` then lets the senders finish.
    async fn run(
        mut self,
        queue: mpsc::Sender<(Claimed, BatchClock)>,
        mut progressed: mpsc::UnboundedReceiver<Progress>,
    ) -> Self {
        let stop_at = self.plan.stop_at;
        let watchdog = async move {
            match stop_at {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(watchdog);
        loop {
            while let Ok(progress) = progressed.try_recv() {
                self.progressed(progress);
            }
            let claimed = match self.turns.next() {
                Step::Done => break,
                Step::HandOff(recorded) => self.hand_off(recorded).await,
                Step::Due => self.next_due().await,
                Step::Wait => {
                    // The recorder frees room under the deadline and brings hand-offs.
                    tokio::select! {
                        progress = progressed.recv() => match progress {
                            Some(progress) => self.progressed(progress),
                            None => break,
                        },
                        () = &mut watchdog => self.stop(),
                    }
                    continue;
                }
            };
            match claimed {
                Err(err) => {
                    self.error = Some(err);
                    break;
                }
                Ok(Some(claim)) => {
                    if self.enqueue(claim, &queue).await.is_err() {
                        break;
                    }
                }
                Ok(None) => {}
            }
        }
        self
    }

    /// The recorder wrote a group.
    fn progressed(&mut self, progress: Progress) {
        self.turns.progressed(progress.recorded, progress.hands_on);
    }

    /// The watchdog fired: nothing more is claimed or sent.
    fn stop(&mut self) {
        if !self.drained.stopped {
            tracing::error!(
                outstanding = self.turns.outstanding(),
                "the sweep is still running at its deadline: claiming stopped, unsent deliveries given back"
            );
        }
        self.drained.stopped = true;
        self.drained.budget_exhausted = true;
        self.stopped.store(true, Ordering::Relaxed);
        self.turns.stop();
    }

    /// How many more rows may be claimed: all of them and everything outstanding must fit
    /// before the deadline.
    fn room(&self, max: usize) -> usize {
        let (concurrency, timeout) = (self.deps.config.sweep_concurrency, self.deps.config.timeout);
        let outstanding = self.turns.outstanding();
        rows_that_fit(
            self.plan.deadline,
            max.saturating_add(outstanding),
            concurrency,
            timeout,
        )
        .saturating_sub(outstanding)
        .min(max)
    }

    /// The lease for `rows` more, queued behind everything outstanding.
    fn lease(&self, rows: usize) -> Duration {
        lease_for(
            self.turns.outstanding().saturating_add(rows),
            &self.deps.config,
        )
    }

    /// The next due batch; `None` when none may be claimed now (the turns say whether ever).
    async fn next_due(&mut self) -> Result<Option<Claim>> {
        let batches = self.drained.batches;
        // The next claim waits until what is claimed and unrecorded fits in the queue, the
        // requests in flight and two recording groups (one being written, one filling): if
        // recording falls behind the sends, claiming waits for it, so completions never pile
        // up unwritten (memory, and what a kill would lose).
        let unrecorded_most = queue_len(&self.plan, self.deps)
            + self.deps.config.sweep_concurrency
            + 2 * RECORD_EVERY;
        let over_budget = self.plan.started.elapsed() >= self.plan.budget;
        let room = self.room(self.plan.batch_size.max(1));
        let outstanding = self.turns.outstanding();
        let limit = match plan_due(outstanding, unrecorded_most, batches, over_budget, room) {
            DuePlan::Claim(limit) => limit,
            DuePlan::Blocked => {
                self.turns.due_blocked();
                return Ok(None);
            }
            DuePlan::Stop { first } => {
                if first {
                    tracing::warn!(
                        "the deadline leaves no time for one request: make the function's timeout longer than WEBHOOK_TIMEOUT_MS plus 5 s"
                    );
                }
                self.drained.budget_exhausted = true;
                self.turns.due_exhausted();
                return Ok(None);
            }
        };
        let now = self.clock.sql_now();
        // The endpoint first: held, probed, or paced ([`crate::engine::endpoint`]).
        let (limit, pace, probe) = match self.gate(now, true).await? {
            Gate::Held(hold) => {
                self.hold(hold);
                self.turns.due_exhausted();
                return Ok(None);
            }
            Gate::Probe => (1, None, true),
            Gate::Send(None) => (limit, None, false),
            Gate::Send(Some(pace)) => match self.paced_limit(pace, limit) {
                0 => {
                    self.drained.budget_exhausted = true;
                    self.turns.due_exhausted();
                    return Ok(None);
                }
                limit => (limit, Some(pace), false),
            },
        };
        let lease = self.lease(limit) + pace.map_or(Duration::ZERO, |pace| pace.span(limit));
        let (cutoff, supersede) = (self.cutoff, self.deps.config.supersede);
        let mut claim = with_retry(&self.deps.pool, |db| async move {
            claim_due(&db, cutoff, now, lease, limit, supersede).await
        })
        .await?;
        let Some(claimed_at) = claim.claimed_at else {
            self.turns.due_exhausted();
            return Ok(None);
        };
        self.cutoff.get_or_insert(claimed_at);
        self.drained.batches += 1;
        if let Some(pace) = pace {
            pace::pace(self.deps, &mut claim.to_send, pace).await?;
        }
        if probe {
            // One probe; the drain goes on only once it is recorded and closed the breaker.
            self.drained.probes += usize::from(!claim.to_send.is_empty());
            if claim.to_send.is_empty() {
                self.turns.due_exhausted();
            } else {
                self.turns.due_blocked();
            }
        }
        Ok(Some(claim))
    }

    /// The notifications that waited for the deliveries just recorded, if their chain is not
    /// too long and the deadline leaves room.
    async fn hand_off(&mut self, recorded: Vec<Uuid>) -> Result<Option<Claim>> {
        let round = 1 + recorded
            .iter()
            .filter_map(|id| self.rounds.get(id))
            .max()
            .copied()
            .unwrap_or(0);
        let limit = self.room(self.deps.config.sweep_batch.max(1));
        if round > HAND_OFF_ROUNDS || limit == 0 {
            return Ok(None);
        }
        let now = self.clock.sql_now();
        let (limit, pace) = match self.gate(now, false).await? {
            // Held or probing: the followers wait with everything else.
            Gate::Held(_) | Gate::Probe => return Ok(None),
            Gate::Send(pace) => (pace.map_or(limit, |p| self.paced_limit(p, limit)), pace),
        };
        if limit == 0 {
            return Ok(None);
        }
        let lease = self.lease(limit) + pace.map_or(Duration::ZERO, |pace| pace.span(limit));
        let (supersede, recorded) = (self.deps.config.supersede, &recorded);
        let mut claim = with_retry(&self.deps.pool, |db| async move {
            claim_followers(&db, recorded, now, lease, limit, supersede).await
        })
        .await?;
        if let Some(pace) = pace {
            pace::pace(self.deps, &mut claim.to_send, pace).await?;
        }
        for claimed in &claim.to_send {
            self.rounds.insert(claimed.id, round);
        }
        Ok((!claim.is_empty()).then_some(claim))
    }

    /// Reports what the claim superseded and queues the rest (waiting while the queue is
    /// full). Fails only if the senders are gone.
    async fn enqueue(
        &mut self,
        claim: Claim,
        queue: &mpsc::Sender<(Claimed, BatchClock)>,
    ) -> std::result::Result<(), ()> {
        self.drained
            .superseded
            .extend(claim.superseded.iter().map(DeliveryOutcome::superseded));
        let Some(claimed_at) = claim.claimed_at else {
            return Ok(());
        };
        let batch_clock = BatchClock::start(self.clock, claimed_at);
        self.turns.claimed(claim.to_send.len());
        for claimed in claim.to_send {
            queue.send((claimed, batch_clock)).await.map_err(|_| ())?;
        }
        Ok(())
    }
}
