//! Every statement the engine runs, in one place. Parameters are `$n`; nothing is built with
//! `format!`. The schema itself (tables, triggers, views) lives in `migrations/`.
//!
//! **One clock: the database's.** "Now" is a parameter that is `NULL` in production, where
//! `coalesce($now, now())` makes it the database's `now()`; tests pass a time and move it
//! instead of sleeping (River's `coalesce(@now, now())`). So leases and due times are compared
//! and written on one clock, and a worker whose own clock is off cannot take a live lease or
//! schedule a retry in the future. The claims return the time they used (`claimed_at`) so the
//! worker can stamp its attempts on the same clock.
//!
//! **Through transaction poolers.** The engine runs every statement as one unnamed,
//! explicitly typed statement (`query_typed`: parse, bind and execute in one round trip), and
//! keeps no session state, so PgBouncer in transaction mode, Supabase's pooler and RDS Proxy
//! work without named prepared statements.
//!
//! # Layout
//! - [`claims`]: the claims and the decision rule they share (pinned by a test).
//! - [`now`]: sending now, due or not (`webhooks send`): a claim that shares that rule.
//! - [`outcomes`]: recording attempts, giving back leases, the backlog, the requeue.
//! - [`endpoint`]: the notification service's health: breaker, pause, pacing, holds.
//! - [`listen`]: the NOTIFY channels, and the listener's flag that stands in for them.
//! - [`ops`]: the operator commands' reads and retention.
//! - [`doctor`]: the catalog reads of `webhooks doctor`.

pub mod claims;
pub mod doctor;
pub mod endpoint;
pub mod listen;
pub mod now;
pub mod ops;
pub mod outcomes;
#[cfg(test)]
mod tests;

pub use claims::*;
pub use doctor::*;
pub use endpoint::*;
pub use listen::*;
pub use now::*;
pub use ops::*;
pub use outcomes::*;

/// Opens a transaction whose statements the server ends by itself after
/// [`crate::db::STATEMENT_TIMEOUT`]: a statement must not go on running after the client gave
/// up on it and retried on another connection (a second attempt row, a lease nobody holds).
/// The client waits a little longer than that ([`crate::db::CLIENT_TIMEOUT`]), so the server's
/// own timeout normally ends a stalled statement first and the transaction rolls back. `SET
/// LOCAL` ends with the transaction, so nothing is left on a pooled connection (transaction
/// poolers refuse the session-level setting as a startup option).
pub const BOUNDED_BEGIN: &str = "BEGIN; SET LOCAL statement_timeout = '15s'";

/// [`BOUNDED_BEGIN`] for the claims: also, the commit does not wait for the disk — unless the
/// claim leased a status notification (`approved`/`rejected`), whose lease must survive a crash
/// of the server: the claims turn `synchronous_commit` back on for their transaction when they
/// do (the `durable` column of their `RETURNING`). A lost lease lets a later worker send the
/// same delivery while this one's request is still on the wire; for a decision that could also
/// let the booking's next decision overtake it. For a `new_request` it costs at worst a second
/// send under the same `webhook-id`, which at-least-once allows.
pub const CLAIM_BEGIN: &str =
    "BEGIN; SET LOCAL statement_timeout = '15s'; SET LOCAL synchronous_commit = off";

/// [`CLAIM_BEGIN`] for the ordered claims ([`DUE_CLAIM`], [`FRESH_CLAIM`]): also, the planner
/// may not sort, so it reads the due index in order and stops at the claim's limit instead of
/// sorting every due row (see the module documentation).
pub const ORDERED_CLAIM_BEGIN: &str = "BEGIN; SET LOCAL statement_timeout = '15s'; \
     SET LOCAL synchronous_commit = off; SET LOCAL enable_sort = off";

/// [`BOUNDED_BEGIN`] for recording outcomes ([`OUTCOME_RECORDING`], [`LEASE_RELEASE`]): also, the
/// planner may not scan the outbox or join it by hashing or merging, so each of the group's
/// deliveries is reached through the primary key. Left to its costs it would rather read the
/// whole outbox and hash it to join a group of 200 once the table holds a few thousand rows —
/// it takes the rows for uncached pages — which cost the drain half of the server's CPU and
/// grows with the table (issue 25; `make bench`). Transaction-scoped, so poolers are fine.
pub const RECORDING_BEGIN: &str = "BEGIN; SET LOCAL statement_timeout = '15s'; \
     SET LOCAL enable_seqscan = off; SET LOCAL enable_hashjoin = off; \
     SET LOCAL enable_mergejoin = off";

