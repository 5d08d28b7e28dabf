//! Adopting the old pg_net system, rolling back with the printed script, adopting again — any
//! number of times — with bookings captured in every window; decisions judged with today's
//! booking; the old pg_cron sender stopped before the takeover. Each test in a database of its
//! own built by `fixtures/seed_system.sql`.

use std::time::Duration;

use chrono::Utc;
use delivery::Clock;
use delivery::schema::MigrateOptions;
use delivery::sweep::{SweepOptions, sweep};
use serde_json::Value;
use tokio_postgres::Client;
use uuid::Uuid;

use crate::support::scratch::{APP_SCHEMA, ScratchDb, assert_same, snapshot, webhooks};
use crate::support::{Receiver, Reply, deps_for_url};

/// `webhooks migrate --adopt-seed --json`: the report (with the rollback script).
async fn adopt(db: &ScratchDb) -> Value {
    let run = webhooks(&db.url, &["migrate", "--adopt-seed", "--json"]).await;
    assert_eq!(run.code, 0, "adoption: {run:?}");
    serde_json::from_str(&run.stdout).expect("the report")
}

/// Runs a rollback script with psql, as docs/switching-from-pg-net.md says.
async fn roll_back(db: &ScratchDb, script: &str) {
    let path = std::env::temp_dir().join(format!("rollback-{}-{}.sql", db.name, Uuid::new_v4()));
    std::fs::write(&path, script).expect("script");
    let (url, file) = (db.url.clone(), path.clone());
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new("psql")
            .args(["-q", "-v", "ON_ERROR_STOP=1", "-f"])
            .arg(&file)
            .arg(&url)
            .output()
    })
    .await
    .expect("join")
    .expect("psql");
    let _ = std::fs::remove_file(&path);
    assert!(
        run.status.success(),
        "rollback: {}",
        String::from_utf8_lossy(&run.stderr)
    );
}

/// Everything due, delivered to `receiver` by our sweep.
async fn sweep_now(db: &ScratchDb, receiver: &Receiver) {
    let deps = deps_for_url(&db.url, &receiver.url, &[]);
    let options = SweepOptions {
        batch_size: 100,
        budget: Duration::from_secs(60),
        deadline: None,
    };
    sweep(
        &deps,
        options,
        Clock::Fixed(Utc::now() + chrono::Duration::hours(2)),
    )
    .await
    .expect("sweep");
}

/// A new booking with both addresses; returns its id.
async fn book(client: &Client, tag: &str) -> Uuid {
    client
        .query_one(
            "INSERT INTO booking_requests (tutor_email, student_email) VALUES ($1, $2) RETURNING id",
            &[
                &format!("tutor-{tag}@example.com"),
                &format!("student-{tag}@example.com"),
            ],
        )
        .await
        .expect("book")
        .get(0)
}

async fn decide(client: &Client, booking: Uuid, status: &str) {
    client
        .execute(
            "UPDATE booking_requests SET status = $2 WHERE id = $1",
            &[&booking, &status],
        )
        .await
        .expect("decide");
}

/// What pg_net (the old system) was asked to send: (type, booking) per request.
async fn sent_by_pg_net(client: &Client) -> Vec<(String, Uuid)> {
    client
        .query(
            "SELECT convert_from(body, 'UTF8')::jsonb FROM net.http_request_queue ORDER BY id",
            &[],
        )
        .await
        .expect("pg_net queue")
        .iter()
        .map(|r| {
            let body: Value = r.get(0);
            (
                body["type"].as_str().unwrap_or_default().to_owned(),
                body["bookingId"]
                    .as_str()
                    .unwrap_or_default()
                    .parse()
                    .unwrap_or_default(),
            )
        })
        .collect()
}

/// What our sweeps sent: (type, booking, webhook-id) per request.
fn sent_by_us(receiver: &Receiver) -> Vec<(String, Uuid, String)> {
    receiver
        .requests()
        .iter()
        .map(|r| {
            let body = r.json();
            (
                body["type"].as_str().unwrap_or_default().to_owned(),
                body["bookingId"]
                    .as_str()
                    .unwrap_or_default()
                    .parse()
                    .unwrap_or_default(),
                r.header("webhook-id"),
            )
        })
        .collect()
}

