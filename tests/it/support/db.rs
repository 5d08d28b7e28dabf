//! A fresh Postgres schema per test (River's `riverdbtest` approach): tests run in parallel
//! without seeing each other's rows, against the real server.

use std::time::Duration;

use delivery::DbConfig;
use futures::StreamExt as _;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, NoTls};
use uuid::Uuid;

/// The server tests use: `DATABASE_URL`, or the local one `make db` provides.
pub fn base_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// `url` with `search_path` set to `schema` for every connection made from it.
pub fn url_with_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

/// Opens a connection whose task is spawned; panics with a clear message if the server is down.
pub async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("cannot connect to Postgres: run `make db` or set DATABASE_URL");
    tokio::spawn(connection);
    client
}

/// A schema of its own, migrated; dropped when the value is dropped.
pub struct TestDb {
    /// The schema's name.
    pub schema: String,
    /// Connection URL with `search_path` set to the schema.
    pub url: String,
    /// A pool on `url`.
    pub pool: deadpool_postgres::Pool,
}

impl TestDb {
    /// Creates the schema and applies the migrations with refinery, like `webhooks migrate`.
    pub async fn new() -> TestDb {
        let db = TestDb::unmigrated().await;
        let applied = delivery::schema::migrate_quietly(&db.pool)
            .await
            .expect("migrations apply");
        assert_eq!(
            applied.len(),
            migration_files().len(),
            "every migration applied: {applied:?}"
        );
        db
    }

    /// An empty schema of its own: nothing migrated (yet).
    pub async fn unmigrated() -> TestDb {
        let schema = format!("it_{}", Uuid::new_v4().simple());
        let admin = connect(&base_url()).await;
        admin
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .expect("create schema");
        let url = url_with_schema(&base_url(), &schema);
        let mut config = DbConfig::new(url.clone());
        config.pool_size = 16;
        let pool = config.pool().expect("pool");
        TestDb { schema, url, pool }
    }

    /// A new connection into the schema (for explicit transactions and LISTEN).
    pub async fn client(&self) -> Client {
        connect(&self.url).await
    }

    /// Runs a query returning one i64 (e.g. a count).
    pub async fn count(&self, sql: &str) -> i64 {
        let client = self.pool.get().await.expect("pooled connection");
        client.query_one(sql, &[]).await.expect(sql).get(0)
    }

    /// Waits until the server has no session named `application_name` left. A client that
    /// was killed leaves its backends running until each finishes its statement (committing
    /// or rolling back) and notices the closed socket; only then are the rows final. Polls
    /// the server; panics after `limit` (a safety net, not a timing assumption).
    pub async fn wait_for_no_sessions(&self, application_name: &str, limit: Duration) {
        let client = self.pool.get().await.expect("pooled connection");
        let waiting = async {
            loop {
                let left: i64 = client
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                        &[&application_name],
                    )
                    .await
                    .expect("pg_stat_activity")
                    .get(0);
                if left == 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        if tokio::time::timeout(limit, waiting).await.is_err() {
            panic!("sessions named {application_name} still open after {limit:?}");
        }
    }

    /// Inserts a booking and returns its id.
    pub async fn insert_booking(
        &self,
        tutor_email: Option<&str>,
        student_email: Option<&str>,
    ) -> Uuid {
        let client = self.pool.get().await.expect("pooled connection");
        client
            .query_one(
                "INSERT INTO booking_requests (tutor_email, student_email, subject) VALUES ($1, $2, 'Maths') RETURNING id",
                &[&tutor_email, &student_email],
            )
            .await
            .expect("insert booking")
            .get(0)
    }

    /// The id of the only delivery of `booking_id` with `webhook_type`.
    pub async fn delivery_id(&self, booking_id: Uuid, webhook_type: &str) -> Uuid {
        let client = self.pool.get().await.expect("pooled connection");
        client
            .query_one(
                "SELECT id FROM webhook_deliveries WHERE booking_id = $1 AND webhook_type = $2",
                &[&booking_id, &webhook_type],
            )
            .await
            .expect("exactly one delivery")
            .get(0)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        clean_up(format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
    }
}

/// Runs `statement` on the shared server from a thread with a runtime of its own: Drop is
/// synchronous and the test's runtime may be shutting down. A failing test leaves nothing
/// behind either way.
pub fn clean_up(statement: String) {
    let _ = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            if let Ok((client, connection)) = tokio_postgres::connect(&base_url(), NoTls).await {
                tokio::spawn(connection);
                let _ = client.batch_execute(&statement).await;
            }
        });
    })
    .join();
}

/// The migration files, in order.
pub fn migration_files() -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("migrations dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort_by_key(|p| {
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        name.trim_start_matches('V')
            .split("__")
            .next()
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(u32::MAX)
    });
    files
}

/// A LISTEN connection: payloads arrive on `rx`.
pub struct Listener {
    _client: Client,
    /// Notification payloads on the channel, in order.
    pub rx: mpsc::UnboundedReceiver<String>,
}

impl Listener {
    /// LISTENs on `channel` through a new connection to `url`.
    pub async fn start(url: &str, channel: &str) -> Listener {
        let (client, mut connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(Ok(message)) = messages.next().await {
                if let AsyncMessage::Notification(n) = message {
                    let _ = tx.send(n.payload().to_owned());
                }
            }
        });
        client
            .batch_execute(&format!("LISTEN {channel}"))
            .await
            .expect("listen");
        Listener {
            _client: client,
            rx,
        }
    }

    /// The next payload, or `None` if none arrives within `limit` (a safety net, not a wait).
    pub async fn next(&mut self, limit: Duration) -> Option<String> {
        tokio::time::timeout(limit, self.rx.recv())
            .await
            .ok()
            .flatten()
    }
}

/// A database of its own on the shared server (for connection paths that cannot set a
/// `search_path` per connection, such as a transaction pooler), migrated into `public`;
/// dropped with its connections (all of them ours) when the value is dropped.
pub struct TestDatabase {
    /// The database's name.
    pub name: String,
}

impl TestDatabase {
    /// Creates and migrates the database.
    pub async fn new() -> TestDatabase {
        let name = format!("it_{}", Uuid::new_v4().simple());
        let admin = connect(&base_url()).await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create database");
        let pool = DbConfig::new(with_database(&base_url(), &name))
            .pool()
            .expect("pool");
        delivery::schema::migrate_quietly(&pool)
            .await
            .expect("migrations apply");
        TestDatabase { name }
    }
}

/// `url` with its database replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
    match query {
        "" => format!("{server}/{database}"),
        query => format!("{server}/{database}?{query}"),
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // FORCE ends the connections to this database, which are all this test's.
        clean_up(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}
