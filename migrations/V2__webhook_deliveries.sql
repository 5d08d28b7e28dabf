-- V2: the outbox. Every notification is stored here first, in the booking's own transaction,
-- and delivered from here; every HTTP attempt is recorded in webhook_attempts.

CREATE TABLE IF NOT EXISTS webhook_deliveries (
    -- Also the idempotency key: sent as `webhook-id` on every attempt, so a receiver can
    -- drop a duplicate even if a retry races a slow success.
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- No foreign key to booking_requests on purpose: the delivery history must outlive a
    -- deleted booking, and the capture insert stays a single-row write.
    booking_id       uuid NOT NULL,
    webhook_type     text NOT NULL
                     CONSTRAINT webhook_deliveries_type_check
                     CHECK (webhook_type IN ('new_request', 'approved', 'rejected')),
    -- NULL when the booking had no usable address; such rows are captured as 'skipped'.
    recipient_email  text,
    -- Exactly the body that is signed and POSTed: {"type", "bookingId", "email"}.
    payload          jsonb NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CONSTRAINT webhook_deliveries_status_check
                     CHECK (status IN ('pending', 'retrying', 'succeeded', 'failed', 'skipped')),
    attempt_count    integer NOT NULL DEFAULT 0,
    -- Retries allowed after the first attempt (attempt_count may reach max_retries + 1).
    max_retries      integer NOT NULL DEFAULT 3 CHECK (max_retries >= 0),
    -- When the next attempt is due; NULL once the delivery is final.
    next_retry_at    timestamptz DEFAULT now(),
    last_error       text,
    last_status_code integer,
    last_attempt_at  timestamptz,
    -- Claim lease: whoever set it owns the delivery until then. A worker that dies mid-flight
    -- leaves a lease that expires, and the next sweep reclaims the row.
    locked_until     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    resolved_at      timestamptz
);

COMMENT ON TABLE webhook_deliveries IS
    'Outbox and state of every booking notification; id is the idempotency key (webhook-id).';

-- Finding due work touches only unresolved rows, so the cost does not grow with history.
CREATE INDEX IF NOT EXISTS webhook_deliveries_due_idx
    ON webhook_deliveries (next_retry_at)
    WHERE status IN ('pending', 'retrying');

-- Replays of failed deliveries ("failed since T") and the per-booking lookups of the app.
CREATE INDEX IF NOT EXISTS webhook_deliveries_failed_idx
    ON webhook_deliveries (resolved_at)
    WHERE status = 'failed';
CREATE INDEX IF NOT EXISTS webhook_deliveries_booking_idx
    ON webhook_deliveries (booking_id);

CREATE TABLE IF NOT EXISTS webhook_attempts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id  uuid NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    -- 1-based; equals the delivery's attempt_count after this attempt was recorded.
    attempt      integer NOT NULL CHECK (attempt >= 1),
    started_at   timestamptz NOT NULL,
    duration_ms  integer NOT NULL CHECK (duration_ms >= 0),
    -- NULL when no HTTP response arrived (timeout, refused connection, ...).
    status_code  integer,
    -- NULL on success.
    error_kind   text
                 CONSTRAINT webhook_attempts_error_kind_check
                 CHECK (error_kind IN ('timeout', 'connect', 'http_4xx', 'http_5xx', 'redirect', 'other')),
    -- A short, sanitized excerpt: never a full response body.
    error        text CHECK (length(error) <= 512)
);

COMMENT ON TABLE webhook_attempts IS
    'One row per HTTP attempt of a webhook delivery, kept for health views and debugging.';

CREATE INDEX IF NOT EXISTS webhook_attempts_delivery_idx
    ON webhook_attempts (delivery_id, attempt);
CREATE INDEX IF NOT EXISTS webhook_attempts_started_idx
    ON webhook_attempts (started_at);

-- The tables hold email addresses: row level security with no policy means only the owner
-- (the service role that runs migrations and the Lambda functions) can read or write them.
ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_attempts ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON webhook_deliveries, webhook_attempts FROM PUBLIC;
