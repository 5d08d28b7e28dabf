-- V1: the tutoring app's booking table, created only if the app has not created it already.
--
-- The capture triggers (V3) rely on exactly these column names: student_email, tutor_email,
-- status, notes. Every other column is optional so an INSERT naming only the two emails works.
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

COMMENT ON TABLE booking_requests IS
    'Tutoring booking requests. Inserts and status changes to approved/rejected are captured '
    'into webhook_deliveries by triggers in the same transaction.';
