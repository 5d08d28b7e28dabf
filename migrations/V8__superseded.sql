-- V8: superseded notifications — never tell a student something that is no longer true.
--
-- A booking approved and then rejected while "approved" is still retrying must not send
-- "approved" late. So every delivery carries its capture order (capture_seq), and when a
-- status notification (approved/rejected) is claimed to be sent while a later status
-- notification of the same booking exists, the claim ends it 'superseded' (final, never sent)
-- with the id of the newest one in superseded_by. new_request goes to the tutor and is never
-- superseded; a notification already sent is history. The claims (functions/delivery/src/
-- sql.rs) make the decision, under WEBHOOK_SUPERSEDE; docs/superseded.md has the details.
--
-- Capture is unchanged: V6's capture_booking_webhook is still one INSERT (+ NOTIFY), and the
-- order comes from the column default, a sequence — no query, no lock. Within one booking the
-- sequence follows the order of the booking's changes: a status notification is captured by
-- the AFTER UPDATE trigger while the UPDATE holds the booking's row lock, so a concurrent
-- change of the same booking waits for this transaction to end and draws a larger value.
--
-- Every statement can run twice (psql -f), like the earlier files.

-- Capture order. Added NULL first so the rows already here get values in creation order
-- (the ALTER TABLE below holds its lock to the end of the migration, so no capture runs in
-- between); then every new row draws from the sequence. An import that does not name the
-- column (webhooks migrate --adopt-seed) gets the next value, in its insertion order.
ALTER TABLE webhook_deliveries ADD COLUMN IF NOT EXISTS capture_seq bigint;

CREATE SEQUENCE IF NOT EXISTS webhook_deliveries_capture_seq
    OWNED BY webhook_deliveries.capture_seq;

-- Ties on created_at (one transaction's captures) are broken by id: only two status changes of
-- one booking in one transaction, captured before this migration, could come out reversed.
UPDATE webhook_deliveries d
   SET capture_seq = o.seq
  FROM (SELECT id,
               (SELECT coalesce(max(capture_seq), 0) FROM webhook_deliveries)
               + row_number() OVER (ORDER BY created_at, id) AS seq
          FROM webhook_deliveries
         WHERE capture_seq IS NULL) o
 WHERE d.id = o.id;

-- Never backwards, so a second run cannot hand out a value again.
SELECT setval('webhook_deliveries_capture_seq',
              greatest((SELECT coalesce(max(capture_seq), 0) FROM webhook_deliveries),
                       (SELECT last_value FROM webhook_deliveries_capture_seq),
                       1));

ALTER TABLE webhook_deliveries
    ALTER COLUMN capture_seq SET DEFAULT nextval('webhook_deliveries_capture_seq'),
    ALTER COLUMN capture_seq SET NOT NULL;

COMMENT ON COLUMN webhook_deliveries.capture_seq IS
    'Capture order (one sequence for all rows): within a booking, a larger value was captured '
    'later. Decides which status notification is the current one.';

-- Set exactly when status = 'superseded': the newest status notification of the booking at
-- the time of the claim (which may itself be skipped, failed or superseded later on). No
-- foreign key, like booking_id: history outlives deletions.
ALTER TABLE webhook_deliveries ADD COLUMN IF NOT EXISTS superseded_by uuid;

COMMENT ON COLUMN webhook_deliveries.superseded_by IS
    'For a superseded delivery: the id of the later status notification of the same booking '
    'that replaced it.';

-- An explicit replay of a failed delivery that later notifications had already replaced
-- (retry_failed_webhooks(p_include_replaced => true), webhooks replay --include-replaced) is
-- sent anyway: only notifications captured after this value (the newest one at the replay)
-- supersede it. NULL: every later one does.
ALTER TABLE webhook_deliveries ADD COLUMN IF NOT EXISTS replayed_over_seq bigint;

COMMENT ON COLUMN webhook_deliveries.replayed_over_seq IS
    'Set by an explicit replay of a replaced delivery: only status notifications with a larger '
    'capture_seq supersede it.';

ALTER TABLE webhook_deliveries
    DROP CONSTRAINT IF EXISTS webhook_deliveries_status_check,
    ADD CONSTRAINT webhook_deliveries_status_check
    CHECK (status IN ('pending', 'retrying', 'succeeded', 'failed', 'skipped', 'superseded'));

ALTER TABLE webhook_deliveries
    DROP CONSTRAINT IF EXISTS webhook_deliveries_superseded_check,
    ADD CONSTRAINT webhook_deliveries_superseded_check
    CHECK ((status = 'superseded') = (superseded_by IS NOT NULL));

COMMENT ON CONSTRAINT webhook_deliveries_superseded_check ON webhook_deliveries IS
    'A superseded delivery always names the one that replaced it, and only a superseded one does.';

-- The status notifications of a booking in capture order: every supersede and ordering check
-- of the claims is a probe of this index (the newest later one, the earlier unresolved ones),
-- and new_request rows are not in it, so capturing one costs nothing here.
CREATE INDEX IF NOT EXISTS webhook_deliveries_decisions_idx
    ON webhook_deliveries (booking_id, capture_seq)
    WHERE webhook_type IN ('approved', 'rejected');

-- V4's view, same columns (V4 must stay re-runnable, and CREATE OR REPLACE cannot drop
-- columns), now also saying what replaced a superseded delivery: such a row is listed when it
-- had failed at least once (it was retrying), and its last_error names the replacement.
CREATE OR REPLACE VIEW webhook_failures WITH (security_invoker = true) AS
SELECT id, booking_id, webhook_type, recipient_email, attempt_count,
       CASE WHEN status = 'superseded'
            THEN 'superseded by ' || superseded_by || ' (last error: ' || last_error || ')'
            ELSE last_error
       END AS last_error,
       last_attempt_at, next_retry_at, max_retries, status, created_at, resolved_at
  FROM webhook_deliveries
 WHERE last_error IS NOT NULL
   AND status <> 'skipped';

