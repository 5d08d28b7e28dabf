//! The demo's own database: created fresh next to the user's, dropped at the end, so the
//! demo never reads or writes their data. Also the queries that show the rows, and the one
//! honest trick: moving time forward by moving a delivery's timestamps back.

use std::time::Duration;

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use delivery::DbConfig;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::procs::PATIENCE;

/// A database created for one run.
pub struct DemoDb {
    /// Its name, `webhooks_demo_<random>`.
    pub name: String,
    /// A URL for it: the server's URL with the database replaced.
    pub url: String,
    /// The server's URL, as given.
    pub server_url: String,
    server: deadpool_postgres::Pool,
    /// Connections into the demo database.
    pub pool: deadpool_postgres::Pool,
}

impl DemoDb {
    /// Creates `webhooks_demo_<random>` on the server of `server_url` (TLS as `sslmode` says).
    pub async fn create(server_url: &str) -> anyhow::Result<DemoDb> {
        let server = pool(server_url, 1)?;
        let name = format!(
            "webhooks_demo_{}",
            &Uuid::new_v4().simple().to_string()[..8]
        );
        let admin = server
            .get()
            .await
            .context("cannot connect to Postgres: run `make db`, or set DATABASE_URL")?;
        // `name` is generated above from hex digits: safe to splice into the statement.
        if let Err(err) = admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
        {
            bail!(
                "cannot create a database for the demo ({}); it needs a role allowed to \
                 CREATE DATABASE — unset DATABASE_URL to use the local server of `make db`",
                err.as_db_error()
                    .map_or_else(|| err.to_string(), |e| e.message().to_owned())
            );
        }
        let url = with_database(server_url, &name)?;
        let pool = pool(&url, 2)?;
        Ok(DemoDb {
            name,
            url,
            server_url: server_url.to_owned(),
            server,
            pool,
        })
    }

    /// Drops the database; connections still open to it (only ours) are closed first.
    pub async fn drop_database(self) -> anyhow::Result<()> {
        self.pool.close();
        let admin = self.server.get().await?;
        admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await?;
        Ok(())
    }

