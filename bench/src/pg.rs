//! A fresh database per scenario (`bench_<scenario>_<pid>`), migrated, dropped afterwards.
//!
//! A database rather than a schema: NOTIFY channels are per database, so a `webhooks listen`
//! of the bench never hears another worktree's tests (nor they ours), and pgbench connects
//! with nothing but the URL. Databases left by a bench that died are dropped at the next
//! start (their pid is gone); those of a bench still running elsewhere are left alone.

use std::str::FromStr as _;

use anyhow::Context as _;
use tokio_postgres::{Client, NoTls};

/// The server the bench runs against: `DATABASE_URL` (the Makefile passes `make db`'s).
pub fn base_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Connects to `url`; the connection runs on its own task.
pub async fn connect(url: &str) -> anyhow::Result<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .context("connecting to Postgres (is DATABASE_URL right? `make db` starts one)")?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// `url` with its database name replaced.
fn with_dbname(url: &str, dbname: &str) -> anyhow::Result<String> {
    let mut parsed = reqwest::Url::parse(url).context("DATABASE_URL must be a postgres:// URL")?;
    parsed.set_path(&format!("/{dbname}"));
    Ok(parsed.to_string())
}

/// A scratch database, migrated. Call [`Scratch::drop`] when done.
pub struct Scratch {
    pub name: String,
    pub url: String,
    admin: Client,
}

impl Scratch {
    /// Creates `bench_<scenario>_<pid>` and applies the migrations (the engine's own
    /// `migrate`, as `webhooks migrate` runs it).
    pub async fn create(scenario: &str) -> anyhow::Result<Self> {
        let base = base_url();
        tokio_postgres::Config::from_str(&base).context("DATABASE_URL is not a Postgres URL")?;
        let admin = connect(&with_dbname(&base, "postgres")?).await?;
        drop_abandoned(&admin).await?;
        let name = format!("bench_{scenario}_{}", std::process::id());
        // Two statements, two round trips: neither may run inside a transaction block.
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await?;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .with_context(|| format!("creating database {name}"))?;
        let url = with_dbname(&base, &name)?;
        let pool = delivery::DbConfig::new(url.clone()).pool()?;
        delivery::schema::migrate_quietly(&pool)
            .await
            .with_context(|| format!("migrating {name}"))?;
        Ok(Scratch { name, url, admin })
    }

    /// A new connection to the scratch database.
    pub async fn client(&self) -> anyhow::Result<Client> {
        connect(&self.url).await
    }

    /// Sets a parameter for every later session of this database (`ALTER DATABASE … SET`).
    pub async fn set(&self, name: &str, value: &str) -> anyhow::Result<()> {
        self.admin
            .batch_execute(&format!(
                "ALTER DATABASE {} SET {name} = '{value}'",
                self.name
            ))
            .await?;
        Ok(())
    }

    /// Drops the database (sessions still connected are ended).
    pub async fn drop(self) -> anyhow::Result<()> {
        self.admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await?;
        Ok(())
    }
}

/// Drops `bench_*_<pid>` databases whose process is gone.
async fn drop_abandoned(admin: &Client) -> anyhow::Result<()> {
    let rows = admin
        .query(
            "SELECT datname FROM pg_database WHERE datname ~ '^bench_[a-z]+_[0-9]+$'",
            &[],
        )
        .await?;
    for row in rows {
        let name: String = row.get(0);
        let pid = name.rsplit('_').next().unwrap_or_default();
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await?;
        }
    }
    Ok(())
}

/// Empties the booking and delivery tables (attempts and the rest cascade).
pub async fn truncate(db: &Client) -> anyhow::Result<()> {
    db.batch_execute("TRUNCATE booking_requests, webhook_deliveries CASCADE")
        .await?;
    Ok(())
}

/// Raises `webhooks listen`'s flag (V18) for `secs` and a margin, as a polling listener keeps
/// it raised while bookings stream in: the capture triggers skip their NOTIFY meanwhile.
pub async fn raise_listener_flag(db: &Client, secs: u64) -> anyhow::Result<()> {
    let ahead = i64::try_from(secs.saturating_add(30).saturating_mul(1000))?;
    db.execute(delivery::sql::LISTENER_AWAKE, &[&ahead]).await?;
    Ok(())
}

/// Lowers the flag of [`raise_listener_flag`] (as a listener starting does: whatever it holds).
pub async fn lower_listener_flag(db: &Client) -> anyhow::Result<()> {
    db.execute(delivery::sql::LISTENER_ASLEEP, &[&None::<i64>])
        .await?;
    Ok(())
}

/// Captures `n` new bookings through the real triggers (one `new_request` delivery each, due
/// now), then VACUUM ANALYZE so every run starts from the same table state.
pub async fn backlog(db: &Client, n: u64) -> anyhow::Result<()> {
    db.execute(
        "INSERT INTO booking_requests (student_name, student_email, tutor_name, tutor_email, subject)
         SELECT 'Student ' || i, 'student' || i || '@example.com',
                'Tutor ' || i, 'tutor' || i || '@example.com', 'maths'
           FROM generate_series(1, $1::bigint) i",
        &[&i64::try_from(n)?],
    )
    .await?;
    db.batch_execute("VACUUM ANALYZE booking_requests, webhook_deliveries, webhook_attempts")
        .await?;
    Ok(())
}

/// No autovacuum on the outbox and the attempt log of this scratch database: a measurement of
/// the server's CPU or WAL over a drain would otherwise include a vacuum whenever autovacuum
/// happened to wake during it (a drain's worth of dead rows crosses its threshold), and the
/// same run would read 55 or 75 µs per delivery. The vacuum is measured on its own instead
/// ([`vacuum`]).
pub async fn no_autovacuum(db: &Client) -> anyhow::Result<()> {
    db.batch_execute(
        "ALTER TABLE webhook_deliveries SET (autovacuum_enabled = off);
         ALTER TABLE webhook_attempts SET (autovacuum_enabled = off)",
    )
    .await?;
    Ok(())
}

/// Vacuums what a drain left in the outbox and the attempt log (what autovacuum would do).
pub async fn vacuum(db: &Client) -> anyhow::Result<()> {
    db.batch_execute("VACUUM webhook_deliveries, webhook_attempts")
        .await?;
    Ok(())
}

/// Deliveries by outcome: (succeeded, all).
pub async fn delivered(db: &Client) -> anyhow::Result<(i64, i64)> {
    let row = db
        .query_one(
            "SELECT count(*) FILTER (WHERE status = 'succeeded'), count(*) FROM webhook_deliveries",
            &[],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

/// The server's WAL position now, to measure what is written from here ([`wal_since`]).
pub async fn current_lsn(db: &Client) -> anyhow::Result<String> {
    Ok(db
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await?
        .get(0))
}

/// WAL the whole server wrote since `lsn`, in bytes.
pub async fn wal_since(db: &Client, lsn: &str) -> anyhow::Result<f64> {
    Ok(db
        .query_one(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::text::pg_lsn)::float8",
            &[&lsn],
        )
        .await?
        .get(0))
}
