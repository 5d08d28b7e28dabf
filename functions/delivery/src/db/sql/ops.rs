//! Operations: the read and repair commands (`webhooks stats | failures | show | cleanup |
//! verify`) and the retry sweep's backlog gauges. Read-only unless said; "now" and cut-offs are
//! parameters here too. The views they read are in `V9__operations` (current definitions in
//! `schema/objects`).

/// Delivery health per webhook type and overall (`webhook_type = 'all'`, last), from the view
/// `webhook_stats`. Numerics are cast to float8 for the client.
pub const HEALTH_STATS: &str = "
SELECT webhook_type, total, succeeded, pending, retrying, failed, skipped, superseded,
       success_rate_pct::float8, avg_attempts_to_succeed::float8, oldest_due_at,
       oldest_undelivered_at, attempts_24h, failed_attempts_24h,
       p50_ms_24h, p95_ms_24h, p99_ms_24h
  FROM webhook_stats";

/// Deliveries in trouble: status in `$1` (e.g. `{failed,retrying}`), last attempted at or
/// after `$2` (NULL: any time), most recent first, at most `$3`; `matching` counts them all;
/// `superseded_by` names what replaced a superseded one.
pub const FAILURES: &str = "
SELECT id, booking_id, webhook_type, status, attempt_count, max_retries, last_status_code,
       last_error, last_attempt_at, next_retry_at, count(*) OVER () AS matching, superseded_by
  FROM webhook_deliveries
 WHERE status = ANY($1::text[])
   AND ($2::timestamptz IS NULL OR last_attempt_at >= $2)
 ORDER BY last_attempt_at DESC NULLS LAST, id
 LIMIT $3";

/// One delivery by id `$1` (no payload: it repeats the address).
pub const DELIVERY: &str = "
SELECT id, booking_id, webhook_type, status, recipient_email, attempt_count, max_retries,
       next_retry_at, last_error, last_status_code, last_attempt_at, locked_until, created_at,
       resolved_at, superseded_by
  FROM webhook_deliveries
 WHERE id = $1";

/// The deliveries whose ids lie between `$1[n]` and `$2[n]` — an id prefix padded with `0`s
/// and with `f`s, so a whole id matches only itself — at most two per prefix (two mean it is
/// ambiguous), with the prefix's position `n` (1-based) and each delivery's status. Served by
/// the primary key: a range scan per prefix.
pub const DELIVERY_IDS_BY_PREFIX: &str = "
SELECT p.n, d.id, d.status
  FROM unnest($1::uuid[], $2::uuid[]) WITH ORDINALITY AS p(low, high, n)
 CROSS JOIN LATERAL (SELECT id, status
                       FROM webhook_deliveries
                      WHERE id BETWEEN p.low AND p.high
                      ORDER BY id
                      LIMIT 2) d
 ORDER BY p.n, d.id";

/// Every attempt of delivery `$1`, in order.
pub const ATTEMPTS: &str = "
SELECT attempt, started_at, duration_ms, status_code, error_kind, error
  FROM webhook_attempts
 WHERE delivery_id = $1
 ORDER BY attempt, id";

/// Retention, one batch (writes): deletes up to `$2` resolved deliveries — any status but
/// `pending`/`retrying` — resolved before `$1`, oldest first, skipping rows another
/// transaction holds (a replay in progress); their attempts go with them (ON DELETE CASCADE).
/// When it deletes anything it moves the completeness horizon up to `$1` in the same
/// transaction, so `verify` does not report what retention removed. Returns the removed
/// deliveries per status (JSON object) and the attempts removed with them.
pub const CLEANUP_BATCH: &str = "
WITH doomed AS (
    SELECT id
      FROM webhook_deliveries
     WHERE status NOT IN ('pending', 'retrying')
       AND resolved_at < $1
     ORDER BY resolved_at
     LIMIT $2
       FOR UPDATE SKIP LOCKED
), removed AS (
    DELETE FROM webhook_deliveries d
     USING doomed
     WHERE d.id = doomed.id
    RETURNING d.status
), horizon AS (
    UPDATE webhook_verify_horizon
       SET checked_from = $1, reason = 'retention removed deliveries resolved before this',
           updated_at = now()
     WHERE checked_from < $1
       AND EXISTS (SELECT 1 FROM doomed)
)
SELECT (SELECT coalesce(jsonb_object_agg(status, n), '{}'::jsonb)
          FROM (SELECT status, count(*) AS n FROM removed GROUP BY status) s),
       (SELECT count(*) FROM webhook_attempts a JOIN doomed ON a.delivery_id = doomed.id)";

/// Retention, dry run: what [`CLEANUP_BATCH`] would remove for cut-off `$1`, in the same
/// shape (per status, attempts).
pub const CLEANUP_PREVIEW: &str = "
WITH doomed AS (
    SELECT id, status
      FROM webhook_deliveries
     WHERE status NOT IN ('pending', 'retrying')
       AND resolved_at < $1
)
SELECT (SELECT coalesce(jsonb_object_agg(status, n), '{}'::jsonb)
          FROM (SELECT status, count(*) AS n FROM doomed GROUP BY status) s),
       (SELECT count(*) FROM webhook_attempts a JOIN doomed ON a.delivery_id = doomed.id)";

/// The completeness check: bookings created before `$1` whose expected delivery is missing
/// (view `webhook_missing_deliveries`), oldest first, at most `$2`; `matching` counts them all.
pub const MISSING_DELIVERIES: &str = "
SELECT booking_id, missing_type, booking_status, booking_created_at, count(*) OVER () AS matching
  FROM webhook_missing_deliveries
 WHERE booking_created_at < $1
 ORDER BY booking_created_at, booking_id, missing_type
 LIMIT $2";

/// How many bookings created before `$1` miss an expected delivery (the sweep's metric).
pub const COUNT_MISSING: &str = "
SELECT count(*)
  FROM webhook_missing_deliveries
 WHERE booking_created_at < $1";

/// Where the completeness check starts, and why; and whether `booking_requests` has the
/// `created_at` column it dates bookings by (without it the check sees nothing).
pub const VERIFY_HORIZON: &str = "
SELECT h.checked_from, h.reason,
       EXISTS (SELECT 1 FROM pg_attribute
                WHERE attrelid = to_regclass('booking_requests')
                  AND attname = 'created_at' AND attnum > 0 AND NOT attisdropped)
  FROM (SELECT 1) AS one
  LEFT JOIN webhook_verify_horizon h ON true";

/// The backlog at `$1` (NULL: the database's `now()`): due rows, how long the oldest of them
/// has been due in seconds (0 when none), and the instant used.
pub const DUE_BACKLOG: &str = "
SELECT count(*),
       coalesce(extract(epoch FROM coalesce($1::timestamptz, now()) - min(next_retry_at)), 0)::float8,
       coalesce($1::timestamptz, now())
  FROM webhook_deliveries
 WHERE status IN ('pending', 'retrying')
   AND next_retry_at <= coalesce($1::timestamptz, now())";

/// "Now": `$1`, or the database's `now()` when NULL (see [`crate::db::now`]).
pub const CURRENT_TIME: &str = "
SELECT coalesce($1::timestamptz, now())";

/// When the last attempt started (the last time anything was sent).
pub const LAST_ATTEMPT: &str = "
SELECT max(started_at) FROM webhook_attempts";
