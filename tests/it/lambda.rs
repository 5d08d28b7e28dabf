//! Smoke test through the real Lambda runtime: `cargo lambda watch` serves both functions (as
//! `make watch` does) and `cargo lambda invoke` calls them (as `make invoke-dispatch` and
//! `make invoke-sweep` do). The binaries are built by `make test` beforehand.

use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Receiver, Reply, SIGNING_SECRET, TOKEN, TestDb};

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The venv `make tools` installs cargo-lambda into, or `$CARGO_LAMBDA_BIN_DIR`.
fn tool_path() -> String {
    let venv = std::env::var("CARGO_LAMBDA_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target/venv/bin"));
    assert!(
        venv.join("cargo-lambda").exists(),
        "cargo-lambda not found in {}: run `make tools` (pip install cargo-lambda into target/venv)",
        venv.display()
    );
    format!(
        "{}:{}",
        venv.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// `cargo lambda watch` in its own process group, stopped with the group on drop.
struct Watch(Child);

impl Drop for Watch {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.0.wait();
    }
}

fn invoke(path: &str, port: u16, function: &str, event: &Value) -> Value {
    let output = Command::new("cargo")
        .args([
            "lambda",
            "invoke",
            function,
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
            &port.to_string(),
            "--data-ascii",
        ])
        .arg(event.to_string())
        .env("PATH", path)
        .current_dir(workspace_root())
        .output()
        .expect("run cargo lambda invoke");
    assert!(
        output.status.success(),
        "invoke {function} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the function returns JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn both_functions_run_under_cargo_lambda_watch() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let path = tool_path();
    let port = crate::support::cluster::free_port();
    let log_path = std::env::temp_dir().join(format!("lambda-watch-{port}.log"));
    let log = std::fs::File::create(&log_path).expect("log file");
    let child = Command::new("cargo")
        .args([
            "lambda",
            "watch",
            "--ignore-changes",
            "--quiet",
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
        ])
        .arg(port.to_string())
        .env("PATH", &path)
        .env("DATABASE_URL", &db.url)
        .env("WEBHOOK_URL", &receiver.url)
        .env("WEBHOOK_AUTH_TOKEN", TOKEN)
        .env("WEBHOOK_SIGNING_SECRET", SIGNING_SECRET)
        .current_dir(workspace_root())
        .stdout(Stdio::null())
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect("start cargo lambda watch");
    let _watch = Watch(child);
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "cargo lambda watch did not start"
        );
        std::thread::sleep(Duration::from_millis(100)); // readiness polling of a child process
    }

    let (_, first) = db.booking_with_delivery().await;
    let report = tokio::task::spawn_blocking({
        let path = path.clone();
        move || invoke(&path, port, "dispatch", &json!({ "deliveryId": first }))
    })
    .await
    .expect("invoke task");
    assert_eq!(report["succeeded"], json!([first]), "{report}");

    let (_, second) = db.booking_with_delivery().await;
    let sweep = tokio::task::spawn_blocking(move || invoke(&path, port, "retry-sweep", &json!({})))
        .await
        .expect("invoke task");
    assert_eq!(
        (sweep["processed"].clone(), sweep["succeeded"].clone()),
        (json!(1), json!(1)),
        "{sweep}"
    );
    assert_eq!(db.delivery(second).await.status, "succeeded");
    let ids: Vec<String> = receiver
        .requests()
        .iter()
        .map(|r| r.header("webhook-id"))
        .collect();
    assert_eq!(ids, vec![first.to_string(), second.to_string()]);

    // The functions' logs: the sweep's report is a JSON object Logs Insights can query, and a
    // local run warns about nothing (no deadline from the emulator, its concurrency of one).
    let logged = logged_line(&log_path, "sweep finished");
    assert_eq!(logged["report"]["processed"], 1, "{logged}");
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let _ = std::fs::remove_file(&log_path);
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(r#""level":"WARN""#))
        .collect();
    assert!(warnings.is_empty(), "{warnings:#?}");
}

/// The first JSON line of the log at `path` with `message`, waiting for it to be written (a
/// safety net of 20 s, not a timing assumption).
fn logged_line(path: &std::path::Path, message: &str) -> Value {
    let started = Instant::now();
    loop {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        let line = log
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["message"] == message);
        if let Some(line) = line {
            return line;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no {message:?} line in:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50)); // polling a child's log file
    }
}

