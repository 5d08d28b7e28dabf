//! The database goes away mid-sweep: the server is stopped (a throwaway cluster of the
//! test's own), or the sweep's connections are terminated. The sweep ends with a clear error
//! or recovers on fresh connections; the next sweep finishes everything, and nothing stays
//! leased. Only requests in flight and one recording group can be sent twice.

use std::time::Duration;

use chrono::Utc;
use delivery::Clock;
use delivery::sweep::{SweepOptions, SweepReport, sweep};
use tokio_postgres::NoTls;

use super::{Figures, duplicates};
use crate::support::cluster::Cluster;
use crate::support::db::{base_url, connect};
use crate::support::{Receiver, Reply, TestDb, deps_for_url};

const DELIVERIES: i64 = 300;
const CONCURRENCY: usize = 10;
/// At most the requests in flight plus one recording group (200) are sent again.
const MOST_DUPLICATES: usize = CONCURRENCY + 200;

fn options() -> SweepOptions {
    SweepOptions {
        batch_size: 100,
        budget: Duration::from_secs(120),
        deadline: None,
    }
}

fn vars() -> [(&'static str, &'static str); 2] {
    [
        ("WEBHOOK_SWEEP_CONCURRENCY", "10"),
        ("WEBHOOK_SWEEP_BATCH", "100"),
    ]
}

/// Checks the end state at `url` — every delivery succeeded, none leased, at most
/// `most_duplicates` requests sent twice — and reports the figures.
async fn settle(
    url: &str,
    receiver: &Receiver,
    mut figures: Figures,
    scenario: &str,
    most_duplicates: usize,
) {
    let (succeeded, leased) = state(url).await;
    let (extra, most) = duplicates(receiver.requests().iter().map(|r| r.header("webhook-id")));
    figures.lost = (DELIVERIES - succeeded) as usize;
    figures.duplicates = extra;
    figures.report(scenario);
    assert_eq!((succeeded, leased), (DELIVERIES, 0));
    assert!(
        extra <= most_duplicates && most <= 2,
        "{extra} duplicates, {most} at most"
    );
}

/// Counts of (succeeded, still leased) deliveries, through a connection of its own.
async fn state(url: &str) -> (i64, i64) {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE status = 'succeeded'),
                    count(*) FILTER (WHERE locked_until IS NOT NULL)
               FROM webhook_deliveries",
            &[],
        )
        .await
        .expect("state");
    (row.get(0), row.get(1))
}

/// The sweep after the fault: its clock is past every lease the interrupted one took.
async fn next_sweep(deps: &delivery::Deps, t0: chrono::DateTime<Utc>) -> SweepReport {
    sweep(
        deps,
        options(),
        Clock::Fixed(t0 + chrono::Duration::minutes(10)),
    )
    .await
    .expect("the next sweep runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_mid_sweep_ends_it_with_a_clear_error_and_the_next_finishes_all() {
    let cluster = Cluster::new();
    let url = cluster.url("application_name=fault-stop");
    let pool = delivery::DbConfig::new(url.clone()).pool().expect("pool");
    delivery::schema::migrate_quietly(&pool)
        .await
        .expect("migrate");
    let receiver = Receiver::start(Reply::status(200).slow(Duration::from_millis(300))).await;
    let deps = deps_for_url(&url, &receiver.url, &vars());
    let client = connect(&url).await;
    client
        .execute(
            "INSERT INTO booking_requests (tutor_email) SELECT 't' || i || '@example.com' FROM generate_series(1, $1::bigint) i",
            &[&DELIVERIES],
        )
        .await
        .expect("backlog");
    drop(client);
    let t0 = Utc::now();
    let figures = Figures {
        deliveries: DELIVERIES as usize,
        runs: 2,
        faults: 1,
        ..Figures::default()
    };

    let sweeping = tokio::spawn({
        let deps = deps.clone();
        async move { sweep(&deps, options(), Clock::Fixed(t0)).await }
    });
    receiver.wait_for(60, Duration::from_secs(30)).await;
    let stopping = tokio::task::spawn_blocking(move || {
        cluster.stop();
        cluster
    });
    let cluster = stopping.await.expect("stop");
    let err = sweeping
        .await
        .expect("sweep task")
        .expect_err("a sweep whose database is gone fails");
    assert_eq!(err.kind(), "DatabaseError", "{err}");
    assert!(err.to_string().starts_with("database"), "{err}");
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.start();
        cluster
    })
    .await
    .expect("start");

    let report = next_sweep(&deps, t0).await;
    assert_eq!(report.still_due, 0);
    let url = cluster.url("");
    settle(
        &url,
        &receiver,
        figures,
        "postgres_stopped_mid_sweep",
        MOST_DUPLICATES,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_connections_cost_a_retry_and_nothing_stays_stuck() {
    let db = TestDb::new().await;
    // A name of its own, so only this test's connections are terminated.
    let name = format!("{}_fault", db.schema);
    let url = format!("{}&application_name={name}", db.url);
    let receiver = Receiver::start(Reply::status(200).slow(Duration::from_millis(300))).await;
    let deps = deps_for_url(&url, &receiver.url, &vars());
    db.backlog(DELIVERIES).await;
    let t0 = Utc::now();
    let mut figures = Figures {
        deliveries: DELIVERIES as usize,
        runs: 1,
        ..Figures::default()
    };

    let sweeping = tokio::spawn({
        let deps = deps.clone();
        async move { sweep(&deps, options(), Clock::Fixed(t0)).await }
    });
    let admin = connect(&base_url()).await;
    for wave in [60, 150] {
        receiver.wait_for(wave, Duration::from_secs(30)).await;
        let killed: i64 = admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
                &[&name],
            )
            .await
            .expect("terminate")
            .get(0);
        figures.faults += killed as usize;
    }
    assert!(figures.faults > 0, "the sweep's connections were found");
    match sweeping.await.expect("sweep task") {
        Ok(report) => assert!(report.succeeded > 0),
        Err(err) => assert_eq!(err.kind(), "DatabaseError", "{err}"),
    }
    let report = next_sweep(&deps, t0).await;
    figures.runs += 1;
    assert_eq!(report.still_due, 0);
    // Two faults: each may cost its requests in flight and one group.
    let bound = 2 * MOST_DUPLICATES;
    settle(&url, &receiver, figures, "connections_terminated", bound).await;
}
