//! The `dispatch` Lambda handler: the first attempt of a notification, right after commit.
//!
//! Events:
//! - `{"deliveryId": "<uuid>"}` — deliver that one. The wake-up may arrive *before* the
//!   capturing transaction commits (on RDS, `aws_lambda.invoke` fires inside the
//!   transaction), so an id that is not visible yet is looked for again with growing pauses
//!   for up to `WEBHOOK_DISPATCH_WAIT_MS` (default 2 s), then left to the sweep and reported
//!   as `notFound`.
//! - `{}` or `{"limit": N}` — deliver up to N (default 100, at most 10 000) never-attempted
//!   deliveries, oldest first.
//! - A Lambda function-URL request whose body is one of the above and whose
//!   `Authorization: Bearer …` matches `WEBHOOK_DISPATCH_TOKEN` (the Supabase pg_net path).
//!
//! An unknown id or a delivery that is already final is not an error: it is reported. A
//! malformed event is an [`Error::InvalidEvent`] naming what is wrong.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::claim::{NotClaimed, claim_fresh, claim_ids, explain, lease_for};
use crate::config::Secret;
use crate::engine::{Delivered, deliver};
use crate::outcome::DeliveryStatus;
use crate::{Clock, Deps, Error, Result};

/// Deliveries sent by `{}` when no limit is given.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest `limit` accepted.
pub const MAX_LIMIT: usize = 10_000;

/// A parsed dispatch invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispatchEvent {
    /// Deliver this delivery.
    One(Uuid),
    /// Deliver up to this many never-attempted deliveries, oldest first.
    Fresh {
        /// At most this many.
        limit: usize,
    },
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WireEvent {
    delivery_id: Option<Value>,
    limit: Option<Value>,
}

impl DispatchEvent {
    /// Parses an invocation payload. `token` is the bearer token function-URL requests must
    /// carry; without one configured, function-URL requests are refused.
    pub fn parse(event: Value, token: Option<&Secret>) -> Result<Self> {
        let event = match unwrap_function_url(&event, token)? {
            Some(body) => body,
            None => event,
        };
        let event = if event.is_null() {
            Value::Object(Default::default())
        } else {
            event
        };
        if !event.is_object() {
            return Err(Error::InvalidEvent(format!(
                "expected a JSON object like {{\"deliveryId\": \"<uuid>\"}} or {{\"limit\": 10}}, got {}",
                kind_of(&event)
            )));
        }
        let wire: WireEvent =
            serde_json::from_value(event).map_err(|e| Error::InvalidEvent(e.to_string()))?;
        match (wire.delivery_id, wire.limit) {
            (Some(_), Some(_)) => Err(Error::InvalidEvent(
                "give either deliveryId or limit, not both".into(),
            )),
            (Some(id), None) => {
                let id = id
                    .as_str()
                    .and_then(|s| Uuid::parse_str(s.trim()).ok())
                    .ok_or_else(|| {
                        Error::InvalidEvent(format!(
                            "deliveryId must be a UUID string, got {}",
                            short(&id)
                        ))
                    })?;
                Ok(DispatchEvent::One(id))
            }
            (None, Some(limit)) => {
                let limit = limit
                    .as_u64()
                    .filter(|n| (1..=MAX_LIMIT as u64).contains(n))
                    .ok_or_else(|| {
                        Error::InvalidEvent(format!(
                            "limit must be an integer from 1 to {MAX_LIMIT}, got {}",
                            short(&limit)
                        ))
                    })?;
                Ok(DispatchEvent::Fresh {
                    limit: limit as usize,
                })
            }
            (None, None) => Ok(DispatchEvent::Fresh {
                limit: DEFAULT_LIMIT,
            }),
        }
    }
}

/// For a Lambda function-URL request, checks the bearer token and returns the parsed body.
/// Returns `None` for a direct invocation.
fn unwrap_function_url(event: &Value, token: Option<&Secret>) -> Result<Option<Value>> {
    let is_http = event
        .get("requestContext")
        .and_then(|c| c.get("http"))
        .is_some();
    if !is_http {
        return Ok(None);
    }
    let expected = token.ok_or(Error::Unauthorized)?;
    let given = event
        .get("headers")
        .and_then(|h| h.get("authorization"))
        .and_then(Value::as_str)
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !constant_time_eq(given.as_bytes(), expected.expose().as_bytes()) {
        return Err(Error::Unauthorized);
    }
    let body = event.get("body").and_then(Value::as_str).unwrap_or("");
    let bytes = if event
        .get("isBase64Encoded")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| Error::InvalidEvent("function-URL body is not valid base64".into()))?
    } else {
        body.as_bytes().to_vec()
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Some(Value::Object(Default::default())));
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::InvalidEvent(format!("function-URL body is not JSON: {e}")))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn short(v: &Value) -> String {
    crate::outcome::truncate(&v.to_string(), 60)
}