    /// Inserts a booking as the app would; returns its id.
    pub async fn book(&self, b: &Booking) -> anyhow::Result<Uuid> {
        let db = self.pool.get().await?;
        let row = db
            .query_one(
                "INSERT INTO booking_requests (student_name, student_email, tutor_name, tutor_email, subject)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[&b.student, &b.student_email, &b.tutor, &b.tutor_email, &b.subject],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Changes a booking's status as the app would.
    pub async fn set_status(&self, booking: Uuid, status: &str) -> anyhow::Result<()> {
        let db = self.pool.get().await?;
        db.execute(
            "UPDATE booking_requests SET status = $2 WHERE id = $1",
            &[&booking, &status],
        )
        .await?;
        Ok(())
    }

    /// True when the booking row exists (it committed).
    pub async fn booking_exists(&self, booking: Uuid) -> anyhow::Result<bool> {
        let db = self.pool.get().await?;
        let row = db
            .query_one(
                "SELECT count(*) FROM booking_requests WHERE id = $1",
                &[&booking],
            )
            .await?;
        Ok(row.get::<_, i64>(0) == 1)
    }

    /// The delivery of `kind` for `booking`.
    pub async fn delivery(&self, booking: Uuid, kind: &str) -> anyhow::Result<Delivery> {
        let db = self.pool.get().await?;
        let row = db
            .query_opt(
                "SELECT id, status, attempt_count, max_retries, last_status_code, last_error,
                        next_retry_at, last_attempt_at, superseded_by
                   FROM webhook_deliveries WHERE booking_id = $1 AND webhook_type = $2",
                &[&booking, &kind],
            )
            .await?;
        match row {
            Some(row) => Delivery::from_row(&row),
            None => bail!("no {kind} delivery was captured for booking {booking}"),
        }
    }

    /// Waits until the delivery of `kind` for `booking` has left `from` (the dispatcher or a
    /// sweep has recorded an attempt).
    pub async fn delivery_after(
        &self,
        booking: Uuid,
        kind: &str,
        from: &str,
    ) -> anyhow::Result<Delivery> {
        let started = tokio::time::Instant::now();
        loop {
            let delivery = self.delivery(booking, kind).await?;
            if delivery.status != from {
                return Ok(delivery);
            }
            if started.elapsed() > PATIENCE {
                bail!(
                    "the {kind} delivery was still {from} after {PATIENCE:?}; see target/demo/dispatcher.log"
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await; // polling the outcome
        }
    }

    /// A delivery's attempts, in order.
    pub async fn attempts(&self, delivery: Uuid) -> anyhow::Result<Vec<Attempt>> {
        let db = self.pool.get().await?;
        let rows = db
            .query(
                "SELECT attempt, started_at, status_code, error_kind, error
                   FROM webhook_attempts WHERE delivery_id = $1 ORDER BY attempt, id",
                &[&delivery],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| Attempt {
                attempt: r.get(0),
                started_at: r.get(1),
                status_code: r.get(2),
                error_kind: r.get(3),
                error: r.get(4),
            })
            .collect())
    }

    /// Moves time forward by `by` for these deliveries, the only way that needs no waiting
    /// and no change to the engine: every timestamp on their rows (and their attempts') moves
    /// back by `by`. To the sweep, which reads the real clock, that is `by` passing.
    /// The columns are read from the catalog, so timestamps added by later migrations move too.
    pub async fn travel(&self, deliveries: &[Uuid], by: Duration) -> anyhow::Result<()> {
        let by = chrono::Duration::from_std(by)?;
        let db = self.pool.get().await?;
        for (table, key) in [
            ("webhook_deliveries", "id"),
            ("webhook_attempts", "delivery_id"),
        ] {
            let columns = db
                .query(
                    "SELECT column_name::text FROM information_schema.columns
                      WHERE table_schema = current_schema() AND table_name = $1
                        AND data_type = 'timestamp with time zone'",
                    &[&table],
                )
                .await?;
            let sets: Vec<String> = columns
                .iter()
                .map(|r| {
                    let column = quote(r.get(0));
                    format!("{column} = {column} - $2::text::interval")
                })
                .collect();
            if sets.is_empty() {
                continue;
            }
            // Identifiers come from the catalog and are quoted; values are parameters.
            let statement = format!(
                "UPDATE {table} SET {} WHERE {key} = ANY($1)",
                sets.join(", ")
            );
            db.execute(&statement, &[&deliveries, &interval(by)])
                .await
                .with_context(|| format!("moving the timestamps of {table}"))?;
        }
        Ok(())
    }

    /// Moves time forward by `by` for the notification service's health too (the breaker's
    /// cool-down, its failure run, the pace): every timestamp of `webhook_endpoints` moves
    /// back, as [`DemoDb::travel`] does for deliveries.
    pub async fn travel_endpoints(&self, by: Duration) -> anyhow::Result<()> {
        let by = interval(chrono::Duration::from_std(by)?);
        let db = self.pool.get().await?;
        db.execute(
            "UPDATE webhook_endpoints
                SET failing_since = failing_since - $1::text::interval,
                    opened_at     = opened_at - $1::text::interval,
                    probe_at      = probe_at - $1::text::interval,
                    probe_until   = probe_until - $1::text::interval,
                    closed_at     = closed_at - $1::text::interval,
                    paused_until  = paused_until - $1::text::interval,
                    updated_at    = updated_at - $1::text::interval",
            &[&by],
        )
        .await
        .context("moving the timestamps of webhook_endpoints")?;
        Ok(())
    }

    /// Inserts `n` bookings with tutor `tutor` in one statement; returns their `new_request`
    /// deliveries' ids.
    pub async fn book_many(&self, n: i64, tutor: &str) -> anyhow::Result<Vec<Uuid>> {
        let db = self.pool.get().await?;
        let rows = db
            .query(
                "WITH b AS (
                     INSERT INTO booking_requests (student_name, tutor_name, tutor_email, subject)
                     SELECT 'Student ' || i, $2, lower($2) || '@example.com', 'Physics'
                       FROM generate_series(1, $1::bigint) i
                     RETURNING id)
                 SELECT id FROM b",
                &[&n, &tutor],
            )
            .await?;
        let bookings: Vec<Uuid> = rows.iter().map(|r| r.get(0)).collect();
        let rows = db
            .query(
                "SELECT id FROM webhook_deliveries
                  WHERE booking_id = ANY($1) AND webhook_type = 'new_request'",
                &[&bookings],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// A count (the first column of the first row of `sql`, with `ids` as `$1`).
    pub async fn count_of(&self, sql: &str, ids: &[Uuid]) -> anyhow::Result<i64> {
        let db = self.pool.get().await?;
        Ok(db.query_one(sql, &[&ids]).await?.get(0))
    }

    /// Rows of a query with every column rendered as text (for the health views).
    pub async fn text_rows(&self, sql: &str) -> anyhow::Result<Vec<Vec<String>>> {
        let db = self.pool.get().await?;
        let rows = db.simple_query(sql).await?;
        Ok(rows
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).unwrap_or("-").to_owned())
                        .collect(),
                ),
                _ => None,
            })
            .collect())
    }
}

