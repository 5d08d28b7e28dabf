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
--   * a live approved/rejected row is decided with today's booking: when the booking's status is
--     no longer that decision (the old system delivered the later one and, logging only
--     failures, left no row of it), it ends `superseded`, never sent, with the reason in
--     last_error; a newer old row of the same booking supersedes it at claim time anyway
--     (capture order, below);
--   * a never-attempted row keeps its due time: due later, it is `retrying` (our `pending` is
--     sent at once by dispatch);
--   * a row whose id is already a delivery (adopted before, handed back by the rollback script,
--     adopted again): the old system's state is taken when it may be newer — our row is still
--     live, or the old row counts more attempts — and ours is kept otherwise;
--   * not imported, and left in webhook_failures_seed: rows without a booking id, or with a type
--     other than new_request / approved / rejected.
-- A usable recipient is what capture accepts since V6, by the same tests in the same order
-- (keep them in step with capture_booking_webhook; a test compares the two): at most 254
-- bytes, no whitespace or control characters, exactly one @ with text on both sides. An
-- address longer than 254 bytes is never stored (the CHECK), even in history.
-- Times that are NULL or not finite are filled from the next best one (last attempt,
-- creation, now()); attempt_count and max_retries are clamped to the range our CHECKs allow.
-- The old row's last_error is kept (500 characters at most; the full text stays in the
-- history table); rows without one say so, so our webhook_failures view lists them.
-- Capture order (capture_seq, V8): imported rows come after every delivery already here, among
-- themselves by creation time. At a first adoption the outbox is empty; at a later one its rows
-- are older than the old system's rows of the rollback window, which must count as later (the
-- caller moves the sequence past them afterwards). A row already here keeps its place.
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
           (SELECT b.status::text FROM booking_requests b WHERE b.id = s.booking_id) AS booking_status,
           EXISTS (SELECT 1 FROM booking_requests b WHERE b.id = s.booking_id) AS booking_exists,
           (SELECT d.status FROM webhook_deliveries d WHERE d.id = s.id) AS ours,
           (SELECT d.attempt_count FROM webhook_deliveries d WHERE d.id = s.id) AS our_attempts
      FROM webhook_failures_seed s
),
checked AS (
    SELECT src.*,
           ours IS NOT NULL AS id_taken,
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
                WHEN id_taken AND NOT (ours IN ('pending', 'retrying') OR attempts > our_attempts)
                    THEN 'already a delivery, no newer here: kept as it is'
           END AS refused,
           coalesce(old_status IN ('pending', 'retrying'), false) AS live,
           -- A decision the booking no longer holds (today's status, read in this transaction).
           webhook_type IN ('approved', 'rejected')
           AND booking_status IS NOT NULL
           AND booking_status <> webhook_type AS outdated
      FROM checked
),
mapped AS (
    SELECT judged.*,
           CASE WHEN refused IS NOT NULL THEN NULL
                WHEN old_status = 'succeeded' THEN 'succeeded'
                WHEN address_problem IS NOT NULL THEN 'skipped'
                WHEN NOT live THEN 'failed'
                WHEN NOT booking_exists THEN 'failed'
                WHEN outdated THEN 'superseded'
                WHEN attempts = 0 AND coalesce(next_retry_at <= now(), true) THEN 'pending'
                ELSE 'retrying'
           END AS new_status,
           array_remove(ARRAY[
               refused,
               CASE WHEN refused IS NULL AND id_taken
                    THEN 'already a delivery (adopted before, handed back by a rollback): the old system''s newer state taken' END,
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
               CASE WHEN refused IS NULL AND live AND address_problem IS NULL AND booking_exists AND outdated
                    THEN format('the booking is %s now: superseded, never sent', left(booking_status, 40)) END,
               CASE WHEN refused IS NULL AND live AND address_problem IS NULL AND booking_exists
                         AND NOT outdated AND attempts > max_retries
                    THEN 'retry budget already spent: one final attempt granted' END,
               CASE WHEN refused IS NULL AND live AND address_problem IS NULL AND booking_exists
                         AND NOT outdated AND next_retry_at IS NULL
                    THEN 'no next_retry_at: due at once' END,
               CASE WHEN refused IS NULL AND live AND address_problem IS NULL AND booking_exists
                         AND NOT outdated AND attempts = 0 AND next_retry_at > now()
                    THEN 'never attempted, due later: kept its due time' END,
               CASE WHEN refused IS NULL AND created_at IS NULL
                    THEN 'no created_at: set from the last attempt' END
           ], NULL) AS notes
      FROM judged
),
valued AS (
    SELECT mapped.*,
           CASE WHEN new_status IN ('pending', 'retrying') THEN greatest(max_retries, attempts)
                ELSE max_retries END AS budget,
           CASE WHEN new_status IN ('pending', 'retrying') THEN coalesce(next_retry_at, now()) END AS due,
           CASE WHEN new_status = 'skipped' THEN address_problem || ' (at adoption of the pg_net system)'
                WHEN new_status = 'superseded'
                    THEN format('superseded at adoption of the pg_net system: the booking is %s now',
                                left(booking_status, 40))
                         || coalesce(' (last error: ' || left(last_error, 300) || ')', '')
                WHEN live AND new_status = 'failed'
                    THEN 'booking no longer exists at adoption of the pg_net system; not sent'
                         || coalesce(' (last error: ' || left(last_error, 300) || ')', '')
                ELSE coalesce(left(last_error, 500), 'no error recorded by the pg_net system') END AS error,
           CASE WHEN new_status IN ('pending', 'retrying') THEN NULL
                ELSE coalesce(resolved_at, last_attempt_at, created_at, now()) END AS resolved
      FROM mapped
     WHERE new_status IS NOT NULL
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
           budget,
           due,
           error,
           last_attempt_at,
           coalesce(created_at, last_attempt_at, resolved_at, now()),
           resolved,
           (SELECT coalesce(max(capture_seq), 0) FROM webhook_deliveries)
           + row_number() OVER (ORDER BY coalesce(created_at, last_attempt_at, resolved_at, now()), id)
      FROM valued
     WHERE NOT id_taken
    RETURNING id
),
updated AS (
    UPDATE webhook_deliveries d
       SET status          = v.new_status,
           attempt_count   = greatest(v.attempts, d.attempt_count),
           max_retries     = greatest(v.budget, d.attempt_count),
           next_retry_at   = v.due,
           last_error      = v.error,
           last_attempt_at = coalesce(v.last_attempt_at, d.last_attempt_at),
           resolved_at     = v.resolved,
           locked_until    = NULL
      FROM valued v
     WHERE v.id_taken
       AND d.id = v.id
    RETURNING d.id
)
SELECT coalesce(old_status, 'NULL') AS old_status,
       new_status,
       notes,
       count(*) AS n,
       (array_agg(id ORDER BY id))[1:20] AS ids,
       (SELECT count(*) FROM inserted) + (SELECT count(*) FROM updated) AS inserted_total
  FROM mapped
 GROUP BY old_status, new_status, notes
 ORDER BY new_status NULLS LAST, old_status, notes