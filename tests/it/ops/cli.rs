//! The built `webhooks` binary, run as an operator would with `DATABASE_URL` pointing at the
//! test's schema: human and `--json` output, and the exit codes scripts rely on (0 ok, 1 a
//! problem found, 2 could not run). `make test` builds the binary first.

use std::process::{Command, Output};

use serde_json::Value;
use uuid::Uuid;

use super::seed::{self, health_set};
use super::verify::{captured_bookings, uncaptured_bookings};
use crate::support::TestDb;
use crate::support::receiver::refusing_url;
use crate::support::scratch::webhooks_binary;

/// Runs `webhooks args…` against `database_url` with nothing else configured.
pub(crate) fn webhooks(database_url: &str, args: &[&str]) -> Output {
    Command::new(webhooks_binary())
        .args(args)
        .env_clear()
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run webhooks")
}

pub(crate) fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub(crate) fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out.stdout)))
}

async fn run(db: &TestDb, args: &'static [&'static str]) -> Output {
    let url = db.url.clone();
    tokio::task::spawn_blocking(move || webhooks(&url, args))
        .await
        .expect("command task")
}

#[tokio::test]
async fn read_commands_print_tables_or_json_and_exit_0() {
    let db = TestDb::new().await;
    let id = health_set(&db, seed::now()).await;

    let stats = run(&db, &["stats"]).await;
    assert_eq!(code(&stats), Some(0), "{}", text(&stats.stderr));
    let table = text(&stats.stdout);
    assert!(
        table.contains("new_request") && table.contains("66.67%") && table.contains("p95 ms"),
        "{table}"
    );

    let stats = run(&db, &["stats", "--json"]).await;
    assert_eq!(code(&stats), Some(0));
    let rows = json(&stats);
    let all = rows
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["webhookType"] == "all"))
        .expect("overall row");
    let figures: Vec<i64> = [
        "total",
        "succeeded",
        "pending",
        "retrying",
        "failed",
        "skipped",
        "attempts24h",
        "failedAttempts24h",
    ]
    .iter()
    .map(|k| all[*k].as_i64().unwrap_or(-1))
    .collect();
    assert_eq!(figures, [9, 3, 1, 2, 2, 1, 9, 6], "{all}");
    assert_eq!(
        (all["successRatePct"].as_f64(), all["p50Ms24h"].as_f64()),
        (Some(60.0), Some(300.0))
    );

    let failures = run(&db, &["failures", "--status", "failed", "--json"]).await;
    assert_eq!(code(&failures), Some(0));
    let listed: Vec<String> = json(&failures)["deliveries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(listed, [id[&'H'].to_string(), id[&'C'].to_string()]);

    let url = db.url.clone();
    let b = id[&'B'].to_string();
    let show = tokio::task::spawn_blocking(move || webhooks(&url, &["show", &b]))
        .await
        .expect("show");
    assert_eq!(code(&show), Some(0));
    let shown = text(&show.stdout);
    assert!(
        shown.contains("timed out after 10s")
            && shown.contains("HTTP 503")
            && shown.contains("3 of 4"),
        "{shown}"
    );
}

