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
//!
//! **Cost per claimed row, whatever the backlog or the history.** A claim reads the due rows in
//! `next_retry_at` order from the partial index `webhook_deliveries_due_idx` and stops at its
//! limit; the lease is written through the rows' `ctid`s (a TID scan, no index probe and never
//! a scan of the table), and only `locked_until` changes, so with the table's fill factor
//! (V13) the lease is a heap-only (HOT) update that touches no index. The planner would
//! rather sort the whole backlog when its statistics say few rows are due (a burst captured
//! since the last `ANALYZE`, e.g. after an outage: each claim then reads every due row, and a
//! drain turns quadratic), so the sweep's and dispatch's ordered claims run in a transaction of
//! their own that forbids sorting ([`ORDERED_CLAIM_BEGIN`]; transaction-scoped, so poolers are
//! fine). Every claim's commit skips the wait for the disk ([`CLAIM_BEGIN`]): a lease lost in a
//! crash costs at most a second send under the same `webhook-id`.
//!
//! **Superseded notifications** (`WEBHOOK_SUPERSEDE`, the claims' last parameter; see
//! `docs/superseded.md`). Every claim decides, per status notification (`approved`/`rejected`)
//! it takes, with probes of the partial index `webhook_deliveries_decisions_idx` (new_request
//! rows never touch it):
//! - *Superseded* (on only): a later status notification of the same booking exists (any
//!   state; captured after `replayed_over_seq` for an explicit replay). The claim ends the row
//!   `superseded`, naming the newest one in `superseded_by`, and returns it without a lease:
//!   it is never sent.
//! - *Its turn*: otherwise the row is sent only when no earlier status notification of the
//!   booking could still reach the receiver after it. On: no earlier unresolved one is in
//!   flight — leased, or row-locked by a claim this instant (the earlier ones are locked
//!   `FOR SHARE SKIP LOCKED` and counted: a lock held elsewhere, or a lease committed since this
//!   statement's snapshot, which Postgres re-reads for a locked row, makes the counts differ).
//!   Off: every earlier one is final, so all are sent in capture order. A row whose turn has
//!   not come is not taken and keeps its place; the worker that records the earlier one hands
//!   it on ([`FOLLOWER_CLAIM`]).

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

/// Ends the transaction of [`BOUNDED_BEGIN`] or [`CLAIM_BEGIN`] (a rollback if its statement
/// failed).
pub const COMMIT: &str = "COMMIT";

