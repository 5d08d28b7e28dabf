//! Writing what happened, as it happens: completed attempts in groups (every [`RECORD_EVERY`]
//! completions or [`RECORD_AFTER`]), one statement a group — an attempt row each and the
//! delivery's new state ([`crate::db::sql::OUTCOME_RECORDING`]) — row by row if the statement
//! fails, and the deliveries never sent given back ([`crate::db::sql::LEASE_RELEASE`]).
//!
//! An invocation killed mid-batch loses only the requests in flight and the completions of
//! the last [`RECORD_AFTER`]; their leases expire and a later sweep sends them again under the
//! same `webhook-id`. If writing a group fails on the statement (a row the database refuses,
//! e.g. its delivery was deleted mid-send), the group is written row by row: the bad row is
//! logged and skipped, the others are recorded. If the connection fails (after one retry on a
//! fresh one), no further request is started and the error is returned.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_postgres::Client;
use tokio_postgres::types::{ToSql, Type};
use uuid::Uuid;

use super::attempt::{Attempted, Completion};
use super::claim::Claimed;
use super::delivered::{DeliveryOutcome, Recorded};
use super::endpoint::health::{self, After, Health, hold_failures};
use crate::db::{query_in_transaction, sql, with_retry};
use crate::deps::Deps;
use crate::error::Result;
use crate::outcome::AttemptResult;
use crate::status::DeliveryStatus;

/// Outcomes are written at the latest once this many have completed (each statement costs
/// about half a millisecond of parsing and planning however many rows it writes: at 50 rows a
/// group that was the tenth of Postgres's time in a fast drain)...
pub(crate) const RECORD_EVERY: usize = 200;
/// ...or this long after the oldest of them completed.
pub(crate) const RECORD_AFTER: Duration = Duration::from_millis(200);

/// Records `outcomes` in one statement. Returns the ids whose state was updated, each with
/// whether a later status notification of its booking is unresolved (it may have waited for
/// this one); an id that is missing lost its lease to another worker while in flight (its
/// attempt row is still kept). Safe to repeat with the same outcomes: a write of them may have
/// committed unseen (see [`sql::OUTCOME_RECORDING`]).
pub(crate) async fn record_outcomes(
    db: &Client,
    outcomes: &[Attempted],
) -> Result<HashMap<Uuid, bool>> {
    if outcomes.is_empty() {
        return Ok(HashMap::new());
    }
    let n = outcomes.len();
    let mut ids = Vec::with_capacity(n);
    let mut leases = Vec::with_capacity(n);
    let mut attempts = Vec::with_capacity(n);
    let mut started = Vec::with_capacity(n);
    let mut durations = Vec::with_capacity(n);
    let mut codes: Vec<Option<i32>> = Vec::with_capacity(n);
    let mut kinds: Vec<Option<&str>> = Vec::with_capacity(n);
    let mut errors: Vec<Option<&str>> = Vec::with_capacity(n);
    let mut statuses = Vec::with_capacity(n);
    let mut next_at: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(n);
    let mut resolved: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(n);
    let mut finished = Vec::with_capacity(n);
    let mut held = Vec::with_capacity(n);
    for o in outcomes {
        let t = &o.transition;
        ids.push(o.claimed.id);
        leases.push(o.claimed.lease);
        attempts.push(o.claimed.attempt);
        started.push(o.attempt.started_at);
        durations.push(o.attempt.duration_ms);
        codes.push(match &o.attempt.result {
            AttemptResult::Response { status, .. } => Some(i32::from(*status)),
            AttemptResult::Transport { .. } => None,
        });
        kinds.push(t.error_kind.map(|k| k.as_str()));
        errors.push(t.error.as_deref());
        statuses.push(t.status.as_str());
        next_at.push(t.next_retry_at);
        resolved.push(t.resolved_at);
        finished.push(o.finished_at);
        held.push(o.held);
    }
    let params: [(&(dyn ToSql + Sync), Type); 13] = [
        (&ids, Type::UUID_ARRAY),
        (&leases, Type::TIMESTAMPTZ_ARRAY),
        (&attempts, Type::INT4_ARRAY),
        (&started, Type::TIMESTAMPTZ_ARRAY),
        (&durations, Type::INT4_ARRAY),
        (&codes, Type::INT4_ARRAY),
        (&kinds, Type::TEXT_ARRAY),
        (&errors, Type::TEXT_ARRAY),
        (&statuses, Type::TEXT_ARRAY),
        (&next_at, Type::TIMESTAMPTZ_ARRAY),
        (&resolved, Type::TIMESTAMPTZ_ARRAY),
        (&finished, Type::TIMESTAMPTZ_ARRAY),
        (&held, Type::BOOL_ARRAY),
    ];
    // The usual group holds nothing: the statement without the held flag (less per row).
    let (statement, params) = if held.contains(&true) {
        (sql::OUTCOME_RECORDING, &params[..])
    } else {
        (sql::OUTCOME_RECORDING_COUNTED, &params[..12])
    };
    let rows = query_in_transaction(db, sql::RECORDING_BEGIN, statement, params).await?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}

/// Gives back `unsent`, claimed and never sent: their leases cleared and their reserved attempt
/// numbers returned, where the lease is still ours. Returns the ids given back; one missing
/// was reclaimed by another worker meanwhile. Safe to repeat.
pub(crate) async fn release_unsent(db: &Client, unsent: &[Claimed]) -> Result<Vec<Uuid>> {
    if unsent.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = unsent.iter().map(|c| c.id).collect();
    let leases: Vec<DateTime<Utc>> = unsent.iter().map(|c| c.lease).collect();
    let rows = query_in_transaction(
        db,
        sql::RECORDING_BEGIN,
        sql::LEASE_RELEASE,
        &[(&ids, Type::UUID_ARRAY), (&leases, Type::TIMESTAMPTZ_ARRAY)],
    )
    .await?;
    rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
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
    // The endpoint's health first: with the breaker open after this group, its failures are
    // held, not counted toward max_retries.
    let health = Health::of(&sent, deps.config.retry.retry_after_max);
    if let Some(after) = record_health(deps, &sent, health).await? {
        hold_failures(&mut sent, &after);
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

/// What the group tells about the endpoint's health, written to its row (one statement, which
/// writes nothing when nothing changes): failures count toward opening the breaker, an answer
/// closes it, a `Retry-After` pauses every worker ([`super::endpoint`]). Returns the endpoint
/// after, when the group could change it.
async fn record_health(deps: &Deps, sent: &[Attempted], health: Health) -> Result<Option<After>> {
    if health.is_news() {
        // A failure or a pause: the next claim reads the service again.
        deps.saw_endpoint(Some(false), Some(false));
    }
    let answers_only = health.answered && !health.is_news();
    if !health.worth_recording() || (answers_only && deps.endpoint_quiet()) {
        // Nothing to tell a quiet service (the usual group): no statement at all.
        return Ok(None);
    }
    // The group's own clock: the engine's (a test's fixed instant), not this machine's.
    let now = sent.iter().map(|a| a.finished_at).max();
    let origin = deps.config.webhook_origin();
    let (origin, policy) = (origin.as_str(), &deps.config.endpoint);
    let after = with_retry(&deps.pool, |db| async move {
        health::record(&db, origin, now, health, policy).await
    })
    .await?;
    // No row: it was quiet; closed after answers: quiet now.
    let closed = after.as_ref().is_none_or(|a| a.state == "closed");
    deps.saw_endpoint(None, Some(answers_only && closed));
    Ok(after)
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
