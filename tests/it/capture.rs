//! Transactional capture: the triggers store each booking event in `webhook_deliveries`, in
//! the booking's own transaction, and NOTIFY on commit.

use std::time::Duration;

use delivery::sql;
use serde_json::json;
use uuid::Uuid;

use crate::support::TestDb;
use crate::support::db::{Listener, connect, migration_files};

/// All deliveries of a booking: (type, recipient, status, payload, last_error).
async fn deliveries(
    db: &TestDb,
    booking: Uuid,
) -> Vec<(
    String,
    Option<String>,
    String,
    serde_json::Value,
    Option<String>,
)> {
    let client = db.pool.get().await.expect("connection");
    client
        .query(
            "SELECT webhook_type, recipient_email, status, payload, last_error
               FROM webhook_deliveries WHERE booking_id = $1 ORDER BY created_at, webhook_type",
            &[&booking],
        )
        .await
        .expect("query deliveries")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect()
}

/// Reads notifications until `marker`'s arrives, failing if `forbidden`'s comes first. A
/// committed marker proves the channel works and, NOTIFY being delivered in commit order,
/// arrives after anything the earlier transaction could have sent. Other tests' schemas share
/// the database-wide channel: their ids are skipped.
async fn assert_marker_arrives_without(
    listener: &mut Listener,
    marker: Uuid,
    forbidden: Uuid,
    why: &str,
) {
    loop {
        let payload = listener
            .next(Duration::from_secs(10))
            .await
            .expect("the marker's notification arrives");
        assert_ne!(payload, forbidden.to_string(), "{why}");
        if payload == marker.to_string() {
            return;
        }
    }
}

#[tokio::test]
async fn an_insert_captures_one_new_request_for_the_tutor_with_the_seed_payload() {
    let db = TestDb::new().await;
    let booking = db
        .insert_booking(Some("tutor@example.com"), Some("student@example.com"))
        .await;
    let rows = deliveries(&db, booking).await;
    assert_eq!(rows.len(), 1);
    let (kind, recipient, status, payload, _) = &rows[0];
    assert_eq!(
        (kind.as_str(), recipient.as_deref(), status.as_str()),
        ("new_request", Some("tutor@example.com"), "pending")
    );
    assert_eq!(
        payload,
        &json!({"type": "new_request", "bookingId": booking, "email": "tutor@example.com"})
    );
    // Due at once, so the sweep takes it if the immediate dispatch never runs.
    assert_eq!(db.count("SELECT count(*) FROM webhook_deliveries WHERE next_retry_at <= now() AND attempt_count = 0").await, 1);
}

#[tokio::test]
async fn approval_captures_approved_for_the_student() {
    let db = TestDb::new().await;
    let booking = db
        .insert_booking(Some("tutor@example.com"), Some("student@example.com"))
        .await;
    let client = db.client().await;
    client
        .execute(
            "UPDATE booking_requests SET status = 'approved' WHERE id = $1",
            &[&booking],
        )
        .await
        .expect("approve");
    let rows = deliveries(&db, booking).await;
    assert_eq!(rows.len(), 2);
    let approved = rows
        .iter()
        .find(|r| r.0 == "approved")
        .expect("an approved delivery");
    assert_eq!(approved.1.as_deref(), Some("student@example.com"));
    assert_eq!(
        approved.3,
        json!({"type": "approved", "bookingId": booking, "email": "student@example.com"})
    );
}

#[tokio::test]
async fn rejection_with_notes_captures_rejected_for_the_student() {
    let db = TestDb::new().await;
    let booking = db
        .insert_booking(Some("tutor@example.com"), Some("student@example.com"))
        .await;
    let client = db.client().await;
    client
        .execute(
            "UPDATE booking_requests SET status = 'rejected', notes = 'Fully booked' WHERE id = $1",
            &[&booking],
        )
        .await
        .expect("reject");
    let rows = deliveries(&db, booking).await;
    let rejected: Vec<_> = rows.iter().filter(|r| r.0 == "rejected").collect();
    assert_eq!(rejected.len(), 1);
    assert_eq!(
        rejected[0].3,
        json!({"type": "rejected", "bookingId": booking, "email": "student@example.com"})
    );
}

