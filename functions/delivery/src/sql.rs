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
//! **The claim protocol.** A worker takes rows with `FOR UPDATE SKIP LOCKED` and, in the same
//! statement, sets a lease (`locked_until`). Another worker skips rows that are row-locked
//! (claim in progress) or leased (send in progress), so exactly one sends. Recording an
//! outcome clears the lease — but only if the lease is still the one the worker took, so a
//! worker that overran its lease cannot overwrite the state written by whoever reclaimed it.

/// The NOTIFY channel the capture triggers send delivery ids on (see `V3__capture_triggers`).
pub const CAPTURE_CHANNEL: &str = "webhook_delivery";

/// The subscription to [`CAPTURE_CHANNEL`].
pub const CAPTURE_LISTEN: &str = "LISTEN webhook_delivery";

/// The channel `listen` checks its connection with: a NOTIFY sent from another connection
/// must reach it, or the connection is not a session (see [`crate::listen`]).
pub const SESSION_PROBE_CHANNEL: &str = "webhook_session_probe";

/// The subscription to [`SESSION_PROBE_CHANNEL`].
pub const SESSION_PROBE_LISTEN: &str = "LISTEN webhook_session_probe";

/// The end of [`SESSION_PROBE_LISTEN`].
pub const SESSION_PROBE_UNLISTEN: &str = "UNLISTEN webhook_session_probe";

/// Sends the token `$1` on [`SESSION_PROBE_CHANNEL`].
pub const SESSION_PROBE: &str = "SELECT pg_notify('webhook_session_probe', $1)";

/// The sweep's claim: unresolved deliveries due by `$1` (default: now) whose lease is free or
/// expired at `$2` (NULL: the database's now), oldest due first, at most `$4`, leased for `$3`
/// milliseconds. Returns them in the column order of [`crate::claim::Claimed`], with
/// `reclaimed` set where an expired lease was taken over (its worker died mid-flight) and the
/// time the claim used. Served by the partial index `webhook_deliveries_due_idx`.
pub const DUE_CLAIM: &str = "
WITH due AS (
    SELECT id, locked_until
      FROM webhook_deliveries
     WHERE status IN ('pending', 'retrying')
       AND next_retry_at <= coalesce($1, $2, now())
       AND (locked_until IS NULL OR locked_until <= coalesce($2, now()))
     ORDER BY next_retry_at
     LIMIT $4
       FOR UPDATE SKIP LOCKED
)
UPDATE webhook_deliveries d
   SET locked_until = coalesce($2, now()) + $3::bigint * interval '1 millisecond'
  FROM due
 WHERE d.id = due.id
RETURNING d.id, d.webhook_type, d.payload::text, d.attempt_count, d.max_retries, d.locked_until,
          due.locked_until IS NOT NULL AS reclaimed, coalesce($2, now()) AS claimed_at";

/// Dispatch's claim of the given ids `$1` at `$2` (NULL: the database's now), leased for `$3`
/// milliseconds, returned like [`DUE_CLAIM`]. Takes a delivery that is due, and a
/// never-attempted (`pending`) one even if it is not due yet: the immediate send must not
/// wait for the sweep over clock skew between the database and whoever captured the row.
pub const IDS_CLAIM: &str = "
WITH due AS (
    SELECT id, locked_until
      FROM webhook_deliveries
     WHERE id = ANY($1)
       AND status IN ('pending', 'retrying')
       AND (locked_until IS NULL OR locked_until <= coalesce($2, now()))
       AND (status = 'pending' OR next_retry_at <= coalesce($2, now()))
       FOR UPDATE SKIP LOCKED
)
UPDATE webhook_deliveries d
   SET locked_until = coalesce($2, now()) + $3::bigint * interval '1 millisecond'
  FROM due
 WHERE d.id = due.id
RETURNING d.id, d.webhook_type, d.payload::text, d.attempt_count, d.max_retries, d.locked_until,
          due.locked_until IS NOT NULL AS reclaimed, coalesce($2, now()) AS claimed_at";

/// Dispatch's claim of up to `$1` never-attempted deliveries (`pending`; requeued ones are
/// `retrying`), oldest first, whose lease is free at `$2` (NULL: the database's now); leased
/// for `$3` milliseconds, returned like [`DUE_CLAIM`]. For pending rows `next_retry_at` is
/// the capture time, so this ordering uses the due index.
pub const FRESH_CLAIM: &str = "
WITH due AS (
    SELECT id, locked_until
      FROM webhook_deliveries
     WHERE status = 'pending'
       AND (locked_until IS NULL OR locked_until <= coalesce($2, now()))
     ORDER BY next_retry_at
     LIMIT $1
       FOR UPDATE SKIP LOCKED
)
UPDATE webhook_deliveries d
   SET locked_until = coalesce($2, now()) + $3::bigint * interval '1 millisecond'
  FROM due
 WHERE d.id = due.id
