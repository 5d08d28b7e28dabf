//! 2,000 due rows, `WEBHOOK_SWEEP_BATCH=1000`, a receiver that answers in 2 s, and sweeps that
//! are cut at 20 s like a Lambda: each claim is sized to what fits before the deadline and
//! outcomes are recorded as they complete, so every invocation records progress and all rows
//! end final after a few sweeps. (The old engine claimed 1000, needed 10 waves of 2 s after
//! the deadline, and recorded nothing: the next sweep re-sent the same rows.)

use std::time::{Duration, SystemTime};

use delivery::Clock;
use serde_json::json;

use super::{Figures, duplicates};
use crate::support::{Receiver, Reply, TestDb, deps_with};

const DELIVERIES: i64 = 2000;
const INVOCATION: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_larger_than_the_invocation_still_makes_progress_every_time() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200).slow(Duration::from_secs(2))).await;
    let deps = deps_with(
        &db,
        &receiver.url,
        &[
            ("WEBHOOK_SWEEP_BATCH", "1000"),
            ("WEBHOOK_SWEEP_CONCURRENCY", "200"),
            ("WEBHOOK_TIMEOUT_MS", "5000"),
        ],
    );
    db.backlog(DELIVERIES).await;
    let mut figures = Figures {
        deliveries: DELIVERIES as usize,
        ..Figures::default()
    };
    let mut done = 0;
    while done < DELIVERIES {
        assert!(
            figures.runs < 6,
            "no progress: {done} after {} sweeps",
            figures.runs
        );
        let deadline = SystemTime::now() + INVOCATION;
        let invocation = delivery::sweep::handle(json!({}), &deps, Clock::System, Some(deadline));
        // Lambda ends the invocation at its deadline, whatever it is doing.
        match tokio::time::timeout(INVOCATION, invocation).await {
            Ok(report) => {
                report.expect("sweep");
            }
            Err(_) => figures.faults += 1,
        }
        figures.runs += 1;
        let now_done = db
            .count("SELECT count(*) FROM webhook_deliveries WHERE status = 'succeeded'")
            .await;
        assert!(
            now_done > done,
            "invocation {} recorded progress",
            figures.runs
        );
        done = now_done;
    }
    let (extra, _) = duplicates(receiver.requests().iter().map(|r| r.header("webhook-id")));
    figures.duplicates = extra;
    figures.lost = (DELIVERIES - done) as usize;
    figures.report("slow_receiver_big_batch");
    assert_eq!(figures.faults, 0, "no invocation overran its deadline");
    assert_eq!(extra, 0);
}
