//! The notification service's health (`webhook_endpoints`, V16): the gate the claims consult,
//! the probe, the recorder's update after each group, pacing, and the operator's pause.

/// The endpoint `$1` as the claims see it at `$2` (NULL: the database's now), with, on the
/// database's real clock, how far its next free sending slot is ahead (`backlog_s`) and how
/// long the slow start has run by then (`ramp_s`, NULL when the breaker never closed).
pub const ENDPOINT_STATE: &str = "
SELECT state, failures, opened_at, probe_at, probe_until, closed_at, paused_until, paused_by,
       coalesce($2, now()) AS at,
       extract(epoch FROM greatest(next_send_at, clock_timestamp()) - ramp_from)::float8
           AS ramp_s,
       greatest(extract(epoch FROM next_send_at - clock_timestamp()), 0)::float8 AS backlog_s
  FROM webhook_endpoints
 WHERE origin = $1";

/// The row of endpoint `$1`, when it has none yet (closed, never paused).
pub const ENDPOINT_ENSURE: &str = "
INSERT INTO webhook_endpoints (origin) VALUES ($1) ON CONFLICT DO NOTHING";

/// The probe: an open endpoint whose cool-down has passed at `$2` (NULL: the database's now),
/// or a half-open one whose probe's lease lapsed, becomes half-open for `$3` milliseconds —
/// for exactly one worker, the one this returns a row to.
pub const ENDPOINT_PROBE: &str = "
UPDATE webhook_endpoints
   SET state = 'half_open',
       probe_until = coalesce($2, now()) + $3::bigint * interval '1 millisecond',
       updated_at = coalesce($2, now())
 WHERE origin = $1
   AND ((state = 'open' AND probe_at <= coalesce($2, now()))
        OR (state = 'half_open' AND probe_until <= coalesce($2, now())))
   AND (paused_until IS NULL OR paused_until <= coalesce($2, now()))
RETURNING origin";

/// After a recorded group, at `$2` (NULL: the database's now): `$3` breaker failures (connect,
/// timeout, 408, 5xx) after the group's last answer, `$4` whether the receiver answered at all
/// (2xx, 3xx, a 4xx other than 408 and 429), `$5` a receiver's Retry-After (the pause it asks
/// for, NULL: none). An answer closes the breaker. It opens after `$6` consecutive failures, or
/// after `$9` when they have lasted `$10` ms (light traffic), for a cool-down of `$7` ms; a
/// failed probe reopens it for twice the last cool-down, at most `$8` ms. Writes nothing when
/// nothing changes, and takes no lock for the usual group (answers only, the breaker closed).
/// Returns the state after and when a probe may go — no row for that usual group.
pub const ENDPOINT_RECORD: &str = "
WITH e AS (
    SELECT origin, state, failures, failing_since, cooldown_ms, probe_at, paused_until,
           coalesce($2, now()) AS at,
           CASE WHEN $4 THEN $3 ELSE failures + $3 END AS failures_now
      FROM webhook_endpoints
     WHERE origin = $1
       -- The usual group (answers only, the breaker closed, no failures counted, no pause)
       -- changes nothing: no row lock, no write.
       AND NOT ($4 AND $3 = 0 AND $5::timestamptz IS NULL AND state = 'closed' AND failures = 0
                AND failing_since IS NULL)
       FOR UPDATE
), f AS (
    SELECT e.*,
           CASE WHEN failures_now = 0 THEN NULL
                WHEN $4 THEN at
                ELSE coalesce(failing_since, at) END AS failing_since_now
      FROM e
), n AS (
    SELECT f.*,
           CASE WHEN $4 THEN 'closed'
                WHEN state = 'half_open' AND $3 > 0 THEN 'open'
                WHEN state = 'closed'
                     AND (failures_now >= $6
                          OR (failures_now >= $9
                              AND failing_since_now <= at - $10::bigint * interval '1 millisecond'))
                    THEN 'open'
                ELSE state END AS state_now
      FROM f
), c AS (
    SELECT n.*,
           CASE WHEN state_now = 'closed' THEN 0
                WHEN state = 'half_open' AND state_now = 'open'
                    THEN least(greatest(cooldown_ms, $7::bigint) * 2, $8::bigint)
                WHEN state = 'closed' AND state_now = 'open' THEN $7::bigint
                ELSE cooldown_ms END AS cooldown_now,
           $5::timestamptz > coalesce(paused_until, '-infinity') AS pausing
      FROM n
), p AS (
    SELECT c.*,
           CASE WHEN state_now = 'open' AND state <> 'open'
                    THEN at + cooldown_now * interval '1 millisecond'
                WHEN state_now = 'closed' THEN NULL
                ELSE probe_at END AS probe_at_now
      FROM c
), written AS (
    UPDATE webhook_endpoints w
       SET state         = p.state_now,
           failures      = p.failures_now,
           failing_since = p.failing_since_now,
           cooldown_ms   = p.cooldown_now,
           opened_at     = CASE WHEN p.state_now = 'closed' THEN NULL
                                WHEN p.state = 'closed' THEN p.at
                                ELSE w.opened_at END,
           probe_at      = p.probe_at_now,
           probe_until   = CASE WHEN p.state_now = 'half_open' THEN w.probe_until END,
           closed_at     = CASE WHEN p.state_now = 'closed' AND p.state <> 'closed' THEN p.at
                                ELSE w.closed_at END,
           ramp_from     = CASE WHEN p.state_now = 'closed' AND p.state <> 'closed'
                                THEN clock_timestamp() ELSE w.ramp_from END,
           paused_until  = CASE WHEN p.pausing THEN $5 ELSE w.paused_until END,
           paused_by     = CASE WHEN p.pausing THEN 'Retry-After from the receiver'
                                ELSE w.paused_by END,
           updated_at    = p.at
      FROM p
     WHERE w.origin = p.origin
       AND (p.state_now <> p.state OR p.failures_now <> p.failures
            OR p.failing_since_now IS DISTINCT FROM p.failing_since OR p.pausing)
    RETURNING 1
)
SELECT state_now, probe_at_now, (SELECT count(*) FROM written) AS wrote FROM p";

