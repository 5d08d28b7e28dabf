//! `webhooks doctor`'s catalog reads: triggers, functions, table and schema privileges, the
//! NOTIFY switch, refinery's history.

/// Doctor: the user triggers on table `$1` (resolved through `search_path`; no rows if the
/// table does not exist), with their enabled state (`O` origin, `A` always, `R` replica only,
/// `D` disabled) and function.
pub const TABLE_TRIGGERS: &str = "
SELECT t.tgname::text, t.tgenabled::text, p.proname::text
  FROM pg_trigger t
  JOIN pg_proc p ON p.oid = t.tgfoid
 WHERE t.tgrelid = to_regclass($1)
   AND NOT t.tgisinternal
 ORDER BY t.tgname";

/// Doctor: the functions whose signatures are in `$1` (e.g. `notify_new_booking()`): whether
/// SECURITY DEFINER, owner, whether the owner may bypass row level security, their settings
/// (the pinned `search_path`), and who besides the owner may EXECUTE them (`PUBLIC` included).
/// A signature that does not exist comes back with NULL columns.
pub const FUNCTIONS: &str = "
SELECT sig.signature, p.prosecdef, pg_get_userbyid(p.proowner)::text,
       (SELECT r.rolsuper OR r.rolbypassrls FROM pg_roles r WHERE r.oid = p.proowner),
       coalesce(p.proconfig, '{}'::text[]),
       ARRAY(SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END
               FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
              WHERE a.privilege_type = 'EXECUTE'
                AND a.grantee <> p.proowner)
  FROM unnest($1::text[]) AS sig(signature)
  LEFT JOIN pg_proc p ON p.oid = to_regprocedure(sig.signature)
 ORDER BY sig.signature";

/// Doctor: for each table in `$1`, whether it exists, its owner, whether row level security
/// is on, and which of Supabase's API roles (`anon`, `authenticated`, where they exist) or
/// PUBLIC hold any privilege on it.
pub const TABLE_SECURITY: &str = "
SELECT name, c.oid IS NOT NULL, pg_get_userbyid(c.relowner)::text,
       coalesce(c.relrowsecurity, false),
       ARRAY(SELECT r.rolname::text
               FROM pg_roles r
              WHERE r.rolname IN ('anon', 'authenticated')
                AND c.oid IS NOT NULL
                AND has_table_privilege(r.oid, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')
             UNION ALL
             SELECT 'PUBLIC'
              WHERE EXISTS (SELECT 1 FROM aclexplode(c.relacl) a WHERE a.grantee = 0))
  FROM unnest($1::text[]) AS t(name)
  LEFT JOIN pg_class c ON c.oid = to_regclass(t.name)
 ORDER BY name";

/// Doctor: the capture NOTIFY switch as this connection sees it (database and role settings
/// apply), how many other sessions of this database LISTEN on the capture channel, how full
/// the NOTIFY queue is (0..1), and whether a listener is polling now (its flag raised, V18;
/// NULL where the flag is missing or this role may not read it).
pub const NOTIFY_POSTURE: &str = "
SELECT coalesce(nullif(current_setting('webhooks.notify', true), ''), 'on'),
       (SELECT count(*)
          FROM pg_stat_activity
         WHERE datname = current_database()
           AND pid <> pg_backend_pid()
           AND query ~* '^\\s*LISTEN\\s+\"?webhook_delivery\"?\\s*;?\\s*$'),
       pg_notification_queue_usage(),
       CASE WHEN (SELECT relkind FROM pg_class
                   WHERE oid = to_regclass('webhook_listener_awake_until')) = 'S'
            THEN CASE WHEN has_sequence_privilege(to_regclass('webhook_listener_awake_until'),
                                                  'SELECT')
                      THEN coalesce(pg_sequence_last_value(
                                        to_regclass('webhook_listener_awake_until')), 0)
                           > (extract(epoch FROM clock_timestamp()) * 1000)::bigint
                 END
       END";

/// Doctor: the schema the connection works in, and which of PUBLIC and Supabase's API roles
/// (`anon`, `authenticated`, where they exist) may CREATE objects in it.
pub const SCHEMA_CREATE: &str = "
SELECT current_schema()::text,
       ARRAY(SELECT 'PUBLIC'
              WHERE EXISTS (SELECT 1
                              FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
                             WHERE n.nspname = current_schema()
                               AND a.grantee = 0
                               AND a.privilege_type = 'CREATE')
             UNION ALL
             SELECT r.rolname::text
               FROM pg_roles r
              WHERE r.rolname IN ('anon', 'authenticated')
                AND has_schema_privilege(r.oid, current_schema(), 'CREATE'))";

/// Doctor: whether refinery's history table exists where migrations run (first schema of the
/// `search_path`).
pub const MIGRATION_TABLE: &str = "
SELECT to_regclass('refinery_schema_history') IS NOT NULL";

/// Doctor: the migrations applied (refinery's history), by version, with refinery's checksum.
pub const APPLIED_MIGRATIONS: &str = "
SELECT version::int4, name::text, checksum::text FROM refinery_schema_history ORDER BY version";
