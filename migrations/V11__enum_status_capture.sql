-- V11: capture also works when the app declares booking_requests.status as an enum.
--
-- V3's notify_status_update() passes NEW.status to capture_booking_webhook(uuid, text, text).
-- PostgreSQL has no implicit cast from an enum to text, so with
--     CREATE TYPE booking_status AS ENUM ('pending', 'approved', 'rejected');
-- every approval failed (and was rolled back) with "function capture_booking_webhook(uuid,
-- booking_status, text) does not exist". The explicit cast below changes nothing for text or
-- varchar columns. `webhooks migrate` checks beforehand that such an enum has the labels
-- approved and rejected (the trigger's WHEN clause compares with them).
CREATE OR REPLACE FUNCTION notify_status_update()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status AND NEW.status IN ('approved', 'rejected') THEN
        PERFORM capture_booking_webhook(NEW.id, NEW.status::text, NEW.student_email);
    END IF;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION notify_status_update() IS
    'Trigger: captures an approved/rejected notification to the student when status changes to it.';

-- Replacing a function drops its SET clauses: pin search_path again (see V3).
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION notify_status_update() SET search_path = %I, pg_temp',
                   current_schema());
END
$$;

REVOKE ALL ON FUNCTION notify_status_update() FROM PUBLIC;
