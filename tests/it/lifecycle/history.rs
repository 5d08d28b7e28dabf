//! Databases whose refinery history this build's migrations do not fit as such: one that an
//! intermediate build migrated (V8 added late, V9 edited after release), brought up by
//! `webhooks migrate --repair`; and the pending migrations applied by hand with psql, after
//! which `webhooks migrate` and `webhooks doctor` agree that everything is applied.

use serde_json::Value;

use crate::support::scratch::{Run, ScratchDb, webhooks};

/// The files of `versions`, as applied by hand, and refinery's history rows for them with the
/// given checksums (as an intermediate build would have left them).
async fn applied_by_an_intermediate_build(db: &ScratchDb, history: &[(i32, u64)]) {
    let client = db.client().await;
    client
        .batch_execute(
            "CREATE TABLE refinery_schema_history (version int4 PRIMARY KEY, name varchar(255),
                                                   applied_on varchar(255), checksum varchar(255))",
        )
        .await
        .expect("history table");
    let known = delivery::schema::known_migrations();
    for (version, checksum) in history {
        let (_, name, _) = known
            .iter()
            .find(|(v, _, _)| v == version)
            .expect("a migration of this build");
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../migrations/V{version}__{name}.sql"));
        let sql = std::fs::read_to_string(&path).expect("migration file");
        client
            .batch_execute(&sql)
            .await
            .unwrap_or_else(|e| panic!("V{version}: {e:?}"));
        client
            .execute(
                "INSERT INTO refinery_schema_history VALUES ($1, $2, '2026-11-30T03:00:00Z', $3)",
                &[version, name, &checksum.to_string()],
            )
            .await
            .expect("history row");
    }
}

fn check<'a>(doctor: &'a Value, name: &str) -> Vec<&'a Value> {
    doctor["checks"]
        .as_array()
        .map(|checks| checks.iter().filter(|c| c["check"] == name).collect())
        .unwrap_or_default()
}

fn doctor_json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("doctor --json: {e}: {run:?}"))
}

#[tokio::test]
async fn a_database_an_intermediate_build_migrated_is_brought_up_by_repair() {
    let db = ScratchDb::new().await;
    let current = |v: i32| {
        delivery::schema::known_migrations()
            .into_iter()
            .find(|(version, _, _)| *version == v)
            .map(|(_, _, checksum)| checksum)
            .unwrap_or_default()
    };
    // Builds e5636d4 to f4a4fc4^: V1-V7, V9 and V11, no V8; V9 recorded with the text of
    // builds aa3d1ca to d17ffba^.
    let mut history: Vec<(i32, u64)> = (1..=7).map(|v| (v, current(v))).collect();
    history.push((9, 2_089_741_888_961_913_294));
    history.push((11, current(11)));
    applied_by_an_intermediate_build(&db, &history).await;

    // Plain migrate says what is wrong and what to run; refinery's own words were "migration
    // V8__superseded is missing from the filesystem".
    let refused = webhooks(&db.url, &["migrate"]).await;
    assert_eq!(refused.code, 2, "{refused:?}");
    for phrase in [
        "V8__superseded was never applied, although later migrations were",
        "V9__operations was applied with an earlier text",
        "webhooks migrate --repair",
        "Nothing was changed",
    ] {
        assert!(
            refused.stderr.contains(phrase),
            "{phrase:?} in {}",
            refused.stderr
        );
    }
    let doctor = doctor_json(&webhooks(&db.url, &["doctor", "--json"]).await);
    let migrations = check(&doctor, "migrations");
    assert_eq!(migrations[0]["severity"], "problem", "{doctor:#}");
    assert!(
        migrations[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("--repair")),
        "{doctor:#}"
    );

    // The documented repair path.
    let repaired = webhooks(&db.url, &["migrate", "--repair"]).await;
    assert_eq!(repaired.code, 0, "{repaired:?}");
    for phrase in [
        "repaired history: V8__superseded applied out of order",
        "repaired history: V9__operations applied with its current text",
        "applied migration V12__capture_cost",
        "applied migration V15__lifecycle",
        "committed",
    ] {
        assert!(
            repaired.stdout.contains(phrase),
            "{phrase:?} in {}",
            repaired.stdout
        );
    }
    let again = webhooks(&db.url, &["migrate"]).await;
    assert!(again.stdout.contains("schema is current"), "{again:?}");
    let doctor = doctor_json(&webhooks(&db.url, &["doctor", "--json"]).await);
    for name in ["migrations", "definitions"] {
        for found in check(&doctor, name) {
            assert_eq!(found["severity"], "ok", "{name}: {found}");
        }
    }
    // And capture works as this build's does: in capture order, hostile addresses skipped.
    let client = db.client().await;
    client
        .batch_execute(
            "INSERT INTO booking_requests (tutor_email, student_email)
             VALUES ('tutor@example.com', E'student@example.com\\nBcc: all@example.com');
             UPDATE booking_requests SET status = 'approved';",
        )
        .await
        .expect("book and approve");
    let rows: Vec<(String, String)> = client
        .query(
            "SELECT webhook_type, status FROM webhook_deliveries ORDER BY capture_seq",
            &[],
        )
        .await
        .expect("deliveries")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        rows,
        [
            ("new_request".to_owned(), "pending".to_owned()),
            ("approved".to_owned(), "skipped".to_owned())
        ]
    );
}

#[tokio::test]
async fn pending_migrations_applied_with_psql_as_documented_leave_doctor_content() {
    let db = ScratchDb::new().await;
    // The email service's table, which the migrations must step around.
    db.client()
        .await
        .batch_execute("CREATE TABLE email_logs (id serial PRIMARY KEY, sent_to text)")
        .await
        .expect("email_logs");
    let dir = std::env::temp_dir().join(format!("print-sql-{}", db.name));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // As migrations/README.md says.
    let (url, workdir) = (db.url.clone(), dir.clone());
    let applied = tokio::task::spawn_blocking(move || {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{} migrate --print-sql > pending.sql && psql -q -v ON_ERROR_STOP=1 -f pending.sql \"$DATABASE_URL\"",
                crate::support::scratch::webhooks_binary().display()
            ))
            .current_dir(workdir)
            .env("DATABASE_URL", url)
            .output()
    })
    .await
    .expect("join")
    .expect("sh runs");
    let script = std::fs::read_to_string(dir.join("pending.sql")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        applied.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&applied.stderr),
        script
    );
    // In version order (a glob would put V11 before V2).
    let at = |name: &str| script.find(&format!("-- {name} ")).unwrap_or(usize::MAX);
    assert!(at("V1__booking_requests") < at("V2__webhook_deliveries"));
    assert!(at("V9__operations") < at("V11__enum_status_capture"));
    assert!(at("V15__lifecycle") < usize::MAX, "{script}");

    let again = webhooks(&db.url, &["migrate"]).await;
    assert!(again.stdout.contains("schema is current"), "{again:?}");
    let doctor = doctor_json(&webhooks(&db.url, &["doctor", "--json"]).await);
    for name in ["migrations", "definitions"] {
        for found in check(&doctor, name) {
            assert_eq!(found["severity"], "ok", "{name}: {found}");
        }
    }
    // The email service's table is still its own.
    assert_eq!(db.count("SELECT count(*) FROM email_logs").await, 0);
    assert_eq!(db.count("SELECT count(*) FROM webhook_email_logs").await, 0);
    let nothing = webhooks(&db.url, &["migrate", "--print-sql"]).await;
    assert!(nothing.stdout.contains("nothing to apply"), "{nothing:?}");
}
