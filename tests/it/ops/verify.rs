//! The completeness check: quiet when every booking was captured; with a capture trigger
//! disabled it reports exactly the bookings written meanwhile.

use std::time::Duration;

use delivery::completeness::{DEFAULT_WINDOW, check_completeness, count_missing};
use uuid::Uuid;

use super::cli::{code, json, text, webhooks};
use super::seed::{self, at};
use crate::support::TestDb;

/// Bookings and their approvals while capture works; returns the booking ids.
pub async fn captured_bookings(db: &TestDb) -> Vec<Uuid> {
    let first = db
        .insert_booking(Some("t1@example.com"), Some("s1@example.com"))
        .await;
    let second = db.insert_booking(None, Some("s2@example.com")).await; // skipped: still captured
    let client = db.pool.get().await.expect("connection");
    client
        .execute(
            "UPDATE booking_requests SET status = 'approved' WHERE id = $1",
            &[&first],
        )
        .await
        .expect("approve");
    client
        .execute(
            "UPDATE booking_requests SET status = 'cancelled' WHERE id = $1",
            &[&second],
        )
        .await
        .expect("cancel");
    vec![first, second]
}

/// Disables the capture triggers, writes two bookings and approves a captured one, enables
/// them again. Returns (booking, missing type) as verify should report them, oldest first.
pub async fn uncaptured_bookings(db: &TestDb, captured: Uuid) -> Vec<(Uuid, String)> {
    let client = db.pool.get().await.expect("connection");
    client
        .batch_execute("ALTER TABLE booking_requests DISABLE TRIGGER USER")
        .await
        .expect("disable triggers");
    // Before the horizon (capture was installed later): never reported.
    client
        .execute(
            "INSERT INTO booking_requests (tutor_email, created_at) VALUES ('old@example.com', now() - interval '10 days')",
            &[],
        )
        .await
        .expect("old booking");
    let x = db.insert_booking(Some("x@example.com"), None).await;
    let y = db.insert_booking(Some("y@example.com"), None).await;
    client
        .execute(
            "UPDATE booking_requests SET status = 'rejected' WHERE id = $1",
            &[&y],
        )
        .await
        .expect("reject");
    client
        .execute(
            "UPDATE booking_requests SET status = 'rejected' WHERE id = $1",
            &[&captured],
        )
        .await
        .expect("reject the captured one");
    client
        .batch_execute("ALTER TABLE booking_requests ENABLE TRIGGER USER")
        .await
        .expect("enable triggers");
    // Oldest booking first (`captured`, then x, then y), then by type.
    vec![
        (captured, "rejected".to_owned()),
        (x, "new_request".to_owned()),
        (y, "new_request".to_owned()),
        (y, "rejected".to_owned()),
    ]
}

#[tokio::test]
async fn verify_passes_when_all_is_captured_and_lists_exactly_what_was_not() {
    let db = TestDb::new().await;
    let captured = captured_bookings(&db).await;
    let client = db.pool.get().await.expect("connection");
    let later = at(seed::now(), 120);

    let check = check_completeness(&client, later, DEFAULT_WINDOW, 100)
        .await
        .expect("verify");
    assert!(check.is_complete(), "{check:?}");
    assert!(check.deliveries.is_empty());
    assert_eq!(check.horizon_reason.as_deref(), Some("capture installed"));

    let expected = uncaptured_bookings(&db, captured[0]).await;

    // Within the window (1 h) nothing is reported yet: capture might be in flight.
    let now = check_completeness(&client, seed::now(), DEFAULT_WINDOW, 100)
        .await
        .expect("verify");
    assert!(now.is_complete(), "{now:?}");

    let check = check_completeness(&client, later, DEFAULT_WINDOW, 100)
        .await
        .expect("verify");
    let found: Vec<(Uuid, String)> = check
        .deliveries
        .iter()
        .map(|m| (m.booking_id, m.missing_type.clone()))
        .collect();
    assert_eq!(check.missing, 4);
    assert_eq!(found, expected);
    assert_eq!(check.deliveries[0].booking_status, "rejected");
    assert_eq!(
        count_missing(&client, later, DEFAULT_WINDOW)
            .await
            .expect("count"),
        4
    );

    let first_two = check_completeness(&client, later, DEFAULT_WINDOW, 2)
        .await
        .expect("verify");
    assert_eq!((first_two.missing, first_two.deliveries.len()), (4, 2));
    let text = delivery::completeness::render_completeness(
        &first_two,
        &delivery::ops::output::Style::default(),
    );
    assert!(
        text.contains("INCOMPLETE: 4 expected deliveries are missing")
            && text.contains("2 of 4 shown"),
        "{text}"
    );
    let zero_window = check_completeness(
        &client,
        seed::now() + chrono::Duration::seconds(2),
        Duration::ZERO,
        100,
    )
    .await
    .expect("verify");
    assert_eq!(zero_window.missing, 4);
}

