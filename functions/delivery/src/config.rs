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
//! | `WEBHOOK_SUPERSEDE` | `on` | `on`: a status notification that a later one of the same booking replaced before it was sent ends `superseded`, unsent; `off`: every one is sent, in capture order (docs/superseded.md). Set it alike on every worker |
//! | `WEBHOOK_DB_POOL_SIZE` | `4` | Postgres connections per process |
//! | `WEBHOOK_DB_CA_FILE` | unset | PEM bundle to verify the database's certificate and host name (see [`crate::tls`]) |
//! | `WEBHOOK_RETENTION` | unset (off) | the retry sweep deletes resolved deliveries older than this, e.g. `30d` (at least `1d`; see [`crate::retention`]) |

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::backoff::{RetryPolicy, RetrySchedule, parse_duration};
use crate::sign::SigningKeys;
use crate::tls::CaBundle;

/// A value that must never be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The value itself, for the one place that must use it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

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

    fn read(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
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
    /// The retry sweep removes resolved deliveries older than this (`None`: never).
    pub retention: Option<Duration>,
    /// Whether a status notification replaced by a later one before it was sent ends
    /// `superseded` (on) or is sent before the later one (off).
    pub supersede: bool,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup` (the environment, or a map in tests).
    /// Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = trimmed(lookup);
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
            retention: retention(get("WEBHOOK_RETENTION"))?,
            supersede: on_off(&get, "WEBHOOK_SUPERSEDE", true)?,
        })
    }

    /// The webhook URL without path, query or credentials: safe for logs.
    pub fn webhook_origin(&self) -> String {
        self.webhook_url.origin().ascii_serialization()
    }
}

/// `lookup` with values trimmed and empty values counted as unset.
fn trimmed(lookup: impl Fn(&str) -> Option<String>) -> impl Fn(&str) -> Option<String> {
    move |name| {
        lookup(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }
}

/// True for hosts that never leave the machine: 127.0.0.0/8, ::1 and `localhost`.
fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    let ip = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || ip
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A yes/no variable: `1`/`true` or `0`/`false` (unset = no).
fn flag(get: &impl Fn(&str) -> Option<String>, var: &'static str) -> Result<bool, ConfigError> {
    match get(var).map(|v| v.to_ascii_lowercase()).as_deref() {
        None | Some("0" | "false") => Ok(false),
        Some("1" | "true") => Ok(true),
        Some(_) => Err(invalid(var, "must be 1 or 0")),
    }
}

/// `WEBHOOK_RETENTION`: unset or `off` disables it; otherwise an age of at least a day.
fn retention(text: Option<String>) -> Result<Option<Duration>, ConfigError> {
    let Some(text) = text.filter(|t| !t.eq_ignore_ascii_case("off")) else {
        return Ok(None);
    };
    let age = parse_duration(&text).map_err(|why| invalid("WEBHOOK_RETENTION", &why))?;
    if age < crate::retention::MIN_RETENTION {
        return Err(invalid(
            "WEBHOOK_RETENTION",
            &format!("must be at least 1d (or off), got {text:?}"),
        ));
    }
    Ok(Some(age))
}

/// A switch: `on`/`1`/`true` or `off`/`0`/`false`, `default` when unset.
fn on_off(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    match get(var).map(|v| v.to_ascii_lowercase()).as_deref() {
        None => Ok(default),
        Some("on" | "1" | "true") => Ok(true),
        Some("off" | "0" | "false") => Ok(false),
        Some(_) => Err(invalid(var, "must be on or off")),
    }
}

fn invalid(var: &'static str, problem: &str) -> ConfigError {
    ConfigError {
        var,
        problem: problem.to_owned(),
    }
}

/// An integer variable within `min..=max`; these are never secret, so the value is quoted.
fn number(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(text) = get(var) else {
        return Ok(default);
    };
    text.parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| ConfigError {
            var,
            problem: format!("must be an integer from {min} to {max}, got {text:?}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let mut map: HashMap<String, String> = [
            (
                "DATABASE_URL",
                "postgres://app:hunter2@db.internal:5432/app",
            ),
            (
                "WEBHOOK_URL",
                "https://notify.example.com/functions/v1/send-booking-notification",
            ),
            ("WEBHOOK_AUTH_TOKEN", "tok-abc123"),
            ("WEBHOOK_SIGNING_SECRET", SECRET),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (k, v) in pairs {
            map.insert((*k).to_owned(), (*v).to_owned());
        }
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults_match_the_documented_contract() -> Result<(), ConfigError> {
        let config = Config::from_lookup(lookup(&[]))?;
        assert_eq!(config.timeout, Duration::from_secs(10));
        assert_eq!(
            config.retry.schedule.delays(),
            &[
                Duration::from_secs(300),
                Duration::from_secs(900),
                Duration::from_secs(2700)
            ]
        );
        assert_eq!(config.retry.jitter, 0.1);
        assert_eq!(config.sweep_batch, 100);
        assert_eq!(config.webhook_origin(), "https://notify.example.com");
        Ok(())
    }

    #[test]
    fn a_missing_variable_is_named() {
        let err = Config::from_lookup(lookup(&[("WEBHOOK_URL", "  ")])).err();
        assert_eq!(
            err.map(|e| e.to_string()),
            Some("WEBHOOK_URL: is required but not set".into())
        );
    }

    #[test]
    fn bad_numbers_name_the_variable_and_range() {
        let err = Config::from_lookup(lookup(&[("WEBHOOK_TIMEOUT_MS", "ten")])).err();
        assert_eq!(
            err.map(|e| e.to_string()),
            Some("WEBHOOK_TIMEOUT_MS: must be an integer from 1 to 900000, got \"ten\"".into())
        );
        assert!(Config::from_lookup(lookup(&[("WEBHOOK_SWEEP_BATCH", "0")])).is_err());
        assert!(Config::from_lookup(lookup(&[("WEBHOOK_RETRY_JITTER", "1.5")])).is_err());
        assert!(Config::from_lookup(lookup(&[("WEBHOOK_RETRY_SCHEDULE", "5m,soon")])).is_err());
        assert!(Config::from_lookup(lookup(&[("WEBHOOK_URL", "ftp://x.example")])).is_err());
    }

    #[test]
    fn plain_http_is_refused_except_to_loopback_or_when_allowed() {
        for url in [
            "http://notify.example.com/hook",
            "http://10.0.0.7/hook",
            "http://[::ffff:127.0.0.1]/hook",
            "http://localhost.example.com/hook",
        ] {
            let err = Config::from_lookup(lookup(&[("WEBHOOK_URL", url)])).err();
            assert!(
                err.as_ref().is_some_and(|e| e.var == "WEBHOOK_URL"
                    && e.problem.contains("must be https://")
                    && e.problem.contains("WEBHOOK_ALLOW_HTTP=1")),
                "{url}: {err:?}"
            );
        }
        for url in [
            "http://127.0.0.1:8787/hook",
            "http://127.1.2.3/hook",
            "http://[::1]:8787/hook",
            "http://LOCALHOST/hook",
            "https://notify.example.com/hook",
        ] {
            assert!(
                Config::from_lookup(lookup(&[("WEBHOOK_URL", url)])).is_ok(),
                "{url}"
            );
        }
        let allowed = [
            ("WEBHOOK_URL", "http://notify.internal/hook"),
            ("WEBHOOK_ALLOW_HTTP", "1"),
        ];
        assert!(Config::from_lookup(lookup(&allowed)).is_ok());
        let not_a_flag = [
            ("WEBHOOK_URL", "http://notify.internal/hook"),
            ("WEBHOOK_ALLOW_HTTP", "yes please"),
        ];
        let err = Config::from_lookup(lookup(&not_a_flag)).err();
        assert_eq!(
            err.map(|e| e.to_string()),
            Some("WEBHOOK_ALLOW_HTTP: must be 1 or 0".into())
        );
    }

    #[test]
    fn retention_is_off_unless_set_to_a_day_or_more() -> Result<(), ConfigError> {
        assert_eq!(Config::from_lookup(lookup(&[]))?.retention, None);
        assert_eq!(
            Config::from_lookup(lookup(&[("WEBHOOK_RETENTION", "off")]))?.retention,
            None
        );
        assert_eq!(
            Config::from_lookup(lookup(&[("WEBHOOK_RETENTION", "30d")]))?.retention,
            Some(Duration::from_secs(30 * 86_400))
        );
        let short = Config::from_lookup(lookup(&[("WEBHOOK_RETENTION", "2h")])).err();
        assert_eq!(
            short.map(|e| e.to_string()),
            Some("WEBHOOK_RETENTION: must be at least 1d (or off), got \"2h\"".into())
        );
        assert!(Config::from_lookup(lookup(&[("WEBHOOK_RETENTION", "a month")])).is_err());
        Ok(())
    }

    #[test]
    fn supersede_is_on_unless_turned_off() -> Result<(), ConfigError> {
        assert!(Config::from_lookup(lookup(&[]))?.supersede);
        for (value, on) in [("off", false), ("OFF", false), ("0", false), ("on", true)] {
            let config = Config::from_lookup(lookup(&[("WEBHOOK_SUPERSEDE", value)]))?;
            assert_eq!(config.supersede, on, "{value}");
        }
        let err = Config::from_lookup(lookup(&[("WEBHOOK_SUPERSEDE", "sometimes")])).err();
        assert_eq!(
            err.map(|e| e.to_string()),
            Some("WEBHOOK_SUPERSEDE: must be on or off".into())
        );
        Ok(())
    }

    #[test]
    fn a_database_ca_file_must_hold_certificates() {
        let missing =
            Config::from_lookup(lookup(&[("WEBHOOK_DB_CA_FILE", "/nonexistent/ca.pem")])).err();
        assert!(missing.is_some_and(|e| e.var == "WEBHOOK_DB_CA_FILE" && e.problem.contains("cannot read")));
        let not_pem = Config::from_lookup(lookup(&[("WEBHOOK_DB_CA_FILE", "Cargo.toml")])).err();
        assert!(not_pem.is_some_and(
            |e| e.var == "WEBHOOK_DB_CA_FILE" && e.problem.contains("no PEM certificate")
        ));
    }

    #[test]
    fn secrets_never_appear_in_errors_or_debug() -> Result<(), ConfigError> {
        let bad_secret = "whsec_not*base64*hunter2";
        let err = Config::from_lookup(lookup(&[("WEBHOOK_SIGNING_SECRET", bad_secret)])).err();
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.starts_with("WEBHOOK_SIGNING_SECRET:"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");

        let err = Config::from_lookup(lookup(&[(
            "DATABASE_URL",
            "postgres://u:hunter2@h:notaport/db",
        )]))
        .err();
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            text.starts_with("DATABASE_URL:") && !text.contains("hunter2"),
            "{text}"
        );

        let debug = format!("{:?}", Config::from_lookup(lookup(&[]))?);
        for secret in ["hunter2", "tok-abc123", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] {
            assert!(!debug.contains(secret), "{secret} leaked into {debug}");
        }
        Ok(())
    }

    /// `.env.example` is the documentation users copy: it must parse, and it must mention
    /// every variable this module reads.
    #[test]
    fn the_env_example_is_valid_and_complete() -> Result<(), ConfigError> {
        let example = include_str!("../../../.env.example");
        let (mut vars, mut documented) = (HashMap::new(), Vec::new());
        for line in example.lines().map(str::trim) {
            let active = !line.starts_with('#');
            if let Some((k, v)) = line.trim_start_matches("# ").split_once('=')
                && k.chars().all(|c| c.is_ascii_uppercase() || c == '_')
            {
                documented.push(k.to_owned());
                if active {
                    vars.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        let config = Config::from_lookup(|name| vars.get(name).cloned())?;
        assert_eq!(config.timeout, Duration::from_secs(10));
        let source = include_str!("config.rs");
        let names = source.split('"').filter(|s| {
            (s.starts_with("WEBHOOK_") || *s == "DATABASE_URL")
                && !s.ends_with('_')
                && s.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        });
        for var in names {
            assert!(
                documented.iter().any(|d| d == var),
                "{var} is read but not documented in .env.example"
            );
        }
        Ok(())
    }
}
