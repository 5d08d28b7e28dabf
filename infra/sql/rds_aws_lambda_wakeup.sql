-- OPTIONAL, Amazon RDS / Aurora PostgreSQL only. Not a migration: apply it by hand (or from
-- your deploy pipeline) after the default migrations, in the same schema, as the role that
-- owns the migrated tables:
--     psql "$DATABASE_URL" -f infra/sql/rds_aws_lambda_wakeup.sql
-- Re-runnable: running it again keeps the settings below.
--
-- What it does: when a delivery is captured as 'pending', invoke the `dispatch` Lambda
-- asynchronously ('Event') with {"deliveryId": "<uuid>"}, so the webhook goes out within
-- seconds instead of at the next retry sweep (up to 10 minutes later).
--
-- Why it is safe:
-- - The call happens in the booking's transaction, BEFORE it commits. dispatch therefore
--   waits briefly (WEBHOOK_DISPATCH_WAIT_MS) for the row to become visible, and does nothing
--   if the booking rolled back. A lost or early wake-up costs nothing: the row stays
--   'pending' and the retry sweep delivers it.
-- - Any failure of the call (extension missing, no permission, network, throttling) is
--   caught and turned into a WARNING: the wake-up can never fail the booking.
-- - Nothing a database session can change steers the call. The trigger runs with its owner's
--   rights (and the database's IAM role) whenever any role inserts a booking, so it must not
--   read the function or region from a setting (`current_setting(...)`): a role allowed to
--   insert bookings could `SET` it in its own session and invoke any function the IAM role
--   may invoke, in any region.
--
-- Where the settings live, and why there: one row in the table webhook_wakeup_aws_lambda,
-- which only its owner can read or change (privileges revoked from everyone else, row level
-- security on). Chosen over values pinned on the function (`ALTER FUNCTION ... SET`) because
-- the table's CHECKs refuse a malformed ARN or region the moment it is written (not as a
-- WARNING at the next booking), and re-running this script (CREATE OR REPLACE FUNCTION) would
-- silently reset a function's pinned values, but keeps the table's row.
--
-- Prerequisites (see docs/deploy.md):
--   CREATE EXTENSION IF NOT EXISTS aws_lambda CASCADE;      -- as rds_superuser
--   an IAM role allowing lambda:InvokeFunction on dispatch (only), attached to the DB
--   instance or cluster with feature name 'Lambda'; outbound network from the DB to the
--   Lambda API (a NAT gateway or a VPC interface endpoint for Lambda).
--
-- Configure (as the owner):
--   Set or change the function (its ARN, optionally with :alias; or its name) and region
--   (optional with an ARN, which names it; must then match):
--     INSERT INTO webhook_wakeup_aws_lambda (function_name, region)
--     VALUES ('arn:aws:lambda:eu-west-1:123456789012:function:dispatch', 'eu-west-1')
--     ON CONFLICT (id) DO UPDATE SET function_name = EXCLUDED.function_name,
--                                    region = EXCLUDED.region, updated_at = now();
--   Disable (deliveries then wait for the retry sweep):
--     DELETE FROM webhook_wakeup_aws_lambda;
--   Remove entirely:
--     DROP TRIGGER trigger_webhook_delivery_wakeup ON webhook_deliveries;
--     DROP FUNCTION wake_dispatch_aws_lambda(); DROP TABLE webhook_wakeup_aws_lambda;
-- Also: ALTER DATABASE mydb SET webhooks.notify = 'off';  -- no LISTENer in the cloud

CREATE TABLE IF NOT EXISTS webhook_wakeup_aws_lambda (
    -- At most one row: the key can only be true.
    id            boolean PRIMARY KEY DEFAULT true
                  CONSTRAINT webhook_wakeup_aws_lambda_one_row CHECK (id),
    -- What aws_lambda.invoke accepts: a function ARN (with an optional :alias or :version)
    -- or a bare function name.
    function_name text NOT NULL
                  CONSTRAINT webhook_wakeup_aws_lambda_function_check
                  CHECK (function_name ~ '^(arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:)?[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9_$-]{1,128})?$'),
    -- NULL: the ARN's region (or, for a bare name, the database's).
    region        text
                  CONSTRAINT webhook_wakeup_aws_lambda_region_check
                  CHECK (region ~ '^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$'),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_wakeup_aws_lambda_region_matches_arn
        CHECK (region IS NULL OR function_name NOT LIKE 'arn:%'
               OR split_part(function_name, ':', 4) = region)
);

COMMENT ON TABLE webhook_wakeup_aws_lambda IS
    'Owner-only settings of the optional aws_lambda dispatch wake-up (infra/sql/rds_aws_lambda_wakeup.sql): '
    'no row = off.';

-- No policy: only the owner (and superusers) see the row even if a grant comes back.
ALTER TABLE webhook_wakeup_aws_lambda ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON webhook_wakeup_aws_lambda FROM PUBLIC;

CREATE OR REPLACE FUNCTION wake_dispatch_aws_lambda()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
-- Fixed search_path: a definer function must not resolve names through the caller's path.
-- Everything below is schema-qualified.
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    fn     text;
    region text;
BEGIN
    BEGIN
        -- The settings table sits next to webhook_deliveries, the table this trigger is on.
        EXECUTE format('SELECT function_name, region FROM %I.webhook_wakeup_aws_lambda',
                       TG_TABLE_SCHEMA)
            INTO fn, region;
        IF fn IS NULL THEN
            RETURN NULL;  -- no row: wake-up off
        END IF;
        -- 'Event' = asynchronous: Lambda queues the event and answers 202 at once; the
        -- booking's transaction never waits for dispatch itself.
        PERFORM aws_lambda.invoke(
            function_name   => fn,
            payload         => json_build_object('deliveryId', NEW.id),
            region          => region,
            invocation_type => 'Event');
    EXCEPTION WHEN OTHERS THEN
        -- A subtransaction: the failed call is rolled back, the booking is not.
        RAISE WARNING 'webhooks: dispatch wake-up for delivery % failed (the retry sweep will deliver it): % (%)',
            NEW.id, SQLERRM, SQLSTATE;
    END;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION wake_dispatch_aws_lambda() IS
    'Optional trigger (RDS/Aurora): invokes the dispatch Lambda of webhook_wakeup_aws_lambda '
    'asynchronously with the new delivery id; failures only WARN, the retry sweep is the safety net.';

-- Owner-only, on every run: the table and the function keep no grant but their owner's,
-- also where default privileges gave them to other roles. Only the trigger calls the function.
REVOKE ALL ON FUNCTION wake_dispatch_aws_lambda() FROM PUBLIC;
DO $$
DECLARE
    settings regclass     := format('%I.webhook_wakeup_aws_lambda', current_schema())::regclass;
    wake     regprocedure := format('%I.wake_dispatch_aws_lambda()', current_schema())::regprocedure;
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
    EXECUTE FUNCTION wake_dispatch_aws_lambda();
