-- Health at a glance, per notification type (the seed's view). Current definition: V4.
CREATE OR REPLACE VIEW @schema@.webhook_health_stats WITH (security_invoker = true) AS
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
      FROM @schema@.webhook_deliveries
     GROUP BY webhook_type
), attempts AS (
    SELECT d.webhook_type,
           count(*)                                         AS attempts_24h,
           count(*) FILTER (WHERE a.error_kind IS NOT NULL) AS failed_attempts_24h,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY a.duration_ms)  AS p50_ms_24h,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY a.duration_ms) AS p95_ms_24h
      FROM @schema@.webhook_attempts a
      JOIN @schema@.webhook_deliveries d ON d.id = a.delivery_id
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
  LEFT JOIN attempts a USING (webhook_type)
