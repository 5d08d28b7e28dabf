//! One output convention for every command (`ops::output`): `--json` keys in camelCase
//! everywhere, human output that fits `COLUMNS` (else 100 columns), colour only on a terminal
//! and never with `NO_COLOR`. The real binary, on a seeded schema.

use std::process::{Command, Output};

use serde_json::Value;

use super::cli::{code, text};
use super::seed::{self, health_set};
use super::send::webhooks_sending;
use crate::support::scratch::webhooks_binary;
use crate::support::{Receiver, Reply, SIGNING_SECRET, TOKEN, TestDb};

/// Every key of `value`, at every depth, with where it is.
fn keys(value: &Value, path: &str, found: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                found.push((path.to_owned(), key.clone()));
                keys(inner, &format!("{path}.{key}"), found);
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|v| keys(v, &format!("{path}[]"), found)),
        _ => {}
    }
}

fn camel_case(key: &str) -> bool {
    key.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && key.chars().all(|c| c.is_ascii_alphanumeric())
}

/// The commands with `--json`, each with what it needs to have something to say.
fn commands(id: &str) -> Vec<Vec<String>> {
    [
        "stats",
        "failures",
        "failures --status superseded",
        &format!("show {id}"),
        "verify --window 0s",
        "doctor",
        "cleanup --older-than 30d --dry-run",
        "replay --failed",
        "sweep",
        "dispatch --limit 5",
        "send --retrying",
        &format!("send {id}"),
        "migrate --dry-run",
    ]
    .iter()
    .map(|c| c.split(' ').map(str::to_owned).collect())
    .collect()
}

#[tokio::test]
async fn every_command_speaks_json_with_camel_case_keys() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let id = health_set(&db, seed::now()).await[&'B'].to_string();
    for mut args in commands(&id) {
        args.push("--json".into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = webhooks_sending(&db, &receiver.url, &args).await;
        assert!(
            matches!(code(&out), Some(0 | 1)),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let value: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?} is not JSON ({e}): {}", text(&out.stdout)));
        let mut found = Vec::new();
        keys(&value, "", &mut found);
        assert!(!found.is_empty(), "{args:?}: {value}");
        let wrong: Vec<_> = found.iter().filter(|(_, k)| !camel_case(k)).collect();
        assert!(
            wrong.is_empty(),
            "{args:?}: keys not in camelCase: {wrong:?}"
        );
    }
}

/// Runs `webhooks args…` with `env` added, its stdout a pipe; or, with `terminal`, under
/// `script`, whose pseudo-terminal is the command's stdout.
fn human(database_url: &str, args: &[String], env: &[(&str, &str)], terminal: bool) -> Output {
    let mut command = if terminal {
        let line = std::iter::once(webhooks_binary().display().to_string())
            .chain(args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ");
        let mut script = Command::new("script");
        script.args(["-qec", &line, "/dev/null"]);
        script
    } else {
        let mut direct = Command::new(webhooks_binary());
        direct.args(args);
        direct
    };
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .env("WEBHOOK_URL", "http://127.0.0.1:9/hook")
        .env("WEBHOOK_AUTH_TOKEN", TOKEN)
        .env("WEBHOOK_SIGNING_SECRET", SIGNING_SECRET)
        .env("RUST_LOG", "off")
        .envs(env.iter().copied())
        .output()
        .expect("run webhooks")
}

#[tokio::test]
async fn human_output_fits_the_terminal_and_is_coloured_only_there() {
    let db = TestDb::new().await;
    let id = health_set(&db, seed::now()).await[&'B'].to_string();
    // An error as long as receivers write them.
    db.client()
        .await
        .batch_execute(
            "UPDATE webhook_deliveries SET last_error = 'connect: error sending request for url \
             (https://notify.example.com/functions/v1/send-booking-notification): client error \
             (Connect): tcp connect error: Connection refused (os error 111)'
              WHERE status IN ('retrying', 'failed')",
        )
        .await
        .expect("long errors");
    let id = id.as_str();
    let commands = commands(id);
    let url = db.url.clone();
    let (seen, coloured, plain) = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        for args in &commands {
            for (width, env) in [(80, vec![("COLUMNS", "80")]), (100, vec![])] {
                seen.push((args.clone(), width, human(&url, args, &env, false)));
            }
        }
        let doctor = vec!["doctor".to_owned()];
        let coloured = human(&url, &doctor, &[("TERM", "xterm")], true);
        let plain = human(&url, &doctor, &[("TERM", "xterm"), ("NO_COLOR", "1")], true);
        (seen, coloured, plain)
    })
    .await
    .expect("commands");
    for (args, width, out) in &seen {
        assert!(
            matches!(code(out), Some(0 | 1)),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let stdout = text(&out.stdout);
        assert!(!stdout.trim().is_empty(), "{args:?} printed nothing");
        assert!(!stdout.contains('\x1b'), "{args:?}: colour into a pipe");
        for line in stdout.lines() {
            assert!(
                line.chars().count() <= *width,
                "{args:?} at {width} columns: {} characters:\n{line}",
                line.chars().count()
            );
        }
    }
    assert!(
        text(&coloured.stdout).contains("\x1b[32mok\x1b[0m"),
        "{}",
        text(&coloured.stdout)
    );
    assert!(
        !text(&plain.stdout).contains('\x1b'),
        "NO_COLOR: {}",
        text(&plain.stdout)
    );
}
