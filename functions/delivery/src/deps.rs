//! What every handler needs, built once per process (a Lambda's cold start) and shared by
//! reference: the configuration, the Postgres pool and the HTTP client.

use deadpool_postgres::Pool;

use crate::config::Config;
use crate::error::Result;
use crate::send::Sender;

/// What a handler needs, built once per process (Lambda cold start) and shared by reference.
#[derive(Debug, Clone)]
pub struct Deps {
    /// Validated configuration.
    pub config: Config,
    /// Postgres pool.
    pub pool: Pool,
    /// HTTP client for the notification service.
    pub sender: Sender,
}

impl Deps {
    /// Builds the pool and the HTTP client. Connects lazily: a database that is down shows up
    /// as an error on first use, not here.
    pub fn new(config: Config) -> Result<Self> {
        Ok(Deps {
            pool: config.db.pool()?,
            sender: Sender::new(&config)?,
            config,
        })
    }

    /// Reads and validates the environment, then builds everything.
    pub fn from_env() -> Result<Self> {
        Self::new(Config::from_env()?)
    }
}
