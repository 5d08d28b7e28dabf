//! The whole lifecycle through PgBouncer in transaction mode — the connection path of
//! Supabase's pooler (port 6543) and RDS Proxy — with the default settings: capture, dispatch,
//! retries, failure, replay and success, and concurrent sweeps. `listen`, which needs a
//! session, refuses the pooler with a clear error.

use std::time::Duration;

use chrono::Utc;
use delivery::Clock;
use delivery::listen::{ListenOptions, listen};
use delivery::replay::{Requeue, requeue};
use delivery::sweep::{SweepOptions, sweep};
use serde_json::json;

use super::{Figures, duplicates};
use crate::support::db::{TestDatabase, base_url, connect};
use crate::support::pgbouncer::Bouncer;
use crate::support::{Receiver, Reply, deps_for_url};

fn options() -> SweepOptions {
    SweepOptions {
        batch_size: 50,
        budget: Duration::from_secs(60),
        deadline: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lifecycle_works_through_pgbouncer_in_transaction_mode() {
    let database = TestDatabase::new().await;
    let bouncer = Bouncer::start(&base_url());
    let user = base_url()
        .parse::<tokio_postgres::Config>()
        .ok()
        .and_then(|c| c.get_user().map(str::to_owned))
        .unwrap_or_else(|| "postgres".into());
    let pooled = bouncer.url(&user, &database.name);
    let receiver = Receiver::start(Reply::status(503)).await;
    // The seed's lifecycle to its end: every attempt counts (no breaker).
    let deps = deps_for_url(&pooled, &receiver.url, &[("WEBHOOK_BREAKER_AFTER", "off")]);
    let app = connect(&pooled).await;
    let mut figures = Figures::default();
    let t0 = Utc::now();

    // Capture in the app's transaction, through the pooler.
    app.execute(
        "INSERT INTO booking_requests (tutor_email) VALUES ('t@example.com')",
        &[],
    )
    .await
    .expect("capture");
    let id: uuid::Uuid = app
        .query_one("SELECT id FROM webhook_deliveries", &[])
        .await
        .expect("captured")
        .get(0);
    figures.deliveries += 1;

    // Dispatch, three retries on schedule, failed.
    let first =
        delivery::dispatch::handle(json!({ "deliveryId": id }), &deps, Clock::Fixed(t0), None)
            .await
            .expect("dispatch through the pooler");
    assert_eq!(first.retrying, vec![id]);
    figures.runs += 1;
    for minutes in [5, 20, 65] {
        let at = t0 + chrono::Duration::minutes(minutes);
        let report = sweep(&deps, options(), Clock::Fixed(at))
            .await
            .expect("sweep");
        assert_eq!(report.processed, 1, "+{minutes} min");
        figures.runs += 1;
    }
    let status = |row: tokio_postgres::Row| row.get::<_, String>(0);
    let failed = app
        .query_one(
            "SELECT status FROM webhook_deliveries WHERE id = $1",
            &[&id],
        )
        .await
        .map(status)
        .expect("state");
    assert_eq!(failed, "failed");

    // Replay, and the receiver is back: succeeded.
    receiver.set_default(Reply::status(200));
    let what = Requeue {
        ids: Some(vec![id]),
        since: None,
        max_retries: 3,
        include_replaced: false,
    };
    let requeued = requeue(&deps.pool, &what, Clock::System)
        .await
        .expect("replay");
    assert_eq!(requeued.requeued, 1);
    let report = sweep(&deps, options(), Clock::System).await.expect("sweep");
    assert_eq!(report.succeeded, 1);
    figures.runs += 2;

    // A backlog drained by a dispatch and four concurrent sweeps, each with its own pool.
    app.execute(
        "INSERT INTO booking_requests (tutor_email) SELECT 't' || i || '@example.com' FROM generate_series(1, 400) i",
        &[],
    )
    .await
    .expect("backlog");
    figures.deliveries += 400;
    let fresh = delivery::dispatch::handle(json!({"limit": 100}), &deps, Clock::System, None)
        .await
        .expect("dispatch limit");
    assert_eq!(fresh.counts.succeeded, 100);
    let sweeps: Vec<_> = (0..4)
        .map(|_| {
            let deps = deps_for_url(&pooled, &receiver.url, &[("WEBHOOK_SWEEP_BATCH", "25")]);
            tokio::spawn(async move { sweep(&deps, options(), Clock::System).await })
        })
        .collect();
    let mut swept = 0;
    for s in sweeps {
        swept += s.await.expect("task").expect("sweep").succeeded;
    }
    figures.runs += 5;
    assert_eq!(swept, 300);
    let succeeded: i64 = app
        .query_one(
            "SELECT count(*) FROM webhook_deliveries WHERE status = 'succeeded'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    figures.lost = 401 - succeeded as usize;
    let (extra, _) = duplicates(
        receiver
            .requests()
            .iter()
            .map(|r| r.header("webhook-id"))
            .filter(|w| *w != id.to_string()),
    );
    figures.duplicates = extra;

    // listen needs a session: through the pooler it refuses, clearly and promptly.
    let refused = tokio::time::timeout(
        Duration::from_secs(30),
        listen(
            &deps,
            Clock::System,
            ListenOptions { sweep_every: None },
            std::future::pending(),
        ),
    )
    .await
    .expect("listen gives up instead of waiting forever");
    let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.starts_with("listen needs a session connection") && message.contains("6543"),
        "{message}"
    );
    figures.runs += 1;

    figures.report("through_pgbouncer");
    assert_eq!((figures.lost, figures.duplicates), (0, 0));
    drop(bouncer);
    drop(database);
}

/// `webhooks migrate` is one transaction, so it needs no session: adopting the old pg_net
/// system, then a no-op migrate, both through the transaction pooler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_and_adoption_work_through_pgbouncer_in_transaction_mode() {
    use crate::support::scratch::{APP_SCHEMA, ScratchDb, webhooks};

    let db = ScratchDb::with_seed_system().await;
    // PgBouncer refuses the `options` startup parameter: the schema comes from the database.
    db.client()
        .await
        .batch_execute(&format!(
            "ALTER DATABASE {} SET search_path = {APP_SCHEMA}",
            db.name
        ))
        .await
        .expect("search_path for the database");
    let bouncer = Bouncer::start(&base_url());
    let user = base_url()
        .parse::<tokio_postgres::Config>()
        .ok()
        .and_then(|c| c.get_user().map(str::to_owned))
        .unwrap_or_else(|| "postgres".into());
    let pooled = bouncer.url(&user, &db.name);

    let adopted = webhooks(&pooled, &["migrate", "--adopt-seed"]).await;
    let again = webhooks(&pooled, &["migrate"]).await;

    assert_eq!(adopted.code, 0, "{adopted:?}");
    assert!(
        adopted.stdout.contains("imported 9 of 10 rows"),
        "{}",
        adopted.stdout
    );
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again.stdout.contains("schema is current"),
        "{}",
        again.stdout
    );
    println!("fault-suite pgbouncer-migrate: runs=2 faults=0 deliveries=9 lost=0 duplicates=0");
}
