//! Adopting a running deployment of the old pg_net system (issue 12), each test in a database
//! of its own built by `fixtures/seed_system.sql`: stub pg_net and pg_cron, the seed's
//! triggers, table (rows in every state), retry function, view and cron job, and the email
//! service's `email_logs` table with rows.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use delivery::Clock;
use delivery::sweep::{SweepOptions, SweepReport, sweep};
use tokio_postgres::Client;
use uuid::Uuid;

use crate::support::scratch::{APP_SCHEMA, Run, ScratchDb, assert_same, snapshot, webhooks};
use crate::support::{Receiver, Reply, deps_for_url};

/// refinery as `webhooks migrate` used it before it ran in one transaction: a transaction per
/// migration.
mod old_migrate {
    refinery::embed_migrations!("../migrations");
}

/// The fixture's row `a01` … `a10` (webhook_failures) or booking `b1` … `b4`.
fn id(name: &str) -> Uuid {
    let tail = match name.len() {
        3 => format!("000000000{name}"),
        _ => format!("0000000000{name}"),
    };
    Uuid::parse_str(&format!("00000000-0000-4000-8000-{tail}")).expect("fixture id")
}

/// Everything adoption may touch: the app schema and the extension stubs.
const SCHEMAS: &[&str] = &[APP_SCHEMA, "cron", "net"];

async fn everything(db: &ScratchDb) -> Vec<String> {
    snapshot(&db.client().await, SCHEMAS).await
}

async fn adopt(db: &ScratchDb) -> Run {
    let run = webhooks(&db.url, &["migrate", "--adopt-seed"]).await;
    assert_eq!(run.code, 0, "adoption succeeds: {run:?}");
    run
}

/// Requests pg_net was asked to send (the stub queues every call).
async fn pg_net_calls(db: &ScratchDb) -> i64 {
    db.count("SELECT count(*) FROM net.http_request_queue")
        .await
}

/// A delivery's (status, attempt_count, max_retries).
async fn state(client: &Client, id: Uuid) -> Option<(String, i32, i32)> {
    client
        .query_opt(
            "SELECT status, attempt_count, max_retries FROM webhook_deliveries WHERE id = $1",
            &[&id],
        )
        .await
        .expect("delivery")
        .map(|r| (r.get(0), r.get(1), r.get(2)))
}

async fn sweep_at(db: &ScratchDb, receiver: &Receiver, at: DateTime<Utc>) -> SweepReport {
    let deps = deps_for_url(&db.url, &receiver.url, &[]);
    let options = SweepOptions {
        batch_size: 50,
        budget: Duration::from_secs(60),
        deadline: None,
    };
    sweep(&deps, options, Clock::Fixed(at))
        .await
        .expect("sweep runs")
}

#[tokio::test]
async fn plain_migrate_refuses_the_pg_net_system_and_changes_nothing() {
    let db = ScratchDb::with_seed_system().await;
    let before = everything(&db).await;

    let run = webhooks(&db.url, &["migrate"]).await;

    assert_ne!(run.code, 0, "{run:?}");
    for finding in [
        "table webhook_failures (10 rows)",
        "trigger trigger_new_booking_notification on booking_requests (calls net.http_post, function notify_new_booking())",
        "trigger trigger_status_update_notification on booking_requests (calls net.http_post",
        "function retry_failed_webhooks() (the old retry function)",
        "view webhook_health_stats (not ours",
        "pg_cron job 1 \"retry-webhooks\" (*/10 * * * *) calls retry_failed_webhooks",
        "webhooks migrate --adopt-seed --dry-run",
        "Nothing was changed",
    ] {
        assert!(
            run.stderr.contains(finding),
            "{finding:?} in\n{}",
            run.stderr
        );
    }
    // The unrelated job and the app's own trigger are not findings.
    assert!(!run.stderr.contains("nightly-email-log-cleanup"));
    assert!(!run.stderr.contains("touch_updated_at"));
    // Findings never show addresses or function source.
    assert!(!run.stderr.contains("@example.com") && !run.stderr.contains("Bearer"));
    assert_same(&before, &everything(&db).await, "plain migrate");
}

