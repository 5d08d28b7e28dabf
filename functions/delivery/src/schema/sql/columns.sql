-- Does table $1 of the current schema have the columns a caller relies on? $2 are the column
-- names, $3 their kinds, $4 the labels an enum column must have (comma-separated, '' for none):
--   uuid          uuid
--   text          text, varchar, char or citext
--   text_or_enum  one of those, or an enum having the labels in $4
--   integer       smallint, integer or bigint
--   timestamp     timestamptz or timestamp
-- A domain counts as its base type. One row per problem: (column, found, needed), the column
-- NULL when the relation itself is not a table. No rows when the table is absent or fits.
WITH RECURSIVE target AS (
    SELECT c.oid, c.relkind
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = current_schema()
       AND c.relname = $1
),
need AS (
    SELECT *
      FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS t (col, kind, labels, ord)
),
col AS (
    SELECT need.*, a.atttypid, format_type(a.atttypid, a.atttypmod) AS declared
      FROM need
     CROSS JOIN target
      LEFT JOIN pg_attribute a
             ON a.attrelid = target.oid AND a.attname = need.col
            AND a.attnum > 0 AND NOT a.attisdropped
     WHERE target.relkind IN ('r', 'p')
),
base (col, typ, depth) AS (
    SELECT col, atttypid, 0 FROM col WHERE atttypid IS NOT NULL
    UNION ALL
    SELECT base.col, t.typbasetype, base.depth + 1
      FROM base
      JOIN pg_type t ON t.oid = base.typ
     WHERE t.typtype = 'd'
),
resolved AS (
    SELECT DISTINCT ON (col) col, typ FROM base ORDER BY col, depth DESC
),
judged AS (
    SELECT col.*, t.typname, t.typtype,
           coalesce(string_to_array(nullif(col.labels, ''), ','), '{}') AS wanted,
           ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = r.typ) AS have
      FROM col
      LEFT JOIN resolved r USING (col)
      LEFT JOIN pg_type t ON t.oid = r.typ
),
verdict AS (
    SELECT judged.*,
           typname IN ('text', 'varchar', 'bpchar', 'citext') AS textual,
           ARRAY(SELECT w FROM unnest(wanted) w WHERE w <> ALL (have)) AS missing_labels
      FROM judged
)
SELECT NULL::text AS col,
       format('is %s', CASE relkind WHEN 'v' THEN 'a view' WHEN 'm' THEN 'a materialized view'
                                    WHEN 'f' THEN 'a foreign table' ELSE 'not a table' END) AS found,
       'an ordinary or partitioned table' AS needed,
       0::bigint AS ord
  FROM target
 WHERE relkind NOT IN ('r', 'p')
UNION ALL
SELECT col,
       CASE WHEN atttypid IS NULL THEN 'missing'
            WHEN typtype = 'e' AND kind = 'text_or_enum'
                THEN format('%s, an enum without the label(s) %s', declared, array_to_string(missing_labels, ', '))
            ELSE declared END,
       CASE kind
            WHEN 'uuid' THEN 'uuid'
            WHEN 'text' THEN 'text, varchar, char or citext'
            WHEN 'text_or_enum' THEN 'text, varchar, char, citext'
                 || CASE WHEN labels = '' THEN ' or an enum'
                         ELSE ' or an enum with the labels ' || replace(labels, ',', ', ') END
            WHEN 'integer' THEN 'smallint, integer or bigint'
            WHEN 'timestamp' THEN 'timestamptz or timestamp'
       END,
       ord
  FROM verdict
 WHERE atttypid IS NULL
    OR NOT coalesce(CASE kind
            WHEN 'uuid' THEN typname = 'uuid'
            WHEN 'text' THEN textual
            WHEN 'text_or_enum' THEN textual OR (typtype = 'e' AND cardinality(missing_labels) = 0)
            WHEN 'integer' THEN typname IN ('int2', 'int4', 'int8')
            WHEN 'timestamp' THEN typname IN ('timestamptz', 'timestamp')
       END, false)
 ORDER BY ord
