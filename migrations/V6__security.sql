-- V6: hostile input at capture, and nothing of ours callable by the API roles.
--
-- A recipient address is user data: whoever can write a booking chooses it. Capture now
-- accepts only a plain address (at most 254 bytes, no whitespace or control characters,
-- exactly one @ with text on both sides); anything else is captured as 'skipped' with the
-- reason, never sent, and the booking still commits. The stored payload is bounded by a
-- CHECK, so not even a bug in a later capture can queue a multi-megabyte body for a sweep.

-- Rows captured before this migration with an oversized address (none in a release: V6 came
-- with the first one) would fail the CHECKs below: drop the address, and never send them.
UPDATE webhook_deliveries
   SET recipient_email = NULL,
       payload         = jsonb_build_object('type', webhook_type, 'bookingId', booking_id,
                                            'email', NULL),
       status          = CASE WHEN status IN ('pending', 'retrying') THEN 'skipped' ELSE status END,
       last_error      = CASE WHEN status IN ('pending', 'retrying')
                              THEN 'recipient address is longer than 254 bytes' ELSE last_error END,
       next_retry_at   = CASE WHEN status IN ('pending', 'retrying') THEN NULL ELSE next_retry_at END,
       resolved_at     = coalesce(resolved_at, now()),
       locked_until    = NULL
 WHERE octet_length(recipient_email) > 254
    OR octet_length(payload::text) > 8192;

-- Drop-and-add keeps the file re-runnable as plain SQL.
-- RFC 5321's limit on a forward path; capture never stores a longer address.
ALTER TABLE webhook_deliveries
    DROP CONSTRAINT IF EXISTS webhook_deliveries_recipient_length_check,
    ADD CONSTRAINT webhook_deliveries_recipient_length_check
    CHECK (octet_length(recipient_email) <= 254);

-- The body that is signed and POSTed, in bytes. Today's payload is under 400 bytes; the bound
-- leaves room for more fields (free text must be truncated to fit) and keeps a sweep batch of
-- 100 under a megabyte.
ALTER TABLE webhook_deliveries
    DROP CONSTRAINT IF EXISTS webhook_deliveries_payload_size_check,
    ADD CONSTRAINT webhook_deliveries_payload_size_check
    CHECK (octet_length(payload::text) <= 8192);

-- Capture, V3's contract unchanged (one INSERT, then a NOTIFY when enabled; no other query),
-- with the address check inline so a booking pays for no extra function call. skip_reason
-- is NULL for a usable address. The WHEN order matters: CASE stops at the first match, so a
-- value over 254 bytes never reaches a regular expression, however long it is.
CREATE OR REPLACE FUNCTION capture_booking_webhook(p_booking_id uuid, p_type text, p_email text)
RETURNS uuid
LANGUAGE plpgsql
SECURITY DEFINER
AS $$
DECLARE
    recipient   text := nullif(btrim(p_email), '');
    field       text := CASE p_type WHEN 'new_request' THEN 'tutor_email' ELSE 'student_email' END;
    skip_reason text := CASE
        WHEN recipient IS NULL THEN
            'booking has no ' || field
        WHEN octet_length(recipient) > 254 THEN
            field || ' is longer than 254 bytes'
        -- ASCII controls and space, DEL, C1 controls, no-break and other Unicode spaces,
        -- zero-width and bidirectional formatting characters.
        WHEN recipient ~ '[\x01-\x20\x7f-\xa0\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\ufeff]' THEN
            field || ' contains whitespace or control characters'
        -- Exactly one @, text on both sides, and none of the characters that only a quoted
        -- address may hold (they also separate addresses in mail headers: , ; < > ...).
        WHEN recipient !~ '^[^]@"(),:;<>\\[]+@[^]@"(),:;<>\\[]+$' THEN
            field || ' is not a plain local@domain address'
    END;
    delivery_id uuid;
BEGIN
    IF skip_reason IS NOT NULL THEN
        recipient := NULL;  -- an unusable value is not stored: the booking row keeps it
    END IF;

    INSERT INTO webhook_deliveries
        (booking_id, webhook_type, recipient_email, payload, status, last_error,
         next_retry_at, resolved_at)
    VALUES
        (p_booking_id, p_type, recipient,
         jsonb_build_object('type', p_type, 'bookingId', p_booking_id, 'email', recipient),
         CASE WHEN skip_reason IS NULL THEN 'pending' ELSE 'skipped' END,
         skip_reason,
         -- Pending: due at once. Skipped: final, never due.
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
$$;

COMMENT ON FUNCTION capture_booking_webhook(uuid, text, text) IS
    'Stores one booking notification in webhook_deliveries (skipped, with the reason, when the '
    'address is missing or not a plain address of at most 254 bytes) and, unless webhooks.notify '
    'is off, NOTIFYs channel webhook_delivery with its id.';

-- CREATE OR REPLACE resets the function's settings (not its privileges): pin the search_path
-- again, as V3 does, to the schema the migrations run in.
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION capture_booking_webhook(uuid, text, text) SET search_path = %I, pg_temp',
                   current_schema());
END
$$;

-- Supabase's default privileges grant every new table, sequence, function and view to its API
-- roles, and PUBLIC may execute any function: V4 and V5 left retry_failed_webhooks, the
-- trigger functions and webhook_attempts' id sequence to them, and refinery's own history
-- table (created before V1; whoever can write it decides which migrations run next). Take
-- back everything of ours from PUBLIC, anon and authenticated.
DO $$
DECLARE
    history  regclass := to_regclass(format('%I.refinery_schema_history', current_schema()));
    grantee  text;
BEGIN
    FOREACH grantee IN ARRAY ARRAY['PUBLIC', 'anon', 'authenticated'] LOOP
        CONTINUE WHEN grantee <> 'PUBLIC'
                  AND NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = grantee);
        IF grantee <> 'PUBLIC' THEN
            grantee := quote_ident(grantee);
        END IF;
        EXECUTE format('REVOKE ALL ON FUNCTION retry_failed_webhooks(uuid[], timestamptz, integer, timestamptz), '
                       'capture_booking_webhook(uuid, text, text), notify_new_booking(), '
                       'notify_status_update() FROM %s', grantee);
        EXECUTE format('REVOKE ALL ON webhook_deliveries, webhook_attempts, webhook_failures, '
                       'email_logs, webhook_health_stats, webhook_error_patterns FROM %s', grantee);
        EXECUTE format('REVOKE ALL ON SEQUENCE %s FROM %s',
                       pg_get_serial_sequence('webhook_attempts', 'id'), grantee);
        IF history IS NOT NULL THEN
            EXECUTE format('REVOKE ALL ON %s FROM %s', history, grantee);
        END IF;
    END LOOP;
END
$$;
