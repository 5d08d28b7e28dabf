-- Which of the names adoption works with exist in the current schema, and as what (relkind):
-- webhook_failures (the seed's table, or our view), webhook_failures_seed (a previous
-- adoption's history), email_logs (the email service's table, or our view),
-- webhook_email_logs (our email_logs view, renamed aside) and whether email_logs is ours.
SELECT c.relname::text,
       c.relkind::text,
       EXISTS (SELECT 1
                 FROM pg_rewrite r
                 JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                 JOIN pg_class dep ON dep.oid = d.refobjid
                WHERE r.ev_class = c.oid
                  AND dep.relnamespace = c.relnamespace
                  AND dep.relname = 'webhook_deliveries') AS ours
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = current_schema()
   AND c.relname IN ('webhook_failures', 'webhook_failures_seed', 'email_logs', 'webhook_email_logs',
                     'email_logs_aside_during_migrate')
