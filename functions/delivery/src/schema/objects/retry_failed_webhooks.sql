-- Manual retry, compatible with the seed's `SELECT * FROM retry_failed_webhooks()`: requeues
-- failed deliveries, except those a later decision replaced unless asked. Not SECURITY DEFINER:
-- it runs with the caller's rights and search_path. Current definition: V8.
CREATE OR REPLACE FUNCTION @schema@.retry_failed_webhooks(
    p_ids              uuid[]      DEFAULT NULL,
    p_since            timestamptz DEFAULT NULL,
    p_max_retries      integer     DEFAULT 3,
    p_now              timestamptz DEFAULT now(),
    p_include_replaced boolean     DEFAULT false
)
RETURNS TABLE (requeued integer, due_now integer, still_failed integer, replaced integer)
LANGUAGE plpgsql
AS $$
DECLARE
    n_requeued integer;
    n_replaced integer;
    due        timestamptz := coalesce(p_now, now());
BEGIN
    IF p_max_retries IS NULL OR p_max_retries < 0 THEN
        RAISE EXCEPTION 'p_max_retries must be 0 or more, got %', p_max_retries;
    END IF;

    WITH selected AS (
        SELECT d.id,
               (SELECT max(n.capture_seq)
                  FROM webhook_deliveries n
                 WHERE d.webhook_type <> 'new_request'
                   AND n.booking_id = d.booking_id
                   AND n.webhook_type IN ('approved', 'rejected')
                   AND n.capture_seq > d.capture_seq) AS newest
          FROM webhook_deliveries d
         WHERE d.status = 'failed'
           AND (p_ids IS NULL OR d.id = ANY (p_ids))
           AND (p_since IS NULL OR d.resolved_at >= p_since)
           FOR UPDATE OF d
    ), requeued AS (
        UPDATE webhook_deliveries d
           SET status            = 'retrying',
               next_retry_at     = due,
               resolved_at       = NULL,
               locked_until      = NULL,
               max_retries       = d.attempt_count + p_max_retries,
               replayed_over_seq = s.newest
          FROM selected s
         WHERE d.id = s.id
           AND (s.newest IS NULL OR coalesce(p_include_replaced, false))
        RETURNING d.id
    )
    SELECT (SELECT count(*) FROM requeued),
           (SELECT count(*) FROM selected s
             WHERE s.newest IS NOT NULL AND NOT coalesce(p_include_replaced, false))
      INTO n_requeued, n_replaced;

    RETURN QUERY
    SELECT n_requeued,
           (SELECT count(*)::integer FROM webhook_deliveries
             WHERE status IN ('pending', 'retrying') AND next_retry_at <= due),
           (SELECT count(*)::integer FROM webhook_deliveries WHERE status = 'failed'),
           n_replaced;
END
$$;
