//! Writing what happened: attempts and new states, leases given back, the backlog left, and
//! the manual requeue.

/// The recording statement, with or without the `held` flag (see [`OUTCOME_RECORDING`]).
macro_rules! outcome_recording {
    ($array:literal, $column:literal, $sets:literal) => {
        concat!(
            "
WITH outcome AS (
    SELECT *
      FROM unnest($1::uuid[], $2::timestamptz[], $3::int[], $4::timestamptz[], $5::int[],
                  $6::int[], $7::text[], $8::text[], $9::text[], $10::timestamptz[],
                  $11::timestamptz[], $12::timestamptz[]",
            $array,
            ")
        AS o(id, lease, attempt, started_at, duration_ms, status_code, error_kind, error,
             status, next_retry_at, resolved_at, finished_at",
            $column,
            ")
), attempts AS (
    INSERT INTO webhook_attempts
           (delivery_id, attempt, started_at, duration_ms, status_code, error_kind, error)
    SELECT id, attempt, started_at, duration_ms, status_code, error_kind, error
      FROM outcome o
        ON CONFLICT (delivery_id, attempt) DO NOTHING
)
UPDATE webhook_deliveries d
   SET status           = o.status,
       attempt_count    = o.attempt,
       next_retry_at    = o.next_retry_at,
       resolved_at      = o.resolved_at,
       last_status_code = o.status_code,
       last_error       = coalesce(o.error, d.last_error),
       last_attempt_at  = o.finished_at,
       locked_until     = NULL,",
            $sets,
            "
  FROM outcome o
 WHERE d.id = o.id
   AND (d.locked_until = o.lease
        OR (d.locked_until IS NULL
            AND d.attempt_count = o.attempt
            AND d.last_attempt_at = o.finished_at))
RETURNING d.id,
          d.webhook_type <> 'new_request'
          AND EXISTS (SELECT 1
                        FROM webhook_deliveries n
                       WHERE n.booking_id = d.booking_id
                         AND n.webhook_type IN ('approved', 'rejected')
                         AND n.capture_seq > d.capture_seq
                         AND n.status IN ('pending', 'retrying')) AS followed"
        )
    };
}

/// Records a batch of attempts in one statement (atomic without an explicit transaction):
/// inserts one `webhook_attempts` row per element and moves each delivery to its new state,
/// releasing the lease — only where the lease `$2` is still ours. Returns the ids updated.
/// Idempotent, so a batch whose statement may have committed unseen (its connection broke, or
/// it was cancelled after the commit) can be recorded again: an attempt already stored has its
/// number (unique per delivery, reserved by the claim) and is not inserted twice, and a
/// delivery that already holds this very outcome is returned as updated. With each id, whether
/// a later status notification of its booking is still unresolved: one that may have waited
/// for this one ([`super::FOLLOWER_CLAIM`] hands it on).
/// Parallel arrays, one element per attempt:
/// `$1` id, `$2` lease, `$3` attempt, `$4` started_at, `$5` duration_ms, `$6` status_code,
/// `$7` error_kind, `$8` error, `$9` status, `$10` next_retry_at, `$11` resolved_at,
/// `$12` finished_at, `$13` held (made while the endpoint was held: not counted, see
/// [`crate::engine::endpoint`]).
pub const OUTCOME_RECORDING: &str = outcome_recording!(
    ", $13::boolean[]",
    ", held",
    "
       -- An attempt made while the endpoint was held is not counted: the budget grows by it
       -- (only on the first write of the outcome, which still holds the lease).
       max_retries      = d.max_retries
                          + CASE WHEN o.held AND d.locked_until = o.lease THEN 1 ELSE 0 END,
       -- Held since it came due (the old next_retry_at), unless held before.
       held_since       = CASE WHEN o.held
                               THEN coalesce(d.held_since, least(d.next_retry_at, o.finished_at))
                          END"
);

/// [`OUTCOME_RECORDING`] for a group of which no attempt was made while the endpoint was held
/// (the usual one): `$1` to `$12` only; each delivery's hold is over.
pub const OUTCOME_RECORDING_COUNTED: &str =
    outcome_recording!("", "", "\n       held_since       = NULL");

/// Gives back deliveries `$1` claimed under leases `$2` and never sent (the lease might have
/// lapsed while the worker was stopped, or its time was up): the lease is cleared and the
/// attempt number the claim reserved is returned — only where the lease is still ours, so a
/// row another worker reclaimed meanwhile is left alone. Returns the ids given back.
pub const LEASE_RELEASE: &str = "
UPDATE webhook_deliveries d
   SET locked_until  = NULL,
       attempt_count = d.attempt_count - 1
  FROM unnest($1::uuid[], $2::timestamptz[]) AS r(id, lease)
 WHERE d.id = r.id
   AND d.locked_until = r.lease
RETURNING d.id";

/// Unresolved deliveries due by `$1` (NULL: the database's now): what a sweep left behind.
pub const DUE_COUNT: &str = "
SELECT count(*)
  FROM webhook_deliveries
 WHERE status IN ('pending', 'retrying')
   AND next_retry_at <= coalesce($1, now())";

/// Requeues failed deliveries (all, the ids in `$1`, or those failed since `$2`) with a fresh
/// budget of `$3` retries, due at `$4` (NULL: the database's now) — but not those a later
/// status notification replaced unless `$5`; see `retry_failed_webhooks()` in the migrations.
pub const FAILED_REQUEUE: &str = "
SELECT requeued, due_now, still_failed, replaced
  FROM retry_failed_webhooks($1::uuid[], $2::timestamptz, $3::int, $4::timestamptz, $5::boolean)";
