//! Deliveries and attempts written straight into the outbox at known times, so every figure
//! the commands report can be computed by hand. Times are minutes relative to `now`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::support::TestDb;

/// One attempt: started `at` minutes from now, took `ms`.
#[derive(Debug, Clone, Copy)]
pub struct Attempt {
    pub at: i64,
    pub ms: i32,
    pub code: Option<i32>,
    pub kind: Option<&'static str>,
    pub error: Option<&'static str>,
}

/// A 2xx attempt.
pub fn ok(at: i64, ms: i32) -> Attempt {
    Attempt {
        at,
        ms,
        code: Some(200),
        kind: None,
        error: None,
    }
}

/// A failed attempt.
pub fn failed(
    at: i64,
    ms: i32,
    code: Option<i32>,
    kind: &'static str,
    error: &'static str,
) -> Attempt {
    Attempt {
        at,
        ms,
        code,
        kind: Some(kind),
        error: Some(error),
    }
}

/// A delivery in a given state.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub webhook_type: &'static str,
    pub status: &'static str,
    pub created: i64,
    pub next_retry: Option<i64>,
    pub resolved: Option<i64>,
    pub attempts: Vec<Attempt>,
}

impl Delivery {
    pub fn new(webhook_type: &'static str, status: &'static str, created: i64) -> Delivery {
        Delivery {
            webhook_type,
            status,
            created,
            next_retry: None,
            resolved: None,
            attempts: Vec::new(),
        }
    }
    pub fn due(mut self, at: i64) -> Delivery {
        self.next_retry = Some(at);
        self
    }
    pub fn resolved(mut self, at: i64) -> Delivery {
        self.resolved = Some(at);
        self
    }
    pub fn attempts(mut self, attempts: Vec<Attempt>) -> Delivery {
        self.attempts = attempts;
        self
    }
}

/// `now` moved by `minutes`.
pub fn at(now: DateTime<Utc>, minutes: i64) -> DateTime<Utc> {
    now + chrono::Duration::minutes(minutes)
}

/// Minutes in `n` days.
pub fn days(n: i64) -> i64 {
    n * 1_440
}

/// Writes `d` (and its attempts) as the engine would have left it; returns its id.
pub async fn insert(db: &TestDb, now: DateTime<Utc>, d: &Delivery) -> Uuid {
    let client = db.pool.get().await.expect("connection");
    let last = d.attempts.last();
    let last_error = d.attempts.iter().rev().find_map(|a| a.error);
    let recipient = (d.status != "skipped").then_some("someone@example.com");
    let id: Uuid = client
        .query_one(
            "INSERT INTO webhook_deliveries
                    (booking_id, webhook_type, recipient_email, payload, status, attempt_count,
                     next_retry_at, last_error, last_status_code, last_attempt_at, created_at,
                     resolved_at)
             VALUES (gen_random_uuid(), $1, $2, '{}'::jsonb, $3, $4, $5, $6, $7, $8, $9, $10)
             RETURNING id",
            &[
                &d.webhook_type,
                &recipient,
                &d.status,
                &(d.attempts.len() as i32),
                &d.next_retry.map(|m| at(now, m)),
                &last_error,
                &last.and_then(|a| a.code),
                &last.map(|a| at(now, a.at) + chrono::Duration::milliseconds(a.ms.into())),
                &at(now, d.created),
                &d.resolved.map(|m| at(now, m)),
            ],
        )
        .await
        .expect("insert delivery")
        .get(0);
    for (n, a) in d.attempts.iter().enumerate() {
        client
            .execute(
                "INSERT INTO webhook_attempts
                        (delivery_id, attempt, started_at, duration_ms, status_code, error_kind, error)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&id, &(n as i32 + 1), &at(now, a.at), &a.ms, &a.code, &a.kind, &a.error],
            )
            .await
            .expect("insert attempt");
    }
    id
}

/// The data set the read commands are checked against, by letter:
///
/// | | type | status | attempts (ms, result) at minutes | other |
/// |---|---|---|---|---|
/// | A | new_request | succeeded | 100 ok @-120 | |
/// | B | new_request | succeeded | 500 503 @-180, 300 timeout @-175, 200 ok @-160 | |
/// | C | new_request | failed | 4 × 1000 500 @-1800 (outside 24 h) | |
/// | D | new_request | retrying | 400 502 @-20 | due @-5, created @-20 |
/// | E | new_request | pending | — | due @-10, created @-10 |
/// | F | new_request | skipped | — | |
/// | G | approved | succeeded | 50 ok @-60 | |
/// | H | approved | failed | 60 404 @-40 | |
/// | I | approved | retrying | 700 503 @-50, 900 503 @-45 | due @+10, created @-50 |
pub async fn health_set(db: &TestDb, now: DateTime<Utc>) -> HashMap<char, Uuid> {
    let e503 = |at, ms| failed(at, ms, Some(503), "http_5xx", "HTTP 503");
    let set = [
        (
            'A',
            Delivery::new("new_request", "succeeded", -120)
                .resolved(-120)
                .attempts(vec![ok(-120, 100)]),
        ),
        (
            'B',
            Delivery::new("new_request", "succeeded", -180)
                .resolved(-160)
                .attempts(vec![
                    e503(-180, 500),
                    failed(-175, 300, None, "timeout", "timed out after 10s"),
                    ok(-160, 200),
                ]),
        ),
        (
            'C',
            Delivery::new("new_request", "failed", -1_830)
                .resolved(-1_800)
                .attempts(
                    (0..4)
                        .map(|_| {
                            failed(
                                -1_800,
                                1_000,
                                Some(500),
                                "http_5xx",
                                "HTTP 500 (no retries left)",
                            )
                        })
                        .collect(),
                ),
        ),
        (
            'D',
            Delivery::new("new_request", "retrying", -20)
                .due(-5)
                .attempts(vec![failed(-20, 400, Some(502), "http_5xx", "HTTP 502")]),
        ),
        ('E', Delivery::new("new_request", "pending", -10).due(-10)),
        (
            'F',
            Delivery::new("new_request", "skipped", -60).resolved(-60),
        ),
        (
            'G',
            Delivery::new("approved", "succeeded", -60)
                .resolved(-60)
                .attempts(vec![ok(-60, 50)]),
        ),
        (
            'H',
            Delivery::new("approved", "failed", -40)
                .resolved(-40)
                .attempts(vec![failed(
                    -40,
                    60,
                    Some(404),
                    "http_4xx",
                    "HTTP 404: no such recipient",
                )]),
        ),
        (
            'I',
            Delivery::new("approved", "retrying", -50)
                .due(10)
                .attempts(vec![e503(-50, 700), e503(-45, 900)]),
        ),
    ];
    let mut ids = HashMap::new();
    for (letter, d) in set {
        ids.insert(letter, insert(db, now, &d).await);
    }
    ids
}

/// The current time to the second, so ages computed from stored times come out whole.
pub fn now() -> DateTime<Utc> {
    use chrono::SubsecRound as _;
    Utc::now().trunc_subsecs(0)
}