#[tokio::test]
async fn adopt_seed_dry_run_prints_the_plan_and_the_old_source_and_changes_nothing() {
    let db = ScratchDb::with_seed_system().await;
    let before = everything(&db).await;

    let run = webhooks(&db.url, &["migrate", "--adopt-seed", "--dry-run"]).await;

    assert_eq!(run.code, 0, "{run:?}");
    for step in [
        "renamed table webhook_failures to webhook_failures_seed (10 rows kept as history",
        "dropped trigger trigger_new_booking_notification",
        "dropped function retry_failed_webhooks()",
        "dropped view webhook_health_stats",
        "applied migration V3__capture_triggers",
        "imported 9 of 10 rows into webhook_deliveries",
        "unscheduled pg_cron job 1 \"retry-webhooks\"",
        "email_logs is not ours",
        "dry run: rolled back, nothing was changed",
        // The rollback script: the old functions' source, the cron job, the table's name.
        "CREATE OR REPLACE FUNCTION app.notify_new_booking()",
        "CREATE OR REPLACE FUNCTION app.retry_failed_webhooks()",
        "net.http_post(",
        "SELECT cron.schedule('retry-webhooks', '*/10 * * * *', 'SELECT retry_failed_webhooks()');",
        "ALTER TABLE webhook_failures_seed RENAME TO webhook_failures;",
    ] {
        assert!(run.stdout.contains(step), "{step:?} in\n{}", run.stdout);
    }
    assert!(!run.stdout.contains("\ncommitted"));
    assert_same(&before, &everything(&db).await, "--adopt-seed --dry-run");
}

