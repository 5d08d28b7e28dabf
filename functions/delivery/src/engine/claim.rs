//! Taking deliveries under a lease, so exactly one worker sends each (protocol in
//! [`crate::db::sql::claims`]). A claim also decides, for each status notification it takes,
//! whether a later one of the same booking superseded it (then it is ended `superseded`
//! instead of leased) and whether its turn has come (otherwise it is not taken). Sizing the
//! claims is [`super::lease`]'s.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Row};
use uuid::Uuid;

use super::lease::{count, millis};
use crate::clock::BootInstant;
use crate::db::{query, query_in_transaction, query_prepared, sql};
use crate::error::Result;

/// A delivery this worker owns until `lease`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// Delivery id, the idempotency key.
    pub(crate) id: Uuid,
    pub(crate) webhook_type: String,
    /// The exact body to sign and send.
    pub(crate) payload: String,
    /// This attempt's number, reserved by the claim: unique per delivery even when a lease is
    /// lost and another worker attempts it too.
    pub(crate) attempt: i32,
    /// Retries allowed after the first attempt.
    pub(crate) max_retries: i32,
    /// Our lease; recording the outcome checks it is still ours.
    pub(crate) lease: DateTime<Utc>,
    /// The capture order: sent as the body's `sequence`, which grows across the notifications
    /// of one booking (a receiver keeps the highest it applied and ignores an older decision
    /// arriving late).
    pub(crate) sequence: i64,
    /// Not before this moment (pacing: the endpoint's rate ceiling or slow start), if any.
    pub(crate) send_at: Option<std::time::Instant>,
    /// When, on this machine's boot clock, the lease may have lapsed: the lease's length
    /// counted from just before the claim was sent (the database started it later than that,
    /// so this errs early). No request is sent after it, less the request's timeout.
    pub(crate) lease_ends: BootInstant,
    /// True when the row was taken over from a worker whose lease expired.
    pub(crate) reclaimed: bool,
    /// When the claim ran, on the database's clock.
    pub(crate) claimed_at: DateTime<Utc>,
}

/// A delivery a claim ended `superseded`: never to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superseded {
    /// Delivery id.
    pub id: Uuid,
    /// The newest status notification of the same booking, which replaced it.
    pub by: Uuid,
    pub(crate) webhook_type: String,
    /// True when it was taken over from a worker whose lease had expired (that worker's
    /// attempt may have reached the receiver; none will again).
    pub reclaimed: bool,
}

/// What one claim took: deliveries to send, and deliveries it ended `superseded`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claim {
    /// Ours until their leases end.
    pub(crate) to_send: Vec<Claimed>,
    /// Final already; reported, never sent.
    pub(crate) superseded: Vec<Superseded>,
    /// When the claim ran, on the database's clock (`None` when it took nothing).
    pub(crate) claimed_at: Option<DateTime<Utc>>,
}

impl Claim {
    /// The claim's rows; `asked_at` is when the claim was sent, on the boot clock.
    fn from_rows(rows: &[Row], asked_at: BootInstant) -> Result<Self> {
        let mut claim = Claim::default();
        for row in rows {
            let claimed_at: DateTime<Utc> = row.try_get(7)?;
            claim.claimed_at = Some(claimed_at);
            match row.try_get::<_, Option<Uuid>>(8)? {
                Some(by) => claim.superseded.push(Superseded {
                    id: row.try_get(0)?,
                    by,
                    webhook_type: row.try_get(1)?,
                    reclaimed: row.try_get(6)?,
                }),
                None => {
                    let lease: DateTime<Utc> = row.try_get(5)?;
                    let length = (lease - claimed_at).to_std().unwrap_or_default();
                    claim.to_send.push(Claimed {
                        id: row.try_get(0)?,
                        webhook_type: row.try_get(1)?,
                        payload: row.try_get(2)?,
                        attempt: row.try_get(3)?,
                        max_retries: row.try_get(4)?,
                        lease,
                        lease_ends: asked_at.after(length),
                        sequence: row.try_get(10)?,
                        send_at: None,
                        reclaimed: row.try_get(6)?,
                        claimed_at,
                    })
                }
            }
        }
        Ok(claim)
    }

    /// Deliveries taken, to send or superseded.
    pub fn len(&self) -> usize {
        self.to_send.len() + self.superseded.len()
    }

