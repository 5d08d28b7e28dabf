//! `webhooks migrate`: one transaction end to end. An incompatible `booking_requests` is
//! refused with a message naming each mismatch, a failing migration leaves nothing behind, a
//! dry run changes nothing, two runs at once serialize, and the email service's `email_logs`
//! table is left alone. (Adopting the old pg_net system: `adopt.rs`.)

use crate::support::TestDb;
use crate::support::db::connect;
use crate::support::scratch::{ScratchDb, assert_same, snapshot, webhooks};

/// A fresh schema in the shared test database with `setup` run in it, nothing migrated;
/// dropped on drop.
async fn schema_with(setup: &str) -> TestDb {
    let db = TestDb::unmigrated().await;
    if !setup.is_empty() {
        db.client()
            .await
            .batch_execute(setup)
            .await
            .unwrap_or_else(|e| panic!("setup {setup}: {e:?}"));
    }
    db
}

/// The schema's catalog and data ([`snapshot`]).
async fn catalog(db: &TestDb) -> Vec<String> {
    snapshot(&db.client().await, &[&db.schema]).await
}

/// Each shape of `booking_requests` the capture triggers cannot work with, and the phrases the
/// refusal must contain.
const INCOMPATIBLE: &[(&str, &str, &[&str])] = &[
    (
        "id is a bigint",
        "CREATE TABLE booking_requests (id bigint PRIMARY KEY, tutor_email text, student_email text, status text)",
        &["column id is bigint; it must be uuid"],
    ),
    (
        "no student_email",
        "CREATE TABLE booking_requests (id uuid PRIMARY KEY, tutor_email text, status text)",
        &["column student_email is missing; it must be text, varchar, char or citext"],
    ),
    (
        "tutor_email is an integer",
        "CREATE TABLE booking_requests (id uuid PRIMARY KEY, tutor_email integer, student_email text, status text)",
        &["column tutor_email is integer; it must be text"],
    ),
    (
        "status is a boolean",
        "CREATE TABLE booking_requests (id uuid PRIMARY KEY, tutor_email text, student_email text, status boolean)",
        &["column status is boolean; it must be text, varchar, char, citext or an enum with the labels approved, rejected"],
    ),
    (
        "status is an enum without 'rejected'",
        "CREATE TYPE booking_state AS ENUM ('pending', 'approved', 'declined');
         CREATE TABLE booking_requests (id uuid PRIMARY KEY, tutor_email text, student_email text, status booking_state)",
        &["column status is booking_state, an enum without the label(s) rejected"],
    ),
    (
        "everything wrong at once",
        "CREATE TABLE booking_requests (id integer PRIMARY KEY, tutor_email uuid)",
        &[
            "column id is integer; it must be uuid",
            "column tutor_email is uuid; it must be text",
            "column student_email is missing",
            "column status is missing",
        ],
    ),
    (
        "a view",
        "CREATE VIEW booking_requests AS SELECT gen_random_uuid() AS id, ''::text AS tutor_email,
                ''::text AS student_email, 'pending'::text AS status",
        &["it is a view; it must be an ordinary or partitioned table"],
    ),
];

#[tokio::test]
async fn each_incompatible_booking_table_is_refused_and_nothing_is_applied() {
    for (shape, setup, phrases) in INCOMPATIBLE {
        let schema = schema_with(setup).await;
        let before = catalog(&schema).await;

        let run = webhooks(&schema.url, &["migrate"]).await;

        assert_ne!(run.code, 0, "{shape}: refused\n{run:?}");
        assert!(
            run.stderr
                .contains("booking_requests does not fit the capture triggers"),
            "{shape}: {}",
            run.stderr
        );
        for phrase in *phrases {
            assert!(
                run.stderr.contains(phrase),
                "{shape}: {phrase:?} missing from\n{}",
                run.stderr
            );
        }
        assert!(run.stderr.contains("Nothing was changed"), "{shape}");
        assert_same(&before, &catalog(&schema).await, shape);
    }
}

#[tokio::test]
async fn an_enum_status_with_the_needed_labels_is_captured() {
    let schema = schema_with(
        "CREATE TYPE booking_state AS ENUM ('pending', 'approved', 'rejected', 'cancelled');
         CREATE TABLE booking_requests (
             id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
             tutor_email varchar(320),
             student_email varchar(320),
             status booking_state NOT NULL DEFAULT 'pending')",
    )
    .await;
    let run = webhooks(&schema.url, &["migrate"]).await;
    assert_eq!(run.code, 0, "{run:?}");

    let client = connect(&schema.url).await;
    client
        .batch_execute(
            "INSERT INTO booking_requests (tutor_email, student_email) VALUES ('t@example.com', 's@example.com');
             UPDATE booking_requests SET status = 'approved';",
        )
        .await
        .expect("insert and approve a booking with an enum status");
    let types: Vec<String> = client
        .query(
            "SELECT webhook_type FROM webhook_deliveries ORDER BY created_at, webhook_type",
            &[],
        )
        .await
        .expect("deliveries")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(types, ["approved", "new_request"]);
}

