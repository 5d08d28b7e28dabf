//! Ids as operators type them, and what each command needs: a unique prefix is as good as the
//! whole id (`show 381ff777`, the digits the tables and the receiver print); an id that names
//! no delivery exits 1 in every command that takes ids, before anything is changed or sent;
//! one that names several exits 2; `replay` runs with `DATABASE_URL` alone.

use std::process::Output;

use uuid::Uuid;

use super::cli::{code, json, text, webhooks};
use super::seed::{self, Delivery};
use crate::support::TestDb;

/// Runs `webhooks args…` with only `DATABASE_URL` set.
async fn run(db: &TestDb, args: &[&str]) -> Output {
    let url = db.url.clone();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        webhooks(&url, &args)
    })
    .await
    .expect("command task")
}

/// Gives delivery `id` the id `to` (no attempt refers to it yet).
async fn rename(db: &TestDb, id: Uuid, to: &str) -> Uuid {
    let to: Uuid = to.parse().expect("uuid");
    db.client()
        .await
        .execute(
            "UPDATE webhook_deliveries SET id = $2 WHERE id = $1",
            &[&id, &to],
        )
        .await
        .expect("rename");
    to
}

#[tokio::test]
async fn a_unique_prefix_names_a_delivery_and_an_ambiguous_one_is_refused() {
    let db = TestDb::new().await;
    let now = seed::now();
    let failed = |created| Delivery::new("new_request", "failed", created).resolved(created);
    let first = seed::insert(&db, now, &failed(-30)).await;
    let second = seed::insert(&db, now, &failed(-20)).await;
    let first = rename(&db, first, "381ff777-1111-4c1b-9a51-2f1f3a7d9c10").await;
    rename(&db, second, "381ff777-2222-4c1b-9a51-2f1f3a7d9c10").await;

    let shown = run(&db, &["show", "381ff777-1", "--json"]).await;
    assert_eq!(code(&shown), Some(0), "{}", text(&shown.stderr));
    assert_eq!(json(&shown)["delivery"]["id"], first.to_string());

    let ambiguous = run(&db, &["show", "381FF777"]).await;
    assert_eq!(code(&ambiguous), Some(2), "{}", text(&ambiguous.stdout));
    let said = text(&ambiguous.stderr);
    assert!(
        said.contains("381FF777 is ambiguous") && said.contains(&first.to_string()),
        "{said}"
    );

    let unknown = run(&db, &["show", "deadbeef"]).await;
    assert_eq!(code(&unknown), Some(1));
    assert!(text(&unknown.stderr).contains("no delivery with id deadbeef"));
    assert!(unknown.stdout.is_empty());
}

#[tokio::test]
async fn replay_needs_only_the_database_and_refuses_an_unknown_id() {
    let db = TestDb::new().await;
    let now = seed::now();
    let failed = seed::insert(
        &db,
        now,
        &Delivery::new("new_request", "failed", -30).resolved(-30),
    )
    .await;
    let short = failed.to_string()[..8].to_owned();

    // An unknown id among known ones: nothing is requeued.
    let unknown = run(&db, &["replay", &short, "0000000f"]).await;
    assert_eq!(code(&unknown), Some(1), "{}", text(&unknown.stderr));
    assert!(text(&unknown.stderr).contains("no delivery with id 0000000f"));
    assert_eq!(db.delivery(failed).await.status, "failed");

    let replayed = run(&db, &["replay", &short, "--json"]).await;
    assert_eq!(code(&replayed), Some(0), "{}", text(&replayed.stderr));
    assert_eq!(json(&replayed)["requeued"], 1);
    assert_eq!(db.delivery(failed).await.status, "retrying");
}

#[tokio::test]
async fn the_commands_that_send_name_every_missing_variable_and_refuse_unknown_ids() {
    let db = TestDb::new().await;
    for command in ["sweep", "listen", "dispatch --limit 1", "send --retrying"] {
        let args: Vec<&str> = command.split(' ').collect();
        let out = run(&db, &args).await;
        assert_eq!(code(&out), Some(2), "{command}");
        assert!(
            text(&out.stderr).contains(
                "WEBHOOK_URL: is required but not set (also missing: WEBHOOK_AUTH_TOKEN, \
                 WEBHOOK_SIGNING_SECRET)"
            ),
            "{command}: {}",
            text(&out.stderr)
        );
    }
    let (_, id) = db.booking_with_delivery().await;
    for command in ["dispatch", "send"] {
        let out = super::send::webhooks_sending(
            &db,
            "http://127.0.0.1:9/hook",
            &[command, "0000000f", &id.to_string()],
        )
        .await;
        assert_eq!(code(&out), Some(1), "{command}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains("no delivery with id 0000000f"));
    }
    let row = db.delivery(id).await;
    assert_eq!(
        (row.status.as_str(), row.attempt_count),
        ("pending", 0),
        "nothing was sent"
    );
}