RETURNING d.id, d.webhook_type, d.payload::text, d.attempt_count, d.max_retries, d.locked_until,
          due.locked_until IS NOT NULL AS reclaimed, coalesce($2, now()) AS claimed_at";

/// State of the given ids `$1` at `$2` (NULL: the database's now), to explain why a dispatch
/// did not claim them: status, whether a live lease holds it, whether its retry is not due.
pub const DELIVERY_STATES: &str = "
SELECT id, status,
       coalesce(locked_until > coalesce($2, now()), false) AS in_flight,
       coalesce(next_retry_at > coalesce($2, now()), false) AS not_due
  FROM webhook_deliveries
 WHERE id = ANY($1)";

/// Records a batch of attempts in one statement (atomic without an explicit transaction):
/// inserts one `webhook_attempts` row per element and moves each delivery to its new state,
/// releasing the lease — only where the lease `$2` is still ours. Returns the ids updated.
/// Idempotent, so a batch whose connection broke before the answer arrived can be recorded
/// again: an attempt already stored (same delivery, number and start) is not inserted twice,
/// and a delivery that already holds this very outcome is returned as updated.
/// Parallel arrays, one element per attempt:
/// `$1` id, `$2` lease, `$3` attempt, `$4` started_at, `$5` duration_ms, `$6` status_code,
/// `$7` error_kind, `$8` error, `$9` status, `$10` next_retry_at, `$11` resolved_at,
/// `$12` finished_at.
pub const OUTCOME_RECORDING: &str = "
WITH outcome AS (
    SELECT *
      FROM unnest($1::uuid[], $2::timestamptz[], $3::int[], $4::timestamptz[], $5::int[],
                  $6::int[], $7::text[], $8::text[], $9::text[], $10::timestamptz[],
                  $11::timestamptz[], $12::timestamptz[])
        AS o(id, lease, attempt, started_at, duration_ms, status_code, error_kind, error,
             status, next_retry_at, resolved_at, finished_at)
), attempts AS (
    INSERT INTO webhook_attempts
           (delivery_id, attempt, started_at, duration_ms, status_code, error_kind, error)
    SELECT id, attempt, started_at, duration_ms, status_code, error_kind, error
      FROM outcome o
     WHERE NOT EXISTS (SELECT 1
                         FROM webhook_attempts a
                        WHERE a.delivery_id = o.id
                          AND a.attempt = o.attempt
                          AND a.started_at = o.started_at)
)
UPDATE webhook_deliveries d
   SET status           = o.status,
       attempt_count    = o.attempt,
       next_retry_at    = o.next_retry_at,
       resolved_at      = o.resolved_at,
       last_status_code = o.status_code,
       last_error       = coalesce(o.error, d.last_error),
       last_attempt_at  = o.finished_at,
       locked_until     = NULL
  FROM outcome o
 WHERE d.id = o.id
   AND (d.locked_until = o.lease
        OR (d.locked_until IS NULL
            AND d.attempt_count = o.attempt
            AND d.last_attempt_at = o.finished_at))
RETURNING d.id";

/// Unresolved deliveries due by `$1` (NULL: the database's now): what a sweep left behind.
pub const DUE_COUNT: &str = "
SELECT count(*)
  FROM webhook_deliveries
 WHERE status IN ('pending', 'retrying')
   AND next_retry_at <= coalesce($1, now())";

/// Requeues failed deliveries (all, the ids in `$1`, or those failed since `$2`) with a fresh
/// budget of `$3` retries, due at `$4` (NULL: the database's now); see
/// `retry_failed_webhooks()` in the migrations.
pub const FAILED_REQUEUE: &str = "
SELECT requeued, due_now, still_failed
  FROM retry_failed_webhooks($1::uuid[], $2::timestamptz, $3::int, $4::timestamptz)";

/// Every statement above, for the test that prepares them all against the migrated schema.
pub const ALL: &[(&str, &str)] = &[
    ("DUE_CLAIM", DUE_CLAIM),
    ("IDS_CLAIM", IDS_CLAIM),
    ("FRESH_CLAIM", FRESH_CLAIM),
    ("DELIVERY_STATES", DELIVERY_STATES),
    ("OUTCOME_RECORDING", OUTCOME_RECORDING),
    ("DUE_COUNT", DUE_COUNT),
    ("FAILED_REQUEUE", FAILED_REQUEUE),
    ("SESSION_PROBE", SESSION_PROBE),
];
