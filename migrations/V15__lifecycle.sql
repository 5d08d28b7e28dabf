-- V15: adopting the pg_net system a second time, and after (issue 20). Every statement can run
-- twice (psql -f), like the earlier files.
--
-- 1. A superseded delivery may name no replacement. Adoption decides with today's booking: a
--    live approval imported from the old system whose booking is rejected now ends superseded,
--    although no delivery of the rejection exists (the old system delivered it and, logging
--    only failures, left no row). Such a row says why in last_error instead.
-- 2. The seed-compatible view webhook_failures refuses writes. It used to be auto-updatable, so
--    an old `retry_failed_webhooks()` still running when adoption renamed its table (a pg_cron
--    run waiting on adoption's lock) resolved webhook_failures to this view and POSTed our
--    outbox rows through pg_net, unsigned, bumping their attempt counts. Now any INSERT, UPDATE
--    or DELETE through it fails with an error that says what to use instead.

-- 1. Superseded, with or without the replacement's id --------------------------------------

ALTER TABLE webhook_deliveries
    DROP CONSTRAINT IF EXISTS webhook_deliveries_superseded_check,
    ADD CONSTRAINT webhook_deliveries_superseded_check
    CHECK (superseded_by IS NULL OR status = 'superseded'),
    DROP CONSTRAINT IF EXISTS webhook_deliveries_superseded_reason_check,
    ADD CONSTRAINT webhook_deliveries_superseded_reason_check
    CHECK (status <> 'superseded' OR superseded_by IS NOT NULL OR last_error IS NOT NULL);

COMMENT ON CONSTRAINT webhook_deliveries_superseded_check ON webhook_deliveries IS
    'Only a superseded delivery names the one that replaced it.';
COMMENT ON CONSTRAINT webhook_deliveries_superseded_reason_check ON webhook_deliveries IS
    'A superseded delivery names its replacement, or says in last_error why it was superseded '
    '(adoption: the booking''s decision changed under the old system, which left no row of it).';

-- 2. webhook_failures: the same columns (V4, V8), read only ------------------------------------

CREATE OR REPLACE VIEW webhook_failures WITH (security_invoker = true) AS
SELECT id, booking_id, webhook_type, recipient_email, attempt_count,
       CASE WHEN status = 'superseded' AND superseded_by IS NOT NULL
            THEN 'superseded by ' || superseded_by || ' (last error: ' || last_error || ')'
            ELSE last_error
       END AS last_error,
       last_attempt_at, next_retry_at, max_retries, status, created_at, resolved_at
  FROM webhook_deliveries
 WHERE last_error IS NOT NULL
   AND status <> 'skipped';

COMMENT ON VIEW webhook_failures IS
    'Seed-compatible and read only: deliveries that failed at least once (retrying, failed, '
    'succeeded later, or superseded: last_error then names the delivery that replaced it, or why).';

CREATE OR REPLACE FUNCTION webhook_failures_read_only()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $body$
BEGIN
    RAISE EXCEPTION 'webhook_failures is a read-only view of webhook_deliveries: nothing was changed'
        USING ERRCODE = 'feature_not_supported',
              DETAIL = 'Since the booking webhooks were installed (or took over the pg_net system), '
                       'deliveries are sent, retried and recorded by their own engine.',
              HINT = 'To requeue failed deliveries: webhooks replay, or SELECT * FROM '
                     'retry_failed_webhooks(). An old pg_cron job calling the pg_net system''s '
                     'retry function must be unscheduled.';
END
$body$;

COMMENT ON FUNCTION webhook_failures_read_only() IS
    'INSTEAD OF trigger of the webhook_failures view: refuses every write with a clear error.';

CREATE OR REPLACE TRIGGER webhook_failures_read_only
    INSTEAD OF INSERT OR UPDATE OR DELETE ON webhook_failures
    FOR EACH ROW
    EXECUTE FUNCTION webhook_failures_read_only();

DO $$
DECLARE
    grantee text;
BEGIN
    FOREACH grantee IN ARRAY ARRAY['PUBLIC', 'anon', 'authenticated'] LOOP
        CONTINUE WHEN grantee <> 'PUBLIC'
                  AND NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = grantee);
        IF grantee <> 'PUBLIC' THEN
            grantee := quote_ident(grantee);
        END IF;
        EXECUTE format('REVOKE ALL ON FUNCTION webhook_failures_read_only() FROM %s', grantee);
        EXECUTE format('REVOKE ALL ON webhook_failures FROM %s', grantee);
    END LOOP;
END
$$;
