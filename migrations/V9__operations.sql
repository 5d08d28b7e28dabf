-- V9: operations — the completeness check behind `webhooks verify` (and the sweep's
-- MissingDeliveries metric), `webhook_stats` (per type and overall) for `webhooks stats`, and
-- an index for retention (`webhooks cleanup`, WEBHOOK_RETENTION). Re-runnable as plain SQL.

-- Bookings created before this instant are not checked for deliveries: they predate the
-- capture triggers (an app that had bookings before installing), or their deliveries were
-- removed on purpose by retention. One row. `webhooks cleanup` moves it forward to its
-- cut-off in the same transaction as each deletion; an operator who deletes history by hand
-- moves it too: UPDATE webhook_verify_horizon SET checked_from = '…', reason = '…';
CREATE TABLE IF NOT EXISTS webhook_verify_horizon (
    singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    checked_from timestamptz NOT NULL,
    reason       text NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE webhook_verify_horizon IS
    'One row: bookings created before checked_from are not checked by webhook_missing_deliveries '
    '(they predate capture, or retention removed their deliveries).';

-- An outbox that already has history was capturing since its first delivery; an empty one
-- (a fresh install, even onto an app table full of older bookings) starts checking now.
INSERT INTO webhook_verify_horizon (checked_from, reason)
SELECT coalesce(min(created_at), now()),
       CASE WHEN count(*) = 0 THEN 'capture installed' ELSE 'first captured delivery' END
  FROM webhook_deliveries
ON CONFLICT DO NOTHING;

ALTER TABLE webhook_verify_horizon ENABLE ROW LEVEL SECURITY;

-- The completeness check. Every booking must have a new_request delivery, and one of its
-- current status when that is approved or rejected (in any delivery state: skipped and failed
-- count as captured). A row here means the capture did not happen: a disabled or dropped
-- trigger, a restore or bulk load that bypassed it, deliveries deleted by hand.
-- Callers filter on booking_created_at to leave out the last moments (`webhooks verify
-- --window`). The anti-join is served by webhook_deliveries_booking_idx.
--
-- Bookings are dated by booking_requests.created_at. The app's own table need not have it (V1
-- requires only the columns capture reads): then no booking can be dated, the view is empty,
-- and `webhooks doctor` says so. After adding the column, apply this file again
-- (psql -f migrations/V9__operations.sql): it is re-runnable.
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
                       (CASE WHEN b.status::text IN ('approved', 'rejected') THEN b.status::text END)
               ) AS expected (webhook_type)
         WHERE expected.webhook_type IS NOT NULL
           -- No horizon row (deleted by hand) means: check everything.
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
    'delivery, or delivery for its current approved/rejected status, is missing.';

-- Health at a glance for `webhooks stats`: per type *and* overall (the row webhook_type =
-- 'all', last; leave it out when summing rows), with p99 latency and the creation time of the
-- oldest undelivered row. A view of its own rather than more columns on V4's
-- webhook_health_stats: the migrations must stay re-runnable as plain SQL in order, and V4's
-- CREATE OR REPLACE cannot drop columns a later file added. `superseded` counts a final state
-- that later migrations may add (0 until then).
CREATE OR REPLACE VIEW webhook_stats WITH (security_invoker = true) AS
WITH deliveries AS (
    SELECT coalesce(webhook_type, 'all')                   AS webhook_type,
           count(*)                                        AS total,
           count(*) FILTER (WHERE status = 'succeeded')    AS succeeded,
           count(*) FILTER (WHERE status = 'pending')      AS pending,
           count(*) FILTER (WHERE status = 'retrying')     AS retrying,
           count(*) FILTER (WHERE status = 'failed')       AS failed,
           count(*) FILTER (WHERE status = 'skipped')      AS skipped,
           count(*) FILTER (WHERE status = 'superseded')   AS superseded,
           round(avg(attempt_count) FILTER (WHERE status = 'succeeded'), 2) AS avg_attempts_to_succeed,
           min(next_retry_at) FILTER (WHERE status IN ('pending', 'retrying')) AS oldest_due_at,
           min(created_at) FILTER (WHERE status IN ('pending', 'retrying'))    AS oldest_undelivered_at
      FROM webhook_deliveries
     GROUP BY GROUPING SETS ((webhook_type), ())
), attempts AS (
    SELECT coalesce(d.webhook_type, 'all')                  AS webhook_type,
           count(*)                                         AS attempts_24h,
           count(*) FILTER (WHERE a.error_kind IS NOT NULL) AS failed_attempts_24h,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY a.duration_ms)  AS p50_ms_24h,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY a.duration_ms) AS p95_ms_24h,
           percentile_cont(0.99) WITHIN GROUP (ORDER BY a.duration_ms) AS p99_ms_24h
      FROM webhook_attempts a
      JOIN webhook_deliveries d ON d.id = a.delivery_id
     WHERE a.started_at > now() - interval '24 hours'
     GROUP BY GROUPING SETS ((d.webhook_type), ())
)
SELECT d.webhook_type, d.total, d.succeeded, d.pending, d.retrying, d.failed, d.skipped,
       d.superseded,
       round(100.0 * d.succeeded / nullif(d.succeeded + d.failed, 0), 2) AS success_rate_pct,
       d.avg_attempts_to_succeed, d.oldest_due_at, d.oldest_undelivered_at,
       coalesce(a.attempts_24h, 0) AS attempts_24h,
       coalesce(a.failed_attempts_24h, 0) AS failed_attempts_24h,
       a.p50_ms_24h, a.p95_ms_24h, a.p99_ms_24h
  FROM deliveries d
  LEFT JOIN attempts a USING (webhook_type)
 ORDER BY d.webhook_type = 'all', d.webhook_type;

COMMENT ON VIEW webhook_stats IS
    'Per webhook_type and overall (''all''): delivery states, success rate, attempts to succeed, '
    'oldest due and undelivered rows, 24h attempt latency (p50/p95/p99).';

-- Retention deletes resolved rows by age; without this it would scan the whole outbox on
-- every batch. Unresolved rows never enter the index, so capture pays only for final rows.
CREATE INDEX IF NOT EXISTS webhook_deliveries_resolved_idx
    ON webhook_deliveries (resolved_at)
    WHERE status NOT IN ('pending', 'retrying');

REVOKE ALL ON webhook_verify_horizon, webhook_missing_deliveries, webhook_stats FROM PUBLIC;

-- As in V4: Supabase's default privileges grant new tables and views to its API roles.
DO $$
DECLARE
    api_role text;
BEGIN
    FOREACH api_role IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = api_role) THEN
            EXECUTE format('REVOKE ALL ON webhook_verify_horizon, webhook_missing_deliveries, '
                           'webhook_stats FROM %I', api_role);
        END IF;
    END LOOP;
END
$$;
