-- Stop our capture and free the names the old system used. Our outbox (webhook_deliveries,
-- webhook_attempts) and our other objects stay: they hold the history since the switch.
DO $$
DECLARE
    obj record;
BEGIN
    -- Our capture triggers: their functions write webhook_deliveries.
    FOR obj IN SELECT t.tgname
                 FROM pg_trigger t
                 JOIN pg_proc p ON p.oid = t.tgfoid
                WHERE t.tgrelid = 'booking_requests'::regclass
                  AND NOT t.tgisinternal
                  AND p.prosrc ~ '\m(capture_booking_webhook|webhook_deliveries)\M'
    LOOP
        EXECUTE format('DROP TRIGGER %I ON booking_requests', obj.tgname);
    END LOOP;
    -- Our retry_failed_webhooks(...): `SELECT retry_failed_webhooks()` must find only the old one.
    FOR obj IN SELECT p.oid::regprocedure AS fn
                 FROM pg_proc p
                WHERE p.proname = 'retry_failed_webhooks'
                  AND p.pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
    LOOP
        EXECUTE format('DROP FUNCTION %s', obj.fn);
    END LOOP;
END
$$;
DROP VIEW IF EXISTS webhook_failures;
