//! Listen mode: a committed booking's notification goes out on NOTIFY, with no invocation.

use std::time::Duration;

use delivery::Clock;
use delivery::listen::{ListenOptions, listen};
use tokio::sync::oneshot;

use crate::support::db::{base_url, connect, url_with_schema};
use crate::support::{Receiver, Reply, TestDb};

const LIMIT: Duration = Duration::from_secs(15);

#[tokio::test]
async fn listen_mode_catches_up_then_delivers_each_commit_and_survives_a_dropped_connection() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    // A name of its own so the test can find (and kill) exactly this listener's connection.
    let url = format!(
        "{}&application_name={}",
        url_with_schema(&base_url(), &db.schema),
        db.schema
    );
    let deps = crate::support::deps::deps_for_url(&url, &receiver.url, &[]);

    // Captured while nobody listened: the catch-up pass sends it.
    let (_, early) = db.booking_with_delivery().await;
    let (stop, stopped) = oneshot::channel::<()>();
    let listener = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        listen(
            &deps,
            Clock::System,
            ListenOptions { sweep_every: None },
            shutdown,
        )
        .await
    });
    let requests = receiver.wait_for(1, LIMIT).await;
    assert_eq!(requests[0].header("webhook-id"), early.to_string());

    // LISTEN precedes the catch-up, so from here on every commit is notified.
    let (_, on_commit) = db.booking_with_delivery().await;
    let requests = receiver.wait_for(2, LIMIT).await;
    assert_eq!(requests[1].header("webhook-id"), on_commit.to_string());
    // Its NOTIFY is claimed on a connection of listen's own, neither the listening one nor the
    // pool's: the claim prepared once. (The catch-up, on the pool, may have taken it first if
    // the booking committed while it ran; the NOTIFY is claimed all the same. That connection
    // also runs listen's flag statements, V18, so its last statement is looked for until it
    // is the claim.)
    let admin = connect(&base_url()).await;
    let claimed_on = async {
        loop {
            let queries: Vec<String> = admin
                .query(
                    "SELECT query FROM pg_stat_activity WHERE application_name = $1",
                    &[&db.schema],
                )
                .await
                .expect("activity")
                .iter()
                .map(|row| row.get(0))
                .collect();
            // pg_stat_activity keeps the first kilobyte of a statement.
            if queries.iter().any(|query| {
                query.len() > 100 && delivery::sql::IDS_CLAIM.starts_with(query.as_str())
            }) {
                return queries;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    let claimed_on = tokio::time::timeout(LIMIT, claimed_on)
        .await
        .expect("the prepared claim runs on a connection of listen's own");
    assert!(claimed_on.iter().any(|query| query.starts_with("LISTEN")));

    // The server drops the connection: it reconnects, and nothing committed meanwhile is lost.
    let killed: i64 = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
              WHERE application_name = $1 AND query LIKE 'LISTEN%'",
            &[&db.schema],
        )
        .await
        .expect("terminate")
        .get(0);
    assert_eq!(killed, 1, "the listener's connection was found");
    let (_, after_drop) = db.booking_with_delivery().await;
    let requests = receiver.wait_for(3, LIMIT).await;
    assert_eq!(requests[2].header("webhook-id"), after_drop.to_string());

    let _ = stop.send(());
    listener
        .await
        .expect("listener task")
        .expect("listen ends cleanly on shutdown");
    assert_eq!(receiver.requests().len(), 3, "each delivery sent once");
    // Shutdown let the batch in flight finish: every outcome is recorded.
    for id in [early, on_commit, after_drop] {
        assert_eq!(db.delivery(id).await.status, "succeeded");
    }
}

/// Process managers (systemd, ECS, Kubernetes) stop a service with SIGTERM: `webhooks listen`
/// finishes what it holds and exits 0, like on Ctrl-C, instead of dying by the signal.
#[tokio::test]
async fn the_command_stops_cleanly_on_sigterm() {
    use std::process::{Command, Stdio};

    use crate::support::scratch::webhooks_binary;
    use crate::support::{SIGNING_SECRET, TOKEN};

    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let (_, early) = db.booking_with_delivery().await;
    let mut child = Command::new(webhooks_binary())
        .arg("listen")
        .env("DATABASE_URL", url_with_schema(&base_url(), &db.schema))
        .env("WEBHOOK_URL", &receiver.url)
        .env("WEBHOOK_AUTH_TOKEN", TOKEN)
        .env("WEBHOOK_SIGNING_SECRET", SIGNING_SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start webhooks listen");
    // The catch-up runs after LISTEN: once it has delivered, the listener is up.
    let requests = receiver.wait_for(1, LIMIT).await;
    assert_eq!(requests[0].header("webhook-id"), early.to_string());

    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("exit status");
    assert!(
        status.success(),
        "exited by the signal, not cleanly: {status}"
    );
}

/// The catch-up goes on while batches come back full, counting every row a batch took: a
/// superseded approval in the first batch (taken, never sent) must not end it early.
#[tokio::test]
async fn the_catch_up_goes_on_past_a_batch_with_a_superseded_row() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    // Captured while nobody listened, in this order: an approval, the rejection that replaced
    // it (no tutor address: the booking's new_request is skipped), then a new request.
    let booking = db.insert_booking(None, Some("student@example.com")).await;
    let client = db.client().await;
    for status in ["approved", "rejected"] {
        client
            .execute(
                "UPDATE booking_requests SET status = $2 WHERE id = $1",
                &[&booking, &status],
            )
            .await
            .expect("decide");
    }
    let (_, later) = db.booking_with_delivery().await;
    let deps = crate::support::deps::deps_with(&db, &receiver.url, &[("WEBHOOK_SWEEP_BATCH", "2")]);
    let (stop, stopped) = oneshot::channel::<()>();
    let listener = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        listen(
            &deps,
            Clock::System,
            ListenOptions { sweep_every: None },
            shutdown,
        )
        .await
    });
    // The first batch: the approval (superseded) and the rejection; the second: the request.
    let requests = receiver.wait_for(2, LIMIT).await;
    let _ = stop.send(());
    listener.await.expect("listener task").expect("listen");
    let mut types: Vec<String> = requests
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap_or_default().to_owned())
        .collect();
    types.sort();
    assert_eq!(types, vec!["new_request", "rejected"]);
    assert_eq!(db.delivery(later).await.status, "succeeded");
}