/// Pacing: reserves `$2` sending slots `$3` microseconds apart for endpoint `$1`, from the
/// later of its next free slot and now (the database's real clock: pacing is about real time,
/// whatever clock a test passes). Returns the first slot, and now.
pub const ENDPOINT_PACE: &str = "
UPDATE webhook_endpoints w
   SET next_send_at = s.start + $2::bigint * $3::bigint * interval '1 microsecond'
  FROM (SELECT origin, greatest(next_send_at, clock_timestamp()) AS start
          FROM webhook_endpoints
         WHERE origin = $1
           FOR UPDATE) s
 WHERE w.origin = s.origin
RETURNING s.start, clock_timestamp()";

/// `webhooks pause`: holds endpoint `$1` until `$2`, saying `$3`.
pub const ENDPOINT_PAUSE: &str = "
INSERT INTO webhook_endpoints (origin, paused_until, paused_by) VALUES ($1, $2, $3)
    ON CONFLICT (origin) DO UPDATE
   SET paused_until = EXCLUDED.paused_until, paused_by = EXCLUDED.paused_by, updated_at = now()";

/// `webhooks resume`: ends a pause of endpoint `$1` (an operator's or a Retry-After); returns
/// what it was.
pub const ENDPOINT_RESUME: &str = "
UPDATE webhook_endpoints w
   SET paused_until = NULL, paused_by = NULL, updated_at = now()
  FROM (SELECT origin, paused_until, paused_by FROM webhook_endpoints WHERE origin = $1 FOR UPDATE) p
 WHERE w.origin = p.origin
RETURNING p.paused_until, p.paused_by";

/// Whether `webhook_endpoints` exists (V16) where the search path finds it.
pub const ENDPOINTS_TABLE: &str = "SELECT to_regclass('webhook_endpoints') IS NOT NULL";

/// Every endpoint, for `webhooks stats`, `doctor` and the sweep's metrics, at `$1` (NULL: the
/// database's now): its row, how long the slow start has run (real clock), and the deliveries
/// due then — held, while the breaker is not closed or a pause lasts.
pub const ENDPOINTS: &str = "
SELECT e.origin, e.state, e.failures, e.opened_at, e.probe_at, e.closed_at, e.paused_until,
       e.paused_by, coalesce($1, now()) AS at,
       extract(epoch FROM clock_timestamp() - e.ramp_from)::float8 AS ramp_s,
       (SELECT count(*) FROM webhook_deliveries d
         WHERE d.status IN ('pending', 'retrying') AND d.next_retry_at <= coalesce($1, now())) AS due
  FROM webhook_endpoints e
 ORDER BY e.origin";

/// Held too long: fails up to `$3` unresolved deliveries held since more than `$2` ms before
/// `$1` (NULL: the database's now) — since their hold began (`held_since`, set by a failure
/// while held), else since they came due (`next_retry_at`: nothing was sent since) — whose
/// lease is free, saying why; replayable. Run only while the endpoint is held (breaker open,
/// paused): then nothing due is sent. Returns their ids.
pub const HOLD_EXPIRY: &str = "
UPDATE webhook_deliveries d
   SET status        = 'failed',
       next_retry_at = NULL,
       resolved_at   = coalesce($1, now()),
       locked_until  = NULL,
       last_error    = 'held longer than WEBHOOK_HOLD_MAX while the notification service was '
                       || 'unreachable or paused (circuit breaker open, or webhooks pause); '
                       || 'webhooks replay sends it again'
 WHERE d.ctid = ANY (ARRAY(
           SELECT h.ctid
             FROM webhook_deliveries h
            WHERE h.status IN ('pending', 'retrying')
              AND coalesce(h.held_since, h.next_retry_at)
                  < coalesce($1, now()) - $2::bigint * interval '1 millisecond'
              AND (h.locked_until IS NULL OR h.locked_until <= coalesce($1, now()))
            ORDER BY coalesce(h.held_since, h.next_retry_at)
            LIMIT $3
              FOR UPDATE SKIP LOCKED))
RETURNING d.id";