/// The deploy settings `cargo lambda deploy` would use for `function`, read with `--dry` from
/// the binary `make test` built (copied so parallel runs do not share the package it writes).
fn deploy_settings(path: &str, function: &str) -> Value {
    let dir = std::env::temp_dir().join(format!("deploy-{function}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let binary = dir.join("bootstrap");
    std::fs::copy(
        workspace_root().join("target/debug").join(function),
        &binary,
    )
    .expect("the function binary: `make test` builds it first");
    let output = Command::new("cargo")
        .args(["lambda", "deploy", "--dry", "--output-format", "json"])
        .arg("--binary-path")
        .arg(&binary)
        .arg(function)
        .env("PATH", path)
        // Never reaches AWS: --dry only packages and reports.
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "dry-run")
        .env("AWS_SECRET_ACCESS_KEY", "dry-run")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .current_dir(workspace_root())
        .output()
        .expect("run cargo lambda deploy --dry");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "deploy --dry {function} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // A progress line may precede the JSON.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json = &stdout[stdout.find('{').unwrap_or(0)..];
    serde_json::from_str::<Value>(json).expect("JSON report")["config"].clone()
}

#[test]
fn cargo_lambda_deploy_reads_timeout_and_memory_from_the_package_metadata() {
    let path = tool_path();
    for (function, timeout) in [("dispatch", 30), ("retry-sweep", 120)] {
        let config = deploy_settings(&path, function);
        assert_eq!(
            (config["timeout"].clone(), config["memory"].clone()),
            (json!(timeout), json!(256)),
            "{function}: {config}"
        );
    }
}

/// `RUST_LOG=trace` through the real Lambda runtime prints no secret: lambda_runtime logs every
/// raw event at trace, and a function-URL call to dispatch carries the dispatch token.
#[tokio::test(flavor = "multi_thread")]
async fn trace_logging_through_the_runtime_prints_no_secret() {
    const DISPATCH_TOKEN: &str = "dispatch-token-5b9e0c";
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let path = tool_path();
    let port = crate::support::cluster::free_port();
    let logs = std::env::temp_dir().join(format!("lambda-trace-{}.log", uuid::Uuid::new_v4()));
    let log_file = std::fs::File::create(&logs).expect("log file");
    let child = Command::new("cargo")
        .args([
            "lambda",
            "watch",
            "--ignore-changes",
            "--quiet",
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
        ])
        .arg(port.to_string())
        // The function's own environment: trace for everything, text logs.
        .args([
            "--env-var",
            "RUST_LOG=trace",
            "--env-var",
            "WEBHOOK_LOG_FORMAT=text",
        ])
        .env("PATH", &path)
        .env("DATABASE_URL", &db.url)
        .env("WEBHOOK_URL", &receiver.url)
        .env("WEBHOOK_AUTH_TOKEN", TOKEN)
        .env("WEBHOOK_SIGNING_SECRET", SIGNING_SECRET)
        .env("WEBHOOK_DISPATCH_TOKEN", DISPATCH_TOKEN)
        .current_dir(workspace_root())
        .stdout(log_file.try_clone().expect("log file"))
        .stderr(log_file)
        .process_group(0)
        .spawn()
        .expect("start cargo lambda watch");
    let watch = Watch(child);
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "cargo lambda watch did not start"
        );
        std::thread::sleep(Duration::from_millis(100)); // readiness polling of a child process
    }
    let (_, id) = db.booking_with_delivery().await;
    let event = json!({
        "version": "2.0",
        "rawPath": "/",
        "headers": { "authorization": format!("Bearer {DISPATCH_TOKEN}"), "content-type": "application/json" },
        "requestContext": { "http": { "method": "POST", "path": "/" } },
        "body": json!({ "deliveryId": id }).to_string(),
        "isBase64Encoded": false
    });
    let report = tokio::task::spawn_blocking(move || invoke(&path, port, "dispatch", &event))
        .await
        .expect("invoke task");
    assert_eq!(report["succeeded"], json!([id]), "{report}");
    drop(watch);
    let logged = std::fs::read_to_string(&logs).expect("logs");
    let _ = std::fs::remove_file(&logs);
    // The function logged at trace (our own events), and the invocation is in the log...
    assert!(logged.contains("dispatch finished"), "{logged}");
    // ...but no secret, and not the raw event.
    for secret in [DISPATCH_TOKEN, TOKEN, SIGNING_SECRET] {
        assert!(!logged.contains(secret), "{secret} logged:\n{logged}");
    }
    assert!(!logged.contains("raw JSON event"), "{logged}");
}
