-- OPTIONAL, Amazon RDS / Aurora PostgreSQL only. Not a migration: apply it by hand (or from
-- your deploy pipeline) after the default migrations, in the same schema:
--     psql "$DATABASE_URL" -f infra/sql/rds_aws_lambda_wakeup.sql
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
--
-- Prerequisites (see docs/deploy.md):
--   CREATE EXTENSION IF NOT EXISTS aws_lambda CASCADE;      -- as rds_superuser
--   an IAM role allowing lambda:InvokeFunction on dispatch, attached to the DB instance or
--   cluster with feature name 'Lambda'; outbound network from the DB to the Lambda API
--   (a NAT gateway or a VPC interface endpoint for Lambda).
--
-- Settings (nothing secret; read at every call, so no redeploy to change them):
--   ALTER DATABASE mydb SET webhooks.dispatch_function = 'arn:aws:lambda:eu-west-1:123456789012:function:dispatch';
--   ALTER DATABASE mydb SET webhooks.dispatch_region   = 'eu-west-1';   -- optional with an ARN
--   ALTER DATABASE mydb SET webhooks.notify = 'off';  -- no LISTENer in the cloud: skip NOTIFY
-- Unset or empty webhooks.dispatch_function = wake-up off (deliveries wait for the sweep).
-- To remove: DROP TRIGGER trigger_webhook_delivery_wakeup ON webhook_deliveries;

CREATE OR REPLACE FUNCTION wake_dispatch_aws_lambda()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
-- Fixed search_path: a definer function must not resolve names through the caller's path.
-- Everything below is schema-qualified.
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    fn     text := nullif(btrim(current_setting('webhooks.dispatch_function', true)), '');
    region text := nullif(btrim(current_setting('webhooks.dispatch_region', true)), '');
BEGIN
    IF fn IS NULL THEN
        RETURN NULL;
    END IF;
    BEGIN
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
    'Optional trigger (RDS/Aurora): invokes the dispatch Lambda asynchronously with the new '
    'delivery id; failures only WARN, the retry sweep is the safety net.';

-- Only the trigger calls it.
REVOKE ALL ON FUNCTION wake_dispatch_aws_lambda() FROM PUBLIC;

-- Separate from the capture triggers of the migrations, so removing this file's objects
-- leaves capture untouched. 'skipped' rows have nothing to send.
CREATE OR REPLACE TRIGGER trigger_webhook_delivery_wakeup
    AFTER INSERT ON webhook_deliveries
    FOR EACH ROW
    WHEN (NEW.status = 'pending')
    EXECUTE FUNCTION wake_dispatch_aws_lambda();
