-- OPTIONAL, Supabase (or any Postgres with the pg_net extension). Not a migration: apply it
-- by hand (or from your deploy pipeline) after the default migrations, in the same schema,
-- as the role that owns the migrated tables (on Supabase: `postgres`):
--     psql "$DATABASE_URL" -f infra/sql/supabase_pg_net_wakeup.sql
-- Re-runnable: running it again keeps the settings below.
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
-- - Any failure here (extension missing, no settings, no token) is caught and turned into a
--   WARNING: the wake-up can never fail the booking.
-- - Nothing a database session can change steers the request. The trigger runs with its
--   owner's rights whenever any role inserts a booking, so it must not read the URL or the
--   token from a setting (`current_setting(...)`): a role allowed to insert bookings could
--   `SET` it in its own session and make the database send the token to any host.
--
-- Where the settings live, and why there: one row in the table webhook_wakeup_pg_net, which
-- only its owner can read or change (privileges revoked from everyone else, row level
-- security on). Chosen over values pinned on the function (`ALTER FUNCTION ... SET`) because
-- the table's CHECK refuses a URL that is not https:// the moment it is written (not as a
-- WARNING at the next booking); re-running this script (CREATE OR REPLACE FUNCTION) would
-- silently reset a function's pinned values, but keeps the table's row; and a function's
-- pinned values are readable by every role (pg_proc.proconfig), the table's are not.
--
-- Prerequisites: CREATE EXTENSION IF NOT EXISTS pg_net;  (Dashboard > Database > Extensions)
--   and dispatch deployed with a function URL (cargo lambda deploy --enable-function-url).
--
-- Configure (as the owner, e.g. in the Supabase SQL editor):
--   Set or change the URL (https:// only):
--     INSERT INTO webhook_wakeup_pg_net (dispatch_url)
--     VALUES ('https://<id>.lambda-url.<region>.on.aws/')
--     ON CONFLICT (id) DO UPDATE SET dispatch_url = EXCLUDED.dispatch_url, updated_at = now();
--   The token (the function's WEBHOOK_DISPATCH_TOKEN) is read from Supabase Vault first:
--     SELECT vault.create_secret('<token>', 'webhooks_dispatch_token');
--     SELECT vault.update_secret(id, '<new token>') FROM vault.secrets
--      WHERE name = 'webhooks_dispatch_token';                                  -- to rotate
--   Without Vault (plain Postgres with pg_net), in the owner-only table instead:
--     UPDATE webhook_wakeup_pg_net SET dispatch_token = '<token>', updated_at = now();
--   Disable (deliveries then wait for the retry sweep):
--     DELETE FROM webhook_wakeup_pg_net;
--   Remove entirely:
--     DROP TRIGGER trigger_webhook_delivery_wakeup ON webhook_deliveries;
--     DROP FUNCTION wake_dispatch_pg_net(); DROP TABLE webhook_wakeup_pg_net;
-- Also: ALTER DATABASE postgres SET webhooks.notify = 'off';  -- no LISTENer in the cloud

CREATE TABLE IF NOT EXISTS webhook_wakeup_pg_net (
    -- At most one row: the key can only be true.
    id             boolean PRIMARY KEY DEFAULT true
                   CONSTRAINT webhook_wakeup_pg_net_one_row CHECK (id),
    -- The request carries the bearer token, so only https:// to a host name (no credentials,
    -- no spaces).
    dispatch_url   text NOT NULL
                   CONSTRAINT webhook_wakeup_pg_net_url_check
                   CHECK (length(dispatch_url) <= 2048
                          AND dispatch_url ~ '^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[!-~]*)?$'),
    -- Only where Vault is absent; the Vault secret 'webhooks_dispatch_token' wins.
    dispatch_token text
                   CONSTRAINT webhook_wakeup_pg_net_token_check
                   CHECK (length(dispatch_token) <= 1024 AND dispatch_token ~ '^[!-~]+$'),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE webhook_wakeup_pg_net IS
    'Owner-only settings of the optional pg_net dispatch wake-up (infra/sql/supabase_pg_net_wakeup.sql): '
    'no row = off.';

-- No policy: only the owner (and superusers) see the row even if a grant comes back.
ALTER TABLE webhook_wakeup_pg_net ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON webhook_wakeup_pg_net FROM PUBLIC;

CREATE OR REPLACE FUNCTION wake_dispatch_pg_net()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
-- Fixed search_path: a definer function must not resolve names through the caller's path.
-- Everything below is schema-qualified.
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    url         text;
    table_token text;
    vault_token text;
BEGIN
    BEGIN
        -- The settings table sits next to webhook_deliveries, the table this trigger is on.
        EXECUTE format('SELECT dispatch_url, dispatch_token FROM %I.webhook_wakeup_pg_net',
                       TG_TABLE_SCHEMA)
            INTO url, table_token;
        IF url IS NULL THEN
            RETURN NULL;  -- no row: wake-up off
        END IF;
        -- The CHECK already guarantees it; repeated so a dropped constraint cannot send the
        -- token in clear text.
        IF url NOT LIKE 'https://%' THEN
            RAISE EXCEPTION 'dispatch_url is not https://';
        END IF;
        -- Dynamic SQL so the function can be created where Vault does not exist.
        IF to_regclass('vault.decrypted_secrets') IS NOT NULL THEN
            EXECUTE 'SELECT decrypted_secret FROM vault.decrypted_secrets WHERE name = $1 LIMIT 1'
                INTO vault_token USING 'webhooks_dispatch_token';
        END IF;
        IF coalesce(vault_token, table_token, '') = '' THEN
            RAISE EXCEPTION 'no dispatch token (Vault secret webhooks_dispatch_token or webhook_wakeup_pg_net.dispatch_token)';
        END IF;
        PERFORM net.http_post(
            url                  => url,
            body                 => jsonb_build_object('deliveryId', NEW.id),
            headers              => jsonb_build_object(
                                        'Content-Type', 'application/json',
                                        'Authorization', 'Bearer ' || coalesce(nullif(vault_token, ''), table_token)),
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
    'of webhook_wakeup_pg_net after commit; failures only WARN, the retry sweep is the safety net.';

-- Owner-only, on every run: the table and the function keep no grant but their owner's,
-- also where default privileges gave them to other roles (Supabase: anon, authenticated,
-- service_role). Only the trigger calls the function.
REVOKE ALL ON FUNCTION wake_dispatch_pg_net() FROM PUBLIC;
DO $$
DECLARE
    settings regclass     := format('%I.webhook_wakeup_pg_net', current_schema())::regclass;
    wake     regprocedure := format('%I.wake_dispatch_pg_net()', current_schema())::regprocedure;
    grantee  text;
BEGIN
    FOR grantee IN
        SELECT DISTINCT quote_ident(pg_get_userbyid(a.grantee))
          FROM pg_class c, aclexplode(c.relacl) a
         WHERE c.oid = settings AND a.grantee NOT IN (0, c.relowner)
    LOOP
        EXECUTE format('REVOKE ALL ON %s FROM %s', settings, grantee);
    END LOOP;
    FOR grantee IN
        SELECT DISTINCT quote_ident(pg_get_userbyid(a.grantee))
          FROM pg_proc p, aclexplode(p.proacl) a
         WHERE p.oid = wake AND a.grantee NOT IN (0, p.proowner)
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM %s', wake, grantee);
    END LOOP;
END
$$;

-- Separate from the capture triggers of the migrations, so removing this file's objects
-- leaves capture untouched. 'skipped' rows have nothing to send.
CREATE OR REPLACE TRIGGER trigger_webhook_delivery_wakeup
    AFTER INSERT ON webhook_deliveries
    FOR EACH ROW
    WHEN (NEW.status = 'pending')
    EXECUTE FUNCTION wake_dispatch_pg_net();
