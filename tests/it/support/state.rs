//! Reading a delivery's stored state and attempts, for assertions.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::TestDb;

/// A `webhook_deliveries` row.
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub status: String,
    pub attempt_count: i32,
    pub max_retries: i32,
    pub next_retry_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_status_code: Option<i32>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub locked_until: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// A `webhook_attempts` row.
#[derive(Debug, Clone)]
pub struct AttemptRow {
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub error_kind: Option<String>,
    pub error: Option<String>,
}

impl TestDb {
    /// The delivery's current row.
    pub async fn delivery(&self, id: Uuid) -> DeliveryRow {
        let client = self.pool.get().await.expect("connection");
        let r = client
            .query_one(
                "SELECT status, attempt_count, max_retries, next_retry_at, last_error, last_status_code,
                        last_attempt_at, locked_until, resolved_at
                   FROM webhook_deliveries WHERE id = $1",
                &[&id],
            )
            .await
            .expect("delivery exists");
        DeliveryRow {
            status: r.get(0),
            attempt_count: r.get(1),
            max_retries: r.get(2),
            next_retry_at: r.get(3),
            last_error: r.get(4),
            last_status_code: r.get(5),
            last_attempt_at: r.get(6),
            locked_until: r.get(7),
            resolved_at: r.get(8),
        }
    }

    /// The delivery's attempts, in order.
    pub async fn attempts(&self, id: Uuid) -> Vec<AttemptRow> {
        let client = self.pool.get().await.expect("connection");
        client
            .query(
                "SELECT attempt, started_at, status_code, error_kind, error
                   FROM webhook_attempts WHERE delivery_id = $1 ORDER BY attempt, id",
                &[&id],
            )
            .await
            .expect("attempts")
            .iter()
            .map(|r| AttemptRow {
                attempt: r.get(0),
                started_at: r.get(1),
                status_code: r.get(2),
                error_kind: r.get(3),
                error: r.get(4),
            })
            .collect()
    }

    /// Inserts `n` bookings in one statement; returns the ids of all deliveries.
    pub async fn backlog(&self, n: i64) -> Vec<Uuid> {
        let client = self.pool.get().await.expect("connection");
        client
            .execute(
                "INSERT INTO booking_requests (tutor_email) SELECT 'tutor' || i || '@example.com' FROM generate_series(1, $1::bigint) i",
                &[&n],
            )
            .await
            .expect("insert backlog");
        client
            .query("SELECT id FROM webhook_deliveries", &[])
            .await
            .expect("ids")
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// A booking with a tutor address and its captured `new_request` delivery id.
    pub async fn booking_with_delivery(&self) -> (Uuid, Uuid) {
        let booking = self
            .insert_booking(Some("tutor@example.com"), Some("student@example.com"))
            .await;
        (booking, self.delivery_id(booking, "new_request").await)
    }
}

/// `a` and `b` within a millisecond (timestamps round-trip through Postgres at µs precision).
pub fn same_instant(a: DateTime<Utc>, b: DateTime<Utc>) -> bool {
    (a - b).num_milliseconds().abs() <= 1
}
