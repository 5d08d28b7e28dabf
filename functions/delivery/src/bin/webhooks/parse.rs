//! The arguments that are more than a number: `--sweep-every` and `--since`. Every one is checked
//! by the parser, so a bad value is a usage error naming the argument, never a panic (tested in
//! `tests.rs` over many values).

use std::time::Duration;

use chrono::{DateTime, Utc};
use delivery::backoff::parse_duration;

/// `--sweep-every`: a period of at least a second, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SweepEvery(pub(crate) Option<Duration>);

pub(crate) fn sweep_every(text: &str) -> Result<SweepEvery, String> {
    if text == "off" {
        return Ok(SweepEvery(None));
    }
    let every = parse_duration(text)?;
    if every < Duration::from_secs(1) {
        return Err(format!(
            "{text:?} is shorter than 1s; use `off` for no sweep"
        ));
    }
    Ok(SweepEvery(Some(every)))
}

/// `--since`: a time, or an age counted back from when the command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Since {
    At(DateTime<Utc>),
    Ago(chrono::Duration),
}

pub(crate) fn since(text: &str) -> Result<Since, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(Since::At(at.to_utc()));
    }
    let age = parse_duration(text)
        .map_err(|_| format!("{text:?} is neither RFC 3339 nor an age like 2h"))?;
    chrono::Duration::from_std(age)
        .map(Since::Ago)
        .map_err(|_| format!("{text:?} is too long ago"))
}

impl Since {
    pub(crate) fn at(self, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
        match self {
            Since::At(at) => Ok(at),
            Since::Ago(age) => now
                .checked_sub_signed(age)
                .ok_or_else(|| "--since: too long ago".to_owned()),
        }
    }
}