/// Counts per category of a [`DispatchReport`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DispatchCounts {
    /// Delivered now.
    pub succeeded: usize,
    /// Failed now; a retry is scheduled.
    pub retrying: usize,
    /// Failed now for good.
    pub failed: usize,
    /// Has no recipient; never sent.
    pub skipped: usize,
    /// Not visible (unknown, or not committed within the wait); left to the sweep.
    pub not_found: usize,
    /// Exists but was not sent now (final, in flight elsewhere, or not due).
    pub unchanged: usize,
}

/// A delivery that was not sent, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unchanged {
    /// Delivery id.
    pub id: Uuid,
    /// Why.
    pub reason: NotClaimed,
}

/// What a dispatch did, with the ids in each category.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DispatchReport {
    /// How many in each category.
    pub counts: DispatchCounts,
    /// Delivered now.
    pub succeeded: Vec<Uuid>,
    /// Failed now; a retry is scheduled.
    pub retrying: Vec<Uuid>,
    /// Failed now for good.
    pub failed: Vec<Uuid>,
    /// Has no recipient; never sent.
    pub skipped: Vec<Uuid>,
    /// Not visible; left to the sweep.
    pub not_found: Vec<Uuid>,
    /// Exists but not sent now.
    pub unchanged: Vec<Unchanged>,
}

impl DispatchReport {
    fn add_delivered(&mut self, d: &Delivered) {
        if !d.recorded {
            return self.add_unchanged(d.id, NotClaimed::InFlight);
        }
        match d.status {
            DeliveryStatus::Succeeded => self.succeeded.push(d.id),
            DeliveryStatus::Failed => self.failed.push(d.id),
            _ => self.retrying.push(d.id),
        }
        self.tally();
    }

    fn add_unchanged(&mut self, id: Uuid, reason: NotClaimed) {
        match reason {
            NotClaimed::Skipped => self.skipped.push(id),
            _ => self.unchanged.push(Unchanged { id, reason }),
        }
        self.tally();
    }

    fn add_not_found(&mut self, id: Uuid) {
        self.not_found.push(id);
        self.tally();
    }

    fn tally(&mut self) {
        self.counts = DispatchCounts {
            succeeded: self.succeeded.len(),
            retrying: self.retrying.len(),
            failed: self.failed.len(),
            skipped: self.skipped.len(),
            not_found: self.not_found.len(),
            unchanged: self.unchanged.len(),
        };
    }
}

/// Handles one `dispatch` invocation.
pub async fn handle(event: Value, deps: &Deps, clock: Clock) -> Result<DispatchReport> {
    let report = match DispatchEvent::parse(event, deps.config.dispatch_token.as_ref())? {
        DispatchEvent::One(id) => {
            dispatch_ids(deps, &[id], clock, deps.config.dispatch_wait).await?
        }
        DispatchEvent::Fresh { limit } => dispatch_fresh(deps, limit, clock).await?,
    };
    tracing::info!(counts = ?report.counts, "dispatch finished");
    Ok(report)
}

