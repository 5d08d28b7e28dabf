-- V5: manual retry, compatible with the seed's `SELECT * FROM retry_failed_webhooks();`.
--
-- The seed's function sent HTTP itself; here it only *requeues*: failed deliveries (all of
-- them, only the given ids, or only those failed since a time) become due now with a fresh
-- retry budget, and the next sweep — or `webhooks sweep` — sends them through the engine.
-- attempt_count is kept (attempt numbers stay unique in webhook_attempts); the budget is
-- extended instead: max_retries = attempts so far + p_max_retries.
CREATE OR REPLACE FUNCTION retry_failed_webhooks(
    p_ids         uuid[]      DEFAULT NULL,
    p_since       timestamptz DEFAULT NULL,
    p_max_retries integer     DEFAULT 3,
    p_now         timestamptz DEFAULT now()
)
RETURNS TABLE (requeued integer, due_now integer, still_failed integer)
LANGUAGE plpgsql
AS $$
DECLARE
    n integer;
BEGIN
    IF p_max_retries IS NULL OR p_max_retries < 0 THEN
        RAISE EXCEPTION 'p_max_retries must be 0 or more, got %', p_max_retries;
    END IF;

    UPDATE webhook_deliveries
       SET status        = 'retrying',
           next_retry_at = p_now,
           resolved_at   = NULL,
           locked_until  = NULL,
           max_retries   = attempt_count + p_max_retries
     WHERE status = 'failed'
       AND (p_ids IS NULL OR id = ANY (p_ids))
       AND (p_since IS NULL OR resolved_at >= p_since);
    GET DIAGNOSTICS n = ROW_COUNT;

    RETURN QUERY
    SELECT n,
           (SELECT count(*)::integer FROM webhook_deliveries
             WHERE status IN ('pending', 'retrying') AND next_retry_at <= p_now),
           (SELECT count(*)::integer FROM webhook_deliveries WHERE status = 'failed');
END
$$;

COMMENT ON FUNCTION retry_failed_webhooks(uuid[], timestamptz, integer, timestamptz) IS
    'Requeues failed deliveries (all, by id, or failed since a time) with a fresh retry budget; '
    'returns counts. The next retry sweep sends them.';

REVOKE ALL ON FUNCTION retry_failed_webhooks(uuid[], timestamptz, integer, timestamptz) FROM PUBLIC;
