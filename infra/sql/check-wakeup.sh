#!/usr/bin/env bash
# Checks the optional wake-up SQL in this folder on a local Postgres, without AWS or
# Supabase: a scratch database gets the default migrations, stubs of aws_lambda.invoke,
# net.http_post and vault.decrypted_secrets with the real signatures, then each file
# (twice: it must be re-runnable), and asserts what the triggers call and that a failing
# wake-up never fails the booking. Exits non-zero on the first failed assertion.
#
# Usage: infra/sql/check-wakeup.sh   (libpq variables pick the server; default
#        postgres@127.0.0.1:5432). Needs CREATE DATABASE; drops its database on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
db="infra_wakeup_check_$$"
psql_db() { psql -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"; }
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $db"
trap 'psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null' EXIT

for f in migrations/V*.sql; do psql_db -f "$f"; done

psql_db <<'SQL'
CREATE TABLE calls (fn text, args jsonb);
CREATE SCHEMA aws_lambda;
CREATE FUNCTION stub_invoke(fn text, body jsonb, region text, kind text) RETURNS int
LANGUAGE plpgsql AS $$
BEGIN
    IF fn LIKE '%broken%' THEN RAISE EXCEPTION 'Lambda API unreachable'; END IF;
    INSERT INTO public.calls VALUES ('invoke', jsonb_build_object(
        'function_name', fn, 'payload', body, 'region', region, 'invocation_type', kind));
    RETURN 202;
END $$;
-- The RDS extension's text/json overload (its IN and OUT parameters share the name payload).
CREATE FUNCTION aws_lambda.invoke(function_name text, payload json, region text DEFAULT NULL,
    invocation_type text DEFAULT 'RequestResponse', log_type text DEFAULT 'None',
    context json DEFAULT NULL, qualifier varchar(128) DEFAULT NULL,
    OUT status_code int, OUT payload json, OUT executed_version text, OUT log_result text)
LANGUAGE sql AS $$ SELECT public.stub_invoke($1, $2::jsonb, $3, $4), NULL::json, NULL, NULL $$;
-- Its jsonb overload: calling it would divide by zero, so the check proves which one is used.
CREATE FUNCTION aws_lambda.invoke(function_name text, payload jsonb, region text DEFAULT NULL,
    invocation_type text DEFAULT 'RequestResponse', log_type text DEFAULT 'None',
    context jsonb DEFAULT NULL, qualifier varchar(128) DEFAULT NULL,
    OUT status_code int, OUT payload jsonb, OUT executed_version text, OUT log_result text)
LANGUAGE sql AS $$ SELECT 1 / 0, NULL::jsonb, NULL, NULL $$;
CREATE SCHEMA net;
CREATE FUNCTION net.http_post(url text, body jsonb DEFAULT '{}', params jsonb DEFAULT '{}',
    headers jsonb DEFAULT '{"Content-Type": "application/json"}',
    timeout_milliseconds int DEFAULT 5000) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    IF url LIKE '%broken%' THEN RAISE EXCEPTION 'queue full'; END IF;
    INSERT INTO public.calls VALUES ('http_post', jsonb_build_object(
        'url', url, 'body', body, 'headers', headers));
    RETURN 1;
END $$;
SQL

echo "rds_aws_lambda_wakeup.sql"
psql_db -f infra/sql/rds_aws_lambda_wakeup.sql
psql_db -f infra/sql/rds_aws_lambda_wakeup.sql
psql_db <<'SQL'
SET client_min_messages = error;
INSERT INTO booking_requests (tutor_email) VALUES ('t@example.com');
DO $$ BEGIN ASSERT (SELECT count(*) FROM calls) = 0, 'no function set: no call'; END $$;
SET webhooks.dispatch_function = 'arn:aws:lambda:eu-west-1:123456789012:function:dispatch';
SET webhooks.dispatch_region = 'eu-west-1';
INSERT INTO booking_requests (tutor_email) VALUES ('t@example.com');
INSERT INTO booking_requests (tutor_email) VALUES (NULL);  -- skipped: nothing to wake
DO $$ BEGIN
    ASSERT (SELECT count(*) FROM calls) = 1, 'one call for one pending delivery';
    ASSERT (SELECT args FROM calls) = jsonb_build_object(
        'function_name', 'arn:aws:lambda:eu-west-1:123456789012:function:dispatch',
        'region', 'eu-west-1', 'invocation_type', 'Event',
        'payload', jsonb_build_object('deliveryId', (
            SELECT id FROM webhook_deliveries WHERE status = 'pending'
            ORDER BY created_at DESC LIMIT 1))), 'Event invoke with {"deliveryId"}';
END $$;
SET webhooks.dispatch_function = 'arn:aws:lambda:eu-west-1:123456789012:function:broken';
INSERT INTO booking_requests (tutor_email) VALUES ('kept-rds@example.com');
DO $$ BEGIN
    ASSERT (SELECT count(*) FROM booking_requests WHERE tutor_email = 'kept-rds@example.com') = 1,
        'a failing wake-up does not fail the booking';
    ASSERT (SELECT count(*) FROM webhook_deliveries WHERE recipient_email = 'kept-rds@example.com'
            AND status = 'pending') = 1, 'the delivery stays pending for the sweep';
END $$;
DROP TRIGGER trigger_webhook_delivery_wakeup ON webhook_deliveries;
TRUNCATE calls;
SQL

echo "supabase_pg_net_wakeup.sql"
psql_db -f infra/sql/supabase_pg_net_wakeup.sql
psql_db -f infra/sql/supabase_pg_net_wakeup.sql
psql_db <<'SQL'
SET client_min_messages = error;
INSERT INTO booking_requests (tutor_email) VALUES ('t@example.com');
SET webhooks.dispatch_url = 'https://abc.lambda-url.eu-west-1.on.aws/';
INSERT INTO booking_requests (tutor_email) VALUES ('t@example.com');
DO $$ BEGIN ASSERT (SELECT count(*) FROM calls) = 0, 'no URL or no token: no call'; END $$;
SET webhooks.dispatch_token = 'guc-token';
INSERT INTO booking_requests (tutor_email) VALUES ('t@example.com');
INSERT INTO booking_requests (tutor_email) VALUES ('');  -- skipped
DO $$ BEGIN
    ASSERT (SELECT count(*) FROM calls) = 1, 'one call for one pending delivery';
    ASSERT (SELECT args FROM calls) = jsonb_build_object(
        'url', 'https://abc.lambda-url.eu-west-1.on.aws/',
        'headers', jsonb_build_object('Content-Type', 'application/json',
                                      'Authorization', 'Bearer guc-token'),
        'body', jsonb_build_object('deliveryId', (
            SELECT id FROM webhook_deliveries WHERE status = 'pending'
            ORDER BY created_at DESC LIMIT 1))), 'POST {"deliveryId"} with the bearer token';
END $$;
CREATE SCHEMA vault;
CREATE TABLE vault.decrypted_secrets (name text, decrypted_secret text);
INSERT INTO vault.decrypted_secrets VALUES ('webhooks_dispatch_token', 'vault-token');
TRUNCATE calls;
INSERT INTO booking_requests (tutor_email) VALUES ('t@example.com');
DO $$ BEGIN
    ASSERT (SELECT args->'headers'->>'Authorization' FROM calls) = 'Bearer vault-token',
        'the Vault secret wins over the setting';
END $$;
SET webhooks.dispatch_url = 'https://broken/';
INSERT INTO booking_requests (tutor_email) VALUES ('kept-pg-net@example.com');
DO $$ BEGIN
    ASSERT (SELECT count(*) FROM booking_requests WHERE tutor_email = 'kept-pg-net@example.com') = 1,
        'a failing wake-up does not fail the booking';
    ASSERT (SELECT bool_and(prosecdef AND proconfig = '{"search_path=pg_catalog, pg_temp"}')
            FROM pg_proc WHERE proname IN ('wake_dispatch_aws_lambda', 'wake_dispatch_pg_net')),
        'security definer with a fixed search_path';
END $$;
SQL
echo "wake-up SQL: all checks passed"
