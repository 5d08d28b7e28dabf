//! A `webhooks sweep` process SIGKILLed mid-batch: what completed before the kill is recorded,
//! its other rows are reclaimed once the lease expires, and only the requests in flight (and
//! one recording group) are sent twice, each time with the same `webhook-id`.

use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use delivery::Clock;
use delivery::sweep::{SweepOptions, sweep};

use super::{Figures, duplicates};
use crate::support::scratch::webhooks_binary;
use crate::support::{Receiver, Reply, SIGNING_SECRET, TOKEN, TestDb, deps_with};

const DELIVERIES: i64 = 200;
const CONCURRENCY: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_killed_mid_batch_loses_only_its_requests_in_flight() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200).slow(Duration::from_millis(200))).await;
    db.backlog(DELIVERIES).await;
    // A name of its own, so the test can see when the dead process's sessions are gone.
    let name = format!("{}_killed", db.schema);
    let mut child = Command::new(webhooks_binary())
        .arg("sweep")
        .env(
            "DATABASE_URL",
            format!("{}&application_name={name}", db.url),
        )
        .env("WEBHOOK_URL", &receiver.url)
        .env("WEBHOOK_AUTH_TOKEN", TOKEN)
        .env("WEBHOOK_SIGNING_SECRET", SIGNING_SECRET)
        .env("WEBHOOK_SWEEP_CONCURRENCY", CONCURRENCY.to_string())
        .env("WEBHOOK_SWEEP_BATCH", "200")
        .env("RUST_LOG", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start webhooks sweep");
    receiver.wait_for(100, Duration::from_secs(60)).await;
    child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix
    let _ = child.wait();
    // The process is gone, but not yet all it did: a recording statement it sent just before
    // the kill may still commit, and a request it wrote may not have been read yet. Once its
    // database sessions and its connections to the receiver are closed, nothing more changes.
    db.wait_for_no_sessions(&name, Duration::from_secs(30))
        .await;
    receiver
        .wait_for_no_connections(Duration::from_secs(30))
        .await;
    let sent_before = receiver.requests().len();
    let recorded = db
        .count("SELECT count(*) FROM webhook_deliveries WHERE status = 'succeeded'")
        .await;
    let leased = db
        .count("SELECT count(*) FROM webhook_deliveries WHERE locked_until IS NOT NULL")
        .await;
    // Recorded as they completed: the kill lost at most the requests in flight and the
    // completions of one recording group (at most 200, and those of the last 200 ms).
    assert!(recorded > 0, "progress was recorded before the kill");
    let unrecorded = sent_before - recorded as usize;
    assert!(
        unrecorded <= CONCURRENCY + 200,
        "{sent_before} sent, {recorded} recorded"
    );
    assert_eq!(leased, DELIVERIES - recorded, "the rest is still leased");

    // A later sweep, once the dead process's lease has expired, reclaims the rest.
    let deps = deps_with(&db, &receiver.url, &[]);
    let options = SweepOptions {
        batch_size: 200,
        budget: Duration::from_secs(60),
        deadline: None,
    };
    let later = Clock::Fixed(Utc::now() + chrono::Duration::minutes(10));
    let report = sweep(&deps, options, later).await.expect("sweep");
    assert_eq!(report.reclaimed, (DELIVERIES - recorded) as usize);

    let (extra, most) = duplicates(receiver.requests().iter().map(|r| r.header("webhook-id")));
    let figures = Figures {
        runs: 2,
        faults: 1,
        deliveries: DELIVERIES as usize,
        lost: (DELIVERIES
            - db.count("SELECT count(*) FROM webhook_deliveries WHERE status = 'succeeded'")
                .await) as usize,
        duplicates: extra,
    };
    figures.report("sweep_process_killed");
    assert_eq!(figures.lost, 0);
    assert!(
        extra <= unrecorded && most <= 2,
        "{extra} duplicates, {most} at most"
    );
}
