//! One delivery and every attempt made for it (`webhooks show <id>`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Client;
use tokio_postgres::types::Type;
use uuid::Uuid;

use crate::db::query;
use crate::db::sql;
use crate::error::Result;
use crate::ops::output::{Style, Tone};
use crate::ops::table::{Table, clip, instant, or_dash, wrap};

/// A delivery's stored state. The address is masked (`t***@example.com`): output of an
/// operator command ends up in tickets and chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryState {
    /// Delivery id (the `webhook-id`).
    pub id: Uuid,
    /// The booking it is about.
    pub booking_id: Uuid,
    /// `new_request`, `approved` or `rejected`.
    pub webhook_type: String,
    /// Current status.
    pub status: String,
    /// The recipient, masked; `None` when the booking had none.
    pub recipient: Option<String>,
    /// Attempts made.
    pub attempt_count: i32,
    /// Retries allowed after the first attempt.
    pub max_retries: i32,
    /// When the next attempt is due.
    pub next_retry_at: Option<DateTime<Utc>>,
    /// The last error.
    pub last_error: Option<String>,
    /// HTTP status of the last attempt.
    pub last_status_code: Option<i32>,
    /// When the last attempt ended.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// A worker's lease, while one is sending it.
    pub locked_until: Option<DateTime<Utc>>,
    /// When it was captured.
    pub created_at: DateTime<Utc>,
    /// When it became final.
    pub resolved_at: Option<DateTime<Utc>>,
    /// For a superseded delivery: the later status notification of the booking that replaced
    /// it (`webhooks show` that one to follow the chain).
    pub superseded_by: Option<Uuid>,
}

/// One recorded HTTP attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptRecord {
    /// 1-based attempt number.
    pub attempt: i32,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// How long it took.
    pub duration_ms: i32,
    /// HTTP status, if a response came.
    pub status_code: Option<i32>,
    /// Error class (`timeout`, `connect`, `http_4xx`, `http_5xx`, `redirect`, `other`); `None`
    /// on success.
    pub error_kind: Option<String>,
    /// The stored excerpt of the error.
    pub error: Option<String>,
}

/// A delivery with its attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryHistory {
    /// The delivery.
    pub delivery: DeliveryState,
    /// Its attempts, in order.
    pub attempts: Vec<AttemptRecord>,
}

/// Reads delivery `id` and its attempts; `None` when there is no such delivery.
pub async fn read_history(db: &Client, id: Uuid) -> Result<Option<DeliveryHistory>> {
    let rows = query(db, sql::DELIVERY, &[(&id, Type::UUID)]).await?;
    let Some(r) = rows.first() else {
        return Ok(None);
    };
    let recipient: Option<String> = r.try_get(4)?;
    let delivery = DeliveryState {
        id: r.try_get(0)?,
        booking_id: r.try_get(1)?,
        webhook_type: r.try_get(2)?,
        status: r.try_get(3)?,
        recipient: recipient.as_deref().map(mask_email),
        attempt_count: r.try_get(5)?,
        max_retries: r.try_get(6)?,
        next_retry_at: r.try_get(7)?,
        last_error: r.try_get(8)?,
        last_status_code: r.try_get(9)?,
        last_attempt_at: r.try_get(10)?,
        locked_until: r.try_get(11)?,
        created_at: r.try_get(12)?,
        resolved_at: r.try_get(13)?,
        superseded_by: r.try_get(14)?,
    };
    let attempts = query(db, sql::ATTEMPTS, &[(&id, Type::UUID)])
        .await?
        .iter()
        .map(|a| {
            Ok(AttemptRecord {
                attempt: a.try_get(0)?,
                started_at: a.try_get(1)?,
                duration_ms: a.try_get(2)?,
                status_code: a.try_get(3)?,
                error_kind: a.try_get(4)?,
                error: a.try_get(5)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(DeliveryHistory { delivery, attempts }))
}

/// `tutor@example.com` → `t***@example.com`; anything without one `@` → `***`.
pub fn mask_email(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) if !domain.contains('@') => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        _ => "***".into(),
    }
}

/// The human form: the delivery's fields, then a table of attempts. The last error is shown
/// while it matters (retrying, failed); after a later outcome it is labelled as an earlier
/// attempt's.
pub fn render_history(h: &DeliveryHistory, style: &Style) -> String {
    let d = &h.delivery;
    let tone = match d.status.as_str() {
        "succeeded" => Tone::Good,
        "failed" => Tone::Bad,
        "retrying" => Tone::Warn,
        _ => Tone::Plain,
    };
    let mut fields = vec![
        ("delivery", d.id.to_string(), Tone::Plain),
        ("booking", d.booking_id.to_string(), Tone::Plain),
        ("type", d.webhook_type.clone(), Tone::Plain),
        ("status", d.status.clone(), tone),
        ("recipient", or_dash(d.recipient.clone()), Tone::Plain),
        (
            "attempts",
            format!("{} of {}", d.attempt_count, d.max_retries + 1),
            Tone::Plain,
        ),
        ("created", instant(Some(d.created_at)), Tone::Plain),
        ("last attempt", instant(d.last_attempt_at), Tone::Plain),
        ("next retry", instant(d.next_retry_at), Tone::Plain),
        ("resolved", instant(d.resolved_at), Tone::Plain),
        ("superseded by", or_dash(d.superseded_by), Tone::Plain),
        ("leased until", instant(d.locked_until), Tone::Plain),
        ("last status code", or_dash(d.last_status_code), Tone::Plain),
    ];
    if let Some(error) = &d.last_error {
        match d.status.as_str() {
            "retrying" | "failed" => fields.push(("last error", error.clone(), Tone::Bad)),
            _ => {
                let at = h.attempts.iter().rev().find(|a| a.error.is_some());
                let which = at.map_or_else(String::new, |a| format!(" (attempt {})", a.attempt));
                fields.push(("earlier error", format!("{error}{which}"), Tone::Dim));
            }
        }
    }
    let mut out = String::new();
    let value_width = style.width.saturating_sub(18);
    for (name, value, tone) in fields {
        for (n, line) in wrap(&clip(&value, 2_000), value_width).iter().enumerate() {
            let name = if n == 0 { name } else { "" };
            out.push_str(&format!("{name:<17} {}\n", style.paint(line, tone)));
        }
    }
    out.push('\n');
    if h.attempts.is_empty() {
        out.push_str("no attempts yet\n");
        return out;
    }
    let mut t = Table::new(&["#", "started", ">ms", ">code", "kind", "~error"]);
    for a in &h.attempts {
        let (kind, tone) = match &a.error_kind {
            Some(kind) => (kind.clone(), Tone::Bad),
            None => ("ok".to_owned(), Tone::Good),
        };
        t.row_toned(vec![
            (a.attempt.to_string(), Tone::Plain),
            (instant(Some(a.started_at)), Tone::Plain),
            (a.duration_ms.to_string(), Tone::Plain),
            (or_dash(a.status_code), Tone::Plain),
            (kind, tone),
            (clip(a.error.as_deref().unwrap_or("-"), 500), Tone::Plain),
        ]);
    }
    out.push_str(&t.render(style));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_masked() {
        assert_eq!(mask_email("tutor@example.com"), "t***@example.com");
        assert_eq!(mask_email("@example.com"), "***@example.com");
        assert_eq!(mask_email("no-at-sign"), "***");
        assert_eq!(mask_email("a@b@c"), "***");
    }
}