#[tokio::test]
async fn adopt_roll_back_adopt_any_number_of_times_keeps_capture_and_every_latest_decision() {
    let db = ScratchDb::with_seed_system().await;
    let client = db.client().await;
    let receiver = Receiver::start(Reply::status(200)).await;

    // Ours, the first time.
    let report = adopt(&db).await;
    let a = book(&client, "a").await;
    decide(&client, a, "approved").await;
    sweep_now(&db, &receiver).await;

    // Rolled back: the old system decides meanwhile. It rejects `a` (sent through pg_net, no
    // row: it logs only failures), books `b`, and its approval of `b` fails (logged), before `b`
    // is rejected too (sent, no row).
    roll_back(&db, report["rollbackScript"].as_str().expect("script")).await;
    decide(&client, a, "rejected").await;
    let b = book(&client, "b").await;
    client
        .execute(
            "INSERT INTO webhook_failures (booking_id, webhook_type, recipient_email, attempt_count,
                                           last_error, last_attempt_at, next_retry_at, status)
             VALUES ($1, 'approved', 'student-b@example.com', 1, 'HTTP 503', now(),
                     now() - interval '1 minute', 'pending')",
            &[&b],
        )
        .await
        .expect("a failed approval, as the old trigger logs it");
    decide(&client, b, "rejected").await;
    let before_second: i64 = db
        .count("SELECT max(capture_seq) FROM webhook_deliveries")
        .await;

    // Ours again: capture works, and the import decides with today's bookings.
    let report = adopt(&db).await;
    let b_approval: (String, Option<String>) = {
        let row = client
            .query_one(
                "SELECT status, last_error FROM webhook_deliveries
                  WHERE booking_id = $1 AND webhook_type = 'approved'",
                &[&b],
            )
            .await
            .expect("b's approval imported");
        (row.get(0), row.get(1))
    };
    assert_eq!(b_approval.0, "superseded", "{b_approval:?}");
    assert!(
        b_approval
            .1
            .is_some_and(|e| e.contains("the booking is rejected now")),
        "the reason is said"
    );
    assert!(
        db.count(&format!(
            "SELECT min(capture_seq) FROM webhook_deliveries WHERE booking_id = '{b}'"
        ))
        .await
            > before_second,
        "rows imported the second time come after everything already here"
    );
    let c = book(&client, "c").await;
    sweep_now(&db, &receiver).await;

    // Rolled back again, the old system approves `c`; then ours a third time.
    roll_back(&db, report["rollbackScript"].as_str().expect("script")).await;
    decide(&client, c, "approved").await;
    adopt(&db).await;
    let d = book(&client, "d").await;
    decide(&client, d, "approved").await;
    sweep_now(&db, &receiver).await;

    // Capture works at the end.
    assert_eq!(
        db.count(&format!(
            "SELECT count(*) FROM webhook_deliveries WHERE booking_id = '{d}' AND status = 'succeeded'"
        ))
        .await,
        2
    );
    // Every booking's latest decision reached the notification service once, through us or
    // through pg_net; no stale decision was sent by us.
    let ours = sent_by_us(&receiver);
    let old = sent_by_pg_net(&client).await;
    let count = |kind: &str, booking: Uuid| {
        ours.iter()
            .filter(|(t, b, _)| t == kind && *b == booking)
            .count()
            + old
                .iter()
                .filter(|(t, b)| t == kind && *b == booking)
                .count()
    };
    assert_eq!(count("rejected", a), 1, "a: {ours:?} {old:?}");
    assert_eq!(count("rejected", b), 1, "b");
    assert_eq!(count("approved", c), 1, "c");
    assert_eq!(count("approved", d), 1, "d");
    assert_eq!(
        count("approved", a),
        1,
        "a's approval, before its rejection"
    );
    assert!(
        !ours.iter().any(|(t, bk, _)| t == "approved" && *bk == b),
        "b's approval, replaced under the old system, was never sent: {ours:?}"
    );
    // Ids stay stable, and none of ours went out twice.
    let mut ids: Vec<&String> = ours.iter().map(|(_, _, id)| id).collect();
    ids.sort();
    let total = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), total, "{ours:?}");
    let doctor = webhooks(&db.url, &["doctor", "--json"]).await;
    let doctor: Value = serde_json::from_str(&doctor.stdout).expect("doctor");
    let definitions: Vec<&Value> = doctor["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["check"] == "definitions" || c["check"] == "capture-triggers")
        .collect();
    assert!(
        definitions.iter().all(|c| c["severity"] == "ok"),
        "{definitions:#?}"
    );
}

#[tokio::test]
async fn a_never_attempted_old_row_keeps_its_due_time() {
    let db = ScratchDb::with_seed_system().await;
    let client = db.client().await;
    let later: Uuid = client
        .query_one(
            "INSERT INTO webhook_failures (booking_id, webhook_type, recipient_email, attempt_count,
                                           next_retry_at, status)
             VALUES ('00000000-0000-4000-8000-0000000000b1', 'new_request', 'tutor1@example.com',
                     0, now() + interval '1 hour', 'pending')
             RETURNING id",
            &[],
        )
        .await
        .expect("a row due in an hour")
        .get(0);
    adopt(&db).await;
    let row = client
        .query_one(
            "SELECT status, attempt_count, next_retry_at > now() + interval '50 minutes'
               FROM webhook_deliveries WHERE id = $1",
            &[&later],
        )
        .await
        .expect("imported");
    let (status, attempts, later_still): (String, i32, bool) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(
        (status.as_str(), attempts, later_still),
        ("retrying", 0, true)
    );
    // dispatch {"limit"} sends never-attempted rows at once; not this one.
    let receiver = Receiver::start(Reply::status(200)).await;
    let deps = deps_for_url(&db.url, &receiver.url, &[]);
    delivery::dispatch::dispatch_fresh(&deps, 100, Clock::System, None)
        .await
        .expect("dispatch");
    assert!(
        !receiver
            .requests()
            .iter()
            .any(|r| r.header("webhook-id") == later.to_string()),
        "sent before its time"
    );
}

