//! A recording that cannot finish: another session holds a lock on `webhook_attempts` (a long
//! migration, a hand-run `LOCK`, a stuck transaction) while a sweep records its outcomes. The
//! server ends the statement itself after `STATEMENT_TIMEOUT` (15 s) and the engine retries on
//! a fresh connection: the timed-out statement is gone before its retry starts — never two of
//! them waiting to run — and when the lock goes, the outcomes are recorded once.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use delivery::Clock;
use delivery::sweep::{SweepOptions, sweep};
use tokio::sync::Semaphore;

use super::Figures;
use crate::support::{Receiver, Reply, TestDb, deps_for_url};

const DELIVERIES: i64 = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_timed_out_by_a_lock_is_cancelled_on_the_server_and_retried_once() {
    let db = TestDb::new().await;
    db.backlog(DELIVERIES).await;
    let name = format!("{}_locked", db.schema);
    let url = format!("{}&application_name={name}", db.url);
    let gate = Arc::new(Semaphore::new(0));
    let receiver = Receiver::start(Reply::status(200).held(gate.clone())).await;
    let deps = deps_for_url(&url, &receiver.url, &[("WEBHOOK_TIMEOUT_MS", "60000")]);
    let sweeping = tokio::spawn(async move {
        let options = SweepOptions {
            batch_size: 100,
            budget: Duration::from_secs(60),
            deadline: None,
        };
        sweep(&deps, options, Clock::System).await
    });
    receiver
        .wait_for(DELIVERIES as usize, Duration::from_secs(30))
        .await;

    // Another session locks the attempts table; then the requests end.
    let holder = db.client().await;
    holder
        .batch_execute("BEGIN; LOCK TABLE webhook_attempts IN SHARE MODE")
        .await
        .expect("lock");
    gate.add_permits(DELIVERIES as usize);

    // Watch the recording statements waiting for the lock: (pid, start) of each, and how many
    // wait at the same time.
    let watcher = db.client().await;
    let (mut seen, mut most_at_once) = (HashSet::new(), 0);
    let watching = async {
        while seen.len() < 2 {
            let waiting: Vec<(i32, String)> = watcher
                .query(
                    "SELECT pid, query_start::text FROM pg_stat_activity
                      WHERE application_name = $1 AND wait_event_type = 'Lock'
                        AND query LIKE '%INSERT INTO webhook_attempts%'",
                    &[&name],
                )
                .await
                .expect("activity")
                .iter()
                .map(|row| (row.get(0), row.get(1)))
                .collect();
            most_at_once = most_at_once.max(waiting.len());
            seen.extend(waiting);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), watching)
        .await
        .expect("the first recording timed out on the server and its retry began");
    holder.batch_execute("COMMIT").await.expect("unlock");

    let report = sweeping.await.expect("sweep task").expect("sweep");
    let attempts = db.count("SELECT count(*) FROM webhook_attempts").await;
    let figures = Figures {
        runs: 1,
        faults: 1,
        deliveries: DELIVERIES as usize,
        lost: (DELIVERIES
            - db.count("SELECT count(*) FROM webhook_deliveries WHERE status = 'succeeded'")
                .await) as usize,
        duplicates: (attempts - DELIVERIES).max(0) as usize,
    };
    figures.report("recording_behind_a_lock");
    assert_eq!(
        most_at_once, 1,
        "a timed-out statement went on waiting beside its retry"
    );
    assert_eq!(report.succeeded, DELIVERIES as usize, "{report:?}");
    assert_eq!(
        (figures.lost, attempts),
        (0, DELIVERIES),
        "recorded once each"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM webhook_deliveries WHERE locked_until IS NOT NULL")
            .await,
        0
    );
}