/// The sweep's claim: unresolved deliveries due by `$1` (default: now) whose lease is free or
/// expired at `$2` (NULL: the database's now), oldest due first, at most `$4`, leased for `$3`
/// milliseconds; `$5`: supersede (`WEBHOOK_SUPERSEDE`). Only status notifications whose turn
/// has come are taken; those with a later one are ended `superseded` (see the module
/// documentation). Returns them in the column order of [`crate::claim::Claimed`], with
/// `reclaimed` set where an expired lease was taken over (its worker died mid-flight), the
/// time the claim used, and `superseded_by` (then without a lease: not to be sent). Served by
/// the partial index `webhook_deliveries_due_idx`.
pub const DUE_CLAIM: &str = "
WITH due AS (
    SELECT d.ctid, d.locked_until, newer.id AS superseded_by
      FROM webhook_deliveries d
      LEFT JOIN LATERAL (
            SELECT n.id
              FROM webhook_deliveries n
             WHERE $5
               AND d.webhook_type <> 'new_request'
               AND n.booking_id = d.booking_id
               AND n.webhook_type IN ('approved', 'rejected')
               AND n.capture_seq > coalesce(d.replayed_over_seq, d.capture_seq)
             ORDER BY n.capture_seq DESC
             LIMIT 1
           ) newer ON true
     WHERE d.status IN ('pending', 'retrying')
       AND d.next_retry_at <= coalesce($1, $2, now())
       AND (d.locked_until IS NULL OR d.locked_until <= coalesce($2, now()))
       AND (d.webhook_type = 'new_request'
            OR newer.id IS NOT NULL
            OR NOT EXISTS (SELECT 1
                             FROM webhook_deliveries e
                            WHERE e.booking_id = d.booking_id
                              AND e.webhook_type IN ('approved', 'rejected')
                              AND e.capture_seq < d.capture_seq
                              AND e.status IN ('pending', 'retrying'))
            OR ($5 AND (SELECT count(*)
                           FROM webhook_deliveries e
                          WHERE e.booking_id = d.booking_id
                            AND e.webhook_type IN ('approved', 'rejected')
                            AND e.capture_seq < d.capture_seq
                            AND e.status IN ('pending', 'retrying'))
                      = (SELECT count(*)
                           FROM (SELECT 1
                                   FROM webhook_deliveries e
                                  WHERE e.booking_id = d.booking_id
                                    AND e.webhook_type IN ('approved', 'rejected')
                                    AND e.capture_seq < d.capture_seq
                                    AND e.status IN ('pending', 'retrying')
                                    AND (e.locked_until IS NULL OR e.locked_until <= coalesce($2, now()))
                                    FOR SHARE SKIP LOCKED) idle)))
     ORDER BY d.next_retry_at
     LIMIT $4
       FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhook_deliveries d
   SET status        = CASE WHEN due.superseded_by IS NULL THEN d.status ELSE 'superseded' END,
       superseded_by = due.superseded_by,
       next_retry_at = CASE WHEN due.superseded_by IS NULL THEN d.next_retry_at END,
       resolved_at   = CASE WHEN due.superseded_by IS NULL THEN d.resolved_at
                            ELSE coalesce($2, now()) END,
       locked_until  = CASE WHEN due.superseded_by IS NULL
                            THEN coalesce($2, now()) + $3::bigint * interval '1 millisecond' END,
       attempt_count = d.attempt_count + (due.superseded_by IS NULL)::int
  FROM due
 WHERE d.ctid = ANY (ARRAY(SELECT ctid FROM due))
   AND d.ctid = due.ctid
RETURNING d.id, d.webhook_type, d.payload::text, d.attempt_count, d.max_retries, d.locked_until,
          due.locked_until IS NOT NULL AS reclaimed, coalesce($2, now()) AS claimed_at,
          d.superseded_by,
          CASE WHEN d.webhook_type <> 'new_request' AND due.superseded_by IS NULL
               THEN set_config('synchronous_commit', 'on', true) END AS durable";

/// The planner settings of `webhooks listen`'s claim connection
/// ([`crate::claim::SessionClaims`]), a session of its own that runs only [`IDS_CLAIM`],
/// prepared once: one generic plan (no planning per notification, about a millisecond of its
/// way to the receiver), which must probe the primary key per id whatever the table looked like
/// when it was planned — a plan made on a nearly empty table would otherwise scan it, and keep
/// scanning it as it grew. Its commits wait for the disk only when a status notification was
/// leased (see [`CLAIM_BEGIN`]), and every statement is bounded on the server as in
/// [`BOUNDED_BEGIN`]. Never sent through a pooler: listen refuses transaction poolers.
pub const SESSION_CLAIMS_SETUP: &str = "SET plan_cache_mode = force_generic_plan;
SET enable_seqscan = off; SET enable_bitmapscan = off;
SET enable_hashjoin = off; SET enable_mergejoin = off;
SET synchronous_commit = off; SET statement_timeout = '15s'";

/// Dispatch's claim of the given ids `$1` at `$2` (NULL: the database's now), leased for `$3`
/// milliseconds, superseding as `$4` says; decided and returned like [`DUE_CLAIM`]. Takes a
/// delivery that is due, and a never-attempted (`pending`) one even if it is not due yet: the
/// immediate send must not wait for the sweep over clock skew between the database and
/// whoever captured the row. Each id is looked up by primary key, whatever the statistics say:
/// the rows come from `unnest($1)`, and the status test is written so that the partial due
/// index cannot serve it (`coalesce(…, false)`; a planner that believes few rows are pending
/// would otherwise scan them all and match the ids against them). `webhooks listen` runs this
/// one prepared, on a generic plan ([`SESSION_CLAIMS_SETUP`]).
pub const IDS_CLAIM: &str = "
WITH due AS (
    SELECT d.ctid, d.locked_until, newer.id AS superseded_by
      FROM unnest($1::uuid[]) AS wanted(id)
      JOIN webhook_deliveries d ON d.id = wanted.id
      LEFT JOIN LATERAL (
            SELECT n.id
              FROM webhook_deliveries n
             WHERE $4
               AND d.webhook_type <> 'new_request'
               AND n.booking_id = d.booking_id
               AND n.webhook_type IN ('approved', 'rejected')
               AND n.capture_seq > coalesce(d.replayed_over_seq, d.capture_seq)
             ORDER BY n.capture_seq DESC
             LIMIT 1
           ) newer ON true
     WHERE coalesce(d.status IN ('pending', 'retrying'), false)
       AND (d.locked_until IS NULL OR d.locked_until <= coalesce($2, now()))
       AND (d.status = 'pending' OR d.next_retry_at <= coalesce($2, now()))
       AND (d.webhook_type = 'new_request'
            OR newer.id IS NOT NULL
            OR NOT EXISTS (SELECT 1
                             FROM webhook_deliveries e
                            WHERE e.booking_id = d.booking_id
                              AND e.webhook_type IN ('approved', 'rejected')
                              AND e.capture_seq < d.capture_seq
                              AND e.status IN ('pending', 'retrying'))
            OR ($4 AND (SELECT count(*)
                           FROM webhook_deliveries e
                          WHERE e.booking_id = d.booking_id
                            AND e.webhook_type IN ('approved', 'rejected')
                            AND e.capture_seq < d.capture_seq
                            AND e.status IN ('pending', 'retrying'))
                      = (SELECT count(*)
                           FROM (SELECT 1
                                   FROM webhook_deliveries e
                                  WHERE e.booking_id = d.booking_id
                                    AND e.webhook_type IN ('approved', 'rejected')
                                    AND e.capture_seq < d.capture_seq
                                    AND e.status IN ('pending', 'retrying')
                                    AND (e.locked_until IS NULL OR e.locked_until <= coalesce($2, now()))
                                    FOR SHARE SKIP LOCKED) idle)))
       FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhook_deliveries d
   SET status        = CASE WHEN due.superseded_by IS NULL THEN d.status ELSE 'superseded' END,
       superseded_by = due.superseded_by,
       next_retry_at = CASE WHEN due.superseded_by IS NULL THEN d.next_retry_at END,
       resolved_at   = CASE WHEN due.superseded_by IS NULL THEN d.resolved_at
                            ELSE coalesce($2, now()) END,
       locked_until  = CASE WHEN due.superseded_by IS NULL
                            THEN coalesce($2, now()) + $3::bigint * interval '1 millisecond' END,
       attempt_count = d.attempt_count + (due.superseded_by IS NULL)::int
  FROM due
 WHERE d.ctid = ANY (ARRAY(SELECT ctid FROM due))
   AND d.ctid = due.ctid
RETURNING d.id, d.webhook_type, d.payload::text, d.attempt_count, d.max_retries, d.locked_until,
          due.locked_until IS NOT NULL AS reclaimed, coalesce($2, now()) AS claimed_at,
          d.superseded_by,
          CASE WHEN d.webhook_type <> 'new_request' AND due.superseded_by IS NULL
               THEN set_config('synchronous_commit', 'on', true) END AS durable";

/// Dispatch's claim of up to `$1` never-attempted deliveries (`pending`; requeued ones are
/// `retrying`), oldest first, whose lease is free at `$2` (NULL: the database's now); leased
/// for `$3` milliseconds, superseding as `$4` says; decided and returned like [`DUE_CLAIM`].
/// For pending rows `next_retry_at` is the capture time, so this ordering uses the due index.
pub const FRESH_CLAIM: &str = "
WITH due AS (
    SELECT d.ctid, d.locked_until, newer.id AS superseded_by
      FROM webhook_deliveries d
      LEFT JOIN LATERAL (
            SELECT n.id
              FROM webhook_deliveries n
             WHERE $4
               AND d.webhook_type <> 'new_request'
               AND n.booking_id = d.booking_id
               AND n.webhook_type IN ('approved', 'rejected')
               AND n.capture_seq > coalesce(d.replayed_over_seq, d.capture_seq)
             ORDER BY n.capture_seq DESC
             LIMIT 1
           ) newer ON true
     WHERE d.status = 'pending'
       AND (d.locked_until IS NULL OR d.locked_until <= coalesce($2, now()))
       AND (d.webhook_type = 'new_request'
            OR newer.id IS NOT NULL
            OR NOT EXISTS (SELECT 1
                             FROM webhook_deliveries e
                            WHERE e.booking_id = d.booking_id
                              AND e.webhook_type IN ('approved', 'rejected')
                              AND e.capture_seq < d.capture_seq
                              AND e.status IN ('pending', 'retrying'))
            OR ($4 AND (SELECT count(*)
                           FROM webhook_deliveries e
                          WHERE e.booking_id = d.booking_id
                            AND e.webhook_type IN ('approved', 'rejected')
                            AND e.capture_seq < d.capture_seq
                            AND e.status IN ('pending', 'retrying'))
                      = (SELECT count(*)
                           FROM (SELECT 1
                                   FROM webhook_deliveries e
                                  WHERE e.booking_id = d.booking_id
                                    AND e.webhook_type IN ('approved', 'rejected')
                                    AND e.capture_seq < d.capture_seq
                                    AND e.status IN ('pending', 'retrying')
                                    AND (e.locked_until IS NULL OR e.locked_until <= coalesce($2, now()))
                                    FOR SHARE SKIP LOCKED) idle)))
     ORDER BY d.next_retry_at
     LIMIT $1
       FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhook_deliveries d
   SET status        = CASE WHEN due.superseded_by IS NULL THEN d.status ELSE 'superseded' END,
       superseded_by = due.superseded_by,
       next_retry_at = CASE WHEN due.superseded_by IS NULL THEN d.next_retry_at END,
       resolved_at   = CASE WHEN due.superseded_by IS NULL THEN d.resolved_at
                            ELSE coalesce($2, now()) END,
       locked_until  = CASE WHEN due.superseded_by IS NULL
                            THEN coalesce($2, now()) + $3::bigint * interval '1 millisecond' END,
       attempt_count = d.attempt_count + (due.superseded_by IS NULL)::int
  FROM due
 WHERE d.ctid = ANY (ARRAY(SELECT ctid FROM due))
   AND d.ctid = due.ctid
RETURNING d.id, d.webhook_type, d.payload::text, d.attempt_count, d.max_retries, d.locked_until,
          due.locked_until IS NOT NULL AS reclaimed, coalesce($2, now()) AS claimed_at,
          d.superseded_by,
          CASE WHEN d.webhook_type <> 'new_request' AND due.superseded_by IS NULL
               THEN set_config('synchronous_commit', 'on', true) END AS durable";

/// The hand-off: status notifications of the bookings of the deliveries `$1` (just recorded)
/// captured after the earliest of them, that are pending or due at `$2` (NULL: the
/// database's now) and whose turn has now come, in capture order, at most `$4`, leased for
/// `$3` milliseconds, superseding as `$5` says; decided and returned like [`DUE_CLAIM`]. So a
/// rejection captured while the approval was in flight is sent the moment the approval's
/// outcome is recorded, by the worker that recorded it. Always later in capture order than
/// what was recorded, so handing on ends.
pub const FOLLOWER_CLAIM: &str = "
WITH due AS (
    SELECT d.ctid, d.locked_until, newer.id AS superseded_by
      FROM webhook_deliveries d
      LEFT JOIN LATERAL (
            SELECT n.id
              FROM webhook_deliveries n
             WHERE $5
               AND d.webhook_type <> 'new_request'
               AND n.booking_id = d.booking_id
               AND n.webhook_type IN ('approved', 'rejected')
               AND n.capture_seq > coalesce(d.replayed_over_seq, d.capture_seq)
             ORDER BY n.capture_seq DESC
             LIMIT 1
           ) newer ON true
     WHERE d.booking_id IN (SELECT r.booking_id FROM webhook_deliveries r WHERE r.id = ANY($1))
       AND d.webhook_type IN ('approved', 'rejected')
       AND d.capture_seq > (SELECT min(r.capture_seq)
                              FROM webhook_deliveries r
                             WHERE r.id = ANY($1)
                               AND r.booking_id = d.booking_id)
       AND d.status IN ('pending', 'retrying')
       AND (d.locked_until IS NULL OR d.locked_until <= coalesce($2, now()))
       AND (d.status = 'pending' OR d.next_retry_at <= coalesce($2, now()))
       AND (d.webhook_type = 'new_request'
            OR newer.id IS NOT NULL
            OR NOT EXISTS (SELECT 1
                             FROM webhook_deliveries e
                            WHERE e.booking_id = d.booking_id
                              AND e.webhook_type IN ('approved', 'rejected')
                              AND e.capture_seq < d.capture_seq
                              AND e.status IN ('pending', 'retrying'))
            OR ($5 AND (SELECT count(*)
                           FROM webhook_deliveries e
                          WHERE e.booking_id = d.booking_id
                            AND e.webhook_type IN ('approved', 'rejected')
                            AND e.capture_seq < d.capture_seq
                            AND e.status IN ('pending', 'retrying'))
                      = (SELECT count(*)
                           FROM (SELECT 1
                                   FROM webhook_deliveries e
                                  WHERE e.booking_id = d.booking_id
                                    AND e.webhook_type IN ('approved', 'rejected')
                                    AND e.capture_seq < d.capture_seq
                                    AND e.status IN ('pending', 'retrying')
                                    AND (e.locked_until IS NULL OR e.locked_until <= coalesce($2, now()))
                                    FOR SHARE SKIP LOCKED) idle)))
     ORDER BY d.capture_seq
     LIMIT $4
       FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhook_deliveries d
   SET status        = CASE WHEN due.superseded_by IS NULL THEN d.status ELSE 'superseded' END,
       superseded_by = due.superseded_by,
       next_retry_at = CASE WHEN due.superseded_by IS NULL THEN d.next_retry_at END,
       resolved_at   = CASE WHEN due.superseded_by IS NULL THEN d.resolved_at
                            ELSE coalesce($2, now()) END,
       locked_until  = CASE WHEN due.superseded_by IS NULL
                            THEN coalesce($2, now()) + $3::bigint * interval '1 millisecond' END,
       attempt_count = d.attempt_count + (due.superseded_by IS NULL)::int
  FROM due
 WHERE d.ctid = ANY (ARRAY(SELECT ctid FROM due))
   AND d.ctid = due.ctid
RETURNING d.id, d.webhook_type, d.payload::text, d.attempt_count, d.max_retries, d.locked_until,
          due.locked_until IS NOT NULL AS reclaimed, coalesce($2, now()) AS claimed_at,
          d.superseded_by,
          CASE WHEN d.webhook_type <> 'new_request' AND due.superseded_by IS NULL
               THEN set_config('synchronous_commit', 'on', true) END AS durable";

/// State of the given ids `$1` at `$2` (NULL: the database's now), to explain why a dispatch
/// did not claim them: status, the delivery that superseded it, whether a live lease holds
/// it, whether its retry is not due, and whether its turn has not come: an earlier status
/// notification of its booking is in flight (`$3`, supersede, on) or not final yet (off).
pub const DELIVERY_STATES: &str = "
SELECT d.id, d.status, d.superseded_by,
       coalesce(d.locked_until > coalesce($2, now()), false) AS in_flight,
       coalesce(d.next_retry_at > coalesce($2, now()), false) AS not_due,
       d.webhook_type <> 'new_request'
       AND d.status IN ('pending', 'retrying')
       AND EXISTS (SELECT 1
                     FROM webhook_deliveries e
                    WHERE e.booking_id = d.booking_id
                      AND e.webhook_type IN ('approved', 'rejected')
                      AND e.capture_seq < d.capture_seq
                      AND e.status IN ('pending', 'retrying')
                      AND (NOT $3 OR e.locked_until > coalesce($2, now()))) AS waiting
  FROM webhook_deliveries d
 WHERE d.id = ANY($1)";

/// Records a batch of attempts in one statement (atomic without an explicit transaction):
/// inserts one `webhook_attempts` row per element and moves each delivery to its new state,
/// releasing the lease — only where the lease `$2` is still ours. Returns the ids updated.
/// Idempotent, so a batch whose statement may have committed unseen (its connection broke, or
/// it was cancelled after the commit) can be recorded again: an attempt already stored has its
/// number (unique per delivery, reserved by the claim) and is not inserted twice, and a
/// delivery that already holds this very outcome is returned as updated. With each id, whether
/// a later status notification of its booking is still unresolved: one that may have waited
/// for this one ([`FOLLOWER_CLAIM`] hands it on).
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
       locked_until     = NULL
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
                         AND n.status IN ('pending', 'retrying')) AS followed";

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

/// Every statement above, for the test that prepares them all against the migrated schema.
pub const ALL: &[(&str, &str)] = &[
    ("DUE_CLAIM", DUE_CLAIM),
    ("IDS_CLAIM", IDS_CLAIM),
    ("FRESH_CLAIM", FRESH_CLAIM),
    ("FOLLOWER_CLAIM", FOLLOWER_CLAIM),
    ("DELIVERY_STATES", DELIVERY_STATES),
    ("OUTCOME_RECORDING", OUTCOME_RECORDING),
    ("LEASE_RELEASE", LEASE_RELEASE),
    ("DUE_COUNT", DUE_COUNT),
    ("FAILED_REQUEUE", FAILED_REQUEUE),
    ("SESSION_PROBE", SESSION_PROBE),
];

// ---------------------------------------------------------------------------------------------
// Operations: the read and repair commands (`webhooks stats | failures | show | cleanup | verify
// | doctor`) and the retry sweep's backlog gauges. Read-only unless said; "now" and cut-offs
// are parameters here too. The views they read are in `V9__operations`.
// ---------------------------------------------------------------------------------------------

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

/// "Now": `$1`, or the database's `now()` when NULL (see [`crate::Clock::now_on`]).
pub const CURRENT_TIME: &str = "
SELECT coalesce($1::timestamptz, now())";

/// When the last attempt started (the last time anything was sent).
pub const LAST_ATTEMPT: &str = "
SELECT max(started_at) FROM webhook_attempts";

/// Doctor: the user triggers on table `$1` (resolved through `search_path`; no rows if the
/// table does not exist), with their enabled state (`O` origin, `A` always, `R` replica only,
/// `D` disabled) and function.
pub const TABLE_TRIGGERS: &str = "
SELECT t.tgname::text, t.tgenabled::text, p.proname::text
  FROM pg_trigger t
  JOIN pg_proc p ON p.oid = t.tgfoid
 WHERE t.tgrelid = to_regclass($1)
   AND NOT t.tgisinternal
 ORDER BY t.tgname";

/// Doctor: the functions whose signatures are in `$1` (e.g. `notify_new_booking()`): whether
/// SECURITY DEFINER, owner, whether the owner may bypass row level security, their settings
/// (the pinned `search_path`), and who besides the owner may EXECUTE them (`PUBLIC` included).
/// A signature that does not exist comes back with NULL columns.
pub const FUNCTIONS: &str = "
SELECT sig.signature, p.prosecdef, pg_get_userbyid(p.proowner)::text,
       (SELECT r.rolsuper OR r.rolbypassrls FROM pg_roles r WHERE r.oid = p.proowner),
       coalesce(p.proconfig, '{}'::text[]),
       ARRAY(SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END
               FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
              WHERE a.privilege_type = 'EXECUTE'
                AND a.grantee <> p.proowner)
  FROM unnest($1::text[]) AS sig(signature)
  LEFT JOIN pg_proc p ON p.oid = to_regprocedure(sig.signature)
 ORDER BY sig.signature";

/// Doctor: for each table in `$1`, whether it exists, its owner, whether row level security
/// is on, and which of Supabase's API roles (`anon`, `authenticated`, where they exist) or
/// PUBLIC hold any privilege on it.
pub const TABLE_SECURITY: &str = "
SELECT name, c.oid IS NOT NULL, pg_get_userbyid(c.relowner)::text,
       coalesce(c.relrowsecurity, false),
       ARRAY(SELECT r.rolname::text
               FROM pg_roles r
              WHERE r.rolname IN ('anon', 'authenticated')
                AND c.oid IS NOT NULL
                AND has_table_privilege(r.oid, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')
             UNION ALL
             SELECT 'PUBLIC'
              WHERE EXISTS (SELECT 1 FROM aclexplode(c.relacl) a WHERE a.grantee = 0))
  FROM unnest($1::text[]) AS t(name)
  LEFT JOIN pg_class c ON c.oid = to_regclass(t.name)
 ORDER BY name";

/// Doctor: the capture NOTIFY switch as this connection sees it (database and role settings
/// apply), how many other sessions of this database LISTEN on the capture channel, and how
/// full the NOTIFY queue is (0..1).
pub const NOTIFY_POSTURE: &str = "
SELECT coalesce(nullif(current_setting('webhooks.notify', true), ''), 'on'),
       (SELECT count(*)
          FROM pg_stat_activity
         WHERE datname = current_database()
           AND pid <> pg_backend_pid()
           AND query ~* '^\\s*LISTEN\\s+\"?webhook_delivery\"?\\s*;?\\s*$'),
       pg_notification_queue_usage()";

/// Doctor: the schema the connection works in, and which of PUBLIC and Supabase's API roles
/// (`anon`, `authenticated`, where they exist) may CREATE objects in it.
pub const SCHEMA_CREATE: &str = "
SELECT current_schema()::text,
       ARRAY(SELECT 'PUBLIC'
              WHERE EXISTS (SELECT 1
                              FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
                             WHERE n.nspname = current_schema()
                               AND a.grantee = 0
                               AND a.privilege_type = 'CREATE')
             UNION ALL
             SELECT r.rolname::text
               FROM pg_roles r
              WHERE r.rolname IN ('anon', 'authenticated')
                AND has_schema_privilege(r.oid, current_schema(), 'CREATE'))";

/// Doctor: whether refinery's history table exists where migrations run (first schema of the
/// `search_path`).
pub const MIGRATION_TABLE: &str = "
SELECT to_regclass('refinery_schema_history') IS NOT NULL";

/// Doctor: the migrations applied (refinery's history), by version, with refinery's checksum.
pub const APPLIED_MIGRATIONS: &str = "
SELECT version::int4, name::text, checksum::text FROM refinery_schema_history ORDER BY version";

/// Every operations statement, for the test that prepares them against the migrated schema.
pub const OPERATIONS: &[(&str, &str)] = &[
    ("HEALTH_STATS", HEALTH_STATS),
    ("FAILURES", FAILURES),
    ("DELIVERY", DELIVERY),
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
