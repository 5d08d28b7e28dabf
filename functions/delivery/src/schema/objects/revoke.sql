-- After a reinstall: nothing of ours for PUBLIC or Supabase's API roles, whose default
-- privileges grant them every new function and view (as V6, V8, V9, V14, V15 revoke).
DO $revoke$
DECLARE
    grantee text;
BEGIN
    FOREACH grantee IN ARRAY ARRAY['PUBLIC', 'anon', 'authenticated'] LOOP
        CONTINUE WHEN grantee <> 'PUBLIC'
                  AND NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = grantee);
        IF grantee <> 'PUBLIC' THEN
            grantee := quote_ident(grantee);
        END IF;
        EXECUTE format('REVOKE ALL ON FUNCTION '
                       '@schema@.capture_booking_webhook(uuid, text, text), '
                       '@schema@.notify_new_booking(), @schema@.notify_status_update(), '
                       '@schema@.retry_failed_webhooks(uuid[], timestamptz, integer, timestamptz, boolean), '
                       '@schema@.webhook_failures_read_only() FROM %s', grantee);
        EXECUTE format('REVOKE ALL ON @schema@.webhook_failures, @schema@.@email_logs@, '
                       '@schema@.webhook_health_stats, @schema@.webhook_error_patterns, '
                       '@schema@.webhook_stats, @schema@.webhook_missing_deliveries FROM %s',
                       grantee);
    END LOOP;
END
$revoke$
