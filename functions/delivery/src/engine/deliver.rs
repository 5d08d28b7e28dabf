//! Delivering a claim: send every leased delivery (bounded concurrency), record the outcomes
//! as they complete, report the superseded ones, and hand on to the notifications that waited
//! for what was just recorded ([`HAND_OFF_ROUNDS`] at most, only while the deadline leaves
//! time). Dispatch and listen deliver this way; the sweep pipelines the same steps
//! ([`super::pipeline`]).

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::attempt::attempt;
use super::claim::{Claim, Claimed, claim_followers};
use super::delivered::DeliveryOutcome;
use super::endpoint::{Gate, admit, pace};
use super::lease::{lease_for, rows_that_fit};
use super::record::record_as_completed;
use crate::clock::BatchClock;
use crate::clock::Clock;
use crate::db::with_retry;
use crate::deps::Deps;
use crate::error::Result;

/// Hand-offs after one batch, at most: each takes only notifications captured later than the
/// ones just recorded, so the chain ends by itself; this bounds it anyway.
pub(crate) const HAND_OFF_ROUNDS: usize = 8;

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
        let now = clock.sql_now();
        let (limit, pace) = match admit(deps, now, false, Duration::ZERO).await? {
            // Held: the followers wait for the sweep with everything else.
            Gate::Held(_) | Gate::Probe => break,
            Gate::Send(pace) => (pace.map_or(limit, |pace| pace.limit(limit)), pace),
        };
        let lease =
            lease_for(limit, &deps.config) + pace.map_or(Duration::ZERO, |pace| pace.span(limit));
        let recorded = &recorded;
        claim = with_retry(&deps.pool, |db| async move {
            claim_followers(&db, recorded, now, lease, limit, supersede).await
        })
        .await?;
        if let Some(pace) = pace {
            pace::pace(deps, &mut claim.to_send, pace).await?;
        }
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
