//! Writing what happened: one `webhook_attempts` row per attempt and the delivery's new state,
//! for a whole batch in one statement ([`crate::sql::OUTCOME_RECORDING`]); and giving back the
//! deliveries that were claimed but never sent ([`crate::sql::LEASE_RELEASE`]).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tokio_postgres::Client;
use tokio_postgres::types::Type;
use uuid::Uuid;

use crate::Result;
use crate::claim::Claimed;
use crate::db::query_in_transaction;
use crate::outcome::{Attempt, AttemptResult, Transition};
use crate::sql;

/// A claimed delivery after its attempt: what happened and the state it leads to.
#[derive(Debug, Clone)]
pub(crate) struct Attempted {
    /// The delivery as claimed (id and lease).
    pub(crate) claimed: Claimed,
    /// The HTTP attempt.
    pub(crate) attempt: Attempt,
    /// The delivery's next state.
    pub(crate) transition: Transition,
    /// When the attempt ended (`last_attempt_at`).
    pub(crate) finished_at: DateTime<Utc>,
}

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
    }
    let rows = query_in_transaction(
        db,
        sql::BOUNDED_BEGIN,
        sql::OUTCOME_RECORDING,
        &[
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
        ],
    )
    .await?;
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
        sql::BOUNDED_BEGIN,
        sql::LEASE_RELEASE,
        &[(&ids, Type::UUID_ARRAY), (&leases, Type::TIMESTAMPTZ_ARRAY)],
    )
    .await?;
    rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
}
