//! `doctor`: a freshly migrated schema has no problem; a disabled trigger, row level security
//! switched off, an outbox granted to an API role, an old backlog and a missing migration each
//! come out as a problem in plain words.

use delivery::ops::output::Style;
use delivery::posture::{Check, Posture, Severity, check_posture, render_posture};

use super::seed::{self, Delivery, insert};
use crate::support::TestDb;

async fn doctor(db: &TestDb) -> Posture {
    let client = db.pool.get().await.expect("connection");
    check_posture(&client, seed::now())
        .await
        .expect("doctor runs")
}

fn problems(p: &Posture) -> Vec<&Check> {
    p.checks
        .iter()
        .filter(|c| c.severity == Severity::Problem)
        .collect()
}

#[tokio::test]
async fn a_fresh_schema_is_healthy() {
    let db = TestDb::new().await;
    let p = doctor(&db).await;
    assert!(p.is_healthy(), "{}", render_posture(&p, &Style::default()));
    let names: Vec<&str> = p.checks.iter().map(|c| c.check).collect();
    for expected in [
        "capture-triggers",
        "capture-functions",
        "row-level-security",
        "backlog",
        "migrations",
        "notify",
        "wake-up",
        "last-attempt",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} not checked: {names:?}"
        );
    }
    let migrations = p
        .checks
        .iter()
        .find(|c| c.check == "migrations")
        .expect("migrations");
    let latest = crate::support::db::migration_files()
        .last()
        .and_then(|f| f.file_stem())
        .and_then(|f| f.to_str())
        .expect("a migration file")
        .to_owned();
    assert!(migrations.message.contains(&latest), "{migrations:?}");
}

#[tokio::test]
async fn a_disabled_trigger_and_missing_rls_are_problems() {
    let db = TestDb::new().await;
    let client = db.client().await;
    client
        .batch_execute(
            "ALTER TABLE booking_requests DISABLE TRIGGER trigger_new_booking_notification;
             ALTER TABLE webhook_attempts DISABLE ROW LEVEL SECURITY;",
        )
        .await
        .expect("break the schema");
    let p = doctor(&db).await;
    let found = problems(&p);
    assert_eq!(found.len(), 2, "{}", render_posture(&p, &Style::default()));
    assert_eq!(found[0].check, "capture-triggers");
    assert!(
        found[0]
            .message
            .contains("trigger_new_booking_notification is DISABLED")
            && found[0]
                .message
                .contains("ENABLE TRIGGER trigger_new_booking_notification"),
        "{found:?}"
    );
    assert_eq!(found[1].check, "row-level-security");
    assert!(
        found[1]
            .message
            .contains("row level security is OFF on webhook_attempts")
            && found[1]
                .message
                .contains("ALTER TABLE webhook_attempts ENABLE ROW LEVEL SECURITY"),
        "{found:?}"
    );
    // The other trigger is reported fine, by name.
    assert!(p.checks.iter().any(|c| {
        c.severity == Severity::Ok
            && c.message
                .contains("trigger_status_update_notification is enabled")
    }));
    let text = render_posture(&p, &Style::default());
    assert!(
        text.contains("PROBLEM") && text.contains("2 problem(s)"),
        "{text}"
    );
}

#[tokio::test]
async fn exposure_backlog_functions_and_migrations_are_problems() {
    let db = TestDb::new().await;
    let now = seed::now();
    insert(
        &db,
        now,
        &Delivery::new("new_request", "pending", -120).due(-120),
    )
    .await;
    let client = db.client().await;
    client
        .batch_execute(&format!(
            "DO $$ BEGIN CREATE ROLE anon NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
             GRANT USAGE ON SCHEMA {schema} TO anon;
             GRANT SELECT ON webhook_deliveries TO anon;
             ALTER FUNCTION notify_status_update() RESET search_path;
             GRANT EXECUTE ON FUNCTION capture_booking_webhook(uuid, text, text) TO PUBLIC;
             DELETE FROM refinery_schema_history WHERE version = 9;",
            schema = db.schema
        ))
        .await
        .expect("break the schema");
    let p = doctor(&db).await;
    let text = render_posture(&p, &Style::default());
    let found: Vec<(&str, &str)> = problems(&p)
        .iter()
        .map(|c| (c.check, c.message.as_str()))
        .collect();
    let has =
        |check: &str, needle: &str| found.iter().any(|(c, m)| *c == check && m.contains(needle));
    assert!(
        has(
            "row-level-security",
            "anon hold privileges on webhook_deliveries"
        ),
        "{text}"
    );
    assert!(
        has("backlog", "1 deliveries are due, the oldest for 2h 0m"),
        "{text}"
    );
    assert!(
        has(
            "capture-functions",
            "notify_status_update(): its search_path is not pinned"
        ),
        "{text}"
    );
    assert!(
        has("capture-functions", "PUBLIC may call it directly"),
        "{text}"
    );
    // By refinery's rules: a migration below the newest applied one, never applied, is refused.
    assert!(
        has(
            "migrations",
            "V9__operations was never applied, although later migrations were"
        ),
        "{text}"
    );
    // With the history refused, definitions are compared only after `webhooks migrate`.
    assert!(!p.checks.iter().any(|c| c.check == "definitions"), "{text}");
    assert_eq!(found.len(), 5, "{text}");
}
