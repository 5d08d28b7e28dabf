-- V7: invariants the engine relies on, enforced by the schema rather than by every writer.
--
-- A delivery is due work exactly when it is pending or retrying, and the claims find due work
-- by next_retry_at: a pending/retrying row without one would never be sent, and a final row
-- with one would be counted as due. Before this migration an operator could make the first
-- kind with `retry_failed_webhooks(p_now => NULL)` or a hand edit.

-- Repair what a hand edit may have left, so the constraint can be added: an unresolved row
-- without a due time is due now; a final row has none.
UPDATE webhook_deliveries
   SET next_retry_at = now()
 WHERE status IN ('pending', 'retrying')
   AND next_retry_at IS NULL;
UPDATE webhook_deliveries
   SET next_retry_at = NULL
 WHERE status NOT IN ('pending', 'retrying')
   AND next_retry_at IS NOT NULL;

-- Dropped first so the file can be applied twice (psql -f).
ALTER TABLE webhook_deliveries DROP CONSTRAINT IF EXISTS webhook_deliveries_due_check;
ALTER TABLE webhook_deliveries
    ADD CONSTRAINT webhook_deliveries_due_check
    CHECK ((status IN ('pending', 'retrying')) = (next_retry_at IS NOT NULL));

COMMENT ON CONSTRAINT webhook_deliveries_due_check ON webhook_deliveries IS
    'pending/retrying exactly when next_retry_at is set: every unresolved delivery is findable '
    'by the claims, and no final one is.';

-- V5's manual retry, unchanged except that a NULL p_now means the database's now(): the
-- engine passes NULL to use the database's clock, and an operator who passes NULL by hand
-- gets rows that are due now, never rows that no sweep can see.
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
    n   integer;
    due timestamptz := coalesce(p_now, now());
BEGIN
    IF p_max_retries IS NULL OR p_max_retries < 0 THEN
        RAISE EXCEPTION 'p_max_retries must be 0 or more, got %', p_max_retries;
    END IF;

    UPDATE webhook_deliveries
       SET status        = 'retrying',
           next_retry_at = due,
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
             WHERE status IN ('pending', 'retrying') AND next_retry_at <= due),
           (SELECT count(*)::integer FROM webhook_deliveries WHERE status = 'failed');
END
$$;

COMMENT ON FUNCTION retry_failed_webhooks(uuid[], timestamptz, integer, timestamptz) IS
    'Requeues failed deliveries (all, by id, or failed since a time) with a fresh retry budget, '
    'due at p_now (NULL: now()); returns counts. The next retry sweep sends them.';

REVOKE ALL ON FUNCTION retry_failed_webhooks(uuid[], timestamptz, integer, timestamptz) FROM PUBLIC;
