-- V17: the attempt log maintains one index fewer per attempt (issue 25). Every statement can run
-- twice (psql -f), like the earlier files.
--
-- An attempt is identified by its delivery and its number: V14 made (delivery_id, attempt)
-- unique, and every read and the recording's ON CONFLICT go through that index. The surrogate
-- key `id` (an identity column with a primary key of its own) was a second B-tree written on
-- every attempt that no query uses: 62 bytes of WAL and about 5 % of the server's CPU per
-- delivery in a drain (bench/RESULTS.md, "Write designs side by side"). The unique index becomes
-- the primary key (its name is kept: plans and the tests name it) and the old key's index goes.
-- The `id` column stays, still filled by its identity, so a query or a dashboard that reads it
-- keeps working; nothing enforces its uniqueness any more, nothing needed it.
--
-- Locks: ACCESS EXCLUSIVE on webhook_attempts for the two catalogue changes only (no scan, no
-- rewrite: both columns are already NOT NULL and the index already exists) — a recording waits
-- for it, no capture does.
DO $migration$
BEGIN
    IF EXISTS (SELECT 1
                 FROM pg_constraint
                WHERE conrelid = 'webhook_attempts'::regclass
                  AND contype = 'p'
                  AND conname = 'webhook_attempts_pkey') THEN
        ALTER TABLE webhook_attempts DROP CONSTRAINT webhook_attempts_pkey;
    END IF;
    IF NOT EXISTS (SELECT 1
                     FROM pg_constraint
                    WHERE conrelid = 'webhook_attempts'::regclass
                      AND contype = 'p') THEN
        ALTER TABLE webhook_attempts
            ADD CONSTRAINT webhook_attempts_delivery_attempt_key
            PRIMARY KEY USING INDEX webhook_attempts_delivery_attempt_key;
    END IF;
END
$migration$;