#[tokio::test]
async fn adopt_seed_imports_every_row_with_its_id_and_state() {
    let db = ScratchDb::with_seed_system().await;
    let email_logs_before: Vec<String> = everything(&db)
        .await
        .into_iter()
        .filter(|l| l.contains("app.email_logs"))
        .collect();

    // A booking the old trigger handed to pg_net just before the switch: pg_net still sends it.
    db.client()
        .await
        .execute(
            "INSERT INTO booking_requests (tutor_email) VALUES ('last-one@example.com')",
            &[],
        )
        .await
        .expect("insert");

    let run = adopt(&db).await;
    assert!(run.stdout.contains("committed"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("note: 1 request(s) are still queued in pg_net (net.http_request_queue)"),
        "{}",
        run.stdout
    );

    let client = db.client().await;
    // (fixture row, status, attempt_count, max_retries) after import.
    let expected = [
        ("a01", "retrying", 1, 3), // old `pending` had been attempted once: ours is `retrying`
        ("a02", "retrying", 2, 3),
        ("a03", "retrying", 2, 3),
        ("a04", "failed", 4, 3),
        ("a05", "succeeded", 2, 3),
        ("a06", "retrying", 4, 4), // budget spent: one final attempt
        ("a07", "failed", 1, 3),   // booking gone: not sent on its own
        ("a09", "failed", 1, 3),   // NULL status
        ("a10", "retrying", 1, 3),
    ];
    for (row, status, attempts, max_retries) in expected {
        assert_eq!(
            state(&client, id(row)).await,
            Some((status.to_owned(), attempts, max_retries)),
            "{row}"
        );
    }
    // No booking id: no delivery, but still in the history table.
    assert_eq!(state(&client, id("a08")).await, None);
    assert!(run.stdout.contains(&id("a08").to_string()), "a08 is named");
    assert_eq!(
        db.count("SELECT count(*) FROM webhook_failures_seed").await,
        10
    );
    assert_eq!(db.count("SELECT count(*) FROM webhook_deliveries").await, 9);

    // Times: kept where they were usable, filled where not.
    let times = |sql: &'static str| {
        let client = &client;
        async move {
            client
                .query_one(sql, &[])
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
                .get::<_, bool>(0)
        }
    };
    assert!(
        times(
            "SELECT bool_and(d.next_retry_at = s.next_retry_at AND d.created_at = s.created_at
                             AND d.last_attempt_at = s.last_attempt_at AND d.resolved_at IS NULL)
               FROM webhook_deliveries d JOIN webhook_failures_seed s USING (id)
              WHERE s.status IN ('pending', 'retrying') AND s.next_retry_at IS NOT NULL
                AND d.status = 'retrying'"
        )
        .await,
        "live rows keep next_retry_at, created_at and last_attempt_at"
    );
    assert!(
        times(
            "SELECT bool_and(d.resolved_at = s.resolved_at AND d.next_retry_at IS NULL)
               FROM webhook_deliveries d JOIN webhook_failures_seed s USING (id)
              WHERE s.status IN ('failed', 'succeeded')"
        )
        .await,
        "history keeps resolved_at"
    );
    assert!(
        times(
            "SELECT next_retry_at <= now() FROM webhook_deliveries
              WHERE id = '00000000-0000-4000-8000-000000000a10'"
        )
        .await,
        "a live row without next_retry_at is due at once"
    );
    assert!(
        times(
            "SELECT created_at = last_attempt_at AND resolved_at = last_attempt_at
               FROM webhook_deliveries WHERE id = '00000000-0000-4000-8000-000000000a09'"
        )
        .await,
        "missing created_at and resolved_at come from the last attempt"
    );
    assert!(
        times(
            "SELECT bool_and(payload = jsonb_build_object('type', webhook_type, 'bookingId', booking_id,
                                                          'email', recipient_email)
                             AND last_error IS NOT NULL)
               FROM webhook_deliveries"
        )
        .await,
        "payloads as capture writes them; every imported row shows in webhook_failures"
    );
    assert_eq!(db.count("SELECT count(*) FROM webhook_failures").await, 9);

    // The cron job is gone, the unrelated one stays.
    let jobs: Vec<String> = client
        .query("SELECT jobname FROM cron.job ORDER BY jobname", &[])
        .await
        .expect("jobs")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(jobs, ["nightly-email-log-cleanup"]);

    // email_logs: the same table, rows, grants and columns; our view under its own name.
    let email_logs_after: Vec<String> = everything(&db)
        .await
        .into_iter()
        .filter(|l| l.contains("app.email_logs"))
        .collect();
    assert_same(
        &email_logs_before,
        &email_logs_after,
        "adoption, for email_logs",
    );
    assert_eq!(db.count("SELECT count(*) FROM email_logs").await, 3);
    assert_eq!(
        db.count("SELECT count(*) FROM webhook_email_logs").await,
        1,
        "a05 was delivered"
    );

    // The history table is no longer readable by the API roles.
    assert_eq!(
        db.count(
            "SELECT count(*) FROM information_schema.role_table_grants
              WHERE table_name = 'webhook_failures_seed' AND grantee IN ('anon', 'authenticated', 'PUBLIC')"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn after_adoption_bookings_are_captured_and_never_reach_pg_net() {
    let db = ScratchDb::with_seed_system().await;
    adopt(&db).await;
    let calls = pg_net_calls(&db).await;

    let client = db.client().await;
    let booking: Uuid = client
        .query_one(
            "INSERT INTO booking_requests (tutor_email, student_email) VALUES ('t@example.com', 's@example.com')
             RETURNING id",
            &[],
        )
        .await
        .expect("insert")
        .get(0);
    client
        .execute(
            "UPDATE booking_requests SET status = 'approved' WHERE id = $1",
            &[&booking],
        )
        .await
        .expect("approve");
    client
        .execute(
            "UPDATE booking_requests SET status = 'approved' WHERE id = $1",
            &[&id("b4")],
        )
        .await
        .expect("approve an old booking");

    let captured: Vec<(Uuid, String)> = client
        .query(
            "SELECT booking_id, webhook_type FROM webhook_deliveries
              WHERE created_at >= now() - interval '1 minute' AND status = 'pending'
              ORDER BY webhook_type, booking_id",
            &[],
        )
        .await
        .expect("captured")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut expected = vec![
        (booking, "approved".to_owned()),
        (id("b4"), "approved".to_owned()),
    ];
    expected.sort();
    expected.push((booking, "new_request".to_owned()));
    assert_eq!(captured, expected);
    assert_eq!(pg_net_calls(&db).await, calls, "pg_net is never called");
    // The app's own trigger still runs.
    assert_eq!(
        db.count(
            "SELECT count(*) FROM booking_requests WHERE updated_at > created_at
               AND id = '00000000-0000-4000-8000-0000000000b4'"
        )
        .await,
        1
    );
    // The retry function is ours: it requeues, it does not send.
    let requeued: i32 = client
        .query_one("SELECT requeued FROM retry_failed_webhooks()", &[])
        .await
        .expect("our retry_failed_webhooks()")
        .get(0);
    assert_eq!(requeued, 3, "a04, a07 and a09 were failed");
    assert_eq!(pg_net_calls(&db).await, calls);
}

#[tokio::test]
async fn a_sweep_delivers_the_imported_due_retries_with_their_original_ids() {
    let db = ScratchDb::with_seed_system().await;
    adopt(&db).await;
    let client = db.client().await;
    let receiver = Receiver::start(Reply::status(503)).await;
    let now = Utc::now();

    // Due now: a01, a02, a06 (its final attempt) and a10; a03 is due in an hour.
    let first = sweep_at(&db, &receiver, now).await;
    assert_eq!((first.processed, first.failed), (4, 1), "{first:?}");
    let mut ids: Vec<String> = receiver
        .requests()
        .iter()
        .map(|r| r.header("webhook-id"))
        .collect();
    ids.sort();
    let due: Vec<String> = ["a01", "a02", "a06", "a10"]
        .iter()
        .map(|n| id(n).to_string())
        .collect();
    assert_eq!(ids, due, "each sent under its original id");
    assert_eq!(
        state(&client, id("a06")).await,
        Some(("failed".to_owned(), 5, 4)),
        "the final attempt failed: no more"
    );
    assert_eq!(
        state(&client, id("a01")).await,
        Some(("retrying".to_owned(), 2, 3))
    );

    // Two hours later the receiver is back: everything still live is delivered, same ids.
    receiver.set_default(Reply::status(200));
    let later = sweep_at(&db, &receiver, now + chrono::Duration::hours(2)).await;
    assert_eq!((later.processed, later.succeeded), (4, 4), "{later:?}");
    let requests = receiver.requests();
    let mut delivered: BTreeMap<String, String> = BTreeMap::new();
    for request in &requests[4..] {
        delivered.insert(request.header("webhook-id"), request.text());
    }
    let expected: Vec<String> = ["a01", "a02", "a03", "a10"]
        .iter()
        .map(|n| id(n).to_string())
        .collect();
    assert_eq!(delivered.keys().cloned().collect::<Vec<_>>(), expected);
    let body: serde_json::Value =
        serde_json::from_str(&delivered[&id("a02").to_string()]).expect("json body");
    assert_eq!(
        body,
        serde_json::json!({
            "type": "approved", "bookingId": id("b2"), "email": "student2@example.com",
            "sequence": body["sequence"].as_i64().filter(|n| *n > 0).unwrap_or(-1),
        })
    );
    for row in ["a01", "a02", "a03", "a10"] {
        assert_eq!(
            state(&client, id(row)).await.map(|s| s.0).as_deref(),
            Some("succeeded"),
            "{row}"
        );
    }
    assert_eq!(pg_net_calls(&db).await, 0, "pg_net never sent anything");
}

#[tokio::test]
async fn a_second_migrate_after_adoption_is_a_no_op() {
    let db = ScratchDb::with_seed_system().await;
    adopt(&db).await;
    let before = everything(&db).await;

    let plain = webhooks(&db.url, &["migrate"]).await;
    let again = webhooks(&db.url, &["migrate", "--adopt-seed"]).await;

    assert_eq!(plain.code, 0, "{plain:?}");
    assert!(
        plain.stdout.contains("schema is current"),
        "{}",
        plain.stdout
    );
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again.stdout.contains("nothing to adopt"),
        "{}",
        again.stdout
    );
    assert_same(&before, &everything(&db).await, "migrate after adoption");

    // `webhooks doctor` finds no problem. Its only warnings are about how first attempts are
    // woken up (no `webhooks listen`, no wake-up trigger), which adoption does not decide.
    let doctor = webhooks(&db.url, &["doctor"]).await;
    assert_eq!(doctor.code, 0, "{doctor:?}");
    assert!(!doctor.stdout.contains("PROBLEM"), "{}", doctor.stdout);
    let warnings: Vec<&str> = doctor
        .stdout
        .lines()
        .filter(|l| l.starts_with("WARNING"))
        .filter(|l| !l.contains(" notify ") && !l.contains(" wake-up "))
        .collect();
    assert!(warnings.is_empty(), "{}", doctor.stdout);
}

