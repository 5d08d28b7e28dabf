-- V14: engine hardening (issue 21). Every statement can run twice (psql -f), like the earlier
-- files.
--
-- 1. The capture functions run no other role's code. They are SECURITY DEFINER: they run as
--    their owner (who may write the outbox and bypass its row level security). Until now their
--    search_path was `<schema>, pg_temp`, and they called jsonb_build_object, btrim, nullif, …
--    unqualified: an exact-type overload created in <schema> beats pg_catalog's variadic
--    built-in, so any role with CREATE on the schema (PUBLIC on `public`, in every database
--    created on PostgreSQL 14 or older) could run its own function as the owner on the next
--    booking insert. Now search_path is `pg_catalog, pg_temp` — built-ins only, and pg_temp last
--    (a session's temporary objects never shadow anything) — and our own objects are named with
--    their schema, written in when this file runs (current_schema(), as V3 pinned it).
-- 2. A booking inserted with its decision already made (an app with instant booking inserts
--    status 'approved') notifies the student too, right after the tutor's new_request. Capture
--    used to send decisions only on UPDATE, while `webhooks verify` expected one for every
--    booking whose status is a decision: the missing-deliveries alarm fired for a healthy
--    system. Capture and verify now agree: every booking whose status is approved or rejected
--    has a delivery of that type. Bookings created before this migration are not checked for
--    their decision (we cannot tell those inserted with one from those whose capture missed
--    it): webhook_verify_horizon.decisions_checked_from.
-- 3. Attempt numbers are unique per delivery. A claim now reserves the attempt's number
--    (functions/delivery/src/sql.rs), so a worker whose lease lapsed and the worker that
--    reclaimed the row record different numbers; the unique index enforces it, and makes a
--    repeated recording of the same attempt a no-op (ON CONFLICT). Rows recorded twice under one
--    number before this migration (a lease lost in flight) are renumbered after the delivery's
--    last attempt, and the delivery's count raised to match.

-- 3. Attempt numbers ------------------------------------------------------------------------

WITH duplicated AS (
    SELECT a.id,
           max(a.attempt) OVER (PARTITION BY a.delivery_id)
           + row_number() OVER (PARTITION BY a.delivery_id ORDER BY a.started_at, a.id) AS renumbered
      FROM (SELECT id, delivery_id, attempt, started_at,
                   row_number() OVER (PARTITION BY delivery_id, attempt ORDER BY started_at, id) AS nth
              FROM webhook_attempts) a
     WHERE a.nth > 1
)
UPDATE webhook_attempts a
   SET attempt = d.renumbered
  FROM duplicated d
 WHERE a.id = d.id;

UPDATE webhook_deliveries d
   SET attempt_count = m.most
  FROM (SELECT delivery_id, max(attempt) AS most FROM webhook_attempts GROUP BY delivery_id) m
 WHERE d.id = m.delivery_id
   AND d.attempt_count < m.most;

CREATE UNIQUE INDEX IF NOT EXISTS webhook_attempts_delivery_attempt_key
    ON webhook_attempts (delivery_id, attempt);

-- The unique index serves every lookup the old one did.
DROP INDEX IF EXISTS webhook_attempts_delivery_idx;

-- 1 and 2. Capture ---------------------------------------------------------------------------
-- The same rows, values, skipped reasons, NOTIFY switch and privileges as V6/V12, with the
-- search_path and schema-qualified names of (1) and the insert-time decision of (2).
DO $migration$
BEGIN
    -- Stores one notification: skipped with the reason when the address is missing or not a
    -- plain address of at most 254 bytes (V6). Used by the triggers for every case but the
    -- plain one, which they insert themselves (V12).
    EXECUTE format($fmt$
CREATE OR REPLACE FUNCTION %1$I.capture_booking_webhook(p_booking_id uuid, p_type text, p_email text)
RETURNS uuid
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $body$
DECLARE
    recipient   text := nullif(btrim(p_email), '');
    field       text := CASE p_type WHEN 'new_request' THEN 'tutor_email' ELSE 'student_email' END;
    skip_reason text := CASE
        WHEN recipient IS NULL THEN
            'booking has no ' || field
        WHEN octet_length(recipient) > 254 THEN
            field || ' is longer than 254 bytes'
        WHEN recipient ~ '[\x01-\x20\x7f-\xa0\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\ufeff]' THEN
            field || ' contains whitespace or control characters'
        WHEN recipient !~ '^[^]@"(),:;<>\\[]+@[^]@"(),:;<>\\[]+$' THEN
            field || ' is not a plain local@domain address'
    END;
    delivery_id uuid;
BEGIN
    IF skip_reason IS NOT NULL THEN
        recipient := NULL;
    END IF;
    INSERT INTO %1$I.webhook_deliveries
        (booking_id, webhook_type, recipient_email, payload, status, last_error,
         next_retry_at, resolved_at)
    VALUES
        (p_booking_id, p_type, recipient,
         jsonb_build_object('type', p_type, 'bookingId', p_booking_id, 'email', recipient),
         CASE WHEN skip_reason IS NULL THEN 'pending' ELSE 'skipped' END,
         skip_reason,
         CASE WHEN skip_reason IS NULL THEN now() END,
         CASE WHEN skip_reason IS NOT NULL THEN now() END)
    RETURNING id INTO delivery_id;
    IF skip_reason IS NULL
       AND lower(coalesce(nullif(current_setting('webhooks.notify', true), ''), 'on'))
           NOT IN ('off', 'false', '0', 'no') THEN
        PERFORM pg_notify('webhook_delivery', delivery_id::text);
    END IF;
    RETURN delivery_id;
END
$body$
$fmt$, current_schema());

    -- AFTER INSERT: the tutor hears about a new request; a booking inserted already approved
    -- or rejected also tells the student, after the tutor's notification in capture order.
    EXECUTE format($fmt$
CREATE OR REPLACE FUNCTION %1$I.notify_new_booking()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $body$
DECLARE
    recipient   text := nullif(btrim(NEW.tutor_email), '');
    delivery_id uuid;
BEGIN
    IF (CASE WHEN recipient IS NULL OR octet_length(recipient) > 254 THEN false
             ELSE recipient !~ '[\x01-\x20\x7f-\xa0\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\ufeff]'
                  AND recipient ~ '^[^]@"(),:;<>\\[]+@[^]@"(),:;<>\\[]+$'
        END) THEN
        INSERT INTO %1$I.webhook_deliveries (booking_id, webhook_type, recipient_email, payload)
        VALUES (NEW.id, 'new_request', recipient,
                jsonb_build_object('type', 'new_request', 'bookingId', NEW.id, 'email', recipient))
        RETURNING id INTO delivery_id;
        IF lower(coalesce(nullif(current_setting('webhooks.notify', true), ''), 'on'))
           NOT IN ('off', 'false', '0', 'no') THEN
            PERFORM pg_notify('webhook_delivery', delivery_id::text);
        END IF;
    ELSE
        PERFORM %1$I.capture_booking_webhook(NEW.id, 'new_request', NEW.tutor_email);
    END IF;
    IF NEW.status::text IN ('approved', 'rejected') THEN
        PERFORM %1$I.capture_booking_webhook(NEW.id, NEW.status::text, NEW.student_email);
    END IF;
    RETURN NULL;
END
$body$
$fmt$, current_schema());

    -- AFTER UPDATE: the student hears about approval or rejection (V12's fast path; the
    -- ::text cast for an enum status column, V11).
    EXECUTE format($fmt$
CREATE OR REPLACE FUNCTION %1$I.notify_status_update()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $body$
DECLARE
    recipient   text;
    delivery_id uuid;
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status AND NEW.status::text IN ('approved', 'rejected') THEN
        recipient := nullif(btrim(NEW.student_email), '');
        IF (CASE WHEN recipient IS NULL OR octet_length(recipient) > 254 THEN false
                 ELSE recipient !~ '[\x01-\x20\x7f-\xa0\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\ufeff]'
                      AND recipient ~ '^[^]@"(),:;<>\\[]+@[^]@"(),:;<>\\[]+$'
            END) THEN
            INSERT INTO %1$I.webhook_deliveries (booking_id, webhook_type, recipient_email, payload)
            VALUES (NEW.id, NEW.status::text, recipient,
                    jsonb_build_object('type', NEW.status::text, 'bookingId', NEW.id,
                                       'email', recipient))
            RETURNING id INTO delivery_id;
            IF lower(coalesce(nullif(current_setting('webhooks.notify', true), ''), 'on'))
               NOT IN ('off', 'false', '0', 'no') THEN
                PERFORM pg_notify('webhook_delivery', delivery_id::text);
            END IF;
        ELSE
            PERFORM %1$I.capture_booking_webhook(NEW.id, NEW.status::text, NEW.student_email);
        END IF;
    END IF;
    RETURN NULL;
END
$body$
$fmt$, current_schema());
END
$migration$;

COMMENT ON FUNCTION capture_booking_webhook(uuid, text, text) IS
    'Stores one booking notification in webhook_deliveries (skipped, with the reason, when the '
    'address is missing or not a plain address of at most 254 bytes) and, unless webhooks.notify '
    'is off, NOTIFYs channel webhook_delivery with its id. Runs with search_path pg_catalog, pg_temp.';
COMMENT ON FUNCTION notify_new_booking() IS
    'Trigger: captures a new_request notification to the tutor for each inserted booking, and the '
    'decision to the student when the booking is inserted approved or rejected.';
COMMENT ON FUNCTION notify_status_update() IS
    'Trigger: captures an approved/rejected notification to the student when status changes to it.';

-- Privileges survive CREATE OR REPLACE; revoked again all the same (Supabase's default
-- privileges grant new functions to its API roles).
DO $$
DECLARE
    grantee text;
BEGIN
    FOREACH grantee IN ARRAY ARRAY['PUBLIC', 'anon', 'authenticated'] LOOP
        CONTINUE WHEN grantee <> 'PUBLIC'
                  AND NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = grantee);
        IF grantee <> 'PUBLIC' THEN
            grantee := quote_ident(grantee);
        END IF;
        EXECUTE format('REVOKE ALL ON FUNCTION capture_booking_webhook(uuid, text, text), '
                       'notify_new_booking(), notify_status_update() FROM %s', grantee);
    END LOOP;
