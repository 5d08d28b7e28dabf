//! The Postgres connection pool and the migrations.
//!
//! Migrations are embedded from `migrations/` at compile time and applied by refinery into the
//! first schema of the connection's `search_path` (tests put a schema of their own there).

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};

use crate::config::{Config, Secret};
use crate::tls::CaBundle;
use crate::{Error, Result};

mod embedded {
    refinery::embed_migrations!("../../migrations");
}

/// How long to wait for a new connection before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for a free pooled connection.
const POOL_WAIT: Duration = Duration::from_secs(30);

/// Builds the pool (connections are opened lazily, on first use).
pub fn pool(config: &Config) -> Result<Pool> {
    pool_from_url(
        &config.database_url,
        config.db_pool_size,
        config.db_ca.as_ref(),
    )
}

/// Builds a pool of at most `size` connections to `url`, TLS as [`crate::tls`] describes.
pub fn pool_from_url(url: &Secret, size: usize, ca: Option<&CaBundle>) -> Result<Pool> {
    let mut pg = tokio_postgres::Config::from_str(url.expose()).map_err(|_| {
        Error::PoolSetup("DATABASE_URL is not a valid PostgreSQL connection URL".into())
    })?;
    if pg.get_connect_timeout().is_none() {
        pg.connect_timeout(CONNECT_TIMEOUT);
    }
    if pg.get_application_name().is_none() {
        pg.application_name("booking-webhooks");
    }
    let manager = Manager::from_config(
        pg,
        crate::tls::connector(ca),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(POOL_WAIT))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .build()
        .map_err(|e| Error::PoolSetup(e.to_string()))
}

/// Applies pending migrations; returns the names of those applied now (empty when current).
pub async fn migrate(pool: &Pool) -> Result<Vec<String>> {
    let mut object = pool.get().await?;
    let client: &mut tokio_postgres::Client = &mut object;
    let report = embedded::migrations::runner().run_async(client).await?;
    Ok(report
        .applied_migrations()
        .iter()
        .map(|m| m.to_string())
        .collect())
}
