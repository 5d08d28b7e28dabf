-- V4: monitoring views. The first two keep the seed's own queries working
--   SELECT booking_id, webhook_type, attempt_count, next_retry_at
--     FROM webhook_failures WHERE status = 'retrying' ORDER BY next_retry_at;
--   SELECT * FROM email_logs ORDER BY created_at DESC LIMIT 1;
--   SELECT * FROM webhook_health_stats;
-- All views are security_invoker (PostgreSQL 15+): they read the RLS-protected tables with
-- the caller's rights, so granting a view never leaks email addresses by accident.

-- Deliveries that failed at least once (the seed's webhook_failures table, as a view).
CREATE OR REPLACE VIEW webhook_failures WITH (security_invoker = true) AS
SELECT id, booking_id, webhook_type, recipient_email, attempt_count, last_error,
       last_attempt_at, next_retry_at, max_retries, status, created_at, resolved_at
  FROM webhook_deliveries
 WHERE last_error IS NOT NULL
   AND status <> 'skipped';

COMMENT ON VIEW webhook_failures IS
    'Seed-compatible: deliveries that failed at least once (retrying, failed, or succeeded later).';

-- One row per notification that reached the notification service (the seed's email_logs).
CREATE OR REPLACE VIEW email_logs WITH (security_invoker = true) AS
SELECT id,
       id            AS delivery_id,
       booking_id,
       recipient_email,
       webhook_type,
       'sent'::text  AS status,
       attempt_count AS attempts,
       resolved_at   AS sent_at,
       created_at
  FROM webhook_deliveries
 WHERE status = 'succeeded';

COMMENT ON VIEW email_logs IS
    'Seed-compatible: one row per succeeded notification (delivery id, recipient, type, sent_at, attempts).';

-- Health at a glance, per notification type: states, success rate, retries, backlog age,
-- and attempt latency over the last 24 hours.
CREATE OR REPLACE VIEW webhook_health_stats WITH (security_invoker = true) AS
WITH deliveries AS (
    SELECT webhook_type,
           count(*)                                        AS total,
           count(*) FILTER (WHERE status = 'succeeded')    AS succeeded,
           count(*) FILTER (WHERE status = 'pending')      AS pending,
           count(*) FILTER (WHERE status = 'retrying')     AS retrying,
           count(*) FILTER (WHERE status = 'failed')       AS failed,
           count(*) FILTER (WHERE status = 'skipped')      AS skipped,
           round(avg(attempt_count) FILTER (WHERE status = 'succeeded'), 2) AS avg_attempts_to_succeed,
           min(next_retry_at) FILTER (WHERE status IN ('pending', 'retrying')) AS oldest_due_at
      FROM webhook_deliveries
     GROUP BY webhook_type
), attempts AS (
    SELECT d.webhook_type,
           count(*)                                         AS attempts_24h,
           count(*) FILTER (WHERE a.error_kind IS NOT NULL) AS failed_attempts_24h,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY a.duration_ms)  AS p50_ms_24h,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY a.duration_ms) AS p95_ms_24h
      FROM webhook_attempts a
      JOIN webhook_deliveries d ON d.id = a.delivery_id
     WHERE a.started_at > now() - interval '24 hours'
     GROUP BY d.webhook_type
)
SELECT d.webhook_type, d.total, d.succeeded, d.pending, d.retrying, d.failed, d.skipped,
       round(100.0 * d.succeeded / nullif(d.succeeded + d.failed, 0), 2) AS success_rate_pct,
       d.avg_attempts_to_succeed, d.oldest_due_at,
       coalesce(a.attempts_24h, 0) AS attempts_24h,
       coalesce(a.failed_attempts_24h, 0) AS failed_attempts_24h,
       a.p50_ms_24h, a.p95_ms_24h
  FROM deliveries d
  LEFT JOIN attempts a USING (webhook_type);

COMMENT ON VIEW webhook_health_stats IS
    'Per webhook_type: delivery states, success rate, backlog age and 24h attempt latency.';

-- Error patterns: what has been going wrong lately, grouped by class and status code.
CREATE OR REPLACE VIEW webhook_error_patterns WITH (security_invoker = true) AS
SELECT error_kind, status_code, count(*) AS attempts, max(started_at) AS last_seen,
       (array_agg(error ORDER BY started_at DESC))[1] AS latest_error
  FROM webhook_attempts
 WHERE error_kind IS NOT NULL
   AND started_at > now() - interval '7 days'
 GROUP BY error_kind, status_code;

COMMENT ON VIEW webhook_error_patterns IS
    'Failed attempts of the last 7 days by error class and HTTP status, with the latest excerpt.';

REVOKE ALL ON webhook_failures, email_logs, webhook_health_stats, webhook_error_patterns FROM PUBLIC;

-- Supabase grants every new table and view to its API roles by default privileges; take them
-- back so the REST API never exposes the outbox. Elsewhere these roles do not exist.
DO $$
DECLARE
    api_role text;
BEGIN
    FOREACH api_role IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = api_role) THEN
            EXECUTE format('REVOKE ALL ON webhook_deliveries, webhook_attempts, webhook_failures, '
                           'email_logs, webhook_health_stats, webhook_error_patterns FROM %I', api_role);
            EXECUTE format('REVOKE ALL ON FUNCTION capture_booking_webhook(uuid, text, text) FROM %I',
                           api_role);
        END IF;
    END LOOP;
END
$$;