    /// True when the claim took nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ids leased to this worker, to send.
    pub fn to_send(&self) -> Vec<Uuid> {
        self.to_send.iter().map(|c| c.id).collect()
    }

    /// The deliveries this claim ended `superseded`.
    pub fn superseded(&self) -> &[Superseded] {
        &self.superseded
    }
}

/// Runs one claim `statement` with `params` — in a transaction of its own opened by `begin`,
/// or as one statement in the caller's transaction — and reads what it took, noting on the
/// boot clock when it was sent (the lease check before each send counts from there).
async fn run(
    db: &Client,
    begin: Option<&str>,
    statement: &str,
    params: &[(&(dyn ToSql + Sync), Type)],
) -> Result<Claim> {
    let asked_at = BootInstant::now();
    let rows = match begin {
        Some(begin) => query_in_transaction(db, begin, statement, params).await?,
        None => query(db, statement, params).await?,
    };
    Claim::from_rows(&rows, asked_at)
}

/// Claims up to `limit` deliveries due by `cutoff` (default: the claim's own time) whose lease
/// is free at `now` (`None`: the database's clock) for the sweep, superseding replaced status
/// notifications when `supersede` is on.
pub(crate) async fn claim_due(
    db: &Client,
    cutoff: Option<DateTime<Utc>>,
    now: Option<DateTime<Utc>>,
    lease: Duration,
    limit: usize,
    supersede: bool,
) -> Result<Claim> {
    run(
        db,
        Some(sql::ORDERED_CLAIM_BEGIN),
        sql::DUE_CLAIM,
        &[
            (&cutoff, Type::TIMESTAMPTZ),
            (&now, Type::TIMESTAMPTZ),
            (&millis(lease), Type::INT8),
            (&count(limit), Type::INT8),
            (&supersede, Type::BOOL),
        ],
    )
    .await
}

/// Claims the given ids if they are claimable at `now` (`None`: the database's clock), for
/// dispatch, superseding replaced status notifications when `supersede` is on. One statement,
/// in the caller's transaction if there is one (dispatch itself uses [`claim_ids_async_commit`]).
pub async fn claim_ids(
    db: &Client,
    ids: &[Uuid],
    now: Option<DateTime<Utc>>,
    lease: Duration,
    supersede: bool,
) -> Result<Claim> {
    run_ids(db, None, sql::IDS_CLAIM, ids, now, lease, supersede).await
}

/// [`claim_ids`] in a transaction of its own whose commit does not wait for the disk
/// ([`sql::CLAIM_BEGIN`]): dispatch's claim, one round trip and no fsync on a notification's
/// way to the receiver.
pub(crate) async fn claim_ids_async_commit(
    db: &Client,
    ids: &[Uuid],
    now: Option<DateTime<Utc>>,
    lease: Duration,
    supersede: bool,
) -> Result<Claim> {
    run_ids(
        db,
        Some(sql::CLAIM_BEGIN),
        sql::IDS_CLAIM,
        ids,
        now,
        lease,
        supersede,
    )
    .await
}

/// Listen's claims — of given ids ([`sql::IDS_CLAIM`]) and of whatever is fresh
/// ([`sql::FRESH_CLAIM`], when it polls) — prepared once on a connection of its own, so each
/// claim skips parsing and planning (about a millisecond: most of a claim's time). Only for a
/// session connection, never through a transaction pooler, where the next transaction may run
/// on a server connection that never saw the statement: `webhooks listen` opens one, and
/// listen refuses to run through a transaction pooler at all.
pub(crate) struct SessionClaims {
    db: Client,
    ids_claim: tokio_postgres::Statement,
    fresh_claim: tokio_postgres::Statement,
}

impl SessionClaims {
    /// Prepares the claims on `db`, a session connection nothing else uses.
    pub(crate) async fn prepare(db: Client) -> Result<Self> {
        db.batch_execute(sql::SESSION_CLAIMS_SETUP).await?;
        let types = [Type::UUID_ARRAY, Type::TIMESTAMPTZ, Type::INT8, Type::BOOL];
        let ids_claim = db.prepare_typed(sql::IDS_CLAIM, &types).await?;
        let types = [Type::INT8, Type::TIMESTAMPTZ, Type::INT8, Type::BOOL];
        let fresh_claim = db.prepare_typed(sql::FRESH_CLAIM, &types).await?;
        Ok(SessionClaims {
            db,
            ids_claim,
            fresh_claim,
        })
    }

