-- Seed-compatible: one row per succeeded notification. Named webhook_email_logs where the email
-- service has a table email_logs of its own. Current definition: V4.
CREATE OR REPLACE VIEW @schema@.@email_logs@ WITH (security_invoker = true) AS
SELECT id,
       id            AS delivery_id,
       booking_id,
       recipient_email,
       webhook_type,
       'sent'::text  AS status,
       attempt_count AS attempts,
       resolved_at   AS sent_at,
       created_at
  FROM @schema@.webhook_deliveries
 WHERE status = 'succeeded'
