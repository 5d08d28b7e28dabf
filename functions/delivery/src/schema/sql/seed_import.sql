-- Adoption: every row of the seed's table (now webhook_failures_seed) becomes a delivery with
-- the SAME id — the id our sender puts in `webhook-id`, so a receiver deduplicating by id sees
-- continuity — and its type, booking, recipient, attempt count and timestamps. The mapping:
--   * pending / retrying stay live with their next_retry_at; the sweep picks them up. They
--     become `retrying`, except rows never attempted (attempt_count 0), which stay `pending`:
--     ours means "never attempted", and is sent at once by dispatch.
--       - no next_retry_at (or not a finite time): due at once;
--       - retry budget already spent (attempt_count > max_retries): one final attempt;
--       - no usable recipient: `skipped`, the address not kept, like capture (V6) does;
--       - booking no longer exists: `failed`, not sent on its own, replayable by hand.
--   * failed and succeeded become history (failed ones replayable: `webhooks replay`); a
--     failed one without a usable recipient becomes `skipped`, so no replay can send it.
--   * any other status (NULL, or one a missing CHECK let through): `failed`, replayable.
--   * not imported, and left in webhook_failures_seed: rows without a booking id, with a type
--     other than new_request / approved / rejected, or whose id is already a delivery.
-- A usable recipient is what capture accepts since V6, by the same tests in the same order
-- (keep them in step with capture_booking_webhook; a test compares the two): at most 254
-- bytes, no whitespace or control characters, exactly one @ with text on both sides. An
-- address longer than 254 bytes is never stored (the CHECK), even in history.
-- Times that are NULL or not finite are filled from the next best one (last attempt,
-- creation, now()); attempt_count and max_retries are clamped to the range our CHECKs allow.
-- The old row's last_error is kept (500 characters at most; the full text stays in the
-- history table); rows without one say so, so our webhook_failures view lists them.
-- Capture order (capture_seq, V8): the old system's rows come before everything captured here,
-- among themselves by creation time, so a decision captured by us always counts as later than
-- an imported one (docs/superseded.md).
-- Returns one row per group of rows treated alike: old status, new status (NULL: not
-- imported), the notes that applied, how many, and up to 20 of their ids.
WITH src AS (
    SELECT s.id,
           s.booking_id,
           lower(btrim(s.webhook_type::text)) AS webhook_type,
           nullif(btrim(s.recipient_email::text), '') AS address,
           lower(btrim(s.status::text)) AS old_status,
           least(greatest(coalesce(s.attempt_count::bigint, 1), 0), 1000000)::integer AS attempts,
           least(greatest(coalesce(s.max_retries::bigint, 3), 0), 1000000)::integer AS max_retries,
           CASE WHEN isfinite(s.next_retry_at::timestamptz) THEN s.next_retry_at::timestamptz END AS next_retry_at,
           CASE WHEN isfinite(s.last_attempt_at::timestamptz) THEN s.last_attempt_at::timestamptz END AS last_attempt_at,
           CASE WHEN isfinite(s.created_at::timestamptz) THEN s.created_at::timestamptz END AS created_at,
           CASE WHEN isfinite(s.resolved_at::timestamptz) THEN s.resolved_at::timestamptz END AS resolved_at,
           s.last_error::text AS last_error,
           EXISTS (SELECT 1 FROM booking_requests b WHERE b.id = s.booking_id) AS booking_exists,
           EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.id = s.id) AS id_taken
      FROM webhook_failures_seed s
),
checked AS (
    SELECT src.*,
           CASE WHEN address IS NULL THEN 'recipient address is missing'
                WHEN octet_length(address) > 254 THEN 'recipient address is longer than 254 bytes'
                WHEN address ~ '[\x01-\x20\x7f-\xa0\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\ufeff]'
                    THEN 'recipient address contains whitespace or control characters'
                WHEN address !~ '^[^]@"(),:;<>\\[]+@[^]@"(),:;<>\\[]+$'
                    THEN 'recipient address is not a plain local@domain address'
           END AS address_problem
      FROM src
),
judged AS (
    SELECT checked.*,
           CASE WHEN address_problem IS NULL OR octet_length(address) <= 254 AND old_status = 'succeeded'
                THEN address END AS recipient,
           CASE WHEN booking_id IS NULL THEN 'not imported: no booking id'
                WHEN webhook_type IS NULL OR webhook_type NOT IN ('new_request', 'approved', 'rejected')
                    THEN 'not imported: webhook_type is not new_request, approved or rejected'
                WHEN id_taken THEN 'not imported: the id is already a delivery'
           END AS refused,
           coalesce(old_status IN ('pending', 'retrying'), false) AS live
      FROM checked
),
mapped AS (
    SELECT judged.*,
           CASE WHEN refused IS NOT NULL THEN NULL
                WHEN old_status = 'succeeded' THEN 'succeeded'
                WHEN address_problem IS NOT NULL THEN 'skipped'
                WHEN NOT live THEN 'failed'
                WHEN NOT booking_exists THEN 'failed'
                WHEN attempts = 0 THEN 'pending'
                ELSE 'retrying'
           END AS new_status,
           array_remove(ARRAY[
               refused,
               CASE WHEN refused IS NULL AND NOT live AND address_problem IS NULL
                         AND coalesce(old_status NOT IN ('failed', 'succeeded'), true)
                    THEN format('status %s is not pending, retrying, failed or succeeded: imported as failed (replayable)',
                                coalesce(quote_literal(left(old_status, 40)), 'NULL')) END,
               CASE WHEN refused IS NULL AND address_problem IS NOT NULL
                    THEN address_problem
                         || CASE WHEN old_status = 'succeeded' THEN ': kept as history'
                                 ELSE ': imported as skipped, never sent' END END,
               CASE WHEN refused IS NULL AND live AND address_problem IS NULL AND NOT booking_exists
                    THEN 'booking no longer exists: imported as failed, not sent (replayable)' END,
               CASE WHEN refused IS NULL AND live AND address_problem IS NULL AND booking_exists
                         AND attempts > max_retries
                    THEN 'retry budget already spent: one final attempt granted' END,
               CASE WHEN refused IS NULL AND live AND address_problem IS NULL AND booking_exists
                         AND next_retry_at IS NULL
                    THEN 'no next_retry_at: due at once' END,
               CASE WHEN refused IS NULL AND created_at IS NULL
                    THEN 'no created_at: set from the last attempt' END
           ], NULL) AS notes
      FROM judged
),
inserted AS (
    INSERT INTO webhook_deliveries
        (id, booking_id, webhook_type, recipient_email, payload, status, attempt_count, max_retries,
         next_retry_at, last_error, last_attempt_at, created_at, resolved_at, capture_seq)
    SELECT id,
           booking_id,
           webhook_type,
           recipient,
           jsonb_build_object('type', webhook_type, 'bookingId', booking_id, 'email', recipient),
           new_status,
           attempts,
           CASE WHEN new_status IN ('pending', 'retrying') THEN greatest(max_retries, attempts)
                ELSE max_retries END,
           CASE WHEN new_status IN ('pending', 'retrying') THEN coalesce(next_retry_at, now()) END,
           CASE WHEN new_status = 'skipped' THEN address_problem || ' (at adoption of the pg_net system)'
                WHEN live AND new_status = 'failed'
                    THEN 'booking no longer exists at adoption of the pg_net system; not sent'
                         || coalesce(' (last error: ' || left(last_error, 300) || ')', '')
                ELSE coalesce(left(last_error, 500), 'no error recorded by the pg_net system') END,
           last_attempt_at,
           coalesce(created_at, last_attempt_at, resolved_at, now()),
           CASE WHEN new_status IN ('pending', 'retrying') THEN NULL
                ELSE coalesce(resolved_at, last_attempt_at, created_at, now()) END,
           (SELECT coalesce(min(capture_seq), 1) FROM webhook_deliveries)
           - row_number() OVER (ORDER BY coalesce(created_at, last_attempt_at, resolved_at, now()) DESC,
                                         id DESC)
      FROM mapped
     WHERE new_status IS NOT NULL
    RETURNING id
)
SELECT coalesce(old_status, 'NULL') AS old_status,
       new_status,
       notes,
       count(*) AS n,
       (array_agg(id ORDER BY id))[1:20] AS ids,
       (SELECT count(*) FROM inserted) AS inserted_total
  FROM mapped
 GROUP BY old_status, new_status, notes
 ORDER BY new_status NULLS LAST, old_status, notes
