-- Failed attempts of the last 7 days by error class and HTTP status. Current definition: V4.
CREATE OR REPLACE VIEW @schema@.webhook_error_patterns WITH (security_invoker = true) AS
SELECT error_kind, status_code, count(*) AS attempts, max(started_at) AS last_seen,
       (array_agg(error ORDER BY started_at DESC))[1] AS latest_error
  FROM @schema@.webhook_attempts
 WHERE error_kind IS NOT NULL
   AND started_at > now() - interval '7 days'
 GROUP BY error_kind, status_code