#[tokio::test]
async fn deliveries_deleted_by_hand_are_missing_but_retention_is_not() {
    let db = TestDb::new().await;
    let captured = captured_bookings(&db).await;
    let client = db.pool.get().await.expect("connection");
    client
        .execute(
            "DELETE FROM webhook_deliveries WHERE booking_id = $1 AND webhook_type = 'new_request'",
            &[&captured[1]],
        )
        .await
        .expect("delete by hand");
    let later = at(seed::now(), 120);
    let check = check_completeness(&client, later, DEFAULT_WINDOW, 100)
        .await
        .expect("verify");
    assert_eq!(
        check
            .deliveries
            .iter()
            .map(|m| (m.booking_id, m.missing_type.as_str()))
            .collect::<Vec<_>>(),
        vec![(captured[1], "new_request")]
    );

    // Retention moved past these bookings (as `cleanup` does when it deletes): not reported.
    client
        .execute(
            "UPDATE webhook_verify_horizon SET checked_from = now() + interval '1 minute'",
            &[],
        )
        .await
        .expect("move horizon");
    assert!(
        check_completeness(&client, later, DEFAULT_WINDOW, 100)
            .await
            .expect("verify")
            .is_complete()
    );
}

/// An app table without `created_at` (V1 requires only the columns capture reads).
async fn undated_db() -> TestDb {
    let db = TestDb::unmigrated().await;
    db.client()
        .await
        .batch_execute(
            "CREATE TABLE booking_requests (
                 id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                 student_email text, tutor_email text,
                 status text NOT NULL DEFAULT 'pending', notes text)",
        )
        .await
        .expect("the app's table");
    delivery::schema::migrate_quietly(&db.pool)
        .await
        .expect("migrations apply");
    db
}

#[tokio::test]
async fn without_created_at_verify_says_it_cannot_check_and_doctor_warns() {
    let db = undated_db().await;
    let client = db.pool.get().await.expect("connection");
    client
        .batch_execute(
            "ALTER TABLE booking_requests DISABLE TRIGGER USER;
             INSERT INTO booking_requests (tutor_email) VALUES ('t@example.com');
             ALTER TABLE booking_requests ENABLE TRIGGER USER;",
        )
        .await
        .expect("an uncaptured booking");
    let check = check_completeness(&client, at(seed::now(), 120), Duration::ZERO, 100)
        .await
        .expect("verify");
    assert!(!check.bookings_dated && !check.is_complete(), "{check:?}");
    assert!(
        delivery::completeness::render_completeness(
            &check,
            &delivery::ops::output::Style::default()
        )
        .starts_with("nothing checked")
    );

    let posture = delivery::posture::check_posture(&client, seed::now())
        .await
        .expect("doctor");
    let warning = posture
        .checks
        .iter()
        .find(|c| c.check == "completeness")
        .expect("checked");
    assert_eq!(warning.severity, delivery::posture::Severity::Warning);
    assert!(warning.message.contains("no created_at"), "{warning:?}");

    // Once the column exists (existing rows dated now), `webhooks migrate --repair` (as doctor
    // says) rebuilds the view, and the check sees the booking written with capture off.
    client
        .batch_execute(
            "ALTER TABLE booking_requests ADD COLUMN created_at timestamptz NOT NULL DEFAULT now()",
        )
        .await
        .expect("add created_at");
    let options = delivery::schema::MigrateOptions {
        repair: true,
        ..Default::default()
    };
    let repaired = delivery::schema::migrate(&db.pool, options, &mut |_| {})
        .await
        .expect("migrate --repair");
    assert_eq!(
        repaired.repaired,
        vec!["view webhook_missing_deliveries differs from this build's: its query"]
    );
    let check = check_completeness(&client, at(seed::now(), 120), Duration::ZERO, 100)
        .await
        .expect("verify");
    assert_eq!(
        (check.bookings_dated, check.missing),
        (true, 1),
        "{check:?}"
    );
}

