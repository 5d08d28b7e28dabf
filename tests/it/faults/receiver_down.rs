//! The receiver refuses every connection for the whole lifecycle: every delivery ends
//! `failed` after exactly `max_retries + 1` attempts, and none is lost.

use chrono::Utc;
use delivery::Clock;
use delivery::sweep::{SweepOptions, sweep};
use serde_json::json;

use super::Figures;
use crate::support::receiver::refusing_url;
use crate::support::{TestDb, deps_with};

#[tokio::test]
async fn a_receiver_down_for_the_whole_lifecycle_fails_each_delivery_after_all_its_attempts() {
    let db = TestDb::new().await;
    let deps = deps_with(
        &db,
        &refusing_url().await,
        // Every attempt counts (no breaker): the seed's lifecycle to its end. With the breaker
        // (the default) the same outage holds them instead: tests/it/outage.rs.
        &[
            ("WEBHOOK_SWEEP_BATCH", "100"),
            ("WEBHOOK_BREAKER_AFTER", "off"),
        ],
    );
    let n = 300;
    db.backlog(n).await;
    let t0 = Utc::now();
    let mut figures = Figures {
        deliveries: n as usize,
        ..Figures::default()
    };

    let first = delivery::dispatch::handle(json!({"limit": n}), &deps, Clock::Fixed(t0), None)
        .await
        .expect("dispatch");
    figures.runs += 1;
    assert_eq!(first.counts.retrying, n as usize);
    // The default schedule: attempt 2 at +5 min, 3 at +20, 4 at +65; then nothing is due.
    for minutes in [5, 20, 65, 600] {
        let options = SweepOptions {
            batch_size: 100,
            budget: std::time::Duration::from_secs(60),
            deadline: None,
        };
        let at = t0 + chrono::Duration::minutes(minutes);
        let report = sweep(&deps, options, Clock::Fixed(at))
            .await
            .expect("sweep");
        figures.runs += 1;
        let expected = if minutes == 600 { 0 } else { n as usize };
        assert_eq!(report.processed, expected, "sweep at +{minutes} min");
    }

    figures.faults = db
        .count("SELECT count(*) FROM webhook_attempts WHERE error_kind = 'connect'")
        .await as usize;
    figures.lost = db
        .count(
            "SELECT count(*) FROM webhook_deliveries d
              WHERE d.status <> 'failed' OR d.attempt_count <> d.max_retries + 1
                 OR (SELECT count(*) FROM webhook_attempts a WHERE a.delivery_id = d.id) <> d.max_retries + 1",
        )
        .await as usize;
    figures.report("receiver_down");
    assert_eq!(figures.faults, 4 * n as usize, "4 refused attempts each");
    assert_eq!(figures.lost, 0);
}