    /// The session connection, for listen's own statements (its flag, V18).
    pub(crate) fn db(&self) -> &Client {
        &self.db
    }

    /// [`claim_ids`] with the prepared statement.
    pub(crate) async fn claim_ids(
        &self,
        ids: &[Uuid],
        now: Option<DateTime<Utc>>,
        lease: Duration,
        supersede: bool,
    ) -> Result<Claim> {
        let asked_at = BootInstant::now();
        let rows = query_prepared(
            &self.db,
            &self.ids_claim,
            &[&ids, &now, &millis(lease), &supersede],
        )
        .await?;
        Claim::from_rows(&rows, asked_at)
    }

    /// [`claim_fresh`] with the prepared statement.
    pub(crate) async fn claim_fresh(
        &self,
        now: Option<DateTime<Utc>>,
        lease: Duration,
        limit: usize,
        supersede: bool,
    ) -> Result<Claim> {
        let asked_at = BootInstant::now();
        let rows = query_prepared(
            &self.db,
            &self.fresh_claim,
            &[&count(limit), &now, &millis(lease), &supersede],
        )
        .await?;
        Claim::from_rows(&rows, asked_at)
    }
}

/// Claims up to `limit` never-attempted deliveries, oldest first (dispatch `{"limit": N}`).
pub(crate) async fn claim_fresh(
    db: &Client,
    now: Option<DateTime<Utc>>,
    lease: Duration,
    limit: usize,
    supersede: bool,
) -> Result<Claim> {
    run(
        db,
        Some(sql::ORDERED_CLAIM_BEGIN),
        sql::FRESH_CLAIM,
        &[
            (&count(limit), Type::INT8),
            (&now, Type::TIMESTAMPTZ),
            (&millis(lease), Type::INT8),
            (&supersede, Type::BOOL),
        ],
    )
    .await
}

/// Claims up to `limit` status notifications that waited for the just recorded deliveries
/// `recorded` and whose turn has now come (the hand-off, [`sql::FOLLOWER_CLAIM`]).
pub(crate) async fn claim_followers(
    db: &Client,
    recorded: &[Uuid],
    now: Option<DateTime<Utc>>,
    lease: Duration,
    limit: usize,
    supersede: bool,
) -> Result<Claim> {
    run(
        db,
        Some(sql::CLAIM_BEGIN),
        sql::FOLLOWER_CLAIM,
        &[
            (&recorded, Type::UUID_ARRAY),
            (&now, Type::TIMESTAMPTZ),
            (&millis(lease), Type::INT8),
            (&count(limit), Type::INT8),
            (&supersede, Type::BOOL),
        ],
    )
    .await
}

/// Claims the given ids for `webhooks send`: like [`claim_ids`], but a retrying delivery is
/// taken whenever its next attempt is scheduled ([`sql::SEND_NOW_CLAIM`]); in a transaction of
/// its own, like dispatch's.
pub(crate) async fn claim_ids_now(
    db: &Client,
    ids: &[Uuid],
    now: Option<DateTime<Utc>>,
    lease: Duration,
    supersede: bool,
) -> Result<Claim> {
    run_ids(
        db,
        Some(sql::CLAIM_BEGIN),
        sql::SEND_NOW_CLAIM,
        ids,
        now,
        lease,
        supersede,
    )
    .await
}

/// A claim of given ids (`statement`: [`sql::IDS_CLAIM`] or [`sql::SEND_NOW_CLAIM`], which take
/// the same parameters), as [`run`] runs it.
async fn run_ids(
    db: &Client,
    begin: Option<&str>,
    statement: &str,
    ids: &[Uuid],
    now: Option<DateTime<Utc>>,
    lease: Duration,
    supersede: bool,
) -> Result<Claim> {
    let params: [(&(dyn ToSql + Sync), Type); 4] = [
        (&ids, Type::UUID_ARRAY),
        (&now, Type::TIMESTAMPTZ),
        (&millis(lease), Type::INT8),
        (&supersede, Type::BOOL),
    ];
    run(db, begin, statement, &params).await
}
