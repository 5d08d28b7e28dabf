-- Bring the old table up to date with what happened since the switch, so the old retry
-- function neither resends what we delivered nor forgets what is still on its way:
-- rows imported from it take their current state ('skipped' has no old equivalent: 'failed')...
UPDATE webhook_failures f
   SET status          = CASE d.status WHEN 'skipped' THEN 'failed' ELSE d.status END,
       attempt_count   = d.attempt_count,
       max_retries     = d.max_retries,
       last_error      = d.last_error,
       last_attempt_at = d.last_attempt_at,
       next_retry_at   = d.next_retry_at,
       resolved_at     = d.resolved_at
  FROM webhook_deliveries d
 WHERE d.id = f.id;
-- ...and deliveries captured since the switch that are still on their way join it as retries
-- (due when they were due with us; one whose booking is gone stays with us only).
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
   AND NOT EXISTS (SELECT 1 FROM webhook_failures f WHERE f.id = d.id);
