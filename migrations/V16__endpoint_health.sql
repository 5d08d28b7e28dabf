-- V16: the notification service's health, shared by every worker (issue 22). Every statement can
-- run twice (psql -f), like the earlier files.
--
-- One row per endpoint (the origin of WEBHOOK_URL: scheme, host and port), written by the
-- recorder from outcomes it already has — one statement per recorded group, never per
-- delivery — and read by the claims:
--   * a circuit breaker: `closed` while the endpoint answers; `open` after WEBHOOK_BREAKER_AFTER
--     consecutive connect errors, timeouts and 5xx across all workers (or, when traffic is
--     light, when every request for five minutes failed, three at least); `half_open` while
--     exactly one worker's probe is on its way, once the cool-down has passed. While it is not
--     closed, deliveries are held — not sent, not failed, no attempt spent — and only the probe
--     goes out; a success closes it, a failure reopens it with a doubled cool-down;
--   * a pause: `webhooks pause` (an operator's maintenance window), or a receiver's Retry-After
--     on a 429 or 503, holds every worker's deliveries until paused_until;
--   * pacing: next_send_at is the earliest moment the next request may leave, so every worker
--     together keeps under WEBHOOK_MAX_RATE, and under the slow start after the breaker closes.
-- No foreign key: an endpoint outlives its deliveries.
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    origin       text PRIMARY KEY,
    state        text NOT NULL DEFAULT 'closed'
                 CONSTRAINT webhook_endpoints_state_check
                 CHECK (state = ANY ('{closed,open,half_open}'::text[])),
    -- Consecutive breaker failures (connect, timeout, 5xx), across workers, since the last
    -- success.
    failures     integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
    -- When the current run of failures began; NULL after a success.
    failing_since timestamptz,
    -- When the current outage began (the breaker opened); NULL while closed.
    opened_at    timestamptz,
    -- The current cool-down: doubled by each failed probe, up to a cap.
    cooldown_ms  bigint NOT NULL DEFAULT 0 CHECK (cooldown_ms >= 0),
    -- Open: a probe may go from this moment.
    probe_at     timestamptz,
    -- Half-open: the probe's lease; past it, another worker may probe.
    probe_until  timestamptz,
    -- When the breaker last closed: the slow start counts from here.
    closed_at    timestamptz,
    -- The same moment on the database's real clock: the slow start is about real time, even
    -- when a test passes its own clock to the engine.
    ramp_from    timestamptz,
    -- Held until then, by an operator (`webhooks pause`) or a receiver's Retry-After.
    paused_until timestamptz,
    paused_by    text CHECK (length(paused_by) <= 200),
    -- Pacing: the earliest moment the next request may leave.
    next_send_at timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_endpoints_open_check CHECK ((state = 'closed') = (opened_at IS NULL))
);

COMMENT ON TABLE webhook_endpoints IS
    'The notification service''s health, shared by every worker: circuit breaker, pause '
    '(webhooks pause, Retry-After) and pacing (WEBHOOK_MAX_RATE, slow start).';

-- A delivery's hold: when it came due and was held, recorded by its first attempt that failed
-- while the endpoint was held (a probe, or a request in flight when the breaker opened; such
-- attempts are logged but not counted toward max_retries), cleared by its next counted
-- attempt. A held delivery fails once WEBHOOK_HOLD_MAX has passed since then (since it came
-- due, when it was never attempted while held). Nullable without a default: no table rewrite.
ALTER TABLE webhook_deliveries ADD COLUMN IF NOT EXISTS held_since timestamptz;

COMMENT ON COLUMN webhook_deliveries.held_since IS
    'Held since (the notification service failing or paused); WEBHOOK_HOLD_MAX counts from here.';

ALTER TABLE webhook_endpoints ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON webhook_endpoints FROM PUBLIC;

DO $$
DECLARE
    api_role text;
BEGIN
    FOREACH api_role IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = api_role) THEN
            EXECUTE format('REVOKE ALL ON webhook_endpoints FROM %I', api_role);
        END IF;
    END LOOP;
END
$$;
