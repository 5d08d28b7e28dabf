//! What the `webhooks migrate` tests need beyond a schema: a database of its own (pg_net's
//! `net` and pg_cron's `cron` schemas exist once per database, so stubs of them cannot share
//! one), the real `webhooks` binary, and a snapshot of catalog and data to prove that a
//! refused, failed or dry run changed nothing.

use std::path::PathBuf;
use std::process::Command;

use tokio_postgres::Client;
use uuid::Uuid;

use super::db::{base_url, clean_up, connect, url_with_schema, with_database};

/// The schema the app lives in inside a [`ScratchDb`]: not `public`, so nothing in our code
/// may assume it.
pub const APP_SCHEMA: &str = "app";

/// A database of its own with an empty schema [`APP_SCHEMA`]; dropped (with its connections,
/// all of them this test's) when the value is dropped.
pub struct ScratchDb {
    /// The database's name.
    pub name: String,
    /// URL into the database with `search_path` = [`APP_SCHEMA`].
    pub url: String,
}

impl ScratchDb {
    /// Creates the database and the schema.
    pub async fn new() -> ScratchDb {
        let name = format!("it_{}", Uuid::new_v4().simple());
        connect(&base_url())
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create database");
        let db = ScratchDb {
            url: url_with_schema(&with_database(&base_url(), &name), APP_SCHEMA),
            name,
        };
        db.client()
            .await
            .batch_execute(&format!("CREATE SCHEMA {APP_SCHEMA}"))
            .await
            .expect("create schema");
        db
    }

    /// A database running the old pg_net system (`tests/it/fixtures/seed_system.sql`).
    pub async fn with_seed_system() -> ScratchDb {
        let db = ScratchDb::new().await;
        db.client()
            .await
            .batch_execute(SEED_SYSTEM)
            .await
            .expect("fixture seed_system.sql loads");
        db
    }

    /// A new connection with `search_path` = [`APP_SCHEMA`].
    pub async fn client(&self) -> Client {
        connect(&self.url).await
    }

    /// Runs a query returning one i64.
    pub async fn count(&self, sql: &str) -> i64 {
        self.client()
            .await
            .query_one(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
            .get(0)
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        // FORCE ends only connections to this database: this test's own.
        clean_up(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

/// The old system, as the seed describes it (see the file's header).
pub const SEED_SYSTEM: &str = include_str!("../fixtures/seed_system.sql");

/// What a run of the `webhooks` binary did.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
}

/// The `webhooks` binary `make test` builds, next to this test binary's `deps/` directory
/// (cargo builds both into the same profile directory).
pub fn webhooks_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>")
        .join("webhooks");
    assert!(
        path.exists(),
        "{} not found: `make test` builds it (cargo build -p delivery --bin webhooks)",
        path.display()
    );
    path
}

/// Runs the `webhooks` binary ([`webhooks_binary`]) with `args` and
/// `DATABASE_URL=database_url`.
pub async fn webhooks(database_url: &str, args: &[&str]) -> Run {
    let mut command = Command::new(webhooks_binary());
    command
        .args(args)
        .env("DATABASE_URL", database_url)
        .env_remove("WEBHOOK_DB_CA_FILE");
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("join")
        .expect("run webhooks");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Catalog of `schemas`: every relation with its kind, owner-independent options, grants,
/// row security and comment; columns; constraints; indexes; triggers with their state;
/// functions with a digest of their definition, grants and settings; view definitions;
/// sequence positions; and the role settings of the database.
const CATALOG: &str = "
SELECT 'relation ' || n.nspname || '.' || c.relname || ' ' || c.relkind::text || ' acl=' || coalesce(c.relacl::text, '-')
       || ' opts=' || coalesce(c.reloptions::text, '-') || ' rls=' || c.relrowsecurity
       || ' comment=' || coalesce(obj_description(c.oid, 'pg_class'), '-')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = ANY($1)
UNION ALL
SELECT 'column ' || n.nspname || '.' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || ' notnull=' || a.attnotnull || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-')
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE n.nspname = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint ' || n.nspname || '.' || c.relname || '.' || k.conname || ' ' || pg_get_constraintdef(k.oid)
  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = ANY($1)
UNION ALL
SELECT 'index ' || pg_get_indexdef(i.indexrelid)
  FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = ANY($1)
UNION ALL
SELECT 'trigger ' || pg_get_triggerdef(t.oid) || ' enabled=' || t.tgenabled::text
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = ANY($1) AND NOT t.tgisinternal
UNION ALL
SELECT 'function ' || p.oid::regprocedure::text || ' def=' || md5(pg_get_functiondef(p.oid))
       || ' acl=' || coalesce(p.proacl::text, '-') || ' config=' || coalesce(p.proconfig::text, '-')
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = ANY($1) AND p.prokind IN ('f', 'p')
UNION ALL
SELECT 'view ' || schemaname || '.' || viewname || ' ' || definition FROM pg_views WHERE schemaname = ANY($1)
UNION ALL
SELECT 'sequence ' || schemaname || '.' || sequencename || ' ' || coalesce(last_value::text, '-')
  FROM pg_sequences WHERE schemaname = ANY($1)
UNION ALL
SELECT 'setting ' || array_to_string(s.setconfig, ',')
  FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
 WHERE d.datname = current_database()
";

/// Lines describing the catalog of `schemas` and the data of every table in them (each
/// table's rows as text, sorted), for comparing before and after.
pub async fn snapshot(client: &Client, schemas: &[&str]) -> Vec<String> {
    let schemas: Vec<String> = schemas.iter().map(|s| (*s).to_owned()).collect();
    let mut lines: Vec<String> = client
        .query(CATALOG, &[&schemas])
        .await
        .expect("catalog snapshot")
        .iter()
        .map(|row| row.get(0))
        .collect();
    let tables = client
        .query(
            "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables
              WHERE schemaname = ANY($1) ORDER BY 1",
            &[&schemas],
        )
        .await
        .expect("tables");
    for table in tables {
        let table: String = table.get(0);
        let rows: Vec<String> = client
            .query(&format!("SELECT t::text FROM {table} t ORDER BY 1"), &[])
            .await
            .expect("table rows")
            .iter()
            .map(|row| format!("row {table} {}", row.get::<_, String>(0)))
            .collect();
        lines.extend(rows);
    }
    lines.sort();
    lines
}

/// Asserts two snapshots are equal, showing only the lines that differ.
pub fn assert_same(before: &[String], after: &[String], what: &str) {
    let gone: Vec<_> = before.iter().filter(|l| !after.contains(l)).collect();
    let new: Vec<_> = after.iter().filter(|l| !before.contains(l)).collect();
    assert!(
        gone.is_empty() && new.is_empty() && before.len() == after.len(),
        "{what} changed the database:\n  gone: {gone:#?}\n  new: {new:#?}"
    );
}