#[tokio::test]
async fn a_failure_injected_mid_adoption_leaves_the_old_system_exactly_as_it_was() {
    // Late: pg_cron refuses to unschedule the job, after the rename, the drops, every
    // migration and the import have run.
    let late = ScratchDb::with_seed_system().await;
    late.client()
        .await
        .batch_execute(&format!(
            "ALTER DATABASE {} SET stub.cron_unschedule_error = 'permission denied to unschedule job 1'",
            late.name
        ))
        .await
        .expect("inject");
    // Early: the operator's dashboard view reads the old webhook_health_stats, so dropping it
    // fails after the table was renamed and the triggers and functions dropped.
    let early = ScratchDb::with_seed_system().await;
    early
        .client()
        .await
        .batch_execute("CREATE VIEW support_dashboard AS SELECT * FROM webhook_health_stats")
        .await
        .expect("dashboard view");

    for (db, message) in [
        (&late, "permission denied to unschedule job 1"),
        (&early, "other objects depend on it"),
    ] {
        let before = everything(db).await;
        let calls = pg_net_calls(db).await;

        let run = webhooks(&db.url, &["migrate", "--adopt-seed"]).await;

        assert_ne!(run.code, 0, "{run:?}");
        assert!(
            run.stderr.contains(message),
            "{message:?} in {}",
            run.stderr
        );
        assert!(run.stderr.contains("Nothing was changed"));
        assert_same(&before, &everything(db).await, message);
        // And the old system still runs: a booking goes to pg_net, the cron job is there.
        db.client()
            .await
            .execute(
                "INSERT INTO booking_requests (tutor_email) VALUES ('t@example.com')",
                &[],
            )
            .await
            .expect("insert");
        assert_eq!(pg_net_calls(db).await, calls + 1);
    }
}

