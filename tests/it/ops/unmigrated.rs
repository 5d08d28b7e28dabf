//! The operator commands against a database where `webhooks migrate` never ran, or ran an
//! older build: each says the schema is not installed (or out of date) and that
//! `webhooks migrate` installs it, and exits 2 (could not run) — never the server's bare
//! "relation … does not exist".

use uuid::Uuid;

use super::cli::{code, text, webhooks};
use crate::support::TestDb;
use crate::support::db::{base_url, url_with_schema};

const COMMANDS: [&[&str]; 6] = [
    &["stats"],
    &["failures", "--json"],
    &["show", "0b7e3c1e-6a0e-4c1b-9a51-2f1f3a7d9c10"],
    &["verify"],
    &["doctor"],
    &["cleanup", "--older-than", "30d", "--dry-run"],
];

/// Runs every operator command against `url`; returns each one's stderr after checking that
/// it exited 2 and printed nothing on stdout.
async fn stderr_of_each(url: &str) -> Vec<String> {
    let mut said = Vec::new();
    for args in COMMANDS {
        let url = url.to_owned();
        let out = tokio::task::spawn_blocking(move || webhooks(&url, args))
            .await
            .expect("run");
        let stderr = text(&out.stderr);
        assert_eq!(code(&out), Some(2), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
        assert!(!stderr.contains("does not exist"), "{args:?}: {stderr}");
        said.push(stderr);
    }
    said
}

#[tokio::test]
async fn operator_commands_on_an_unmigrated_schema_say_to_run_migrate_and_exit_2() {
    let db = TestDb::unmigrated().await;
    for stderr in stderr_of_each(&db.url).await {
        assert!(
            stderr.contains(&format!(
                "the webhooks schema is not installed in schema \"{}\"",
                db.schema
            )) && stderr.contains("Run `webhooks migrate` first"),
            "{stderr}"
        );
    }
    assert_eq!(
        db.count(
            "SELECT count(*) FROM pg_class WHERE relnamespace = current_schema()::regnamespace"
        )
        .await,
        0,
        "nothing was created"
    );
}

/// The commands that send never migrate as a side effect: on an empty schema they say what is
/// missing, point to `make migrate`, and leave it empty.
#[tokio::test]
async fn the_commands_that_send_say_the_schema_is_missing_and_create_nothing() {
    let db = TestDb::unmigrated().await;
    for command in [
        "sweep",
        "listen",
        "dispatch --limit 5",
        "send --retrying",
        "replay --failed",
    ] {
        let args: Vec<&str> = command.split(' ').collect();
        let out = super::send::webhooks_sending(&db, "http://127.0.0.1:9/hook", &args).await;
        let stderr = text(&out.stderr);
        assert_eq!(code(&out), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains("the webhooks schema is not installed")
                && stderr.contains("make migrate"),
            "{command}: {stderr}"
        );
    }
    assert_eq!(
        db.count(
            "SELECT count(*) FROM pg_class WHERE relnamespace = current_schema()::regnamespace"
        )
        .await,
        0,
        "nothing was created"
    );
}

#[tokio::test]
async fn operator_commands_with_a_search_path_naming_no_schema_say_so() {
    let nowhere = format!("it_{}", Uuid::new_v4().simple());
    let url = url_with_schema(&base_url(), &nowhere);
    for stderr in stderr_of_each(&url).await {
        assert!(
            stderr.contains("not installed here (no schema of the connection's search_path")
                && stderr.contains("webhooks migrate"),
            "{stderr}"
        );
    }
}

#[tokio::test]
async fn an_older_schema_is_reported_as_out_of_date() {
    let db = TestDb::new().await;
    // As if V9 (operations) had not been applied yet.
    db.client()
        .await
        .batch_execute("DROP VIEW webhook_stats")
        .await
        .expect("drop the view");
    let url = db.url.clone();
    let out = tokio::task::spawn_blocking(move || webhooks(&url, &["stats"]))
        .await
        .expect("run");
    let stderr = text(&out.stderr);
    assert_eq!(code(&out), Some(2), "{stderr}");
    assert!(
        stderr.contains("the database schema is older than this webhooks command")
            && stderr.contains("webhook_stats")
            && stderr.contains("run `webhooks migrate`"),
        "{stderr}"
    );
}