/// A pool of `size` connections to `url` (TLS as its `sslmode` says, like the engine's).
fn pool(url: &str, size: usize) -> anyhow::Result<deadpool_postgres::Pool> {
    let mut config = DbConfig::new(url);
    config.pool_size = size;
    Ok(config.pool()?)
}

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// An interval literal Postgres parses: whole seconds are enough here.
fn interval(by: chrono::Duration) -> String {
    format!("{} seconds", by.num_seconds())
}

/// `url` pointing at database `name`: the path of a URL, or `dbname=` of a key=value string.
fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let mut parsed = reqwest::Url::parse(url)
            .map_err(|_| anyhow::anyhow!("DATABASE_URL is not a valid URL"))?;
        parsed.set_path(&format!("/{name}"));
        Ok(parsed.to_string())
    } else {
        Ok(format!("{url} dbname={name}"))
    }
}

/// A booking to insert.
pub struct Booking {
    pub student: &'static str,
    pub student_email: Option<&'static str>,
    pub tutor: &'static str,
    pub tutor_email: Option<&'static str>,
    pub subject: &'static str,
}

impl Booking {
    /// The statement as one would type it.
    pub fn sql(&self) -> String {
        let lit = |v: Option<&str>| v.map_or_else(|| "NULL".to_owned(), |v| format!("'{v}'"));
        format!(
            "INSERT INTO booking_requests (student_name, student_email, tutor_name, tutor_email, subject)\n  VALUES ('{}', {}, '{}', {}, '{}');",
            self.student,
            lit(self.student_email),
            self.tutor,
            lit(self.tutor_email),
            self.subject
        )
    }
}

/// The columns of `webhook_deliveries` the story shows.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: Uuid,
    pub status: String,
    pub attempt_count: i32,
    pub max_retries: i32,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub next_retry_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub superseded_by: Option<Uuid>,
}

impl Delivery {
    fn from_row(r: &Row) -> anyhow::Result<Self> {
        Ok(Delivery {
            id: r.try_get(0)?,
            status: r.try_get(1)?,
            attempt_count: r.try_get(2)?,
            max_retries: r.try_get(3)?,
            last_status_code: r.try_get(4)?,
            last_error: r.try_get(5)?,
            next_retry_at: r.try_get(6)?,
            last_attempt_at: r.try_get(7)?,
            superseded_by: r.try_get(8)?,
        })
    }
}

/// A `webhook_attempts` row.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub error_kind: Option<String>,
    pub error: Option<String>,
}

/// `02:10:05Z`: times of one short run; the date adds nothing.
pub fn clock(at: DateTime<Utc>) -> String {
    at.format("%H:%M:%SZ").to_string()
}