#[tokio::test]
async fn problems_found_exit_1_with_a_clear_message() {
    let db = TestDb::new().await;
    let url = db.url.clone();
    let unknown = Uuid::new_v4().to_string();
    let show = tokio::task::spawn_blocking(move || webhooks(&url, &["show", &unknown]))
        .await
        .expect("show");
    assert_eq!(code(&show), Some(1));
    assert!(
        text(&show.stderr).contains("no delivery with id"),
        "{}",
        text(&show.stderr)
    );
    assert!(show.stdout.is_empty());

    let captured = captured_bookings(&db).await;
    let complete = run(&db, &["verify", "--window", "0s"]).await;
    assert_eq!(code(&complete), Some(0), "{}", text(&complete.stdout));
    assert!(text(&complete.stdout).starts_with("complete"));

    let missing = uncaptured_bookings(&db, captured[0]).await;
    let verify = run(&db, &["verify", "--window", "0s", "--json"]).await;
    assert_eq!(code(&verify), Some(1));
    let report = json(&verify);
    assert_eq!(report["missing"], 4);
    let listed: Vec<(String, String)> = report["deliveries"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m["bookingId"].as_str().unwrap_or("").to_owned(),
                m["missingType"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = missing
        .iter()
        .map(|(b, t)| (b.to_string(), t.clone()))
        .collect();
    assert_eq!(listed, expected);

    let healthy = run(&db, &["doctor"]).await;
    assert_eq!(code(&healthy), Some(0), "{}", text(&healthy.stdout));
    db.client()
        .await
        .batch_execute(
            "ALTER TABLE booking_requests DISABLE TRIGGER trigger_status_update_notification",
        )
        .await
        .expect("disable");
    let doctor = run(&db, &["doctor"]).await;
    assert_eq!(code(&doctor), Some(1));
    assert!(
        text(&doctor.stdout).contains("trigger_status_update_notification is DISABLED"),
        "{}",
        text(&doctor.stdout)
    );
}

#[tokio::test]
async fn cleanup_runs_from_the_command_line() {
    let db = TestDb::new().await;
    let now = seed::now();
    let old =
        seed::Delivery::new("new_request", "succeeded", -seed::days(40)).resolved(-seed::days(40));
    seed::insert(&db, now, &old).await;
    seed::insert(
        &db,
        now,
        &seed::Delivery::new("new_request", "pending", -seed::days(40)).due(-seed::days(40)),
    )
    .await;

    let dry = run(&db, &["cleanup", "--older-than", "30d", "--dry-run"]).await;
    assert_eq!(code(&dry), Some(0), "{}", text(&dry.stderr));
    assert!(
        text(&dry.stdout).starts_with("would remove 1 deliveries (1 succeeded)"),
        "{}",
        text(&dry.stdout)
    );
    let done = run(&db, &["cleanup", "--older-than", "30d", "--json"]).await;
    assert_eq!(code(&done), Some(0));
    assert_eq!(json(&done)["deliveries"]["succeeded"], 1);
    assert_eq!(
        db.count("SELECT count(*) FROM webhook_deliveries").await,
        1,
        "the pending one stays"
    );
}

#[tokio::test]
async fn what_cannot_run_exits_2() {
    let db = TestDb::new().await;
    let cases: [&'static [&'static str]; 5] = [
        &["cleanup", "--older-than", "2h"],
        &["failures", "--status", "bogus"],
        &["verify", "--window", "soon"],
        &["show", "not-a-uuid"],
        &["stats", "--limit", "3"],
    ];
    for args in cases {
        let url = db.url.clone();
        let out = tokio::task::spawn_blocking(move || webhooks(&url, args))
            .await
            .expect("run");
        assert_eq!(code(&out), Some(2), "{args:?}: {}", text(&out.stderr));
        assert!(!out.stderr.is_empty(), "{args:?} says why");
    }
    let refused = refusing_url()
        .await
        .replace("http://", "postgres://postgres@")
        .replace("/hook", "/test?connect_timeout=2");
    let down = tokio::task::spawn_blocking(move || webhooks(&refused, &["stats"]))
        .await
        .expect("run");
    assert_eq!(code(&down), Some(2));
    assert!(
        text(&down.stderr).starts_with("error: could not connect to the database at 127.0.0.1:"),
        "{}",
        text(&down.stderr)
    );

    let unset = tokio::task::spawn_blocking(|| webhooks("", &["doctor"]))
        .await
        .expect("run");
    assert_eq!(code(&unset), Some(2));
    assert!(text(&unset.stderr).contains("DATABASE_URL: is required but not set"));

    let help = tokio::task::spawn_blocking(|| webhooks("", &["--help"]))
        .await
        .expect("run");
    assert_eq!(code(&help), Some(0));
    for command in [
        "stats",
        "failures",
        "show",
        "cleanup",
        "verify",
        "doctor",
        "Exit status",
    ] {
        assert!(
            text(&help.stdout).contains(command),
            "--help lists {command}"
        );
    }
    for command in ["stats", "failures", "show", "cleanup", "verify", "doctor"] {
        let out = tokio::task::spawn_blocking(move || webhooks("", &[command, "--help"]))
            .await
            .expect("run");
        assert_eq!(code(&out), Some(0));
        assert!(
            text(&out.stdout).contains("Exit status") && text(&out.stdout).contains("webhooks "),
            "{command} --help"
        );
    }
}