#[tokio::test]
async fn domains_varchar_and_char_columns_are_accepted() {
    let schema = schema_with(
        "CREATE DOMAIN booking_key AS uuid;
         CREATE DOMAIN address AS varchar(320) CHECK (VALUE LIKE '%@%');
         CREATE TABLE booking_requests (
             id booking_key PRIMARY KEY DEFAULT gen_random_uuid(),
             tutor_email address,
             student_email char(60),
             status varchar(20) NOT NULL DEFAULT 'pending')",
    )
    .await;
    let run = webhooks(&schema.url, &["migrate"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let client = connect(&schema.url).await;
    client
        .batch_execute(
            "INSERT INTO booking_requests (tutor_email, student_email) VALUES ('t@example.com', 's@example.com');
             UPDATE booking_requests SET status = 'rejected';",
        )
        .await
        .expect("capture works");
    let recipients: Vec<String> = client
        .query(
            "SELECT recipient_email FROM webhook_deliveries ORDER BY webhook_type",
            &[],
        )
        .await
        .expect("deliveries")
        .iter()
        .map(|r| r.get(0))
        .collect();
    // char(60) pads; the capture trims.
    assert_eq!(recipients, ["t@example.com", "s@example.com"]);
}

#[tokio::test]
async fn a_migration_failing_half_way_leaves_nothing_behind() {
    // V4 creates the view webhook_error_patterns; a table of that name makes it fail after
    // V1-V3 succeeded.
    let schema = schema_with("CREATE TABLE webhook_error_patterns (note text)").await;
    let before = catalog(&schema).await;

    let run = webhooks(&schema.url, &["migrate"]).await;

    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("V4__health_views")
            && run
                .stderr
                .contains("\"webhook_error_patterns\" is not a view"),
        "{}",
        run.stderr
    );
    assert_same(&before, &catalog(&schema).await, "a failed migration");
}

#[tokio::test]
async fn a_dry_run_lists_the_migrations_and_changes_nothing() {
    let schema = schema_with("").await;
    let before = catalog(&schema).await;

    let run = webhooks(&schema.url, &["migrate", "--dry-run"]).await;

    assert_eq!(run.code, 0, "{run:?}");
    for file in crate::support::db::migration_files() {
        let name = file
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("file name")
            .to_owned();
        assert!(
            run.stdout.contains(&format!("applied migration {name}")),
            "{name}: {}",
            run.stdout
        );
    }
    assert!(run.stdout.contains("rolled back, nothing was changed"));
    assert_same(&before, &catalog(&schema).await, "a dry run");

    let real = webhooks(&schema.url, &["migrate"]).await;
    assert_eq!(real.code, 0, "{real:?}");
    assert!(real.stdout.contains("committed"), "{}", real.stdout);
    let again = webhooks(&schema.url, &["migrate"]).await;
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again.stdout.contains("schema is current"),
        "{}",
        again.stdout
    );
}

#[tokio::test]
async fn two_migrations_of_one_schema_at_once_run_one_after_the_other() {
    let schema = schema_with("").await;
    let pool = || {
        let mut config = delivery::DbConfig::new(schema.url.clone());
        config.pool_size = 1;
        config.pool().expect("pool")
    };
    let (a, b) = (pool(), pool());
    let (first, second) = tokio::join!(
        delivery::schema::migrate_quietly(&a),
        delivery::schema::migrate_quietly(&b)
    );
    let mut applied = [
        first.expect("first run").len(),
        second.expect("second run").len(),
    ];
    applied.sort();
    assert_eq!(
        applied,
        [0, crate::support::db::migration_files().len()],
        "one applied everything, the other found the schema current"
    );
}

#[tokio::test]
async fn an_email_logs_table_of_the_email_service_is_left_alone() {
    let db = ScratchDb::new().await;
    let client = db.client().await;
    client
        .batch_execute(
            "CREATE TABLE email_logs (id bigint GENERATED ALWAYS AS IDENTITY, recipient text, sent_at timestamptz);
             INSERT INTO email_logs (recipient, sent_at) VALUES ('a@example.com', now()), ('b@example.com', now());
             COMMENT ON TABLE email_logs IS 'the email service''s log';
             CREATE VIEW email_stats AS SELECT count(*) AS sent FROM email_logs;",
        )
        .await
        .expect("email service objects");
    let table = |c: &'static str| {
        format!(
            "SELECT {c} FROM pg_class WHERE relname = 'email_logs' AND relnamespace = 'app'::regnamespace"
        )
    };
    let oid_before: u32 = client
        .query_one(&table("oid"), &[])
        .await
        .expect("oid")
        .get(0);
    let service_objects = |lines: Vec<String>| -> Vec<String> {
        lines
            .into_iter()
            .filter(|l| {
                (l.contains("email_logs") && !l.contains("webhook_email_logs"))
                    || l.contains("email_stats")
            })
            .collect()
    };
    let rows_before = service_objects(snapshot(&client, &["app"]).await);

    let run = webhooks(&db.url, &["migrate"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("email_logs is not ours"),
        "{}",
        run.stdout
    );

    let oid_after: u32 = client
        .query_one(&table("oid"), &[])
        .await
        .expect("oid")
        .get(0);
    assert_eq!(oid_before, oid_after, "the same table, never recreated");
    let rows_after = service_objects(snapshot(&client, &["app"]).await);
    assert_same(&rows_before, &rows_after, "migrating next to email_logs");
    // Our view of delivered notifications is there under its own name.
    assert_eq!(db.count("SELECT count(*) FROM webhook_email_logs").await, 0);
    let again = webhooks(&db.url, &["migrate"]).await;
    assert!(again.stdout.contains("schema is current"), "{again:?}");
}

#[tokio::test]
async fn json_output_reports_the_applied_migrations_and_the_steps_go_to_stderr() {
    let schema = schema_with("").await;

    let run = webhooks(&schema.url, &["migrate", "--json"]).await;

    assert_eq!(run.code, 0, "{run:?}");
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON object");
    assert_eq!(
        report["applied"].as_array().map(Vec::len),
        Some(crate::support::db::migration_files().len())
    );
    assert_eq!(report["committed"], true);
    assert_eq!(report["adopted"], false);
    assert!(
        run.stderr
            .contains("applied migration V1__booking_requests")
    );
}
