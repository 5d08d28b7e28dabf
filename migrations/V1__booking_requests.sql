-- V1: the tutoring app's booking table, created only if the app has not created it already.
--
-- The capture triggers (V3) rely on exactly these column names: student_email, tutor_email,
-- status, notes. Every other column is optional so an INSERT naming only the two emails works.
--
-- Security (edited in place before the first release; refinery refuses a database migrated
-- with the earlier text as divergent: re-create such a development database):
-- the table holds names and email addresses, and on Supabase every new table in `public` is
-- granted to the API roles `anon` and `authenticated`, which would let anyone with the anon
-- key read every booking or set status = 'approved' and make this system mail arbitrary
-- people. So when THIS migration creates the table, it is closed: row level security on with
-- no policy (the app adds its own; see docs/security.md) and nothing granted to PUBLIC, anon
-- or authenticated. When the table already exists it belongs to the app, and its privileges
-- and policies are left exactly as they are. Only this migration can tell the two cases
-- apart, hence the check and the CREATE in one block.
DO $$
DECLARE
    created_here boolean := NOT EXISTS (
        SELECT 1 FROM pg_class
         WHERE relname = 'booking_requests' AND relnamespace = current_schema()::regnamespace);
    api_role     text;
BEGIN
    CREATE TABLE IF NOT EXISTS booking_requests (
        id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        student_name    text,
        student_email   text,
        tutor_name      text,
        tutor_email     text,
        subject         text,
        requested_start timestamptz,
        status          text NOT NULL DEFAULT 'pending'
                        CONSTRAINT booking_requests_status_check
                        CHECK (status IN ('pending', 'approved', 'rejected', 'cancelled')),
        notes           text,
        created_at      timestamptz NOT NULL DEFAULT now(),
        updated_at      timestamptz NOT NULL DEFAULT now()
    );
    IF created_here THEN
        ALTER TABLE booking_requests ENABLE ROW LEVEL SECURITY;
        REVOKE ALL ON booking_requests FROM PUBLIC;
        FOREACH api_role IN ARRAY ARRAY['anon', 'authenticated'] LOOP
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = api_role) THEN
                EXECUTE format('REVOKE ALL ON booking_requests FROM %I', api_role);
            END IF;
        END LOOP;
    END IF;
END
$$;

COMMENT ON TABLE booking_requests IS
    'Tutoring booking requests. Inserts and status changes to approved/rejected are captured '
    'into webhook_deliveries by triggers in the same transaction.';
