//! `stats`, `failures` and `show` against the seeded data set of `seed::health_set`, whose
//! figures are worked out by hand in the comments.

use chrono::{DateTime, Utc};
use delivery::failures::{FailureFilter, list_failures};
use delivery::health::{TypeHealth, read_health, render_health};
use delivery::history::{read_history, render_history};
use delivery::ops::output::Style;
use uuid::Uuid;

use super::seed::{self, at, health_set};
use crate::support::TestDb;
use crate::support::state::same_instant;

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

fn row<'a>(rows: &'a [TypeHealth], webhook_type: &str) -> &'a TypeHealth {
    rows.iter()
        .find(|r| r.webhook_type == webhook_type)
        .unwrap_or_else(|| panic!("no {webhook_type} row in {rows:?}"))
}

fn same(a: Option<DateTime<Utc>>, b: DateTime<Utc>) -> bool {
    a.is_some_and(|a| same_instant(a, b))
}

#[tokio::test]
async fn stats_match_the_hand_computed_figures_per_type_and_overall() {
    let db = TestDb::new().await;
    let now = seed::now();
    health_set(&db, now).await;
    let rows = read_health(&db.pool.get().await.expect("connection"), now)
        .await
        .expect("stats");

    // Types in name order, the overall row last; no row for a type with no deliveries.
    let types: Vec<&str> = rows.iter().map(|r| r.webhook_type.as_str()).collect();
    assert_eq!(types, ["approved", "new_request", "all"]);

    // new_request: A, B succeeded; C failed; D retrying; E pending; F skipped.
    let n = row(&rows, "new_request");
    assert_eq!(
        (
            n.total,
            n.succeeded,
            n.pending,
            n.retrying,
            n.failed,
            n.skipped
        ),
        (6, 2, 1, 1, 1, 1)
    );
    assert!(close(n.success_rate_pct, 66.67), "2 / (2 + 1): {n:?}");
    assert!(close(n.avg_attempts_to_succeed, 2.0), "(1 + 3) / 2");
    assert!(
        same(n.oldest_due_at, at(now, -10)),
        "E is due since -10 min"
    );
    assert!(
        same(n.oldest_undelivered_at, at(now, -20)),
        "D waits since -20 min"
    );
    assert_eq!(n.oldest_undelivered_age_s, Some(1_200));
    // 24 h: A 100; B 500, 300, 200; D 400 (C's are 30 h old). Failed: B1, B2, D1.
    assert_eq!((n.attempts_24h, n.failed_attempts_24h), (5, 3));
    // Sorted 100 200 300 400 500: p50 = 300; p95 at 3.8 = 400 + 0.8 × 100; p99 at 3.96.
    assert!(
        close(n.p50_ms_24h, 300.0) && close(n.p95_ms_24h, 480.0) && close(n.p99_ms_24h, 496.0),
        "{n:?}"
    );

    // approved: G succeeded, H failed, I retrying (due in 10 min).
    let a = row(&rows, "approved");
    assert_eq!(
        (
            a.total,
            a.succeeded,
            a.pending,
            a.retrying,
            a.failed,
            a.skipped
        ),
        (3, 1, 0, 1, 1, 0)
    );
    assert!(close(a.success_rate_pct, 50.0) && close(a.avg_attempts_to_succeed, 1.0));
    assert!(same(a.oldest_due_at, at(now, 10)));
    assert_eq!(a.oldest_undelivered_age_s, Some(3_000));
    // 50 60 700 900: p50 at 1.5 = 60 + 0.5 × 640; p95 at 2.85 = 700 + 0.85 × 200; p99 at 2.97.
    assert_eq!((a.attempts_24h, a.failed_attempts_24h), (4, 3));
    assert!(
        close(a.p50_ms_24h, 380.0) && close(a.p95_ms_24h, 870.0) && close(a.p99_ms_24h, 894.0),
        "{a:?}"
    );

    // Overall: 9 deliveries; success 3 / (3 + 2); attempts to succeed (1 + 3 + 1) / 3.
    let all = row(&rows, "all");
    assert_eq!(
        (
            all.total,
            all.succeeded,
            all.pending,
            all.retrying,
            all.failed,
            all.skipped
        ),
        (9, 3, 1, 2, 2, 1)
    );
    assert!(close(all.success_rate_pct, 60.0) && close(all.avg_attempts_to_succeed, 1.67));
    assert!(same(all.oldest_due_at, at(now, -10)));
    assert_eq!(
        all.oldest_undelivered_age_s,
        Some(3_000),
        "I waits since -50 min"
    );
    // 50 60 100 200 300 400 500 700 900: p50 = 300; p95 at 7.6 = 700 + 0.6 × 200; p99 at 7.92.
    assert_eq!((all.attempts_24h, all.failed_attempts_24h), (9, 6));
    assert!(
        close(all.p50_ms_24h, 300.0)
            && close(all.p95_ms_24h, 820.0)
            && close(all.p99_ms_24h, 884.0),
        "{all:?}"
    );

    let text = render_health(&rows, now, &Style::default());
    assert!(
        text.contains("66.67%") && text.contains("20m 0s ago") && text.contains("50m 0s ago"),
        "{text}"
    );
}