/// Ends the transaction of [`BOUNDED_BEGIN`] or [`CLAIM_BEGIN`] (a rollback if its statement
/// failed).
pub const COMMIT: &str = "COMMIT";

/// Every statement above, for the test that prepares them all against the migrated schema.
pub const ALL: &[(&str, &str)] = &[
    ("DUE_CLAIM", DUE_CLAIM),
    ("IDS_CLAIM", IDS_CLAIM),
    ("FRESH_CLAIM", FRESH_CLAIM),
    ("FOLLOWER_CLAIM", FOLLOWER_CLAIM),
    ("SEND_NOW_CLAIM", SEND_NOW_CLAIM),
    ("RETRYING_IDS", RETRYING_IDS),
    ("DELIVERY_STATES", DELIVERY_STATES),
    ("OUTCOME_RECORDING", OUTCOME_RECORDING),
    ("OUTCOME_RECORDING_COUNTED", OUTCOME_RECORDING_COUNTED),
    ("LEASE_RELEASE", LEASE_RELEASE),
    ("ENDPOINT_STATE", ENDPOINT_STATE),
    ("ENDPOINT_ENSURE", ENDPOINT_ENSURE),
    ("ENDPOINT_PROBE", ENDPOINT_PROBE),
    ("ENDPOINT_RECORD", ENDPOINT_RECORD),
    ("ENDPOINT_PACE", ENDPOINT_PACE),
    ("ENDPOINT_PAUSE", ENDPOINT_PAUSE),
    ("ENDPOINT_RESUME", ENDPOINT_RESUME),
    ("HOLD_EXPIRY", HOLD_EXPIRY),
    ("DUE_COUNT", DUE_COUNT),
    ("FAILED_REQUEUE", FAILED_REQUEUE),
    ("SESSION_PROBE", SESSION_PROBE),
    ("LISTENER_FLAG_EXISTS", LISTENER_FLAG_EXISTS),
    ("LISTENER_AWAKE", LISTENER_AWAKE),
    ("LISTENER_ASLEEP", LISTENER_ASLEEP),
    ("RUNNING_TRANSACTIONS", RUNNING_TRANSACTIONS),
    ("STILL_RUNNING", STILL_RUNNING),
];

/// Every operations statement, for the test that prepares them against the migrated schema.
pub const OPERATIONS: &[(&str, &str)] = &[
    ("HEALTH_STATS", HEALTH_STATS),
    ("ENDPOINTS", ENDPOINTS),
    ("ENDPOINTS_TABLE", ENDPOINTS_TABLE),
    ("FAILURES", FAILURES),
    ("DELIVERY", DELIVERY),
    ("DELIVERY_IDS_BY_PREFIX", DELIVERY_IDS_BY_PREFIX),
    ("ATTEMPTS", ATTEMPTS),
    ("CLEANUP_BATCH", CLEANUP_BATCH),
    ("CLEANUP_PREVIEW", CLEANUP_PREVIEW),
    ("MISSING_DELIVERIES", MISSING_DELIVERIES),
    ("COUNT_MISSING", COUNT_MISSING),
    ("VERIFY_HORIZON", VERIFY_HORIZON),
    ("DUE_BACKLOG", DUE_BACKLOG),
    ("CURRENT_TIME", CURRENT_TIME),
    ("LAST_ATTEMPT", LAST_ATTEMPT),
    ("TABLE_TRIGGERS", TABLE_TRIGGERS),
    ("FUNCTIONS", FUNCTIONS),
    ("TABLE_SECURITY", TABLE_SECURITY),
    ("NOTIFY_POSTURE", NOTIFY_POSTURE),
    ("SCHEMA_CREATE", SCHEMA_CREATE),
    ("MIGRATION_TABLE", MIGRATION_TABLE),
    ("APPLIED_MIGRATIONS", APPLIED_MIGRATIONS),
];
