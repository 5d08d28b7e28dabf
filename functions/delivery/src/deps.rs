//! What every handler needs, built once per process (a Lambda's cold start) and shared by
//! reference: the configuration, the Postgres pool and the HTTP client.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;

use crate::config::Config;
use crate::error::Result;
use crate::send::Sender;

/// How long a quiet notification service is trusted to stay so without a write: a success
/// then leaves another worker's failure count of the last second as it is.
const ENDPOINT_QUIET_FOR: Duration = Duration::from_secs(1);

/// What a handler needs, built once per process (Lambda cold start) and shared by reference.
#[derive(Debug, Clone)]
pub struct Deps {
    /// Validated configuration.
    pub config: Config,
    /// Postgres pool.
    pub pool: Pool,
    /// HTTP client for the notification service.
    pub sender: Sender,
    /// Until then the notification service was last seen quiet — closed, no failure counted,
    /// no pause — so a recorded group of answers alone cannot change its row, and is not
    /// written ([`crate::engine::endpoint`]). Shared by the clones of these dependencies.
    quiet_until: Arc<Mutex<Option<Instant>>>,
}

impl Deps {
    /// Builds the pool and the HTTP client. Connects lazily: a database that is down shows up
    /// as an error on first use, not here.
    pub fn new(config: Config) -> Result<Self> {
        Ok(Deps {
            pool: config.db.pool()?,
            sender: Sender::new(&config)?,
            config,
            quiet_until: Arc::default(),
        })
    }

    /// True while the notification service was seen quiet less than a second ago.
    pub(crate) fn endpoint_quiet(&self) -> bool {
        let until = *self.quiet_until.lock().unwrap_or_else(|e| e.into_inner());
        until.is_some_and(|until| Instant::now() < until)
    }

    /// The notification service was seen quiet (`true`: trusted for a second), or may not be.
    pub(crate) fn set_endpoint_quiet(&self, quiet: bool) {
        *self.quiet_until.lock().unwrap_or_else(|e| e.into_inner()) =
            quiet.then(|| Instant::now() + ENDPOINT_QUIET_FOR);
    }

    /// Reads and validates the environment, then builds everything.
    pub fn from_env() -> Result<Self> {
        Self::new(Config::from_env()?)
    }
}
