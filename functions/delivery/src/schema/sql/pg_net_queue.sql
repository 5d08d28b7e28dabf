-- Requests pg_net has queued but not sent yet. They stay pg_net's: it sends them after the
-- switch as it would have before (once, without retries). Only run when the table exists.
SELECT count(*) FROM net.http_request_queue