/// A listener that cannot reach its database at start fails at once, saying where it looked
/// (never the password), instead of retrying forever and looking hung; the library's listen
/// too, before it has ever listened.
#[tokio::test]
async fn listen_fails_fast_when_it_cannot_connect_at_start() {
    use std::process::Command;

    use crate::support::receiver::refusing_url;
    use crate::support::scratch::webhooks_binary;
    use crate::support::{SIGNING_SECRET, TOKEN};

    let nothing = refusing_url().await;
    let port = nothing
        .trim_start_matches("http://127.0.0.1:")
        .trim_end_matches("/hook")
        .to_owned();
    let url = format!("postgres://postgres:s3cret@127.0.0.1:{port}/test");
    let mut command = Command::new(webhooks_binary());
    command
        .arg("listen")
        .env_clear()
        .env("DATABASE_URL", &url)
        .env("WEBHOOK_URL", &nothing)
        .env("WEBHOOK_AUTH_TOKEN", TOKEN)
        .env("WEBHOOK_SIGNING_SECRET", SIGNING_SECRET);
    let out = tokio::time::timeout(
        LIMIT,
        tokio::task::spawn_blocking(move || command.output().expect("run webhooks listen")),
    )
    .await
    .expect("listen gives up at once")
    .expect("join");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: could not connect to the database at 127.0.0.1:{port} (database test): "
        )) && stderr.contains("check that the server is running")
            && !stderr.contains("s3cret"),
        "{stderr}"
    );

    let deps = crate::support::deps::deps_for_url(&url, &nothing, &[]);
    let ended = tokio::time::timeout(
        LIMIT,
        listen(
            &deps,
            Clock::System,
            ListenOptions { sweep_every: None },
            std::future::pending(),
        ),
    )
    .await
    .expect("the library's listen gives up at once too");
    let message = ended.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.starts_with(&format!(
            "could not connect to the database at 127.0.0.1:{port}"
        )),
        "{message}"
    );
}