#[tokio::test]
async fn notes_only_updates_and_repeated_statuses_capture_nothing() {
    let db = TestDb::new().await;
    let booking = db
        .insert_booking(Some("tutor@example.com"), Some("student@example.com"))
        .await;
    let client = db.client().await;
    client
        .execute(
            "UPDATE booking_requests SET notes = 'see you' WHERE id = $1",
            &[&booking],
        )
        .await
        .expect("notes");
    client
        .execute(
            "UPDATE booking_requests SET status = 'pending' WHERE id = $1",
            &[&booking],
        )
        .await
        .expect("same");
    assert_eq!(
        deliveries(&db, booking).await.len(),
        1,
        "only the new_request"
    );
    client
        .execute(
            "UPDATE booking_requests SET status = 'approved' WHERE id = $1",
            &[&booking],
        )
        .await
        .expect("approve");
    client
        .execute(
            "UPDATE booking_requests SET status = 'approved', notes = 'x' WHERE id = $1",
            &[&booking],
        )
        .await
        .expect("again");
    client
        .execute(
            "UPDATE booking_requests SET status = 'cancelled' WHERE id = $1",
            &[&booking],
        )
        .await
        .expect("cancel");
    let kinds: Vec<String> = deliveries(&db, booking)
        .await
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "approved").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(kinds.len(), 2, "cancelled captures nothing: {kinds:?}");
}

#[tokio::test]
async fn a_missing_or_blank_recipient_is_skipped_with_a_reason_and_the_booking_commits() {
    let db = TestDb::new().await;
    let no_tutor = db.insert_booking(None, Some("student@example.com")).await;
    let blank_tutor = db
        .insert_booking(Some("   "), Some("student@example.com"))
        .await;
    for booking in [no_tutor, blank_tutor] {
        let rows = deliveries(&db, booking).await;
        assert_eq!(rows.len(), 1);
        let (kind, recipient, status, payload, reason) = &rows[0];
        assert_eq!(
            (kind.as_str(), recipient, status.as_str()),
            ("new_request", &None, "skipped")
        );
        assert_eq!(reason.as_deref(), Some("booking has no tutor_email"));
        assert_eq!(payload["email"], serde_json::Value::Null);
    }
    assert_eq!(
        db.count("SELECT count(*) FROM booking_requests").await,
        2,
        "both bookings committed"
    );
    // A skipped delivery is final: never due, never sent.
    assert_eq!(db.count("SELECT count(*) FROM webhook_deliveries WHERE status = 'skipped' AND next_retry_at IS NULL AND resolved_at IS NOT NULL").await, 2);

    let client = db.client().await;
    client
        .execute(
            "UPDATE booking_requests SET student_email = NULL, status = 'approved' WHERE id = $1",
            &[&no_tutor],
        )
        .await
        .expect("approve");
    let approved = deliveries(&db, no_tutor)
        .await
        .into_iter()
        .find(|r| r.0 == "approved")
        .expect("captured");
    assert_eq!(
        (approved.2.as_str(), approved.4.as_deref()),
        ("skipped", Some("booking has no student_email"))
    );
}

#[tokio::test]
async fn a_rolled_back_booking_leaves_no_delivery_and_no_notification() {
    let db = TestDb::new().await;
    let mut listener = Listener::start(&db.url, sql::CAPTURE_CHANNEL).await;
    let mut client = db.client().await;

    let tx = client.transaction().await.expect("begin");
    tx.execute(
        "INSERT INTO booking_requests (tutor_email) VALUES ('ghost@example.com')",
        &[],
    )
    .await
    .expect("insert");
    let ghost: Uuid = tx
        .query_one("SELECT id FROM webhook_deliveries", &[])
        .await
        .expect("captured inside")
        .get(0);
    tx.rollback().await.expect("rollback");

    let marker_booking = db.insert_booking(Some("real@example.com"), None).await;
    let marker = db.delivery_id(marker_booking, "new_request").await;
    assert_marker_arrives_without(
        &mut listener,
        marker,
        ghost,
        "a rolled-back capture was notified",
    )
    .await;
    assert_eq!(db.count("SELECT count(*) FROM webhook_deliveries").await, 1);
    assert_eq!(db.count("SELECT count(*) FROM booking_requests").await, 1);
}

#[tokio::test]
async fn notify_can_be_switched_off_without_touching_migrations() {
    let db = TestDb::new().await;
    let mut listener = Listener::start(&db.url, sql::CAPTURE_CHANNEL).await;
    let quiet = db.client().await;
    // What `ALTER DATABASE … SET webhooks.notify = 'off'` makes every new session do.
    quiet
        .batch_execute("SET webhooks.notify = 'off'")
        .await
        .expect("set");
    let silent: Uuid = quiet
        .query_one(
            "INSERT INTO booking_requests (tutor_email) VALUES ('a@example.com') RETURNING id",
            &[],
        )
        .await
        .expect("insert")
        .get(0);
    let silent = db.delivery_id(silent, "new_request").await;
    let marker = db
        .delivery_id(
            db.insert_booking(Some("b@example.com"), None).await,
            "new_request",
        )
        .await;
    assert_marker_arrives_without(
        &mut listener,
        marker,
        silent,
        "notified although webhooks.notify = off",
    )
    .await;
    assert_eq!(
        db.count("SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'")
            .await,
        2,
        "both captured"
    );
}

