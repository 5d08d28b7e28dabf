//! What every handler needs, built once per process (a Lambda's cold start) and shared by
//! reference: the configuration, the Postgres pool and the HTTP client.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;

use crate::config::Config;
use crate::error::Result;
use crate::send::Sender;

/// How long what was last seen of the notification service is trusted without reading its
/// row again: an operator's pause, or another worker's breaker, reaches this process within
/// it (this process's own failures at once); a success then leaves another worker's failure
/// count of the last second as it is.
pub(crate) const ENDPOINT_SEEN_FOR: Duration = Duration::from_secs(1);

/// What this process last saw of the notification service ([`crate::engine::endpoint`]).
#[derive(Debug, Default)]
struct Seen {
    /// Until then, it let everything through unpaced: no need to read it before a claim.
    open_until: Option<Instant>,
    /// Until then, it was quiet — closed, no failure counted, no pause — so a recorded group
    /// of answers alone cannot change its row, and is not written.
    quiet_until: Option<Instant>,
}

/// What a handler needs, built once per process (Lambda cold start) and shared by reference.
#[derive(Debug, Clone)]
pub struct Deps {
    /// Validated configuration.
    pub config: Config,
    /// Postgres pool.
    pub pool: Pool,
    /// HTTP client for the notification service.
    pub sender: Sender,
    /// What was last seen of the notification service; shared by the clones.
    seen: Arc<Mutex<Seen>>,
}

impl Deps {
    /// Builds the pool and the HTTP client. Connects lazily: a database that is down shows up
    /// as an error on first use, not here.
    pub fn new(config: Config) -> Result<Self> {
        Ok(Deps {
            pool: config.db.pool()?,
            sender: Sender::new(&config)?,
            config,
            seen: Arc::default(),
        })
    }

    /// True while the notification service was seen letting everything through unpaced,
    /// less than [`ENDPOINT_SEEN_FOR`] ago.
    pub(crate) fn endpoint_open(&self) -> bool {
        self.seen(|seen| seen.open_until.is_some_and(|until| Instant::now() < until))
    }

    /// True while the notification service was seen quiet, less than [`ENDPOINT_SEEN_FOR`]
    /// ago.
    pub(crate) fn endpoint_quiet(&self) -> bool {
        self.seen(|seen| seen.quiet_until.is_some_and(|until| Instant::now() < until))
    }

    /// Whether the service was just seen letting everything through unpaced (`None`: leave
    /// what was seen), and quiet.
    pub(crate) fn saw_endpoint(&self, open: Option<bool>, quiet: Option<bool>) {
        let until = |yes: bool| yes.then(|| Instant::now() + ENDPOINT_SEEN_FOR);
        self.seen(|seen| {
            if let Some(open) = open {
                seen.open_until = until(open);
            }
            if let Some(quiet) = quiet {
                seen.quiet_until = until(quiet);
            }
        });
    }

    fn seen<T>(&self, f: impl FnOnce(&mut Seen) -> T) -> T {
        f(&mut self.seen.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Reads and validates the environment, then builds everything.
    pub fn from_env() -> Result<Self> {
        Self::new(Config::from_env()?)
    }
}