END
$$;

-- 2. What verify expects ----------------------------------------------------------------------

ALTER TABLE webhook_verify_horizon
    ADD COLUMN IF NOT EXISTS decisions_checked_from timestamptz NOT NULL DEFAULT now();

COMMENT ON COLUMN webhook_verify_horizon.decisions_checked_from IS
    'Bookings created before this are not checked for the delivery of their decision: capture '
    'notified a decision made at insert only from here on (V14).';

-- V9's view, the same columns; a decision is expected of bookings created since
-- decisions_checked_from. Built as V9 builds it (booking_requests.created_at may be absent).
DO $$
DECLARE
    created_at text := CASE WHEN EXISTS (
            SELECT 1 FROM pg_attribute
             WHERE attrelid = 'booking_requests'::regclass
               AND attname = 'created_at' AND attnum > 0 AND NOT attisdropped)
        THEN 'b.created_at::timestamptz' ELSE 'NULL::timestamptz' END;
BEGIN
    EXECUTE format($view$
        CREATE OR REPLACE VIEW webhook_missing_deliveries WITH (security_invoker = true) AS
        SELECT b.id                  AS booking_id,
               expected.webhook_type AS missing_type,
               b.status::text        AS booking_status,
               %1$s AS booking_created_at
          FROM booking_requests b
         CROSS JOIN LATERAL (
                VALUES ('new_request'),
                       (CASE WHEN b.status::text IN ('approved', 'rejected')
                              AND %1$s >= coalesce((SELECT decisions_checked_from
                                                      FROM webhook_verify_horizon), '-infinity')
                             THEN b.status::text END)
               ) AS expected (webhook_type)
         WHERE expected.webhook_type IS NOT NULL
           AND %1$s >= coalesce((SELECT checked_from FROM webhook_verify_horizon), '-infinity')
           AND NOT EXISTS (SELECT 1
                             FROM webhook_deliveries d
                            WHERE d.booking_id = b.id
                              AND d.webhook_type = expected.webhook_type)
    $view$, created_at);
END
$$;

COMMENT ON VIEW webhook_missing_deliveries IS
    'Completeness check: each booking (created since webhook_verify_horizon) whose new_request '
    'delivery, or delivery for its current approved/rejected status (bookings created since '
    'decisions_checked_from), is missing.';