/// `webhooks listen` raises its flag while it polls the outbox (V18): capture skips NOTIFY
/// and its commit-time lock while the flag is in the future, notifies again once it is down,
/// and a missing flag, or a table under its name, means "notify" — never a failed booking.
#[tokio::test]
async fn a_raised_listener_flag_skips_notify_and_a_missing_one_never_fails_a_booking() {
    let db = TestDb::new().await;
    let mut listener = Listener::start(&db.url, sql::CAPTURE_CHANNEL).await;
    let client = db.client().await;
    // Raised as listen raises it (its own statement), a minute ahead.
    let (minute, lapsed) = (60_000_i64, -1_i64);
    client
        .execute(sql::LISTENER_AWAKE, &[&minute])
        .await
        .expect("raise");
    let silent = db.booking_with_delivery().await.1;
    // A decision at insert goes through capture_booking_webhook: silent too.
    let decided: Uuid = client
        .query_one(
            "INSERT INTO booking_requests (tutor_email, student_email, status)
             VALUES ('t@example.com', 's@example.com', 'approved') RETURNING id",
            &[],
        )
        .await
        .expect("insert decided")
        .get(0);
    let silent_decision = db.delivery_id(decided, "approved").await;
    // A flag that lapsed is down: lowered to the past, not to 0.
    client
        .execute(sql::LISTENER_AWAKE, &[&lapsed])
        .await
        .expect("lapse");
    let marker = db.booking_with_delivery().await.1;
    let mut seen = Vec::new();
    loop {
        let payload = listener
            .next(Duration::from_secs(10))
            .await
            .expect("the marker's notification arrives");
        if payload == marker.to_string() {
            break;
        }
        seen.push(payload);
    }
    for quiet in [silent, silent_decision] {
        assert!(
            !seen.contains(&quiet.to_string()),
            "notified although the flag was raised"
        );
    }

    // Without the sequence (dropped by hand), capture notifies and the booking commits.
    client
        .execute(sql::LISTENER_AWAKE, &[&minute])
        .await
        .expect("raise before the drop");
    client
        .batch_execute("DROP SEQUENCE webhook_listener_awake_until")
        .await
        .expect("drop");
    let (_, loud) = db.booking_with_delivery().await;
    assert_eq!(
        listener.next(Duration::from_secs(10)).await,
        Some(loud.to_string()),
        "notified without the flag"
    );
    // Nor with something else under its name (a table: pg_sequence_last_value refuses it).
    client
        .batch_execute("CREATE TABLE webhook_listener_awake_until (x bigint)")
        .await
        .expect("a table under the flag's name");
    let (_, squatted) = db.booking_with_delivery().await;
    let polling: Option<bool> = client
        .query_one(sql::NOTIFY_POSTURE, &[])
        .await
        .expect("doctor's read survives it")
        .get(3);
    assert_eq!(polling, None, "no flag to read");
    assert_eq!(
        listener.next(Duration::from_secs(10)).await,
        Some(squatted.to_string()),
        "notified with a table under the flag's name"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'")
            .await,
        6,
        "every booking captured (the decided one twice: tutor and student)"
    );
}

