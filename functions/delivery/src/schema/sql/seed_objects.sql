-- The pg_net system's objects in the current schema, in the order adoption removes them:
--   1 trigger   triggers on booking_requests that call net.http_post, directly or through a
--               function of this schema that does;
--   2 function  their trigger functions (when they live here and serve no other trigger) and
--               any retry_failed_webhooks() that is not ours (ours only touches
--               webhook_deliveries and never calls net.http_post);
--   3 view      webhook_failures / webhook_health_stats / webhook_error_patterns views that
--               are not ours (ours read webhook_deliveries or webhook_attempts). A view that
--               reads another of them comes first.
-- Each row: kind, a description for the operator, the statement that removes the object and
-- the statements that restore it as it is now (for the rollback script). Identifiers are
-- quoted here by format(%I); nothing is spliced in by the caller. Source text is never part
-- of the description: it may hold keys.
WITH RECURSIVE here AS (
    SELECT oid, nspname FROM pg_namespace WHERE nspname = current_schema()
),
outbound AS (
    SELECT p.oid, p.proname
      FROM pg_proc p JOIN here ON p.pronamespace = here.oid
     WHERE p.prosrc ~* 'net"?\s*\.\s*"?http_post'
),
bookings AS (
    SELECT c.oid FROM pg_class c JOIN here ON c.relnamespace = here.oid
     WHERE c.relname = 'booking_requests'
),
old_triggers AS (
    SELECT t.oid, t.tgname, t.tgfoid, t.tgenabled,
           CASE WHEN p.prosrc ~* 'net"?\s*\.\s*"?http_post' THEN 'calls net.http_post'
                ELSE 'calls net.http_post through ' ||
                     (SELECT string_agg(o.proname || '()', ', ' ORDER BY o.proname) FROM outbound o
                       WHERE o.oid <> p.oid AND p.prosrc ~* ('\m' || o.proname || '\M'))
           END AS why
      FROM pg_trigger t
      JOIN bookings b ON t.tgrelid = b.oid
      JOIN pg_proc p ON p.oid = t.tgfoid
     WHERE NOT t.tgisinternal
       AND (p.prosrc ~* 'net"?\s*\.\s*"?http_post'
            OR EXISTS (SELECT 1 FROM outbound o
                        WHERE o.oid <> p.oid AND p.prosrc ~* ('\m' || o.proname || '\M')))
),
old_functions AS (
    SELECT p.oid, 'trigger function of an old trigger' AS why
      FROM pg_proc p JOIN here ON p.pronamespace = here.oid
     WHERE p.oid IN (SELECT tgfoid FROM old_triggers)
       AND NOT EXISTS (SELECT 1 FROM pg_trigger t
                        WHERE t.tgfoid = p.oid AND t.oid NOT IN (SELECT oid FROM old_triggers))
    UNION
    SELECT p.oid, 'the old retry function'
      FROM pg_proc p JOIN here ON p.pronamespace = here.oid
     WHERE p.proname = 'retry_failed_webhooks'
       AND (p.prosrc ~* 'net"?\s*\.\s*"?http_post' OR p.prosrc !~* '\mwebhook_deliveries\M')
),
old_views AS (
    SELECT c.oid, c.relname, c.relkind, c.relacl, c.relowner, c.reloptions
      FROM pg_class c JOIN here ON c.relnamespace = here.oid
     WHERE c.relkind IN ('v', 'm')
       AND c.relname IN ('webhook_failures', 'webhook_health_stats', 'webhook_error_patterns')
       AND NOT EXISTS (
           SELECT 1
             FROM pg_rewrite r
             JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
             JOIN pg_class dep ON dep.oid = d.refobjid
            WHERE r.ev_class = c.oid
              AND dep.relnamespace = here.oid
              AND dep.relname IN ('webhook_deliveries', 'webhook_attempts'))
),
-- How many other old views each old view reads (directly or not): those reading more go first.
view_reads (viewer, read) AS (
    SELECT DISTINCT r.ev_class, d.refobjid
      FROM pg_rewrite r
      JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
     WHERE r.ev_class IN (SELECT oid FROM old_views)
       AND d.refobjid IN (SELECT oid FROM old_views)
       AND d.refobjid <> r.ev_class
    UNION
    SELECT vr.viewer, d.refobjid
      FROM view_reads vr
      JOIN pg_rewrite r ON r.ev_class = vr.read
      JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
     WHERE d.refobjid IN (SELECT oid FROM old_views)
       AND d.refobjid <> r.ev_class
)
SELECT 'trigger' AS kind,
       format('trigger %I on booking_requests (%s, function %s)',
              t.tgname, t.why, t.tgfoid::regprocedure) AS what,
       format('DROP TRIGGER %I ON %I.booking_requests', t.tgname, here.nspname) AS statement,
       pg_get_triggerdef(t.oid) || ';'
       || CASE t.tgenabled
              WHEN 'D' THEN format(E'\nALTER TABLE booking_requests DISABLE TRIGGER %I;', t.tgname)
              WHEN 'R' THEN format(E'\nALTER TABLE booking_requests ENABLE REPLICA TRIGGER %I;', t.tgname)
              WHEN 'A' THEN format(E'\nALTER TABLE booking_requests ENABLE ALWAYS TRIGGER %I;', t.tgname)
              ELSE '' END AS restore,
       1 AS step, t.tgname::text AS sort_key
  FROM old_triggers t, here
