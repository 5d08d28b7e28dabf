//! The server crashes (`pg_ctl stop -m immediate`) right after a sweep claimed the approvals
//! of some bookings and while their requests are still on the wire. The claims of status
//! notifications are durable: after the restart another worker finds the approvals still
//! leased, and sends neither the approvals again nor the rejections captured since — the
//! per-booking order holds through the crash. (A claim that committed without waiting for the
//! disk could be lost: the approvals would look unsent, and the rejections would overtake them.)

use std::sync::Arc;
use std::time::Duration;

use delivery::Clock;
use delivery::sweep::{SweepOptions, sweep};
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::Figures;
use crate::support::cluster::Cluster;
use crate::support::db::connect;
use crate::support::{Receiver, Reply, deps_for_url};

const BOOKINGS: usize = 20;

fn options() -> SweepOptions {
    SweepOptions {
        batch_size: BOOKINGS,
        budget: Duration::from_secs(60),
        deadline: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_claim_keeps_each_bookings_decisions_in_order() {
    let cluster = Cluster::new();
    let url = cluster.url("application_name=fault-crash");
    let pool = delivery::DbConfig::new(url.clone()).pool().expect("pool");
    delivery::schema::migrate_quietly(&pool)
        .await
        .expect("migrate");
    let client = connect(&url).await;
    client
        .batch_execute(&format!(
            "INSERT INTO booking_requests (student_email)
             SELECT 's' || i || '@example.com' FROM generate_series(1, {BOOKINGS}) i;
             UPDATE booking_requests SET status = 'approved';"
        ))
        .await
        .expect("approved bookings");
    drop(client);
    // Every request is held on the wire until the test lets it go.
    let gate = Arc::new(Semaphore::new(0));
    let receiver = Receiver::start(Reply::status(200).held(gate.clone())).await;
    // A request may stay on the wire for the whole scenario.
    let vars = [
        ("WEBHOOK_SWEEP_CONCURRENCY", "20"),
        ("WEBHOOK_TIMEOUT_MS", "30000"),
    ];
    let deps = deps_for_url(&url, &receiver.url, &vars);

    let first = tokio::spawn({
        let deps = deps.clone();
        async move { sweep(&deps, options(), Clock::System).await }
    });
    receiver.wait_for(BOOKINGS, Duration::from_secs(30)).await;
    // The crash, at once: no later commit has flushed the claim's WAL for it. (The cluster
    // is kept to the end of the test: dropping it stops the server.)
    let _cluster = tokio::task::spawn_blocking(move || {
        cluster.stop();
        cluster.start();
        cluster
    })
    .await
    .expect("crash and restart");

    // After the restart the bookings are rejected, and another worker sweeps.
    let client = connect(&url).await;
    client
        .batch_execute("UPDATE booking_requests SET status = 'rejected'")
        .await
        .expect("rejected");
    let second = sweep(&deps, options(), Clock::System)
        .await
        .expect("the second worker");
    assert_eq!(
        (second.processed, second.superseded),
        (0, 0),
        "the approvals are still leased: nothing sent, nothing superseded: {second:?}"
    );
    assert_eq!(
        receiver.requests().len(),
        BOOKINGS,
        "no rejection overtook its approval"
    );

    // The approvals finish; the first worker records them (its leases survived) and the
    // rejections follow.
    receiver.set_default(Reply::status(200));
    gate.add_permits(BOOKINGS);
    let _ = first.await.expect("first sweep task");
    // (The first worker hands on to the rejections itself; a last sweep finds what is left.)
    sweep(&deps, options(), Clock::System).await.expect("third");
    let arrived: Vec<(Uuid, String)> = receiver
        .requests()
        .iter()
        .map(|r| {
            let body = r.json();
            (
                body["bookingId"]
                    .as_str()
                    .unwrap_or_default()
                    .parse()
                    .unwrap_or_default(),
                body["type"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let mut out_of_order = 0;
    let mut bookings: Vec<Uuid> = arrived.iter().map(|(b, _)| *b).collect();
    bookings.sort();
    bookings.dedup();
    for booking in &bookings {
        let types: Vec<&str> = arrived
            .iter()
            .filter(|(b, _)| b == booking)
            .map(|(_, t)| t.as_str())
            .collect();
        out_of_order += usize::from(types != ["approved", "rejected"]);
    }
    let (extra, _) = super::duplicates(receiver.requests().iter().map(|r| r.header("webhook-id")));
    let figures = Figures {
        runs: 3,
        faults: 1,
        deliveries: 2 * BOOKINGS,
        lost: 2 * BOOKINGS - arrived.len().min(2 * BOOKINGS),
        duplicates: extra,
    };
    figures.report("server_crash_after_claim");
    assert_eq!(bookings.len(), BOOKINGS);
    assert_eq!(out_of_order, 0, "{arrived:?}");
    assert_eq!(extra, 0);
    assert_eq!(
        arrived.len(),
        2 * BOOKINGS,
        "every decision delivered once: {arrived:?}"
    );
}
