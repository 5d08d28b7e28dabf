-- V18: bookings stop paying Postgres's NOTIFY lock while `webhooks listen` is awake (issue 25).
-- Every statement can run twice (psql -f), like the earlier files.
--
-- A transaction that NOTIFYs takes a database-wide lock at commit and holds it through its WAL
-- flush, so concurrent notifying bookings commit one at a time: with 4 clients the insert rate
-- with NOTIFY was 0.4-0.5 of the rate without the triggers, against 0.6-0.8 without NOTIFY
-- (bench/RESULTS.md). Now `webhooks listen`, once four NOTIFYs arrive within 10 ms, polls the
-- outbox instead (every 2 ms, with a statement prepared once) and says so here: it sets this
-- sequence to a
-- moment a second ahead, on the database's clock, in epoch milliseconds, and moves it on while
-- it polls. The capture functions read it without a lock (sequences are not transactional:
-- setval is visible at once to every session) and NOTIFY only when that moment has passed — no
-- listener, a sleeping one, or one that stopped polling (crashed, or busy for over a second).
-- When listen stops polling it sets 0, then waits for the transactions that were running at
-- that moment (a booking among them may have read "awake" and not notified) and looks once
-- more for each that ends; functions/delivery/src/listen.rs has the protocol.
--
-- Nothing is lost either way: a booking that did not notify is in the outbox, committed with
-- the booking, and the sweep sends it; the flag only decides how fast. A role that could set
-- it could slow deliveries down to the sweep's pace, so it is revoked from PUBLIC and the API
-- roles like everything here. The functions look the sequence up by name when they run
-- (to_regclass), in a block of its own: if it is missing, or something else holds its name,
-- they NOTIFY as before; a booking insert never fails for it.
-- An older `webhooks listen` never sets it, so it keeps receiving every NOTIFY.
CREATE SEQUENCE IF NOT EXISTS webhook_listener_awake_until AS bigint MINVALUE 0 START 0 NO CYCLE;

COMMENT ON SEQUENCE webhook_listener_awake_until IS
    'Until when (epoch milliseconds, database clock) webhooks listen polls the outbox; the capture '
    'triggers skip NOTIFY before that moment (V18).';

-- The same functions as V14, but for the flag's test before each NOTIFY.
DO $migration$
DECLARE
    flag text := quote_literal(quote_ident(current_schema()) || '.webhook_listener_awake_until');
BEGIN
    -- Stores one notification (V14), notifying as below.
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
    polled      boolean;
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
        -- Skipped while webhooks listen polls (V18). Anything but our sequence under
        -- that name (a hand-made table, say) means NOTIFY, never a failed booking.
        BEGIN
            polled := coalesce(pg_sequence_last_value(to_regclass(%2$s)), 0)
                      > (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
        EXCEPTION WHEN OTHERS THEN
            polled := false;
        END;
        IF NOT polled THEN
            PERFORM pg_notify('webhook_delivery', delivery_id::text);
        END IF;
    END IF;
    RETURN delivery_id;
END
$body$
$fmt$, current_schema(), flag);

    -- AFTER INSERT (V14), notifying as below.
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
    polled      boolean;
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
            -- Skipped while webhooks listen polls (V18). Anything but our sequence under
            -- that name (a hand-made table, say) means NOTIFY, never a failed booking.
            BEGIN
                polled := coalesce(pg_sequence_last_value(to_regclass(%2$s)), 0)
                          > (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
            EXCEPTION WHEN OTHERS THEN
                polled := false;
            END;
            IF NOT polled THEN
                PERFORM pg_notify('webhook_delivery', delivery_id::text);
            END IF;
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
$fmt$, current_schema(), flag);

    -- AFTER UPDATE (V14), notifying as below.
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
    polled      boolean;
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
                -- Skipped while webhooks listen polls (V18). Anything but our sequence under
                -- that name (a hand-made table, say) means NOTIFY, never a failed booking.
                BEGIN
                    polled := coalesce(pg_sequence_last_value(to_regclass(%2$s)), 0)
                              > (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
                EXCEPTION WHEN OTHERS THEN
                    polled := false;
                END;
                IF NOT polled THEN
                    PERFORM pg_notify('webhook_delivery', delivery_id::text);
                END IF;
            END IF;
        ELSE
            PERFORM %1$I.capture_booking_webhook(NEW.id, NEW.status::text, NEW.student_email);
        END IF;
    END IF;
    RETURN NULL;
END
$body$
$fmt$, current_schema(), flag);
END
$migration$;

COMMENT ON FUNCTION capture_booking_webhook(uuid, text, text) IS
    'Stores one booking notification in webhook_deliveries (skipped, with the reason, when the '
    'address is missing or not a plain address of at most 254 bytes) and, unless webhooks.notify '
    'is off or webhooks listen is polling (webhook_listener_awake_until), NOTIFYs channel '
    'webhook_delivery with its id. Runs with search_path pg_catalog, pg_temp.';

-- Privileges survive CREATE OR REPLACE; revoked again all the same (Supabase's default
-- privileges grant new functions and sequences to its API roles).
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
        EXECUTE format('REVOKE ALL ON SEQUENCE webhook_listener_awake_until FROM %s', grantee);
    END LOOP;
END
$$;
