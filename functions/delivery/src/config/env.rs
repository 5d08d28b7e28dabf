//! Reading the variables: values trimmed, empty ones unset; numbers, switches and flags each
//! with an error that names the variable.

use std::time::Duration;

use super::ConfigError;
use super::retention::MIN_RETENTION;
use crate::backoff::parse_duration;

/// `lookup` with values trimmed and empty values counted as unset.
pub(super) fn trimmed(lookup: impl Fn(&str) -> Option<String>) -> impl Fn(&str) -> Option<String> {
    move |name| {
        lookup(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }
}

/// Fails when any of `names` is unset, naming the first and, so that one try reports them all,
/// every other one missing too: `WEBHOOK_URL: is required but not set (also missing:
/// WEBHOOK_AUTH_TOKEN, WEBHOOK_SIGNING_SECRET)`.
pub(crate) fn all_set(
    get: &impl Fn(&str) -> Option<String>,
    names: &[&'static str],
    problem: &str,
) -> Result<(), ConfigError> {
    let missing: Vec<&'static str> = names.iter().copied().filter(|n| get(n).is_none()).collect();
    let Some((first, others)) = missing.split_first() else {
        return Ok(());
    };
    let problem = match others {
        [] => problem.to_owned(),
        others => format!("{problem} (also missing: {})", others.join(", ")),
    };
    Err(ConfigError {
        var: first,
        problem,
    })
}

/// True for hosts that never leave the machine: 127.0.0.0/8, ::1 and `localhost`.
pub(super) fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    let ip = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || ip
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A yes/no variable: `1`/`true` or `0`/`false` (unset = no).
pub(super) fn flag(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
) -> Result<bool, ConfigError> {
    match get(var).map(|v| v.to_ascii_lowercase()).as_deref() {
        None | Some("0" | "false") => Ok(false),
        Some("1" | "true") => Ok(true),
        Some(_) => Err(invalid(var, "must be 1 or 0")),
    }
}

/// `WEBHOOK_RETENTION`: unset or `off` disables it; otherwise an age of at least a day.
pub(super) fn retention(text: Option<String>) -> Result<Option<Duration>, ConfigError> {
    let Some(text) = text.filter(|t| !t.eq_ignore_ascii_case("off")) else {
        return Ok(None);
    };
    let age = parse_duration(&text).map_err(|why| invalid("WEBHOOK_RETENTION", &why))?;
    if age < MIN_RETENTION {
        return Err(invalid(
            "WEBHOOK_RETENTION",
            &format!("must be at least 1d (or off), got {text:?}"),
        ));
    }
    Ok(Some(age))
}

/// A switch: `on`/`1`/`true` or `off`/`0`/`false`, `default` when unset.
pub(super) fn on_off(
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

pub(super) fn invalid(var: &'static str, problem: &str) -> ConfigError {
    ConfigError {
        var,
        problem: problem.to_owned(),
    }
}

/// An integer variable within `min..=max`; these are never secret, so the value is quoted.
pub(super) fn number(
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
