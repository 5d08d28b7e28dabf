//! `webhooks doctor`'s advice, followed literally: the command it names is run as written.
//! It used to say "recreate it as in V3", which brought back capture without V6's address
//! checks and V11/V12/V14's changes — and then rated the functions fine.

use serde_json::Value;

use crate::support::TestDb;
use crate::support::scratch::webhooks;

/// The problems doctor finds, and the command each one advises (the text between backticks
/// that starts with `webhooks`).
async fn advice(db: &TestDb) -> Vec<(String, String)> {
    let run = webhooks(&db.url, &["doctor", "--json"]).await;
    let doctor: Value = serde_json::from_str(&run.stdout).expect("doctor --json");
    doctor["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["severity"] == "problem")
        .map(|c| {
            let message = c["message"].as_str().unwrap_or_default().to_owned();
            let command = message
                .split('`')
                .find(|part| part.starts_with("webhooks "))
                .unwrap_or_default()
                .to_owned();
            (message, command)
        })
        .collect()
}

/// Runs what doctor advised, as written; then nothing is left to advise.
async fn follow(db: &TestDb, advised: &[(String, String)]) {
    let mut commands: Vec<&str> = advised.iter().map(|(_, c)| c.as_str()).collect();
    commands.dedup();
    assert_eq!(commands, ["webhooks migrate --repair"], "{advised:#?}");
    let args: Vec<&str> = commands[0].split_whitespace().skip(1).collect();
    let run = webhooks(&db.url, &args).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        advice(db).await.is_empty(),
        "after the repair: {:#?}",
        advice(db).await
    );
}

/// A booking whose tutor address smuggles a header: captured as skipped, never pending.
async fn hostile_address_is_skipped(db: &TestDb) {
    let client = db.client().await;
    let booking: uuid::Uuid = client
        .query_one(
            "INSERT INTO booking_requests (tutor_email) \
             VALUES (E'tutor@example.com\\nBcc: everyone@example.com') RETURNING id",
            &[],
        )
        .await
        .expect("insert")
        .get(0);
    let row = client
        .query_one(
            "SELECT status, last_error, recipient_email FROM webhook_deliveries WHERE booking_id = $1",
            &[&booking],
        )
        .await
        .expect("captured");
    let (status, reason, recipient): (String, Option<String>, Option<String>) =
        (row.get(0), row.get(1), row.get(2));
    assert_eq!(status, "skipped", "{reason:?}");
    assert_eq!(
        reason.as_deref(),
        Some("tutor_email contains whitespace or control characters")
    );
    assert_eq!(recipient, None);
}

#[tokio::test]
async fn a_dropped_capture_trigger_is_repaired_as_doctor_says() {
    let db = TestDb::new().await;
    db.client()
        .await
        .batch_execute("DROP TRIGGER trigger_new_booking_notification ON booking_requests")
        .await
        .expect("drop the trigger");
    let advised = advice(&db).await;
    assert!(
        advised
            .iter()
            .any(|(m, _)| m
                .contains("trigger_new_booking_notification on booking_requests is MISSING")),
        "{advised:#?}"
    );
    follow(&db, &advised).await;
    hostile_address_is_skipped(&db).await;
    let (_, id) = db.booking_with_delivery().await;
    assert_eq!(db.delivery(id).await.status, "pending", "captured again");
}

#[tokio::test]
async fn capture_functions_replaced_by_an_old_migrations_text_are_found_and_repaired() {
    let db = TestDb::new().await;
    // What "recreate it as in V3" did: V3's text run again by hand.
    let v3 = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../migrations/V3__capture_triggers.sql"),
    )
    .expect("V3");
    db.client()
        .await
        .batch_execute(&v3)
        .await
        .expect("V3 again");
    // Plain migrate refuses to go on over it, and says what to run.
    let refused = webhooks(&db.url, &["migrate"]).await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused.stderr.contains(
            "function capture_booking_webhook(uuid,text,text) differs from this build's: its body"
        ),
        "{}",
        refused.stderr
    );
    let advised = advice(&db).await;
    // Owner, definer and pg_temp alone would look right: the bodies are compared.
    for function in [
        "capture_booking_webhook(uuid,text,text)",
        "notify_new_booking()",
        "notify_status_update()",
    ] {
        assert!(
            advised
                .iter()
                .any(|(m, _)| m.contains(&format!("function {function} differs from this build's"))),
            "{function}: {advised:#?}"
        );
    }
    follow(&db, &advised).await;
    hostile_address_is_skipped(&db).await;
}
