-- Adoption, step 1: the seed's table becomes history under a name of its own, freeing
-- `webhook_failures` for our view. Its rows, indexes, constraints and policies stay as they
-- are. It holds email addresses and nothing reads it any more: the API roles and PUBLIC lose
-- access (Supabase granted them every table in public).
ALTER TABLE webhook_failures RENAME TO webhook_failures_seed;
REVOKE ALL ON webhook_failures_seed FROM PUBLIC;
DO $$
DECLARE
    api_role text;
BEGIN
    FOREACH api_role IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = api_role) THEN
            EXECUTE format('REVOKE ALL ON webhook_failures_seed FROM %I', api_role);
        END IF;
    END LOOP;
    EXECUTE format('COMMENT ON TABLE webhook_failures_seed IS %L',
                   'History of the pg_net webhook system, adopted by webhooks migrate --adopt-seed on '
                   || to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                   || '. Its rows were imported into webhook_deliveries with the same ids.');
END
$$;