#[tokio::test]
async fn a_hundred_inserts_from_eight_connections_capture_exactly_a_hundred() {
    let db = TestDb::new().await;
    let mut writers = Vec::new();
    for w in 0..8 {
        let url = db.url.clone();
        writers.push(tokio::spawn(async move {
            let client = connect(&url).await;
            for i in (w..100).step_by(8) {
                client
                    .execute(
                        "INSERT INTO booking_requests (tutor_email) VALUES ($1)",
                        &[&format!("t{i}@example.com")],
                    )
                    .await
                    .expect("insert");
            }
        }));
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    assert_eq!(db.count("SELECT count(*) FROM booking_requests").await, 100);
    assert_eq!(
        db.count("SELECT count(*) FROM webhook_deliveries WHERE webhook_type = 'new_request'")
            .await,
        100
    );
    assert_eq!(
        db.count("SELECT count(DISTINCT booking_id) FROM webhook_deliveries")
            .await,
        100
    );
}

#[tokio::test]
async fn migrations_run_twice_and_into_a_non_public_schema() {
    let db = TestDb::new().await; // refinery, into it_<uuid>
    assert_eq!(
        delivery::schema::migrate_quietly(&db.pool)
            .await
            .expect("second run"),
        Vec::<String>::new()
    );
    assert_eq!(
        db.count(&format!(
            "SELECT count(*) FROM pg_tables WHERE schemaname = '{}' AND tablename IN ('booking_requests', 'webhook_deliveries', 'webhook_attempts')",
            db.schema
        ))
        .await,
        3
    );

    // The files as plain SQL, in order, twice (what `psql -f` does), into another schema.
    let psql = TestDb::unmigrated().await;
    let schema = &psql.schema;
    let client = psql.client().await;
    for _ in 0..2 {
        for file in migration_files() {
            let text = std::fs::read_to_string(&file).expect("read migration");
            client
                .batch_execute(&text)
                .await
                .unwrap_or_else(|e| panic!("{}: {e:?}", file.display()));
        }
    }
    client
        .execute(
            "INSERT INTO booking_requests (tutor_email) VALUES ('t@example.com')",
            &[],
        )
        .await
        .expect("insert");
    let captured: i64 = client
        .query_one("SELECT count(*) FROM webhook_deliveries", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(captured, 1, "one trigger, not two, after running twice");
    // The definer functions resolve names in pg_catalog only (ours are schema-qualified).
    let config: Vec<String> = client
        .query_one(
            "SELECT proconfig FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = $1 AND p.proname = 'notify_new_booking'",
            &[&schema],
        )
        .await
        .expect("function")
        .get(0);
    assert_eq!(config, vec!["search_path=pg_catalog, pg_temp".to_owned()]);
}

#[tokio::test]
async fn the_seed_monitoring_queries_run() {
    let db = TestDb::new().await;
    db.insert_booking(Some("tutor@example.com"), Some("s@example.com"))
        .await;
    let client = db.pool.get().await.expect("connection");
    for query in [
        "SELECT booking_id, webhook_type, attempt_count, next_retry_at FROM webhook_failures WHERE status = 'retrying' ORDER BY next_retry_at",
        "SELECT * FROM webhook_failures ORDER BY created_at DESC LIMIT 1",
        "SELECT * FROM email_logs ORDER BY created_at DESC LIMIT 1",
        "SELECT * FROM webhook_health_stats",
        "SELECT * FROM webhook_error_patterns",
        "SELECT trigger_name, event_manipulation FROM information_schema.triggers WHERE event_object_table = 'booking_requests'",
    ] {
        client
            .query(query, &[])
            .await
            .unwrap_or_else(|e| panic!("{query}: {e:?}"));
    }
    let triggers: Vec<(String, String)> = client
        .query(
            "SELECT trigger_name::text, event_manipulation::text FROM information_schema.triggers
              WHERE event_object_table = 'booking_requests' AND trigger_schema = current_schema() ORDER BY 1",
            &[],
        )
        .await
        .expect("triggers")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        triggers,
        vec![
            ("trigger_new_booking_notification".into(), "INSERT".into()),
            ("trigger_status_update_notification".into(), "UPDATE".into()),
        ]
    );
    let stats = client
        .query_one(
            "SELECT total, pending FROM webhook_health_stats WHERE webhook_type = 'new_request'",
            &[],
        )
        .await
        .expect("stats");
    assert_eq!((stats.get::<_, i64>(0), stats.get::<_, i64>(1)), (1, 1));
}

#[tokio::test]
async fn every_engine_statement_prepares_against_the_migrated_schema() {
    let db = TestDb::new().await;
    let client = db.client().await;
    for (name, statement) in sql::ALL {
        client
            .prepare(statement)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    }
}

#[tokio::test]
async fn an_app_role_can_book_but_cannot_read_or_forge_deliveries() {
    let db = TestDb::new().await;
    let role = format!("{}_app", db.schema);
    let admin = db.client().await;
    admin
        .batch_execute(&format!(
            "CREATE ROLE {role} NOLOGIN;
             GRANT USAGE ON SCHEMA {schema} TO {role};
             GRANT SELECT, INSERT, UPDATE ON booking_requests TO {role};
             CREATE POLICY app_books ON booking_requests TO {role} USING (true);",
            schema = db.schema
        ))
        .await
        .expect("role");
    let app = db.client().await;
    app.batch_execute(&format!("SET ROLE {role}"))
        .await
        .expect("set role");
    app.execute(
        "INSERT INTO booking_requests (tutor_email) VALUES ('t@example.com')",
        &[],
    )
    .await
    .expect("the app books");
    app.execute("UPDATE booking_requests SET status = 'approved'", &[])
        .await
        .expect("the app approves");
    let read = app.query("SELECT * FROM webhook_deliveries", &[]).await;
    assert!(
        read.is_err(),
        "the app must not read email addresses from the outbox"
    );
    let via_view = app.query("SELECT * FROM email_logs", &[]).await;
    assert!(via_view.is_err(), "nor through the views");
    let forge = app
        .query(
            "SELECT capture_booking_webhook(gen_random_uuid(), 'approved', 'victim@example.com')",
            &[],
        )
        .await;
    assert!(
        forge.is_err(),
        "nor queue mail to any address by calling the capture function"
    );
    drop(app);
    assert_eq!(
        db.count("SELECT count(*) FROM webhook_deliveries").await,
        2,
        "both captures stored by the definer"
    );
    admin
        .batch_execute(&format!("DROP OWNED BY {role}; DROP ROLE {role}"))
        .await
        .expect("drop role");
}

/// The capture functions are SECURITY DEFINER: a session that may book must not be able to
/// steer what they write by name resolution. It brings a schema of its own and a temporary
/// table, both with a `webhook_deliveries` that would accept the rows, and its own
/// `capture_booking_webhook` (the path of skipped notifications), puts them first on its
/// search_path and books: everything lands in the real outbox, nothing in the decoys.
#[tokio::test]
async fn a_session_cannot_redirect_capture_to_tables_or_functions_of_its_own() {
    let db = TestDb::new().await;
    let role = format!("{}_intruder", db.schema);
    let own = format!("{}_own", db.schema);
    let admin = db.client().await;
    admin
        .batch_execute(&format!(
            "CREATE ROLE {role} NOLOGIN;
             GRANT USAGE ON SCHEMA {schema} TO {role};
             GRANT SELECT, INSERT, UPDATE ON booking_requests TO {role};
             CREATE POLICY intruder_books ON booking_requests TO {role} USING (true);
             CREATE SCHEMA {own} AUTHORIZATION {role};",
            schema = db.schema
        ))
        .await
        .expect("role and its schema");
    let decoy_table = "(id uuid DEFAULT gen_random_uuid(), booking_id uuid, webhook_type text,
                        recipient_email text, payload jsonb, status text, last_error text,
                        next_retry_at timestamptz, resolved_at timestamptz)";
    let session = db.client().await;
    session
        .batch_execute(&format!(
            "SET ROLE {role};
             CREATE TABLE {own}.webhook_deliveries {decoy_table};
             CREATE TEMP TABLE webhook_deliveries {decoy_table};
             CREATE FUNCTION {own}.capture_booking_webhook(uuid, text, text) RETURNS uuid
                 LANGUAGE sql AS 'SELECT NULL::uuid';
             SET search_path = pg_temp, {own}, {schema};
             INSERT INTO {schema}.booking_requests (tutor_email, student_email)
                  VALUES ('tutor@example.com', 'student@example.com'), ('not an address', NULL);
             UPDATE {schema}.booking_requests SET status = 'approved';",
            schema = db.schema
        ))
        .await
        .expect("the intruder books and approves");
    for decoy in [
        format!("{own}.webhook_deliveries"),
        "pg_temp.webhook_deliveries".to_owned(),
    ] {
        let n: i64 = session
            .query_one(&format!("SELECT count(*) FROM {decoy}"), &[])
            .await
            .expect("count the decoy")
            .get(0);
        assert_eq!(n, 0, "capture wrote into {decoy}");
    }
    let captured: Vec<(String, String)> = admin
        .query(
            "SELECT webhook_type, status FROM webhook_deliveries ORDER BY capture_seq",
            &[],
        )
        .await
        .expect("outbox")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut sorted = captured.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            ("approved", "pending"),
            ("approved", "skipped"),
            ("new_request", "pending"),
            ("new_request", "skipped"),
        ]
        .map(|(t, s)| (t.to_owned(), s.to_owned())),
        "every capture in the real outbox, skipped ones included: {captured:?}"
    );
    drop(session);
    admin
        .batch_execute(&format!(
            "DROP SCHEMA {own} CASCADE; DROP OWNED BY {role}; DROP ROLE {role}"
        ))
        .await
        .expect("drop role");
}
