//! Sending now, due or not (`webhooks send`): the claim of given ids that ignores
//! `next_retry_at`, and the list of deliveries waiting for a retry. The claim decides as every
//! other claim does — leases, supersession, turn — with the same decision rule, written out in
//! full and pinned by `tests.rs`; only the due test is left out.

/// The claim of the given ids `$1` at `$2` (NULL: the database's now), leased for `$3`
/// milliseconds, superseding as `$4` says: [`super::IDS_CLAIM`] without its due test, so a
/// retrying delivery is taken whenever its next attempt is scheduled. What is final, leased by
/// another worker, or waiting for an earlier status notification of its booking is not taken,
/// exactly as for the other claims; a replaced status notification is ended `superseded`.
/// Returned like [`super::DUE_CLAIM`]. Each id is looked up by primary key.
pub const SEND_NOW_CLAIM: &str = "
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

/// Deliveries waiting for a retry, next due first, at most `$1`: what `webhooks send
/// --retrying` sends (read once, so a delivery that fails again is not sent twice in one run).
/// Served by the partial index `webhook_deliveries_due_idx`.
pub const RETRYING_IDS: &str = "
SELECT id
  FROM webhook_deliveries
 WHERE status = 'retrying'
 ORDER BY next_retry_at, capture_seq
 LIMIT $1";
