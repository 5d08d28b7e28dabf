-- INSTEAD OF trigger function of the webhook_failures view: refuses every write. Current
-- definition: V15.
CREATE OR REPLACE FUNCTION @schema@.webhook_failures_read_only()
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