#[tokio::test]
async fn a_window_reaching_back_before_the_horizon_says_there_is_nothing_to_check_yet() {
    // Installed just now: with the default hour, the range checked would end before it starts.
    let db = TestDb::new().await;
    let client = db.pool.get().await.expect("connection");
    let check = check_completeness(&client, seed::now(), DEFAULT_WINDOW, 100)
        .await
        .expect("verify");
    let why = check.empty_range(DEFAULT_WINDOW).expect("an empty range");
    assert!(
        why.starts_with("nothing to check yet: --window 1h 0m leaves out bookings created after")
            && why.contains("(capture installed)")
            && why.contains("--window 0s checks every booking up to now")
            && why.contains("or run it again after"),
        "{why}"
    );
    let later = check_completeness(&client, at(seed::now(), 120), DEFAULT_WINDOW, 100)
        .await
        .expect("verify");
    assert_eq!(later.empty_range(DEFAULT_WINDOW), None);
    assert_eq!(check.nothing_to_check.as_deref(), Some(why.as_str()));
    assert_eq!(later.nothing_to_check, None);

    let run = |args: &'static [&'static str]| {
        let url = db.url.clone();
        tokio::task::spawn_blocking(move || webhooks(&url, args))
    };
    // Not an error: nothing is wrong, and what was (not) checked is said.
    for args in [&["verify"][..], &["verify", "--window", "100000000d"]] {
        let out = run(args).await.expect("run");
        let stdout = text(&out.stdout);
        assert_eq!(code(&out), Some(0), "{args:?}: {}", text(&out.stderr));
        assert!(out.stderr.is_empty(), "{args:?}: {}", text(&out.stderr));
        assert!(
            stdout.starts_with("nothing to check yet: --window") && stdout.contains("--window 0s"),
            "{args:?}: {stdout}"
        );
    }
    let out = run(&["verify", "--json"]).await.expect("run");
    assert_eq!(code(&out), Some(0), "{}", text(&out.stderr));
    let report = json(&out);
    assert!(
        report["nothingToCheck"]
            .as_str()
            .is_some_and(|why| why.starts_with("nothing to check yet")),
        "{report}"
    );
    assert_eq!(report["missing"], 0);
    let everything = run(&["verify", "--window", "0s"]).await.expect("run");
    assert_eq!(code(&everything), Some(0), "{}", text(&everything.stderr));
}

/// A booking inserted with its decision already made (instant booking): capture tells the
/// tutor and the student, and verify — which expects a delivery of every decision — finds
/// nothing missing. It used to report the decision missing, and the alarm fired for a healthy
/// system.
#[tokio::test]
async fn a_booking_inserted_with_a_decision_is_notified_and_verify_agrees() {
    let db = TestDb::new().await;
    let client = db.pool.get().await.expect("connection");
    let mut bookings = Vec::new();
    for status in ["approved", "rejected"] {
        let id: Uuid = client
            .query_one(
                "INSERT INTO booking_requests (tutor_email, student_email, status) \
                 VALUES ('t@example.com', 's@example.com', $1) RETURNING id",
                &[&status],
            )
            .await
            .expect("insert with a decision")
            .get(0);
        bookings.push((id, status));
    }
    for (id, status) in &bookings {
        let types: Vec<String> = client
            .query(
                "SELECT webhook_type FROM webhook_deliveries WHERE booking_id = $1 \
                 ORDER BY capture_seq",
                &[id],
            )
            .await
            .expect("deliveries")
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert_eq!(
            types,
            vec!["new_request", *status],
            "tutor first, then the student"
        );
    }
    let check = check_completeness(&client, at(seed::now(), 120), DEFAULT_WINDOW, 100)
        .await
        .expect("verify");
    assert!(check.is_complete(), "{check:?}");

    // With capture off, the same insert is reported: the decision and the request.
    client
        .batch_execute("ALTER TABLE booking_requests DISABLE TRIGGER USER")
        .await
        .expect("disable");
    let missed: Uuid = client
        .query_one(
            "INSERT INTO booking_requests (tutor_email, student_email, status) \
             VALUES ('t@example.com', 's@example.com', 'approved') RETURNING id",
            &[],
        )
        .await
        .expect("insert")
        .get(0);
    client
        .batch_execute("ALTER TABLE booking_requests ENABLE TRIGGER USER")
        .await
        .expect("enable");
    let check = check_completeness(&client, at(seed::now(), 120), DEFAULT_WINDOW, 100)
        .await
        .expect("verify");
    let mut found: Vec<(Uuid, String)> = check
        .deliveries
        .iter()
        .map(|m| (m.booking_id, m.missing_type.clone()))
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            (missed, "approved".to_owned()),
            (missed, "new_request".to_owned())
        ]
    );
}