COMMENT ON VIEW webhook_failures IS
    'Seed-compatible: deliveries that failed at least once (retrying, failed, succeeded later, '
    'or superseded: last_error then names the delivery that replaced it).';

-- Manual retry (V5, V7), now aware of replacements: a failed status notification for which a
-- later status notification of the same booking exists is left failed and counted in
-- `replaced` — sending it now would tell the student an old decision after the current one —
-- unless p_include_replaced is true (then it is sent, and only notifications captured after
-- this replay supersede it). Superseded deliveries are never requeued: only 'failed' ones are.
-- A new parameter and result column change the signature: the old function goes.
DROP FUNCTION IF EXISTS retry_failed_webhooks(uuid[], timestamptz, integer, timestamptz);

CREATE OR REPLACE FUNCTION retry_failed_webhooks(
    p_ids              uuid[]      DEFAULT NULL,
    p_since            timestamptz DEFAULT NULL,
    p_max_retries      integer     DEFAULT 3,
    p_now              timestamptz DEFAULT now(),
    p_include_replaced boolean     DEFAULT false
)
RETURNS TABLE (requeued integer, due_now integer, still_failed integer, replaced integer)
LANGUAGE plpgsql
AS $$
DECLARE
    n_requeued integer;
    n_replaced integer;
    due        timestamptz := coalesce(p_now, now());
BEGIN
    IF p_max_retries IS NULL OR p_max_retries < 0 THEN
        RAISE EXCEPTION 'p_max_retries must be 0 or more, got %', p_max_retries;
    END IF;

    WITH selected AS (
        SELECT d.id,
               (SELECT max(n.capture_seq)
                  FROM webhook_deliveries n
                 WHERE d.webhook_type <> 'new_request'
                   AND n.booking_id = d.booking_id
                   AND n.webhook_type IN ('approved', 'rejected')
                   AND n.capture_seq > d.capture_seq) AS newest
          FROM webhook_deliveries d
         WHERE d.status = 'failed'
           AND (p_ids IS NULL OR d.id = ANY (p_ids))
           AND (p_since IS NULL OR d.resolved_at >= p_since)
           FOR UPDATE OF d
    ), requeued AS (
        UPDATE webhook_deliveries d
           SET status            = 'retrying',
               next_retry_at     = due,
               resolved_at       = NULL,
               locked_until      = NULL,
               max_retries       = d.attempt_count + p_max_retries,
               replayed_over_seq = s.newest
          FROM selected s
         WHERE d.id = s.id
           AND (s.newest IS NULL OR coalesce(p_include_replaced, false))
        RETURNING d.id
    )
    SELECT (SELECT count(*) FROM requeued),
           (SELECT count(*) FROM selected s
             WHERE s.newest IS NOT NULL AND NOT coalesce(p_include_replaced, false))
      INTO n_requeued, n_replaced;

    RETURN QUERY
    SELECT n_requeued,
           (SELECT count(*)::integer FROM webhook_deliveries
             WHERE status IN ('pending', 'retrying') AND next_retry_at <= due),
           (SELECT count(*)::integer FROM webhook_deliveries WHERE status = 'failed'),
           n_replaced;
END
$$;

COMMENT ON FUNCTION retry_failed_webhooks(uuid[], timestamptz, integer, timestamptz, boolean) IS
    'Requeues failed deliveries (all, by id, or failed since a time) with a fresh retry budget, '
    'due at p_now (NULL: now()), except those a later status notification replaced (counted in '
    'replaced) unless p_include_replaced; returns counts. The next retry sweep sends them.';

-- As V6 did for everything of ours: nothing for PUBLIC or Supabase's API roles, whose default
-- privileges grant them every new function and sequence.
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
        EXECUTE format('REVOKE ALL ON FUNCTION retry_failed_webhooks(uuid[], timestamptz, integer, '
                       'timestamptz, boolean) FROM %s', grantee);
        EXECUTE format('REVOKE ALL ON SEQUENCE webhook_deliveries_capture_seq FROM %s', grantee);
        EXECUTE format('REVOKE ALL ON webhook_failures FROM %s', grantee);
    END LOOP;
END
$$;