#[tokio::test]
async fn the_rollback_script_brings_the_old_system_back_without_resending() {
    let db = ScratchDb::with_seed_system().await;
    // As docs/switching-from-pg-net.md says: keep the dry run's output, cut the script out.
    let dir = std::env::temp_dir().join(format!("adopt-{}", db.name));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let plan = webhooks(&db.url, &["migrate", "--adopt-seed", "--dry-run"]).await;
    std::fs::write(dir.join("adoption-plan.txt"), &plan.stdout).expect("write plan");
    adopt(&db).await;
    // Our sweep delivers what is due, and a booking is captured, before the operator rolls
    // back.
    let receiver = Receiver::start(Reply::status(200)).await;
    sweep_at(&db, &receiver, Utc::now()).await;
    let client = db.client().await;
    client
        .execute(
            "INSERT INTO booking_requests (tutor_email) VALUES ('late@example.com')",
            &[],
        )
        .await
        .expect("insert");

    let (url, workdir) = (db.url.clone(), dir.clone());
    let rollback = tokio::task::spawn_blocking(move || {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(
                "sed -n '/^-- Rollback to the pg_net system/,$p' adoption-plan.txt > rollback.sql \
                 && psql \"$DATABASE_URL\" -q -v ON_ERROR_STOP=1 -f rollback.sql",
            )
            .current_dir(workdir)
            .env("DATABASE_URL", url)
            .output()
    })
    .await
    .expect("join")
    .expect("sh runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        rollback.status.success(),
        "rollback script: {}",
        String::from_utf8_lossy(&rollback.stderr)
    );

    let old = |row: &str| {
        let client = &client;
        let row = id(row);
        async move {
            client
                .query_one("SELECT status FROM webhook_failures WHERE id = $1", &[&row])
                .await
                .expect("old row")
                .get::<_, String>(0)
        }
    };
    assert_eq!(old("a01").await, "succeeded", "delivered by us: not resent");
    assert_eq!(old("a03").await, "retrying", "still on its way");
    assert_eq!(
        db.count("SELECT count(*) FROM webhook_failures WHERE recipient_email = 'late@example.com' AND status = 'pending'")
            .await,
        1,
        "captured by us, handed back"
    );
    let calls = pg_net_calls(&db).await;
    client
        .execute(
            "INSERT INTO booking_requests (tutor_email) VALUES ('t@example.com')",
            &[],
        )
        .await
        .expect("insert");
    assert_eq!(
        pg_net_calls(&db).await,
        calls + 1,
        "the old trigger sends again"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM cron.job WHERE jobname = 'retry-webhooks'")
            .await,
        1
    );
    client
        .query("SELECT * FROM retry_failed_webhooks()", &[])
        .await
        .expect("the old retry function");
    // And `webhooks migrate` sees the old system again.
    let refused = webhooks(&db.url, &["migrate"]).await;
    assert_ne!(refused.code, 0);
    assert!(
        refused
            .stderr
            .contains("runs the old pg_net webhook system")
    );
}

