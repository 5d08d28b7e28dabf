-- Seed-compatible, read only: deliveries that failed at least once. Current definition: V15.
CREATE OR REPLACE VIEW @schema@.webhook_failures WITH (security_invoker = true) AS
SELECT id, booking_id, webhook_type, recipient_email, attempt_count,
       CASE WHEN status = 'superseded' AND superseded_by IS NOT NULL
            THEN 'superseded by ' || superseded_by || ' (last error: ' || last_error || ')'
            ELSE last_error
       END AS last_error,
       last_attempt_at, next_retry_at, max_retries, status, created_at, resolved_at
  FROM @schema@.webhook_deliveries
 WHERE last_error IS NOT NULL
   AND status <> 'skipped'
