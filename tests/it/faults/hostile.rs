//! Hostile receivers: each answer is classified, bounded in time and size, and recorded; none
//! makes the engine panic or hang.

use chrono::Utc;
use delivery::Clock;
use serde_json::json;

use super::Figures;
use crate::support::hostile::{Hostile, Misbehaviour};
use crate::support::state::same_instant;
use crate::support::{TestDb, deps_with};

/// The per-attempt timeout the scenarios run with.
const TIMEOUT_MS: i32 = 1000;

struct Case {
    how: Misbehaviour,
    /// Expected status, error kind and HTTP status of the attempt.
    status: &'static str,
    error_kind: Option<&'static str>,
    status_code: Option<i32>,
    /// Expected delay before the next attempt, in seconds (for `retrying`).
    retry_in: Option<i64>,
}

fn case(
    how: Misbehaviour,
    status: &'static str,
    error_kind: Option<&'static str>,
    status_code: Option<i32>,
    retry_in: Option<i64>,
) -> Case {
    Case {
        how,
        status,
        error_kind,
        status_code,
        retry_in,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_receivers_are_classified_bounded_and_recorded() {
    use Misbehaviour::*;
    let (five_min, hour) = (Some(300), Some(3600));
    let cases = [
        case(Silent, "retrying", Some("timeout"), None, five_min),
        case(
            ClosesMidBody(502),
            "retrying",
            Some("http_5xx"),
            Some(502),
            five_min,
        ),
        // The receiver accepted it; a broken body after a 2xx does not undo that.
        case(ClosesMidBody(200), "succeeded", None, Some(200), None),
        case(
            Flood(500, 10 << 20),
            "retrying",
            Some("http_5xx"),
            Some(500),
            five_min,
        ),
        case(Flood(200, 10 << 20), "succeeded", None, Some(200), None),
        case(RedirectLoop, "failed", Some("redirect"), Some(302), None),
        case(
            RetryAfter("soon".into()),
            "retrying",
            Some("http_5xx"),
            Some(503),
            five_min,
        ),
        case(
            RetryAfter("-1".into()),
            "retrying",
            Some("http_5xx"),
            Some(503),
            five_min,
        ),
        case(
            RetryAfter("99999999999999999999999".into()),
            "retrying",
            Some("http_5xx"),
            Some(503),
            five_min,
        ),
        case(
            RetryAfter("86400000".into()),
            "retrying",
            Some("http_5xx"),
            Some(503),
            hour,
        ),
        case(
            RetryAfter("Fri, 31 Dec 9999 23:59:59 GMT".into()),
            "retrying",
            Some("http_5xx"),
            Some(503),
            hour,
        ),
        case(SlowDrip(200), "succeeded", None, Some(200), None),
        case(
            SlowDrip(503),
            "retrying",
            Some("http_5xx"),
            Some(503),
            five_min,
        ),
    ];
    let db = TestDb::new().await;
    let t0 = Utc::now();
    let mut figures = Figures::default();
    for case in cases {
        let receiver = Hostile::start(case.how.clone()).await;
        let timeout = TIMEOUT_MS.to_string();
        let deps = deps_with(&db, &receiver.url, &[("WEBHOOK_TIMEOUT_MS", &timeout)]);
        let (_, id) = db.booking_with_delivery().await;
        let started = std::time::Instant::now();
        delivery::dispatch::handle(json!({ "deliveryId": id }), &deps, Clock::Fixed(t0), None)
            .await
            .expect("dispatch");
        let took = started.elapsed();
        figures.runs += 1;
        figures.faults += 1;
        figures.deliveries += 1;

        let what = format!("{:?}", case.how);
        let row = db.delivery(id).await;
        let attempts = db.attempts(id).await;
        let ok = row.status == case.status
            && attempts.len() == 1
            && attempts[0].error_kind.as_deref() == case.error_kind
            && attempts[0].status_code == case.status_code
            && match (row.next_retry_at, case.retry_in) {
                (Some(at), Some(secs)) => same_instant(at, t0 + chrono::Duration::seconds(secs)),
                (at, secs) => at.is_none() && secs.is_none(),
            }
            && row
                .last_error
                .as_ref()
                .is_none_or(|e| e.chars().count() <= 512);
        if !ok {
            figures.lost += 1;
            eprintln!("{what}: {row:?} {attempts:?}");
        }
        // Bounded: the whole invocation within the attempt timeout plus slack.
        assert!(
            took.as_millis() < u128::try_from(TIMEOUT_MS).unwrap_or(0) + 2000,
            "{what} took {took:?}"
        );
        assert_eq!(
            receiver.requests(),
            1,
            "{what}: one request, no redirect followed"
        );
        if let Some(at) = row.resolved_at {
            assert!(same_instant(at, t0), "{what}");
        }
    }
    figures.report("hostile_receivers");
    assert_eq!(figures.lost, 0, "see the lines above");
}
