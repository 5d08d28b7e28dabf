//! The invocation events of both functions, and the function-URL wrapper with its bearer token.
//!
//! Parsing is strict: a malformed event is an [`Error::InvalidEvent`] naming what is wrong, so
//! a typo never turns into "deliver everything". An empty invocation (`null`) counts as `{}`.

use base64::Engine as _;
use serde_json::Value;
use uuid::Uuid;

use crate::config::Secret;
use crate::error::Error;
use crate::error::Result;
use crate::text::truncate;

/// Deliveries sent by a dispatch `{}` when no limit is given.
pub(crate) const DEFAULT_LIMIT: usize = 100;
/// The largest dispatch `limit` and sweep `batchSize` accepted.
pub(crate) const MAX_COUNT: u64 = 10_000;

/// A parsed dispatch invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispatchEvent {
    /// `{"deliveryId": "<uuid>"}`: deliver this delivery.
    One(Uuid),
    /// `{}` or `{"limit": N}`: deliver up to this many never-attempted deliveries, oldest first.
    Fresh {
        /// At most this many.
        limit: usize,
    },
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DispatchWire {
    #[serde(default, deserialize_with = "present")]
    delivery_id: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    limit: Option<Value>,
}

impl DispatchEvent {
    /// Parses an invocation payload, direct or through a function URL. `token` is the bearer
    /// token function-URL requests must carry; without one configured they are refused.
    pub fn parse(event: Value, token: Option<&Secret>) -> Result<Self> {
        let event = match function_url_body(&event, token)? {
            Some(body) => body,
            None => event,
        };
        let wire: DispatchWire =
            from_object(event, r#"{"deliveryId": "<uuid>"} or {"limit": 10}"#)?;
        match (wire.delivery_id, wire.limit) {
            (Some(_), Some(_)) => Err(Error::InvalidEvent(
                "give either deliveryId or limit, not both".into(),
            )),
            (Some(id), None) => id
                .as_str()
                .and_then(|s| Uuid::parse_str(s.trim()).ok())
                .map(DispatchEvent::One)
                .ok_or_else(|| {
                    Error::InvalidEvent(format!(
                        "deliveryId must be a UUID string, got {}",
                        short(&id)
                    ))
                }),
            (None, Some(limit)) => Ok(DispatchEvent::Fresh {
                limit: count("limit", &limit)?,
            }),
            (None, None) => Ok(DispatchEvent::Fresh {
                limit: DEFAULT_LIMIT,
            }),
        }
    }
}

/// A parsed `retry-sweep` invocation: the scheduler's input, any JSON object, optionally with
/// `batchSize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SweepEvent {
    /// Deliveries per batch, overriding `WEBHOOK_SWEEP_BATCH`.
    pub(crate) batch_size: Option<usize>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct SweepWire {
    #[serde(default, deserialize_with = "present")]
    batch_size: Option<Value>,
}

/// A field that is there, even as `null`: `{"deliveryId": null}` is a wrong id, not a missing
/// one (which would mean "deliver up to 100").
fn present<'de, D: serde::Deserializer<'de>>(field: D) -> Result<Option<Value>, D::Error> {
    serde::Deserialize::deserialize(field).map(Some)
}

impl SweepEvent {
    /// Parses the scheduler's input.
    pub(crate) fn parse(event: Value) -> Result<Self> {
        let wire: SweepWire = from_object(event, r#"{} or {"batchSize": 100}"#)?;
        let batch_size = wire
            .batch_size
            .map(|n| count("batchSize", &n))
            .transpose()?;
        Ok(SweepEvent { batch_size })
    }
}

/// Deserializes `event`, which must be a JSON object (`null` counts as `{}`); `example`
/// shows the accepted shape in the error.
fn from_object<T: serde::de::DeserializeOwned>(event: Value, example: &str) -> Result<T> {
    let event = match event {
        Value::Null => Value::Object(Default::default()),
        Value::Object(_) => event,
        other => {
            return Err(Error::InvalidEvent(format!(
                "expected a JSON object like {example}, got {}",
                kind_of(&other)
            )));
        }
    };
    // The message may quote an unknown field's name, which the caller chose: bound it.
    serde_json::from_value(event).map_err(|e| Error::InvalidEvent(truncate(&e.to_string(), 200)))
}

/// A count field: an integer from 1 to [`MAX_COUNT`].
fn count(name: &str, value: &Value) -> Result<usize> {
    value
        .as_u64()
        .filter(|n| (1..=MAX_COUNT).contains(n))
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| {
            Error::InvalidEvent(format!(
                "{name} must be an integer from 1 to {MAX_COUNT}, got {}",
                short(value)
            ))
        })
}

/// For a Lambda function-URL request, checks the bearer token and returns the parsed body
/// (an empty body is `{}`). Returns `None` for a direct invocation.
fn function_url_body(event: &Value, token: Option<&Secret>) -> Result<Option<Value>> {
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
    let base64 = event
        .get("isBase64Encoded")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let bytes = if base64 {
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

/// A value as JSON, short enough to quote in an error.
fn short(v: &Value) -> String {
    truncate(&v.to_string(), 60)
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
        assert!(
            msg(json!({"deliveryId": null})).contains("deliveryId must be a UUID string, got null")
        );
        assert!(msg(json!({"limit": null})).contains("limit must be an integer"));
        assert!(matches!(
            SweepEvent::parse(json!({"batchSize": null})),
            Err(Error::InvalidEvent(_))
        ));
    }

    /// JSON values of every shape, hostile ones included.
    fn values() -> Vec<Value> {
        let id = Uuid::new_v4().to_string();
        let mut leaves = vec![
            Value::Null,
            json!(true),
            json!(false),
            json!(0),
            json!(-1),
            json!(1),
            json!(7),
            json!(10_000),
            json!(10_001),
            json!(1.5),
            json!(1e308),
            json!(-0.0),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(""),
            json!(" "),
            json!("x"),
            json!("10"),
            json!(id),
            json!(format!("  {id}\n")),
            json!(id.to_uppercase()),
            json!(Uuid::nil().to_string()),
            json!("💥\u{0}\u{202e}"),
            json!("x".repeat(100_000)),
        ];
        let mut nested = json!(id);
        for depth in 0..100 {
            nested = if depth % 2 == 0 {
                json!([nested])
            } else {
                json!({ "deliveryId": nested })
            };
        }
        leaves.push(nested);
        let mut all = leaves.clone();
        all.push(json!(leaves.clone()));
        for key in [
            "deliveryId",
            "limit",
            "batchSize",
            "delivery_id",
            "",
            "x".repeat(10_000).as_str(),
        ] {
            for leaf in &leaves {
                all.push(json!({ key: leaf }));
                all.push(json!({ key: leaf, "limit": 5 }));
                all.push(json!({ key: leaf, "deliveryId": id }));
            }
        }
        all
    }

    /// Direct and function-URL invocations of every shape: each is parsed or refused with
    /// an `InvalidEvent` or `Unauthorized` of bounded length; nothing panics.
    #[test]
    fn every_event_shape_is_parsed_or_refused_clearly() {
        let mut events = values();
        for body in values().iter().take(60) {
            let text = body.to_string();
            let encoded = base64::engine::general_purpose::STANDARD.encode(&text);
            events.push(function_url("Bearer s3cret", &text, false));
            events.push(function_url("Bearer s3cret", &encoded, true));
            events.push(function_url("Bearer s3cret", &text, true));
            events.push(function_url("Bearer s3cre", &text, false));
            events.push(function_url("bearer s3cret", &text, false));
        }
        events.push(function_url("Bearer s3cret", "{\"limit\": ", false));
        events.push(json!({"requestContext": {"http": null}, "body": 5, "headers": []}));
        events.push(json!({"requestContext": {"http": {}}, "headers": {"authorization": 5}}));
        let (mut parsed, mut refused) = (0, 0);
        for event in events {
            let sweep = SweepEvent::parse(event.clone());
            match parse(event) {
                Ok(DispatchEvent::Fresh { limit }) => {
                    assert!((1..=MAX_COUNT as usize).contains(&limit));
                    parsed += 1;
                }
                Ok(DispatchEvent::One(_)) => parsed += 1,
                Err(err @ (Error::InvalidEvent(_) | Error::Unauthorized)) => {
                    assert!(err.to_string().chars().count() < 400, "{err}");
                    refused += 1;
                }
                Err(other) => panic!("unexpected error class: {other}"),
            }
            match sweep {
                Ok(SweepEvent { batch_size }) => {
                    assert!(batch_size.is_none_or(|n| (1..=MAX_COUNT as usize).contains(&n)));
                }
                Err(err) => assert!(matches!(err, Error::InvalidEvent(_)), "{err}"),
            }
        }
        assert!(
            parsed > 10 && refused > 100,
            "{parsed} parsed, {refused} refused"
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