#[tokio::test]
async fn a_database_half_migrated_by_the_old_migrate_is_adopted() {
    // Before migrations ran in one transaction, `webhooks migrate` applied V1-V3 (replacing the
    // seed's trigger functions with ours) and failed on V4 — the state users may be in.
    let db = ScratchDb::with_seed_system().await;
    let mut client = db.client().await;
    let old = old_migrate::migrations::runner()
        .set_target(refinery::Target::Latest)
        .run_async(&mut client)
        .await
        .expect_err("refinery on its own stops at V4");
    let applied: Vec<String> = old
        .report()
        .expect("a report of what was applied")
        .applied_migrations()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        applied,
        [
            "V1__booking_requests",
            "V2__webhook_deliveries",
            "V3__capture_triggers"
        ]
    );
    client
        .execute(
            "INSERT INTO booking_requests (tutor_email) VALUES ('between@example.com')",
            &[],
        )
        .await
        .expect("a booking captured by V3 in the meantime");

    let run = adopt(&db).await;

    assert!(
        run.stdout.contains("imported 9 of 10 rows"),
        "{}",
        run.stdout
    );
    assert_eq!(
        db.count(
            "SELECT count(*) FROM webhook_deliveries WHERE recipient_email = 'between@example.com'"
        )
        .await,
        1,
        "kept"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM cron.job WHERE jobname = 'retry-webhooks'")
            .await,
        0
    );
    let again = webhooks(&db.url, &["migrate"]).await;
    assert!(again.stdout.contains("schema is current"), "{again:?}");
}

