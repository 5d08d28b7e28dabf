//! Configuration from the environment, read and validated once at cold start.
//!
//! Every variable is documented here and in `.env.example`. A missing or invalid value fails
//! start-up with a [`ConfigError`] naming the variable; values of secret variables never
//! appear in errors, logs or `Debug` output.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `DATABASE_URL` | — (required) | Postgres connection URL (secret: may hold a password) |
//! | `WEBHOOK_URL` | — (required) | notification service endpoint, `https://…` (`http://` only to a loopback host, or with `WEBHOOK_ALLOW_HTTP=1`) |
//! | `WEBHOOK_AUTH_TOKEN` | — (required) | sent as `Authorization: Bearer …` (secret) |
//! | `WEBHOOK_ALLOW_HTTP` | `0` | `1` allows an `http://` `WEBHOOK_URL` to any host (the token then travels in clear text) |
//! | `WEBHOOK_SIGNING_SECRET` | — (required) | `whsec_<base64>`; several, space-separated, during rotation (secret) |
//! | `WEBHOOK_TIMEOUT_MS` | `10000` | whole-request timeout of one attempt |
//! | `WEBHOOK_RETRY_SCHEDULE` | `5m,15m,45m` | delay before each retry |
//! | `WEBHOOK_RETRY_JITTER` | `0.1` | up to this fraction added to each delay; `0` = none |
//! | `WEBHOOK_RETRY_AFTER_MAX` | `1h` | cap on a receiver's `Retry-After` |
//! | `WEBHOOK_DISPATCH_WAIT_MS` | `2000` | how long dispatch waits for an id not yet committed |
//! | `WEBHOOK_DISPATCH_TOKEN` | unset | bearer token required on function-URL invocations of dispatch (secret) |
//! | `WEBHOOK_SWEEP_BATCH` | `100` | deliveries claimed per batch |
//! | `WEBHOOK_SWEEP_CONCURRENCY` | `16` | HTTP requests in flight at once |
//! | `WEBHOOK_SWEEP_BUDGET_MS` | `60000` | a sweep stops claiming new batches after this |
//! | `WEBHOOK_LEASE_MARGIN_MS` | `30000` | added to every lease beyond the worst-case send time of what it covers: time to record the outcome. No request is sent with less than its timeout plus half of this left on its lease (tests shorten it) |
//! | `WEBHOOK_BREAKER_AFTER` | `20` | consecutive connect errors, timeouts, 408s and 5xx, across workers, that open the circuit breaker (with light traffic it also opens once every request for 5 minutes failed, 3 at least): deliveries are then held, not failed, and one probe goes after the cool-down; `off`: no breaker, every attempt counts (the seed's behaviour) |
//! | `WEBHOOK_BREAKER_COOLDOWN` | `60s` | how long the breaker stays open before a probe; doubled by each failed probe, up to 10 minutes |
//! | `WEBHOOK_HOLD_MAX` | `3d` | the longest a delivery is held (breaker open, paused) before it fails with a reason that says so (replayable) |
//! | `WEBHOOK_MAX_RATE` | unset (off) | requests per second toward the receiver, shared by every worker; after the breaker closes the rate ramps up from 10/s, doubling each second (slow start), to this or unpaced |
//! | `WEBHOOK_SUPERSEDE` | `on` | `on`: a status notification that a later one of the same booking replaced before it was sent ends `superseded`, unsent; `off`: every one is sent, in capture order (docs/superseded.md). Set it alike on every worker |
//! | `WEBHOOK_DB_POOL_SIZE` | `4` | Postgres connections per process |
//! | `WEBHOOK_DB_CA_FILE` | unset | PEM bundle to verify the database's certificate and host name (see [`crate::tls`]) |
//! | `WEBHOOK_RETENTION` | unset (off) | the retry sweep deletes resolved deliveries older than this, e.g. `30d` (at least `1d`; see [`retention`]) |

//!
//! # Layout
//! - [`secret`]: a value that is never printed.
//! - [`database`]: [`DbConfig`], all that reaching Postgres needs.
//! - [`endpoint`]: the circuit breaker, holding, the rate ceiling.
//! - [`retention`]: the shortest retention, one rule for `WEBHOOK_RETENTION` and `--older-than`.
//! - `env`: reading the variables (trimmed, numbers, switches).

pub mod database;
pub mod endpoint;
mod env;
pub mod retention;
pub mod secret;
#[cfg(test)]
mod tests;

use std::time::Duration;

use crate::backoff::{RetryPolicy, RetrySchedule, parse_duration};
use crate::sign::SigningKeys;
pub use database::DbConfig;
pub use endpoint::EndpointPolicy;
pub(crate) use env::all_set;
use env::{flag, invalid, is_loopback, number, on_off, trimmed};
pub use secret::Secret;

/// A missing or invalid configuration variable. The message names the variable and what is
/// expected; for secret variables it never repeats the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

