//! Where and how to reach Postgres (`DATABASE_URL`, `WEBHOOK_DB_CA_FILE`,
//! `WEBHOOK_DB_POOL_SIZE`): all that `webhooks migrate` and the operator commands need.

use std::str::FromStr;

use super::env::{invalid, number, trimmed};
use super::{ConfigError, Secret};
use crate::tls::CaBundle;

/// Where and how to reach Postgres: the pool, `listen`'s session and `webhooks migrate` all
/// connect with this, and it is all that `migrate` needs.
#[derive(Debug, Clone)]
pub struct DbConfig {
    /// Postgres connection URL (`DATABASE_URL`).
    pub(crate) url: Secret,
    /// CA certificates that the server's certificate must chain to (`WEBHOOK_DB_CA_FILE`).
    pub(crate) ca: Option<CaBundle>,
    /// Connections per process (`WEBHOOK_DB_POOL_SIZE`).
    pub pool_size: usize,
}

impl DbConfig {
    /// `url` with the defaults: no CA bundle, [`DEFAULT_POOL_SIZE`] connections.
    pub fn new(url: impl Into<String>) -> Self {
        DbConfig {
            url: Secret::new(url),
            ca: None,
            pool_size: DEFAULT_POOL_SIZE,
        }
    }

    /// Reads the database variables of the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::read(&trimmed(|name| std::env::var(name).ok()))
    }

    pub(super) fn read(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let url = get("DATABASE_URL").ok_or_else(|| ConfigError {
            var: "DATABASE_URL",
            problem: "is required but not set".into(),
        })?;
        let ca = get("WEBHOOK_DB_CA_FILE")
            .map(|path| {
                CaBundle::load(std::path::Path::new(&path))
                    .map_err(|why| invalid("WEBHOOK_DB_CA_FILE", &why))
            })
            .transpose()?;
        if tokio_postgres::Config::from_str(&url).is_err() {
            // The parser's message may quote the URL, and the URL may hold a password.
            return Err(invalid(
                "DATABASE_URL",
                "is not a valid PostgreSQL connection URL",
            ));
        }
        let pool_size = number(
            get,
            "WEBHOOK_DB_POOL_SIZE",
            DEFAULT_POOL_SIZE as u64,
            1,
            100,
        )?;
        Ok(DbConfig {
            url: Secret(url),
            ca,
            pool_size: pool_size as usize,
        })
    }
}

/// Postgres connections per process unless `WEBHOOK_DB_POOL_SIZE` says otherwise.
pub(crate) const DEFAULT_POOL_SIZE: usize = 4;
