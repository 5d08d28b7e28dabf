-- Stores one notification: skipped with the reason when the address is missing or not a plain
-- address of at most 254 bytes (V6). The triggers call it for every case but the plain one,
-- which they insert themselves (V12). Current definition: V18.
CREATE OR REPLACE FUNCTION @schema@.capture_booking_webhook(p_booking_id uuid, p_type text, p_email text)
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
    INSERT INTO @schema@.webhook_deliveries
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
            polled := coalesce(pg_sequence_last_value(to_regclass(@listener_flag@)), 0)
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
