-- Bring the old table up to date with what happened since the switch, so the old retry
-- function neither resends what we delivered nor forgets what is still on its way:
-- rows imported from it take their current state ('skipped' and 'superseded' have no old
-- equivalent: 'failed', never retried by the old function). A status notification that a later
-- one of its booking replaced is 'failed' too, even if still on its way with us: the old
-- system would send an outdated decision (docs/superseded.md)...
UPDATE webhook_failures f
   SET status          = CASE WHEN d.status IN ('skipped', 'superseded') OR r.replaced THEN 'failed'
                              ELSE d.status END,
       attempt_count   = d.attempt_count,
       max_retries     = d.max_retries,
       last_error      = CASE WHEN d.status = 'superseded' OR r.replaced
                              THEN 'superseded: a later decision for this booking replaced it; never sent'
                              ELSE d.last_error END,
       last_attempt_at = d.last_attempt_at,
       next_retry_at   = CASE WHEN r.replaced THEN NULL ELSE d.next_retry_at END,
       resolved_at     = CASE WHEN r.replaced THEN now() ELSE d.resolved_at END
  FROM webhook_deliveries d
 CROSS JOIN LATERAL (
       SELECT d.status IN ('pending', 'retrying')
              AND d.webhook_type <> 'new_request'
              AND EXISTS (SELECT 1
                            FROM webhook_deliveries n
                           WHERE n.booking_id = d.booking_id
                             AND n.webhook_type IN ('approved', 'rejected')
                             AND n.capture_seq > d.capture_seq) AS replaced
       ) r
 WHERE d.id = f.id;
-- ...and deliveries captured since the switch that are still on their way join it as retries
-- (due when they were due with us; one whose booking is gone stays with us only, and so does a
-- status notification a later one replaced).
INSERT INTO webhook_failures
    (id, booking_id, webhook_type, recipient_email, attempt_count, last_error, last_attempt_at,
     next_retry_at, max_retries, status, created_at)
SELECT d.id, d.booking_id, d.webhook_type, d.recipient_email, d.attempt_count,
       coalesce(d.last_error, 'handed back to the pg_net system by the rollback script'),
       d.last_attempt_at, d.next_retry_at, d.max_retries, d.status, d.created_at
  FROM webhook_deliveries d
 WHERE d.status IN ('pending', 'retrying')
   AND d.recipient_email IS NOT NULL
   AND EXISTS (SELECT 1 FROM booking_requests b WHERE b.id = d.booking_id)  -- its foreign key
   AND NOT EXISTS (SELECT 1 FROM webhook_failures f WHERE f.id = d.id)
   AND NOT (d.webhook_type <> 'new_request'
            AND EXISTS (SELECT 1
                          FROM webhook_deliveries n
                         WHERE n.booking_id = d.booking_id
                           AND n.webhook_type IN ('approved', 'rejected')
                           AND n.capture_seq > d.capture_seq));
