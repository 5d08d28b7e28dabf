-- OPTIONAL, Supabase (or any Postgres with the pg_net extension). Not a migration: apply it
-- by hand (or from your deploy pipeline) after the default migrations, in the same schema:
--     psql "$DATABASE_URL" -f infra/sql/supabase_pg_net_wakeup.sql
--
-- What it does: when a delivery is captured as 'pending', POST {"deliveryId": "<uuid>"} to
-- the `dispatch` Lambda's function URL with `Authorization: Bearer <token>` (dispatch checks
-- it against WEBHOOK_DISPATCH_TOKEN), so the webhook goes out within seconds instead of at
-- the next retry sweep.
--
-- Why it is safe:
-- - pg_net only queues the request (a row in net.http_request_queue); its background
--   worker sends it after the booking's transaction commits, and never if it rolls back.
--   A lost wake-up costs nothing: the row stays 'pending' and the retry sweep delivers it.
-- - Any failure here (extension missing, bad setting) is caught and turned into a WARNING:
--   the wake-up can never fail the booking.
--
-- Prerequisites: CREATE EXTENSION IF NOT EXISTS pg_net;  (Dashboard > Database > Extensions)
--   and dispatch deployed with a function URL (cargo lambda deploy --enable-function-url).
--
-- Settings:
--   ALTER DATABASE postgres SET webhooks.dispatch_url = 'https://<id>.lambda-url.<region>.on.aws/';
--   ALTER DATABASE postgres SET webhooks.notify = 'off';  -- no LISTENer in the cloud
-- The token is a secret. Preferred: Supabase Vault, which this function reads first:
--   SELECT vault.create_secret('<token>', 'webhooks_dispatch_token');
-- Fallback (readable by every role that can connect, so only if all of them are trusted):
--   ALTER DATABASE postgres SET webhooks.dispatch_token = '<token>';
-- Unset or empty webhooks.dispatch_url = wake-up off (deliveries wait for the sweep).
-- To remove: DROP TRIGGER trigger_webhook_delivery_wakeup ON webhook_deliveries;

CREATE OR REPLACE FUNCTION wake_dispatch_pg_net()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
-- Fixed search_path: a definer function must not resolve names through the caller's path.
-- Everything below is schema-qualified.
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    url   text := nullif(btrim(current_setting('webhooks.dispatch_url', true)), '');
    token text;
BEGIN
    IF url IS NULL THEN
        RETURN NULL;
    END IF;
    BEGIN
        -- Dynamic SQL so the function can be created where Vault does not exist.
        IF to_regclass('vault.decrypted_secrets') IS NOT NULL THEN
            EXECUTE 'SELECT decrypted_secret FROM vault.decrypted_secrets WHERE name = $1 LIMIT 1'
                INTO token USING 'webhooks_dispatch_token';
        END IF;
        token := coalesce(nullif(token, ''),
                          nullif(current_setting('webhooks.dispatch_token', true), ''));
        IF token IS NULL THEN
            RAISE EXCEPTION 'no dispatch token (Vault secret webhooks_dispatch_token or webhooks.dispatch_token)';
        END IF;
        PERFORM net.http_post(
            url                  => url,
            body                 => jsonb_build_object('deliveryId', NEW.id),
            headers              => jsonb_build_object(
                                        'Content-Type', 'application/json',
                                        'Authorization', 'Bearer ' || token),
            timeout_milliseconds => 5000);
    EXCEPTION WHEN OTHERS THEN
        -- A subtransaction: the failed call is rolled back, the booking is not. The message
        -- never includes the token.
        RAISE WARNING 'webhooks: dispatch wake-up for delivery % failed (the retry sweep will deliver it): % (%)',
            NEW.id, SQLERRM, SQLSTATE;
    END;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION wake_dispatch_pg_net() IS
    'Optional trigger (Supabase/pg_net): POSTs the new delivery id to the dispatch function URL '
    'after commit; failures only WARN, the retry sweep is the safety net.';

-- Only the trigger calls it.
REVOKE ALL ON FUNCTION wake_dispatch_pg_net() FROM PUBLIC;

-- Separate from the capture triggers of the migrations, so removing this file's objects
-- leaves capture untouched. 'skipped' rows have nothing to send.
CREATE OR REPLACE TRIGGER trigger_webhook_delivery_wakeup
    AFTER INSERT ON webhook_deliveries
    FOR EACH ROW
    WHEN (NEW.status = 'pending')
    EXECUTE FUNCTION wake_dispatch_pg_net();