UNION ALL
SELECT 'function',
       format('function %s (%s)', p.oid::regprocedure, f.why),
       format('DROP FUNCTION %I.%I(%s)', here.nspname, p.proname, pg_get_function_identity_arguments(p.oid)),
       pg_get_functiondef(p.oid) || ';'
       || CASE WHEN p.proacl IS NULL THEN ''
               ELSE format(E'\nREVOKE ALL ON FUNCTION %I.%I(%s) FROM PUBLIC;', here.nspname, p.proname,
                           pg_get_function_identity_arguments(p.oid))
                    || coalesce((SELECT string_agg(format(E'\nGRANT %s ON FUNCTION %I.%I(%s) TO %s;',
                                                          a.privilege_type, here.nspname, p.proname,
                                                          pg_get_function_identity_arguments(p.oid),
                                                          CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                                                               ELSE quote_ident(pg_get_userbyid(a.grantee)) END),
                                               '' ORDER BY a.grantee)
                                   FROM aclexplode(p.proacl) a
                                  WHERE a.grantee <> p.proowner), '')
          END,
       2, p.oid::regprocedure::text
  FROM old_functions f
  JOIN pg_proc p ON p.oid = f.oid, here
UNION ALL
SELECT 'view',
       format('%s %I (not ours: it does not read webhook_deliveries)',
              CASE v.relkind WHEN 'm' THEN 'materialized view' ELSE 'view' END, v.relname),
       format('DROP %s %I.%I', CASE v.relkind WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'VIEW' END,
              here.nspname, v.relname),
       format(E'DROP VIEW IF EXISTS %I;\nCREATE %s %I%s AS\n%s',
              v.relname, CASE v.relkind WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'VIEW' END, v.relname,
              CASE WHEN v.reloptions IS NULL THEN ''
                   ELSE ' WITH (' || array_to_string(v.reloptions, ', ') || ')' END,
              pg_get_viewdef(v.oid))
       || coalesce((SELECT string_agg(format(E'\nGRANT %s ON %I TO %s;', a.privilege_type, v.relname,
                                             CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                                                  ELSE quote_ident(pg_get_userbyid(a.grantee)) END),
                                      '' ORDER BY a.grantee, a.privilege_type)
                      FROM aclexplode(v.relacl) a
                     WHERE a.grantee <> v.relowner), ''),
       3, lpad((1000 - (SELECT count(*) FROM view_reads vr WHERE vr.viewer = v.oid))::text, 4, '0') || v.relname
  FROM old_views v, here
 ORDER BY step, sort_key
