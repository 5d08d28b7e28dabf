//! The claims: taking deliveries under a lease, deciding supersession and turn.
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
//! their own that forbids sorting ([`ORDERED_CLAIM_BEGIN`](super::ORDERED_CLAIM_BEGIN); transaction-scoped, so poolers are
//! fine). Every claim's commit skips the wait for the disk ([`CLAIM_BEGIN`](super::CLAIM_BEGIN)): a lease lost in a
//! crash costs at most a second send under the same `webhook-id`.
//!
//! **Why a lease and not a row lock held while sending.** Holding the claim's row locks in a
//! transaction left open until the outcome is recorded would save the lease write (about a
//! quarter of the server's CPU and a fifth of its WAL per delivery: `make bench`, "Write designs
//! side by side"). But a row lock lasts only as long as the server keeps the worker's
//! session, which the worker cannot see without asking: an idle-in-transaction timeout, a
//! pooler closing the server connection, `pg_terminate_backend` or a failover hands the rows to
//! the next claim at once while the first worker is still sending them — and for a booking's
//! decisions that lets an approval arrive after the rejection that followed it. A lease is a
//! promise bounded by time that the worker checks on its own clock before every send
//! (`engine::lease`), whatever happened to its connection; it also keeps no transaction open
//! across HTTP requests (no pinned pooler connection, no held-back vacuum horizon).
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

/// The sweep's claim: unresolved deliveries due by `$1` (default: now) whose lease is free or
/// expired at `$2` (NULL: the database's now), oldest due first, at most `$4`, leased for `$3`
/// milliseconds; `$5`: supersede (`WEBHOOK_SUPERSEDE`). Only status notifications whose turn
/// has come are taken; those with a later one are ended `superseded` (see the module
/// documentation). Returns them in the column order of [`crate::engine::claim::Claimed`] (and the capture
/// order last, which the body sends as `sequence`), with
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
               THEN set_config('synchronous_commit', 'on', true) END AS durable,
          d.capture_seq";

/// The planner settings of `webhooks listen`'s claim connection
/// ([`crate::engine::claim::SessionClaims`]), a session of its own that runs only [`IDS_CLAIM`]
/// and, while listen polls, [`FRESH_CLAIM`], each prepared once: one generic plan (no planning
/// per notification or poll, about a millisecond of its way to the receiver), which must probe
/// the primary key per id, and read the due index in order for the fresh claim, whatever the
/// table looked like when it was planned — a plan made on a nearly empty table would otherwise
/// scan it, or sort it, and keep doing so as it grew. Its commits wait for the disk only when a
/// status notification was leased (see [`CLAIM_BEGIN`](super::CLAIM_BEGIN)), and every
/// statement is bounded on the server as in [`BOUNDED_BEGIN`](super::BOUNDED_BEGIN). Never
/// sent through a pooler: listen refuses transaction poolers.
pub const SESSION_CLAIMS_SETUP: &str = "SET plan_cache_mode = force_generic_plan;
SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_sort = off;
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
               THEN set_config('synchronous_commit', 'on', true) END AS durable,
          d.capture_seq";

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
               THEN set_config('synchronous_commit', 'on', true) END AS durable,
          d.capture_seq";

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
               THEN set_config('synchronous_commit', 'on', true) END AS durable,
          d.capture_seq";

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