#[tokio::test]
async fn stats_of_an_empty_outbox_have_one_overall_row_of_zeros() {
    let db = TestDb::new().await;
    let rows = read_health(&db.pool.get().await.expect("connection"), Utc::now())
        .await
        .expect("stats");
    assert_eq!(rows.len(), 1);
    let all = &rows[0];
    assert_eq!(
        (all.webhook_type.as_str(), all.total, all.attempts_24h),
        ("all", 0, 0)
    );
    assert_eq!(
        (
            all.success_rate_pct,
            all.p50_ms_24h,
            all.oldest_undelivered_age_s
        ),
        (None, None, None)
    );
}

async fn listed(db: &TestDb, filter: FailureFilter) -> (i64, Vec<Uuid>) {
    let found = list_failures(&db.pool.get().await.expect("connection"), &filter)
        .await
        .expect("failures");
    (
        found.matching,
        found.deliveries.iter().map(|d| d.id).collect(),
    )
}

#[tokio::test]
async fn failures_lists_exactly_the_deliveries_in_trouble_most_recent_first() {
    let db = TestDb::new().await;
    let now = seed::now();
    let id = health_set(&db, now).await;

    // Failed or retrying (B succeeded after failing, E is pending: neither is in trouble),
    // by last attempt: D -20, H -40, I -45, C -30 h.
    assert_eq!(
        listed(&db, FailureFilter::default()).await,
        (4, vec![id[&'D'], id[&'H'], id[&'I'], id[&'C']])
    );
    let only = |status: &str| FailureFilter {
        statuses: vec![status.into()],
        ..FailureFilter::default()
    };
    assert_eq!(
        listed(&db, only("failed")).await,
        (2, vec![id[&'H'], id[&'C']])
    );
    assert_eq!(
        listed(&db, only("retrying")).await,
        (2, vec![id[&'D'], id[&'I']])
    );
    let since = FailureFilter {
        since: Some(at(now, -60)),
        ..FailureFilter::default()
    };
    assert_eq!(
        listed(&db, since).await,
        (3, vec![id[&'D'], id[&'H'], id[&'I']])
    );
    let limited = FailureFilter {
        limit: 2,
        ..FailureFilter::default()
    };
    assert_eq!(
        listed(&db, limited).await,
        (4, vec![id[&'D'], id[&'H']]),
        "the total still counts all"
    );

    let found = list_failures(
        &db.pool.get().await.expect("connection"),
        &FailureFilter::default(),
    )
    .await
    .expect("failures");
    let h = &found.deliveries[1];
    assert_eq!(
        (
            h.status.as_str(),
            h.attempt_count,
            h.max_retries,
            h.last_status_code,
            h.last_error.as_deref(),
            h.next_retry_at
        ),
        (
            "failed",
            1,
            3,
            Some(404),
            Some("HTTP 404: no such recipient"),
            None
        )
    );
    let text = delivery::failures::render_failures(&found, now, &Style::default());
    assert!(
        text.contains("HTTP 404: no such recipient") && text.contains("1/4"),
        "{text}"
    );
}

#[tokio::test]
async fn show_prints_every_attempt_and_an_unknown_id_is_none() {
    let db = TestDb::new().await;
    let now = seed::now();
    let id = health_set(&db, now).await;
    let client = db.pool.get().await.expect("connection");

    let history = read_history(&client, id[&'B'])
        .await
        .expect("show")
        .expect("B exists");
    let d = &history.delivery;
    assert_eq!(
        (d.status.as_str(), d.attempt_count, d.webhook_type.as_str()),
        ("succeeded", 3, "new_request")
    );
    assert_eq!(
        d.recipient.as_deref(),
        Some("s***@example.com"),
        "the address is masked"
    );
    let attempts: Vec<_> = history
        .attempts
        .iter()
        .map(|a| {
            (
                a.attempt,
                a.duration_ms,
                a.status_code,
                a.error_kind.as_deref(),
                a.error.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        attempts,
        vec![
            (1, 500, Some(503), Some("http_5xx"), Some("HTTP 503")),
            (2, 300, None, Some("timeout"), Some("timed out after 10s")),
            (3, 200, Some(200), None, None),
        ]
    );
    assert!(same_instant(history.attempts[1].started_at, at(now, -175)));
    let text = render_history(&history, &Style::default());
    for needle in [
        "HTTP 503",
        "timed out after 10s",
        "timeout",
        "http_5xx",
        "500",
        "300",
        "3 of 4",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
    assert!(!text.contains("someone@example.com"), "{text}");
    // Succeeded on attempt 3: the stored error is attempt 2's, and says so.
    assert!(
        text.contains("earlier error     timed out after 10s (attempt 2)")
            && !text.contains("last error"),
        "{text}"
    );
    let failed = read_history(&client, id[&'H'])
        .await
        .expect("show")
        .expect("H exists");
    let text = render_history(&failed, &Style::default());
    assert!(text.contains("last error        HTTP 404"), "{text}");

    let pending = read_history(&client, id[&'E'])
        .await
        .expect("show")
        .expect("E exists");
    assert!(pending.attempts.is_empty());
    assert!(render_history(&pending, &Style::default()).contains("no attempts yet"));

    assert_eq!(
        read_history(&client, Uuid::new_v4()).await.expect("show"),
        None
    );
}
