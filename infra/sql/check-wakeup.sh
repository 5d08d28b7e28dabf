#!/usr/bin/env bash
# Checks the optional wake-up SQL in this folder on a local Postgres, without AWS or
# Supabase: a scratch database set up like Supabase's (roles anon and authenticated, default
# privileges granting them every new table and function) gets the default migrations, stubs
# of aws_lambda.invoke, net.http_post and vault.decrypted_secrets with the real signatures,
# then each file (twice: it must be re-runnable), and asserts what the triggers call, that a
# failing wake-up never fails the booking, and that a hostile role which may insert bookings
# cannot steer the call: its session settings are ignored and the settings table is closed to
# it. Exits non-zero on the first failed assertion.
#
# Usage: infra/sql/check-wakeup.sh   (libpq variables pick the server; default
#        postgres@127.0.0.1:5432). Needs a superuser (CREATE DATABASE, CREATE ROLE); drops its
#        database and its own role on exit. anon and authenticated are created if missing and
#        never dropped (they are cluster-wide and may be shared).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
db="infra_wakeup_check_$$"
app="infra_wakeup_app_$$"   # the hostile app role: may insert bookings, nothing else
psql_db() { psql -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"; }
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $db"
trap 'psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "DROP ROLE IF EXISTS $app" >/dev/null' EXIT

psql_db <<SQL
DO \$\$
DECLARE
    api_role text;
BEGIN
    FOREACH api_role IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', api_role);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- exists already, or another check created it just now
        END;
    END LOOP;
END
\$\$;
CREATE ROLE $app NOLOGIN;
GRANT USAGE ON SCHEMA public TO anon, authenticated, $app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated;
SQL

for f in $(ls migrations/V*.sql | sort -V); do psql_db -f "$f"; done
# V1 created booking_requests with row level security and no policy: the app adds its own.
psql_db -c "GRANT INSERT ON booking_requests TO $app" \
  -c "CREATE POLICY app_books ON booking_requests FOR INSERT TO $app WITH CHECK (true)"

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

# Runs the heredoc on stdin as the hostile app role. Its session settings name the attacker's
# targets; the wake-up must ignore them.
as_app() {
  psql_db -c "SET ROLE $app" \
    -c "SET webhooks.dispatch_url = 'https://evil.example/steal'" \
    -c "SET webhooks.dispatch_token = 'attacker-token'" \
    -c "SET webhooks.dispatch_function = 'arn:aws:lambda:us-east-1:999999999999:function:evil'" \
    -c "SET webhooks.dispatch_region = 'us-east-1'" \
    -f -
}

echo "rds_aws_lambda_wakeup.sql"
psql_db -f infra/sql/rds_aws_lambda_wakeup.sql
psql_db -f infra/sql/rds_aws_lambda_wakeup.sql
psql_db <<'SQL'
SET client_min_messages = error;
INSERT INTO booking_requests (tutor_email) VALUES ('t@example.com');
DO $$ BEGIN ASSERT (SELECT count(*) FROM calls) = 0, 'no settings row: no call'; END $$;
DO $$ BEGIN
    INSERT INTO webhook_wakeup_aws_lambda (function_name, region)
    VALUES ('arn:aws:lambda:eu-west-1:123456789012:function:dispatch', 'us-east-1');
    ASSERT false, 'a region other than the ARN''s is refused';
EXCEPTION WHEN check_violation THEN NULL;
END $$;
DO $$ BEGIN
    INSERT INTO webhook_wakeup_aws_lambda (function_name) VALUES ('dispatch; DROP TABLE x');
    ASSERT false, 'a malformed function name is refused';
EXCEPTION WHEN check_violation THEN NULL;
END $$;
SQL
as_app <<'SQL'
SET client_min_messages = error;
INSERT INTO booking_requests (tutor_email) VALUES ('t@example.com');
SQL
psql_db <<'SQL'
DO $$ BEGIN
    ASSERT (SELECT count(*) FROM calls) = 0,
        'a session setting does not turn the wake-up on: no call at all';
END $$;
INSERT INTO webhook_wakeup_aws_lambda (function_name, region)
VALUES ('arn:aws:lambda:eu-west-1:123456789012:function:dispatch', 'eu-west-1');
SQL
# Re-running the script keeps the settings.
psql_db -f infra/sql/rds_aws_lambda_wakeup.sql
psql_db <<'SQL'
SET client_min_messages = error;
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
TRUNCATE calls;
SQL
as_app <<'SQL'
SET client_min_messages = error;
INSERT INTO booking_requests (tutor_email) VALUES ('attack-rds@example.com');
DO $$ BEGIN
    UPDATE webhook_wakeup_aws_lambda SET function_name = 'evil';
    RAISE EXCEPTION 'the app role changed the wake-up settings';
EXCEPTION WHEN insufficient_privilege THEN NULL;
END $$;
SQL
psql_db <<'SQL'
DO $$ BEGIN
    ASSERT (SELECT count(*) FROM calls) = 1, 'the attacker''s booking wakes dispatch once';
    ASSERT (SELECT args->>'function_name' = 'arn:aws:lambda:eu-west-1:123456789012:function:dispatch'
               AND args->>'region' = 'eu-west-1' FROM calls),
        'with the pinned function and region, not the session''s';
END $$;
SQL
for role in anon authenticated; do
  psql_db -c "SET ROLE $role" <<'SQL'
DO $$ BEGIN
    PERFORM * FROM webhook_wakeup_aws_lambda;
    RAISE EXCEPTION 'a Supabase API role reads the wake-up settings';
EXCEPTION WHEN insufficient_privilege THEN NULL;
END $$;
SQL
done
psql_db <<'SQL'
SET client_min_messages = error;
UPDATE webhook_wakeup_aws_lambda
   SET function_name = 'arn:aws:lambda:eu-west-1:123456789012:function:broken';
INSERT INTO booking_requests (tutor_email) VALUES ('kept-rds@example.com');
DO $$ BEGIN
    ASSERT (SELECT count(*) FROM booking_requests WHERE tutor_email = 'kept-rds@example.com') = 1,
        'a failing wake-up does not fail the booking';
    ASSERT (SELECT count(*) FROM webhook_deliveries WHERE recipient_email = 'kept-rds@example.com'
            AND status = 'pending') = 1, 'the delivery stays pending for the sweep';
END $$;
DELETE FROM webhook_wakeup_aws_lambda;
TRUNCATE calls;
INSERT INTO booking_requests (tutor_email) VALUES ('t@example.com');
DO $$ BEGIN ASSERT (SELECT count(*) FROM calls) = 0, 'deleting the row turns it off'; END $$;
DROP TRIGGER trigger_webhook_delivery_wakeup ON webhook_deliveries;
SQL

echo "supabase_pg_net_wakeup.sql"
psql_db -f infra/sql/supabase_pg_net_wakeup.sql
psql_db -f infra/sql/supabase_pg_net_wakeup.sql
psql_db <<'SQL'
DO $$ BEGIN
    INSERT INTO webhook_wakeup_pg_net (dispatch_url) VALUES ('http://abc.lambda-url.eu-west-1.on.aws/');
    ASSERT false, 'an http:// URL is refused';
EXCEPTION WHEN check_violation THEN NULL;
END $$;
DO $$ BEGIN
    INSERT INTO webhook_wakeup_pg_net (dispatch_url) VALUES ('https://user:pw@evil.example/');
    ASSERT false, 'a URL with credentials is refused';
EXCEPTION WHEN check_violation THEN NULL;
END $$;
SQL
as_app <<'SQL'
SET client_min_messages = error;
INSERT INTO booking_requests (tutor_email) VALUES ('t@example.com');
SQL
psql_db <<'SQL'
SET client_min_messages = error;
DO $$ BEGIN
    ASSERT (SELECT count(*) FROM calls) = 0,
        'session settings do not turn the wake-up on: no call at all';
END $$;
INSERT INTO webhook_wakeup_pg_net (dispatch_url) VALUES ('https://abc.lambda-url.eu-west-1.on.aws/');
INSERT INTO booking_requests (tutor_email) VALUES ('t@example.com');
DO $$ BEGIN ASSERT (SELECT count(*) FROM calls) = 0, 'no token: no call'; END $$;
UPDATE webhook_wakeup_pg_net SET dispatch_token = 'table-token';
SQL
# Re-running the script keeps the settings.
psql_db -f infra/sql/supabase_pg_net_wakeup.sql
psql_db <<'SQL'
SET client_min_messages = error;
INSERT INTO booking_requests (tutor_email) VALUES ('t@example.com');
INSERT INTO booking_requests (tutor_email) VALUES ('');  -- skipped
DO $$ BEGIN
    ASSERT (SELECT count(*) FROM calls) = 1, 'one call for one pending delivery';
    ASSERT (SELECT args FROM calls) = jsonb_build_object(
        'url', 'https://abc.lambda-url.eu-west-1.on.aws/',
        'headers', jsonb_build_object('Content-Type', 'application/json',
                                      'Authorization', 'Bearer table-token'),
        'body', jsonb_build_object('deliveryId', (
            SELECT id FROM webhook_deliveries WHERE status = 'pending'
            ORDER BY created_at DESC LIMIT 1))), 'POST {"deliveryId"} with the bearer token';
END $$;
CREATE SCHEMA vault;
CREATE TABLE vault.decrypted_secrets (name text, decrypted_secret text);
INSERT INTO vault.decrypted_secrets VALUES ('webhooks_dispatch_token', 'vault-token');
REVOKE ALL ON SCHEMA vault FROM PUBLIC;
TRUNCATE calls;
INSERT INTO booking_requests (tutor_email) VALUES ('t@example.com');
DO $$ BEGIN
    ASSERT (SELECT args->'headers'->>'Authorization' FROM calls) = 'Bearer vault-token',
        'the Vault secret wins over the table';
END $$;
TRUNCATE calls;
SQL
as_app <<'SQL'
SET client_min_messages = error;
INSERT INTO booking_requests (tutor_email) VALUES ('attack-pg-net@example.com');
DO $$ BEGIN
    UPDATE webhook_wakeup_pg_net SET dispatch_url = 'https://evil.example/';
    RAISE EXCEPTION 'the app role changed the wake-up URL';
EXCEPTION WHEN insufficient_privilege THEN NULL;
END $$;
SQL
psql_db <<'SQL'
DO $$ BEGIN
    ASSERT (SELECT count(*) FROM calls) = 1, 'the attacker''s booking wakes dispatch once';
    ASSERT (SELECT args->>'url' = 'https://abc.lambda-url.eu-west-1.on.aws/'
               AND args->'headers'->>'Authorization' = 'Bearer vault-token' FROM calls),
        'at the pinned URL with the Vault token, not the session''s URL or token';
END $$;
SQL
for role in anon authenticated; do
  psql_db -c "SET ROLE $role" <<'SQL'
DO $$ BEGIN
    PERFORM * FROM webhook_wakeup_pg_net;
    RAISE EXCEPTION 'a Supabase API role reads the wake-up settings (and token)';
EXCEPTION WHEN insufficient_privilege THEN NULL;
END $$;
SQL
done
psql_db <<'SQL'
SET client_min_messages = error;
UPDATE webhook_wakeup_pg_net SET dispatch_url = 'https://broken.example/';
INSERT INTO booking_requests (tutor_email) VALUES ('kept-pg-net@example.com');
DO $$ BEGIN
    ASSERT (SELECT count(*) FROM booking_requests WHERE tutor_email = 'kept-pg-net@example.com') = 1,
        'a failing wake-up does not fail the booking';
    ASSERT (SELECT bool_and(prosecdef AND proconfig = '{"search_path=pg_catalog, pg_temp"}')
            FROM pg_proc WHERE proname IN ('wake_dispatch_aws_lambda', 'wake_dispatch_pg_net')),
        'security definer with a fixed search_path';
    ASSERT NOT EXISTS (
        SELECT FROM pg_proc p, aclexplode(p.proacl) a
         WHERE p.proname IN ('wake_dispatch_aws_lambda', 'wake_dispatch_pg_net')
           AND a.grantee <> p.proowner),
        'only the owner may execute the wake-up functions';
    ASSERT NOT EXISTS (
        SELECT FROM pg_class c, aclexplode(c.relacl) a
         WHERE c.relname IN ('webhook_wakeup_aws_lambda', 'webhook_wakeup_pg_net')
           AND a.grantee <> c.relowner),
        'only the owner may read or change the settings';
END $$;
SQL
echo "wake-up SQL: all checks passed"
