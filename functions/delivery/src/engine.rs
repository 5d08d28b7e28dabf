//! The delivery engine shared by dispatch, sweep and listen: send a batch of claimed
//! deliveries with bounded concurrency, decide each next state, record them all at once.

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use futures::StreamExt as _;
use uuid::Uuid;

use crate::claim::Claimed;
use crate::outcome::decide;
use crate::record::{Attempted, record_outcomes};
use crate::send::Sender;
use crate::status::DeliveryStatus;
use crate::{Clock, Config, Result};

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

/// What became of one claimed delivery: its attempt made and its new state recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryOutcome {
    /// Delivery id.
    pub id: Uuid,
    /// Its new status.
    pub status: DeliveryStatus,
    /// True when it was reclaimed from a worker whose lease had expired.
    pub reclaimed: bool,
    /// False when another worker took the delivery over while this attempt was in flight; the
    /// attempt is recorded but the state is theirs.
    pub recorded: bool,
}

/// Sends every delivery in `batch` (at most `config.sweep_concurrency` at a time) and records
/// the outcomes in one statement. Fails only if recording fails; the leases then expire and a
/// later sweep sends again under the same `webhook-id`.
pub async fn deliver(
    deps: &Deps,
    batch: Vec<Claimed>,
    clock: Clock,
) -> Result<Vec<DeliveryOutcome>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let outcomes: Vec<Attempted> = futures::stream::iter(batch)
        .map(|claimed| attempt(deps, claimed, clock))
        .buffer_unordered(deps.config.sweep_concurrency)
        .collect()
        .await;
    let db = deps.pool.get().await?;
    let updated = record_outcomes(&db, &outcomes).await?;
    Ok(outcomes
        .iter()
        .map(|o| {
            let recorded = updated.contains(&o.claimed.id);
            log(o, recorded);
            DeliveryOutcome {
                id: o.claimed.id,
                status: o.transition.status,
                reclaimed: o.claimed.reclaimed,
                recorded,
            }
        })
        .collect())
}

async fn attempt(deps: &Deps, claimed: Claimed, clock: Clock) -> Attempted {
    let attempt = deps
        .sender
        .send(claimed.id, &claimed.payload, clock.now())
        .await;
    let finished_at: DateTime<Utc> = clock.now();
    let transition = decide(
        claimed.id,
        claimed.attempt_count,
        claimed.max_retries,
        &attempt,
        &deps.config.retry,
        finished_at,
    );
    Attempted {
        claimed,
        attempt,
        transition,
        finished_at,
    }
}

fn log(o: &Attempted, recorded: bool) {
    let t = &o.transition;
    let (id, kind) = (o.claimed.id, o.claimed.webhook_type.as_str());
    let (outcome, latency_ms) = (t.status.as_str(), o.attempt.duration_ms);
    let error_kind = t.error_kind.map(|k| k.as_str());
    if !recorded {
        tracing::warn!(
            delivery_id = %id, webhook_type = kind, attempt = t.attempt, outcome, latency_ms,
            "lease lost while in flight: another worker owns this delivery; attempt kept, state not written"
        );
    } else if t.status == DeliveryStatus::Succeeded {
        tracing::info!(delivery_id = %id, webhook_type = kind, attempt = t.attempt, outcome, latency_ms, status_code = t.status_code, "delivered");
    } else {
        // No error excerpt: receivers echo the address (and worse) in error bodies. The
        // excerpt, token masked, is in webhook_attempts.error.
        tracing::warn!(
            delivery_id = %id, webhook_type = kind, attempt = t.attempt, outcome, latency_ms,
            status_code = t.status_code, error_kind,
            next_retry_at = t.next_retry_at.map(|at| at.to_rfc3339()), "delivery attempt failed"
        );
    }
}
