-- AFTER UPDATE: the student hears about approval or rejection (V12's fast path; the ::text
-- cast for an enum status column, V11). Current definition: V18.
CREATE OR REPLACE FUNCTION @schema@.notify_status_update()
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
            INSERT INTO @schema@.webhook_deliveries (booking_id, webhook_type, recipient_email, payload)
            VALUES (NEW.id, NEW.status::text, recipient,
                    jsonb_build_object('type', NEW.status::text, 'bookingId', NEW.id,
                                       'email', recipient))
            RETURNING id INTO delivery_id;
            IF lower(coalesce(nullif(current_setting('webhooks.notify', true), ''), 'on'))
               NOT IN ('off', 'false', '0', 'no') THEN
                -- Skipped while webhooks listen polls (V18). Anything but our sequence under
                -- that name (a hand-made table, say) means NOTIFY, never a failed booking.
                BEGIN
                    polled := coalesce(pg_sequence_last_value(to_regclass(@listener_flag@)), 0)
                              > (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
                EXCEPTION WHEN OTHERS THEN
                    polled := false;
                END;
                IF NOT polled THEN
                    PERFORM pg_notify('webhook_delivery', delivery_id::text);
                END IF;
            END IF;
        ELSE
            PERFORM @schema@.capture_booking_webhook(NEW.id, NEW.status::text, NEW.student_email);
        END IF;
    END IF;
    RETURN NULL;
END
$body$
