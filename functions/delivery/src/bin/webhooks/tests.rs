//! The command line over many values: every bad one is a usage error, never a panic.

use std::time::Duration;

use chrono::Utc;
use clap::Parser as _;
use delivery::retention::Cleanup;
use uuid::Uuid;

use super::*;
use crate::ops::Operation;
use crate::parse::{SweepEvery, since, sweep_every};

/// Durations and numbers an operator might type, plus hostile ones.
const VALUES: &[&str] = &[
    "",
    " ",
    "0",
    "1",
    "-1",
    "0s",
    "0ms",
    "999ms",
    "1s",
    "10m",
    "2h",
    "1d",
    "off",
    "OFF",
    "1.5h",
    "1e9s",
    "5 m",
    "m",
    "s5",
    "10000",
    "10001",
    "65535",
    "65536",
    "2147483647",
    "2147483648",
    "-2147483649",
    "100000000d",
    "18446744073709551615ms",
    "18446744073709551615d",
    "99999999999999999999999s",
    "2026-11-29T10:00:00Z",
    "9999-12-31T23:59:59Z",
    "0000-01-01T00:00:00Z",
    "2026-13-45T99:99:99Z",
    "NaN",
    "∞",
    "💥",
];

fn args_with(value: &str) -> Vec<Vec<String>> {
    let uuid = Uuid::nil().to_string();
    [
        vec!["listen", "--sweep-every", value],
        vec!["sweep", "--batch-size", value],
        vec!["dispatch", "--limit", value],
        vec!["dispatch", value],
        vec!["send", value],
        vec!["send", "--retrying", "--limit", value],
        vec!["replay", "--failed", "--since", value],
        vec!["replay", &uuid, "--max-retries", value],
        vec!["replay", value],
        vec!["failures", "--since", value],
        vec!["failures", "--limit", value],
        vec!["show", value],
        vec!["cleanup", "--older-than", value],
        vec!["cleanup", "--older-than", "30d", "--batch-size", value],
        vec!["verify", "--window", value],
        vec!["verify", "--limit", value],
    ]
    .into_iter()
    .map(|args| {
        std::iter::once("webhooks")
            .chain(args)
            .map(str::to_owned)
            .collect()
    })
    .collect()
}

#[test]
fn no_argument_value_panics_and_bad_ones_are_usage_errors() {
    let mut accepted = 0;
    for value in VALUES {
        for args in args_with(value) {
            let Ok(cli) = Cli::try_parse_from(&args) else {
                continue;
            };
            accepted += 1;
            // What run() computes from the arguments before touching the network.
            match cli.command {
                Command::Operate(Operation::Replay {
                    since: Some(since), ..
                })
                | Command::Operate(Operation::Failures {
                    since: Some(since), ..
                }) => {
                    let _ = since.at(Utc::now());
                }
                Command::Operate(Operation::Cleanup { older_than, .. }) => {
                    let _ = Cleanup::older_than(older_than, Utc::now());
                }
                Command::Operate(Operation::Verify { window, .. }) => {
                    let _ = delivery::completeness::checked_before(Utc::now(), window);
                }
                _ => {}
            }
        }
    }
    assert!(accepted > 10, "the good values parse: {accepted}");
}

#[test]
fn the_reported_panics_are_clear_errors() {
    let parse = |args: &[&str]| {
        Cli::try_parse_from(std::iter::once("webhooks").chain(args.iter().copied()))
            .map_err(|e| e.to_string())
    };
    let zero = parse(&["listen", "--sweep-every", "0s"])
        .err()
        .unwrap_or_default();
    assert!(zero.contains("shorter than 1s"), "{zero}");
    assert!(parse(&["listen", "--sweep-every", "off"]).is_ok());
    let huge = parse(&["replay", "--failed", "--since", "100000000d"]);
    let huge = match huge {
        Ok(Cli {
            command:
                Command::Operate(Operation::Replay {
                    since: Some(since), ..
                }),
        }) => since.at(Utc::now()).err().unwrap_or_default(),
        other => format!("{other:?}"),
    };
    assert!(huge.contains("too long ago"), "{huge}");
    let batch = parse(&["sweep", "--batch-size", "0"])
        .err()
        .unwrap_or_default();
    assert!(batch.contains("--batch-size"), "{batch}");
    let retries = parse(&["replay", "--failed", "--max-retries", "-1"]);
    assert!(retries.is_err());
}

#[test]
fn sweep_every_and_since_parse_what_they_document() {
    assert_eq!(
        sweep_every("10m"),
        Ok(SweepEvery(Some(Duration::from_secs(600))))
    );
    assert_eq!(sweep_every("off"), Ok(SweepEvery(None)));
    assert!(sweep_every("999ms").is_err());
    let now = Utc::now();
    assert_eq!(
        since("2h").and_then(|s| s.at(now)),
        Ok(now - chrono::Duration::hours(2))
    );
    assert_eq!(
        since("2026-11-29T10:00:00Z")
            .and_then(|s| s.at(now))
            .map(|t| t.to_rfc3339()),
        Ok("2026-11-29T10:00:00+00:00".to_owned())
    );
}
