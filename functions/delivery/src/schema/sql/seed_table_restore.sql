-- For the rollback script: give the history table its name back, with the grants to the API
-- roles and PUBLIC that adoption revokes, and its comment. Run before the rename.
SELECT E'ALTER TABLE webhook_failures_seed RENAME TO webhook_failures;'
       || coalesce((SELECT string_agg(format(E'\nGRANT %s ON webhook_failures TO %s;', a.privilege_type,
                                             CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                                                  ELSE quote_ident(pg_get_userbyid(a.grantee)) END),
                                      '' ORDER BY a.grantee, a.privilege_type)
                      FROM aclexplode(c.relacl) a
                     WHERE a.grantee = 0
                        OR pg_get_userbyid(a.grantee) IN ('anon', 'authenticated')), '')
       || format(E'\nCOMMENT ON TABLE webhook_failures IS %L;', obj_description(c.oid, 'pg_class'))
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = current_schema()
   AND c.relname = 'webhook_failures'
