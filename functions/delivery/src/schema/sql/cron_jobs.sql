-- pg_cron jobs of this database that call retry_failed_webhooks — the seed's `retry-webhooks`
-- every 10 minutes, by whatever name. Left running they would keep requeueing (ours) or
-- sending (the old function) next to our sweep. Only run when cron.job exists. pg_cron shows
-- a role only its own jobs: run adoption as the role that scheduled them.
-- The restore statement reschedules the job as it is now.
SELECT jobid::bigint,
       coalesce(jobname, '') AS jobname,
       schedule,
       active,
       CASE WHEN jobname IS NULL THEN format('SELECT cron.schedule(%L, %L);', schedule, command)
            ELSE format('SELECT cron.schedule(%L, %L, %L);', jobname, schedule, command) END
       || CASE WHEN active THEN ''
               ELSE E'\n-- the job was paused: SELECT cron.alter_job(<new job id>, active := false);' END
       AS restore
  FROM cron.job
 WHERE command ~* '\mretry_failed_webhooks\M'
   AND (database IS NULL OR database = current_database())
 ORDER BY jobid
