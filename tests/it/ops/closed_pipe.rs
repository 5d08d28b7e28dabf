//! Every command treats a closed stdout as the end of its output (`webhooks stats | head -1`,
//! `… | less` quit early): no panic, and the exit code says what the command did — a
//! committed adoption exits 0 and stays committed.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::scratch::{ScratchDb, webhooks_binary};
use crate::support::{Receiver, Reply, SIGNING_SECRET, TOKEN, TestDb};

/// Runs `webhooks args…` whose stdout is a pipe closed before anything is written, as `head`
/// leaves it once it has what it wants: the first write fails (EPIPE). Returns the exit code
/// and stderr.
async fn with_stdout_closed(database_url: &str, webhook_url: &str, args: &[&str]) -> (i32, String) {
    let mut command = Command::new(webhooks_binary());
    command
        .args(args)
        .env_clear()
        .env("DATABASE_URL", database_url)
        .env("WEBHOOK_URL", webhook_url)
        .env("WEBHOOK_AUTH_TOKEN", TOKEN)
        .env("WEBHOOK_SIGNING_SECRET", SIGNING_SECRET)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let run = tokio::task::spawn_blocking(move || {
        let mut child = command.spawn().expect("run webhooks");
        drop(child.stdout.take());
        child.wait_with_output().expect("wait")
    });
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the command ends")
        .expect("join");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code().unwrap_or(-1), stderr)
}

#[tokio::test]
async fn a_closed_stdout_ends_the_output_of_every_command_not_the_command() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let (_, id) = db.booking_with_delivery().await;
    let id = id.to_string();
    let commands: Vec<(Vec<&str>, i32)> = vec![
        (vec!["--help"], 0),
        (vec!["--version"], 0),
        (vec!["migrate"], 0),
        (vec!["migrate", "--json"], 0),
        (vec!["dispatch", &id], 0),
        (vec!["sweep"], 0),
        (vec!["dispatch", "--limit", "5"], 0),
        (vec!["replay", "--failed"], 0),
        (vec!["replay", "--failed", "--json"], 0),
        (vec!["sweep", "--json"], 0),
        (vec!["send", "--retrying"], 0),
        (vec!["send", &id], 0),
        (vec!["send", &id, "--json"], 0),
        (vec!["stats"], 0),
        (vec!["stats", "--json"], 0),
        (vec!["failures"], 0),
        (vec!["failures", "--json"], 0),
        (vec!["show", &id], 0),
        (vec!["show", &id, "--json"], 0),
        (vec!["verify", "--window", "0s"], 0),
        (vec!["verify", "--window", "0s", "--json"], 0),
        (vec!["cleanup", "--older-than", "30d", "--dry-run"], 0),
        (vec!["cleanup", "--older-than", "30d"], 0),
    ];
    for (args, expected) in commands {
        let (code, stderr) = with_stdout_closed(&db.url, &receiver.url, &args).await;
        assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
        assert_eq!(code, expected, "{args:?}: {stderr}");
    }
    // The delivery was sent once (dispatch), and the reads saw it.
    assert_eq!(receiver.requests().len(), 1);
    assert_eq!(
        db.delivery(id.parse().expect("id")).await.status,
        "succeeded"
    );

    // doctor exits 1 here (nothing listens, no wake-up: warnings; no schema owner issue), the
    // code it would give with an open stdout.
    let open = Command::new(webhooks_binary())
        .arg("doctor")
        .env_clear()
        .env("DATABASE_URL", &db.url)
        .output()
        .expect("doctor");
    let (code, stderr) = with_stdout_closed(&db.url, &receiver.url, &["doctor"]).await;
    assert!(!stderr.contains("panicked"), "doctor panicked: {stderr}");
    assert_eq!(Some(code), open.status.code(), "doctor: {stderr}");
}

#[tokio::test]
async fn an_adoption_whose_reader_quit_early_is_committed_and_exits_0() {
    let db = ScratchDb::with_seed_system().await;
    let (code, stderr) =
        with_stdout_closed(&db.url, "http://127.0.0.1:9", &["migrate", "--adopt-seed"]).await;
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        db.count("SELECT count(*) FROM webhook_deliveries").await,
        9,
        "the adoption committed: every importable row is a delivery"
    );
}

#[tokio::test]
async fn the_receiver_keeps_serving_after_its_reader_quit() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        probe.local_addr().expect("addr").port()
    };
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(webhooks_binary())
        .args(["receiver", "--port", &port.to_string()])
        .env_clear()
        .env("WEBHOOK_AUTH_TOKEN", TOKEN)
        .env("WEBHOOK_SIGNING_SECRET", SIGNING_SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the receiver");
    drop(child.stdout.take());
    // It still answers (401: no token) after its first line failed to print. Polled until it
    // listens: starting takes what it takes.
    let mut answered = String::new();
    for _ in 0..200 {
        if let Ok(status) = post_status(&addr).await {
            answered = status;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(answered.starts_with("HTTP/1.1 401"), "{answered:?}");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
}

/// POSTs `{}` without credentials to `addr`; the response's status line.
async fn post_status(addr: &str) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
        )
        .await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response).into_owned();
    Ok(text.lines().next().unwrap_or_default().to_owned())
}