#[tokio::test]
async fn old_triggers_under_any_name_or_behind_a_helper_are_replaced() {
    let db = ScratchDb::with_seed_system().await;
    db.client()
        .await
        .batch_execute(
            "ALTER TRIGGER trigger_new_booking_notification ON booking_requests RENAME TO on_booking_created;
             CREATE FUNCTION send_booking_webhook(body jsonb) RETURNS bigint LANGUAGE sql
                 AS $$ SELECT net.http_post('https://project.supabase.co/functions/v1/hook', body) $$;
             CREATE FUNCTION on_booking_cancelled() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 PERFORM send_booking_webhook(jsonb_build_object('type', 'cancelled', 'bookingId', NEW.id));
                 RETURN NULL;
             END $$;
             CREATE TRIGGER booking_cancelled_webhook AFTER UPDATE ON booking_requests
                 FOR EACH ROW WHEN (NEW.status = 'cancelled') EXECUTE FUNCTION on_booking_cancelled();",
        )
        .await
        .expect("variant triggers");

    let refused = webhooks(&db.url, &["migrate"]).await;
    assert!(
        refused.stderr.contains("trigger on_booking_created on booking_requests")
            && refused.stderr.contains(
                "trigger booking_cancelled_webhook on booking_requests (calls net.http_post through send_booking_webhook()"
            ),
        "{}",
        refused.stderr
    );
    adopt(&db).await;

    let triggers: Vec<String> = db
        .client()
        .await
        .query(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'booking_requests'::regclass
                AND NOT tgisinternal ORDER BY tgname",
            &[],
        )
        .await
        .expect("triggers")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        triggers,
        [
            "booking_requests_touch_updated_at",
            "trigger_new_booking_notification",
            "trigger_status_update_notification"
        ]
    );
    let calls = pg_net_calls(&db).await;
    db.client()
        .await
        .batch_execute(
            "INSERT INTO booking_requests (tutor_email) VALUES ('t@example.com');
             UPDATE booking_requests SET status = 'cancelled';",
        )
        .await
        .expect("insert and cancel");
    assert_eq!(pg_net_calls(&db).await, calls);
}

#[tokio::test]
async fn the_import_judges_addresses_exactly_as_capture_does() {
    let long = format!("{}@example.com", "a".repeat(250));
    let addresses = [
        "plain@example.com",
        "  padded@example.com  ",
        "with space@example.com",
        "line\nbreak@example.com",
        "zero\u{200b}width@example.com",
        "no-at.example.com",
        "two@@example.com",
        "a@b@example.com",
        "\"quoted\"@example.com",
        "<angle@example.com>",
        "@example.com",
        long.as_str(),
    ];
    let db = ScratchDb::with_seed_system().await;
    let client = db.client().await;
    let mut old_ids = Vec::new();
    for address in addresses {
        let row: Uuid = client
            .query_one(
                "INSERT INTO webhook_failures (booking_id, webhook_type, recipient_email, attempt_count,
                                               next_retry_at, status)
                 VALUES ('00000000-0000-4000-8000-0000000000b1', 'new_request', $1, 1, now(), 'retrying')
                 RETURNING id",
                &[&address],
            )
            .await
            .expect("old row")
            .get(0);
        old_ids.push(row);
    }
    adopt(&db).await;

    for (address, old) in addresses.iter().zip(old_ids) {
        let booking: Uuid = client
            .query_one(
                "INSERT INTO booking_requests (tutor_email) VALUES ($1) RETURNING id",
                &[address],
            )
            .await
            .expect("booking")
            .get(0);
        let captured = client
            .query_one(
                "SELECT status, recipient_email FROM webhook_deliveries WHERE booking_id = $1",
                &[&booking],
            )
            .await
            .expect("captured");
        let imported_row = client
            .query_one(
                "SELECT status, recipient_email FROM webhook_deliveries WHERE id = $1",
                &[&old],
            )
            .await
            .expect("imported");
        let skipped = |status: String| status == "skipped";
        assert_eq!(
            skipped(imported_row.get(0)),
            skipped(captured.get(0)),
            "{address:?}: import and capture disagree"
        );
        assert_eq!(
            imported_row.get::<_, Option<String>>(1),
            captured.get::<_, Option<String>>(1),
            "{address:?}: the stored address"
        );
    }
}