/// The library's `migrate` for an adoption, its steps sent on `lines`.
fn adopting(
    db: &ScratchDb,
    wait: Duration,
    lines: tokio::sync::mpsc::UnboundedSender<String>,
) -> tokio::task::JoinHandle<delivery::schema::Result<delivery::schema::MigrateReport>> {
    let mut config = delivery::DbConfig::new(db.url.clone());
    config.pool_size = 2;
    let pool = config.pool().expect("pool");
    tokio::spawn(async move {
        let options = MigrateOptions {
            adopt_seed: true,
            old_sender_wait: Some(wait),
            ..MigrateOptions::default()
        };
        delivery::schema::migrate(&pool, options, &mut |line| {
            let _ = lines.send(line.to_owned());
        })
        .await
    })
}

/// A session that has run the old retry function and not committed yet (as a pg_cron run in
/// progress holds its transaction open while pg_net requests are queued).
async fn old_sender_in_progress(db: &ScratchDb) -> Client {
    let session = db.client().await;
    session
        .batch_execute("BEGIN; SELECT retry_failed_webhooks();")
        .await
        .expect("the old retry function");
    session
}

#[tokio::test]
async fn adoption_waits_for_a_run_of_the_old_sender_and_it_touches_no_outbox_row() {
    let db = ScratchDb::with_seed_system().await;
    let session = old_sender_in_progress(&db).await;
    let (lines, mut said) = tokio::sync::mpsc::unbounded_channel();
    let adoption = adopting(&db, Duration::from_secs(60), lines);
    let mut seen = Vec::new();
    while let Some(line) = said.recv().await {
        let waiting = line.starts_with("waiting for a run of the old retry_failed_webhooks()");
        seen.push(line);
        if waiting {
            break;
        }
    }
    assert!(
        seen.iter()
            .any(|l| l.starts_with("paused pg_cron job 1 \"retry-webhooks\"")),
        "{seen:#?}"
    );
    // The job is paused (committed) while adoption waits: pg_cron starts no new run.
    assert_eq!(
        db.count("SELECT count(*) FROM cron.job WHERE jobname = 'retry-webhooks' AND active")
            .await,
        0
    );
    session.batch_execute("COMMIT").await.expect("the run ends");
    let report = adoption.await.expect("join").expect("adoption");
    assert!(report.committed);
    // Its work went to the old table before the rename and came over with the import: a01's
    // attempt, made by that run, is counted; nothing was written through our view.
    assert_eq!(
        db.count(
            "SELECT attempt_count::int8 FROM webhook_deliveries
              WHERE id = '00000000-0000-4000-8000-000000000a01'"
        )
        .await,
        2
    );
    assert_eq!(
        db.count("SELECT count(*) FROM cron.job WHERE jobname = 'retry-webhooks'")
            .await,
        0
    );
}

#[tokio::test]
async fn adoption_refuses_while_the_old_sender_runs_and_changes_nothing() {
    let db = ScratchDb::with_seed_system().await;
    let session = old_sender_in_progress(&db).await;
    let before = snapshot(&db.client().await, &[APP_SCHEMA, "cron"]).await;
    let (lines, _said) = tokio::sync::mpsc::unbounded_channel();
    let err = adopting(&db, Duration::from_millis(500), lines)
        .await
        .expect("join")
        .expect_err("refused");
    let message = err.to_string();
    assert!(
        message.contains("a run of the old retry_failed_webhooks() is in progress")
            && message.contains("the pg_cron jobs were resumed"),
        "{message}"
    );
    session
        .batch_execute("ROLLBACK")
        .await
        .expect("end the run");
    assert_same(
        &before,
        &snapshot(&db.client().await, &[APP_SCHEMA, "cron"]).await,
        "a refused adoption",
    );
}

#[tokio::test]
async fn the_compatibility_view_refuses_writes_with_a_clear_error() {
    let db = ScratchDb::with_seed_system().await;
    adopt(&db).await;
    let client = db.client().await;
    for write in [
        "UPDATE webhook_failures SET attempt_count = attempt_count + 1",
        "DELETE FROM webhook_failures",
        "INSERT INTO webhook_failures (booking_id) VALUES (gen_random_uuid())",
    ] {
        let err = client.batch_execute(write).await.expect_err(write);
        let db_err = err.as_db_error().expect("a server error");
        assert!(
            db_err
                .message()
                .contains("webhook_failures is a read-only view of webhook_deliveries"),
            "{write}: {db_err:?}"
        );
        assert!(db_err.hint().is_some_and(|h| h.contains("webhooks replay")));
    }
}