/// Delivers the given ids. Ids not visible yet are looked for again, with pauses growing from
/// 25 ms to 400 ms, until `wait` has passed; what is still missing then is `notFound`.
pub async fn dispatch_ids(
    deps: &Deps,
    ids: &[Uuid],
    clock: Clock,
    wait: Duration,
) -> Result<DispatchReport> {
    let mut report = DispatchReport::default();
    let mut seen = HashSet::new();
    let mut missing: Vec<Uuid> = ids.iter().copied().filter(|id| seen.insert(*id)).collect();
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_millis(25);
    let mut quick_retries = 0;
    while !missing.is_empty() {
        let now = clock.now();
        let lease = lease_for(
            missing.len(),
            deps.config.sweep_concurrency,
            deps.config.timeout,
        );
        let (claimed, reasons) = {
            let db = deps.pool.get().await?;
            let claimed = claim_ids(&db, &missing, now, lease).await?;
            let rest: Vec<Uuid> = missing
                .iter()
                .copied()
                .filter(|id| !claimed.iter().any(|c| c.id == *id))
                .collect();
            let reasons = if rest.is_empty() {
                Vec::new()
            } else {
                explain(&db, &rest, now).await?
            };
            (claimed, reasons)
        };
        // Ids that look claimable now: committed since the claim ran, or row-locked by
        // another claimer this instant. Claim again at once, a few times, before calling it
        // in flight.
        let claimable: Vec<Uuid> = reasons
            .iter()
            .filter(|(_, r)| r.is_none())
            .map(|(id, _)| *id)
            .collect();
        missing.retain(|id| {
            !claimed.iter().any(|c| c.id == *id)
                && !reasons
                    .iter()
                    .any(|(r, reason)| r == id && reason.is_some())
        });
        for (id, reason) in reasons {
            if let Some(reason) = reason {
                report.add_unchanged(id, reason);
            }
        }
        for delivered in deliver(deps, claimed, clock).await? {
            report.add_delivered(&delivered);
        }
        if !claimable.is_empty() {
            if quick_retries < 3 {
                quick_retries += 1;
                continue;
            }
            missing.retain(|id| !claimable.contains(id));
            for id in claimable {
                report.add_unchanged(id, NotClaimed::InFlight);
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if missing.is_empty() || left.is_zero() {
            break;
        }
        tokio::time::sleep(pause.min(left)).await;
        pause = (pause * 2).min(Duration::from_millis(400));
    }
    for id in missing {
        tracing::info!(delivery_id = %id, "delivery not visible (unknown or not committed yet); left to the sweep");
        report.add_not_found(id);
    }
    Ok(report)
}

/// Delivers up to `limit` never-attempted deliveries, oldest first, a batch at a time.
pub async fn dispatch_fresh(deps: &Deps, limit: usize, clock: Clock) -> Result<DispatchReport> {
    let mut report = DispatchReport::default();
    let mut remaining = limit;
    while remaining > 0 {
        let n = remaining.min(deps.config.sweep_batch);
        let lease = lease_for(n, deps.config.sweep_concurrency, deps.config.timeout);
        let claimed = claim_fresh(&deps.pool.get().await?, clock.now(), lease, n).await?;
        if claimed.is_empty() {
            break;
        }
        remaining -= claimed.len();
        for delivered in deliver(deps, claimed, clock).await? {
            report.add_delivered(&delivered);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<DispatchEvent> {
        DispatchEvent::parse(v, Some(&Secret::new("s3cret")))
    }

    #[test]
    fn parses_the_three_shapes() -> Result<()> {
        let id = Uuid::new_v4();
        assert_eq!(
            parse(json!({"deliveryId": id.to_string()}))?,
            DispatchEvent::One(id)
        );
        assert_eq!(
            parse(json!({}))?,
            DispatchEvent::Fresh {
                limit: DEFAULT_LIMIT
            }
        );
        assert_eq!(
            parse(Value::Null)?,
            DispatchEvent::Fresh {
                limit: DEFAULT_LIMIT
            }
        );
        assert_eq!(
            parse(json!({"limit": 7}))?,
            DispatchEvent::Fresh { limit: 7 }
        );
        Ok(())
    }

    #[test]
    fn malformed_events_get_clear_errors() {
        let msg = |v: Value| parse(v).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            msg(json!({"deliveryId": "nope"}))
                .contains("deliveryId must be a UUID string, got \"nope\"")
        );
        assert!(msg(json!({"deliveryId": 5})).contains("deliveryId must be a UUID"));
        assert!(msg(json!({"limit": 0})).contains("limit must be an integer from 1 to 10000"));
        assert!(msg(json!({"limit": "ten"})).contains("limit must be an integer"));
        assert!(msg(json!({"delivery_id": "x"})).contains("unknown field `delivery_id`"));
        assert!(msg(json!([1])).contains("expected a JSON object"));
        assert!(
            msg(json!({"deliveryId": Uuid::nil().to_string(), "limit": 1})).contains("not both")
        );
    }

    fn function_url(auth: &str, body: &str, base64: bool) -> Value {
        json!({
            "version": "2.0", "rawPath": "/",
            "headers": {"authorization": auth, "content-type": "application/json"},
            "requestContext": {"http": {"method": "POST"}},
            "body": body, "isBase64Encoded": base64,
        })
    }

    #[test]
    fn function_url_requests_need_the_token() -> Result<()> {
        let id = Uuid::new_v4();
        let body = json!({"deliveryId": id}).to_string();
        assert_eq!(
            parse(function_url("Bearer s3cret", &body, false))?,
            DispatchEvent::One(id)
        );
        let encoded = base64::engine::general_purpose::STANDARD.encode(&body);
        assert_eq!(
            parse(function_url("Bearer s3cret", &encoded, true))?,
            DispatchEvent::One(id)
        );
        assert!(matches!(
            parse(function_url("Bearer wrong", &body, false)),
            Err(Error::Unauthorized)
        ));
        assert!(matches!(
            parse(function_url("", &body, false)),
            Err(Error::Unauthorized)
        ));
        let no_token = DispatchEvent::parse(function_url("Bearer s3cret", &body, false), None);
        assert!(matches!(no_token, Err(Error::Unauthorized)));
        Ok(())
    }
}
