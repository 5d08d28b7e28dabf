-- First statements of every `webhooks migrate` transaction.
-- A lock the app holds (a long transaction on booking_requests) makes the migration fail after
-- 10 s instead of queueing every booking insert behind it; run it again later.
SET LOCAL lock_timeout = '10s';
-- Two migrations of the same schema at once (two deploys) run one after the other.
SELECT pg_advisory_xact_lock(hashtextextended('booking-webhooks migrate ' || current_schema(), 0));