/// Validated configuration shared by both functions and the `webhooks` command.
#[derive(Debug, Clone)]
pub struct Config {
    /// Postgres: URL, TLS, pool size.
    pub db: DbConfig,
    /// Where notifications are POSTed.
    pub(crate) webhook_url: reqwest::Url,
    /// Bearer token for the notification service.
    pub(crate) auth_token: Secret,
    /// Keys that sign each request (more than one while rotating).
    pub(crate) signing_keys: SigningKeys,
    /// Whole-request timeout of one attempt.
    pub(crate) timeout: Duration,
    /// Backoff between attempts.
    pub(crate) retry: RetryPolicy,
    /// How long `dispatch` waits for a delivery that is not committed yet.
    pub dispatch_wait: Duration,
    /// Bearer token required when `dispatch` is invoked through a function URL.
    pub(crate) dispatch_token: Option<Secret>,
    /// Deliveries per claimed batch.
    pub sweep_batch: usize,
    /// HTTP requests in flight at once.
    pub sweep_concurrency: usize,
    /// A sweep claims no new batch after this much time.
    pub sweep_budget: Duration,
    /// Added to every lease beyond the worst-case send time it covers.
    pub lease_margin: Duration,
    /// The circuit breaker, holding and the rate ceiling.
    pub endpoint: EndpointPolicy,
    /// The retry sweep removes resolved deliveries older than this (`None`: never).
    pub retention: Option<Duration>,
    /// Whether a status notification replaced by a later one before it was sent ends
    /// `superseded` (on) or is sent before the later one (off).
    pub supersede: bool,
}

/// What the functions (and `webhooks listen | sweep | dispatch | send`) cannot run without.
const REQUIRED: [&str; 4] = [
    "DATABASE_URL",
    "WEBHOOK_URL",
    "WEBHOOK_AUTH_TOKEN",
    "WEBHOOK_SIGNING_SECRET",
];

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup` (the environment, or a map in tests).
    /// Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = trimmed(lookup);
        all_set(&get, &REQUIRED, "is required but not set")?;
        let required = |name: &'static str| {
            get(name).ok_or_else(|| ConfigError {
                var: name,
                problem: "is required but not set".into(),
            })
        };

        let db = DbConfig::read(&get)?;

        let webhook_url = reqwest::Url::parse(&required("WEBHOOK_URL")?)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| invalid("WEBHOOK_URL", "must be an absolute https:// URL"))?;
        // Every request carries the bearer token: plain HTTP only where nobody can listen in.
        let allow_http = flag(&get, "WEBHOOK_ALLOW_HTTP")?;
        if webhook_url.scheme() == "http" && !is_loopback(&webhook_url) && !allow_http {
            return Err(invalid(
                "WEBHOOK_URL",
                "must be https:// (http:// sends the bearer token in clear text; it is allowed \
                 only to 127.0.0.0/8, ::1 or localhost, or with WEBHOOK_ALLOW_HTTP=1)",
            ));
        }

        let auth_token = required("WEBHOOK_AUTH_TOKEN")?;
        if auth_token.chars().any(|c| c.is_control() || c == ' ') {
            return Err(invalid(
                "WEBHOOK_AUTH_TOKEN",
                "must not contain spaces or control characters",
            ));
        }

        let signing_keys = SigningKeys::parse(&required("WEBHOOK_SIGNING_SECRET")?)
            .map_err(|why| invalid("WEBHOOK_SIGNING_SECRET", why))?;

        let timeout =
            Duration::from_millis(number(&get, "WEBHOOK_TIMEOUT_MS", 10_000, 1, 900_000)?);
        let schedule = match get("WEBHOOK_RETRY_SCHEDULE") {
            None => RetrySchedule::default(),
            Some(text) => text
                .parse()
                .map_err(|why: String| invalid("WEBHOOK_RETRY_SCHEDULE", &why))?,
        };
        let jitter = match get("WEBHOOK_RETRY_JITTER") {
            None => 0.1,
            Some(text) => text
                .parse::<f64>()
                .ok()
                .filter(|j| (0.0..=1.0).contains(j))
                .ok_or_else(|| {
                    invalid("WEBHOOK_RETRY_JITTER", "must be a fraction between 0 and 1")
                })?,
        };
        let retry_after_max = match get("WEBHOOK_RETRY_AFTER_MAX") {
            None => Duration::from_secs(3600),
            Some(text) => {
                parse_duration(&text).map_err(|why| invalid("WEBHOOK_RETRY_AFTER_MAX", &why))?
            }
        };

        Ok(Config {
            db,
            webhook_url,
            auth_token: Secret(auth_token),
            signing_keys,
            timeout,
            retry: RetryPolicy {
                schedule,
                jitter,
                retry_after_max,
            },
            dispatch_wait: Duration::from_millis(number(
                &get,
                "WEBHOOK_DISPATCH_WAIT_MS",
                2_000,
                0,
                60_000,
            )?),
            dispatch_token: get("WEBHOOK_DISPATCH_TOKEN").map(Secret),
            sweep_batch: number(&get, "WEBHOOK_SWEEP_BATCH", 100, 1, 10_000)? as usize,
            sweep_concurrency: number(&get, "WEBHOOK_SWEEP_CONCURRENCY", 16, 1, 1_000)? as usize,
            sweep_budget: Duration::from_millis(number(
                &get,
                "WEBHOOK_SWEEP_BUDGET_MS",
                60_000,
                0,
                900_000,
            )?),
            lease_margin: Duration::from_millis(number(
                &get,
                "WEBHOOK_LEASE_MARGIN_MS",
                30_000,
                100,
                600_000,
            )?),
            endpoint: EndpointPolicy::read(&get)?,
            retention: env::retention(get("WEBHOOK_RETENTION"))?,
            supersede: on_off(&get, "WEBHOOK_SUPERSEDE", true)?,
        })
    }

    /// The webhook URL without path, query or credentials: safe for logs.
    pub fn webhook_origin(&self) -> String {
        self.webhook_url.origin().ascii_serialization()
    }
}
