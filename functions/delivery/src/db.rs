//! Connections to Postgres, all made from one [`DbConfig`]: the pool the handlers share, the
//! session connection `listen` holds, and the migrations.
//!
//! Migrations are embedded from `migrations/` at compile time and applied by refinery into the
//! first schema of the connection's `search_path` (tests put a schema of their own there).

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use futures::Stream;
use tokio_postgres::{AsyncMessage, Client};

use crate::config::DbConfig;
use crate::{Error, Result};

mod embedded {
    refinery::embed_migrations!("../../migrations");
}

/// How long to wait for a new connection before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for a free pooled connection.
const POOL_WAIT: Duration = Duration::from_secs(30);

impl DbConfig {
    /// Builds a pool of at most `pool_size` connections, TLS as [`crate::tls`] describes.
    /// Connections are opened lazily: a database that is down shows up on first use.
    pub fn pool(&self) -> Result<Pool> {
        let manager = Manager::from_config(
            self.postgres("booking-webhooks")?,
            crate::tls::connector(self.ca.as_ref()),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        Pool::builder(manager)
            .max_size(self.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| Error::PoolSetup(e.to_string()))
    }

    /// Opens a session connection of its own, outside the pool (for LISTEN). Returns the
    /// client and the connection's messages, which must be polled for either to progress.
    pub(crate) async fn connect(
        &self,
        application_name: &str,
    ) -> Result<(
        Client,
        impl Stream<Item = Result<AsyncMessage, tokio_postgres::Error>> + Send + 'static,
    )> {
        let (client, mut connection) = self
            .postgres(application_name)?
            .connect(crate::tls::connector(self.ca.as_ref()))
            .await?;
        let messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        Ok((client, messages))
    }

    /// The URL's settings, plus a connect timeout and `application_name` unless it sets them.
    fn postgres(&self, application_name: &str) -> Result<tokio_postgres::Config> {
        let mut pg = tokio_postgres::Config::from_str(self.url.expose()).map_err(|_| {
            Error::PoolSetup("DATABASE_URL is not a valid PostgreSQL connection URL".into())
        })?;
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(CONNECT_TIMEOUT);
        }
        if pg.get_application_name().is_none() {
            pg.application_name(application_name);
        }
        Ok(pg)
    }
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
