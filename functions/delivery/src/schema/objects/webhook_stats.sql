-- Health per type and overall ('all', last) for `webhooks stats`. Current definition: V9.
CREATE OR REPLACE VIEW @schema@.webhook_stats WITH (security_invoker = true) AS
WITH deliveries AS (
    SELECT coalesce(webhook_type, 'all')                   AS webhook_type,
           count(*)                                        AS total,
           count(*) FILTER (WHERE status = 'succeeded')    AS succeeded,
           count(*) FILTER (WHERE status = 'pending')      AS pending,
           count(*) FILTER (WHERE status = 'retrying')     AS retrying,
           count(*) FILTER (WHERE status = 'failed')       AS failed,
           count(*) FILTER (WHERE status = 'skipped')      AS skipped,
           count(*) FILTER (WHERE status = 'superseded')   AS superseded,
           round(avg(attempt_count) FILTER (WHERE status = 'succeeded'), 2) AS avg_attempts_to_succeed,
           min(next_retry_at) FILTER (WHERE status IN ('pending', 'retrying')) AS oldest_due_at,
           min(created_at) FILTER (WHERE status IN ('pending', 'retrying'))    AS oldest_undelivered_at
      FROM @schema@.webhook_deliveries
     GROUP BY GROUPING SETS ((webhook_type), ())
), attempts AS (
    SELECT coalesce(d.webhook_type, 'all')                  AS webhook_type,
           count(*)                                         AS attempts_24h,
           count(*) FILTER (WHERE a.error_kind IS NOT NULL) AS failed_attempts_24h,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY a.duration_ms)  AS p50_ms_24h,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY a.duration_ms) AS p95_ms_24h,
           percentile_cont(0.99) WITHIN GROUP (ORDER BY a.duration_ms) AS p99_ms_24h
      FROM @schema@.webhook_attempts a
      JOIN @schema@.webhook_deliveries d ON d.id = a.delivery_id
     WHERE a.started_at > now() - interval '24 hours'
     GROUP BY GROUPING SETS ((d.webhook_type), ())
)
SELECT d.webhook_type, d.total, d.succeeded, d.pending, d.retrying, d.failed, d.skipped,
       d.superseded,
       round(100.0 * d.succeeded / nullif(d.succeeded + d.failed, 0), 2) AS success_rate_pct,
       d.avg_attempts_to_succeed, d.oldest_due_at, d.oldest_undelivered_at,
       coalesce(a.attempts_24h, 0) AS attempts_24h,
       coalesce(a.failed_attempts_24h, 0) AS failed_attempts_24h,
       a.p50_ms_24h, a.p95_ms_24h, a.p99_ms_24h
  FROM deliveries d
  LEFT JOIN attempts a USING (webhook_type)
 ORDER BY d.webhook_type = 'all', d.webhook_type
