//! The receiver's checks: bearer token, Standard Webhooks signature, payload shape.

use std::fmt;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use standardwebhooks::{Webhook, WebhookError};

use crate::config::{ConfigError, Secret};
use crate::sign::SigningKeys;

/// The credentials a request must carry. `Debug` never shows them.
#[derive(Clone)]
pub struct Verifier {
    token: Secret,
    keys: std::sync::Arc<Vec<Webhook>>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Verifier([token and {} key(s) redacted])",
            self.keys.len()
        )
    }
}

impl Verifier {
    /// Expects `Authorization: Bearer <token>` and a signature under any of `secrets`
    /// (`whsec_…`, space-separated while rotating — the sender's `WEBHOOK_SIGNING_SECRET`).
    /// Errors name the variable, never the value.
    pub fn new(token: &str, secrets: &str) -> Result<Self, ConfigError> {
        let token = token.trim();
        if token.is_empty() || token.chars().any(|c| c.is_control() || c == ' ') {
            return Err(ConfigError {
                var: "WEBHOOK_AUTH_TOKEN",
                problem: "must be set, without spaces or control characters".into(),
            });
        }
        let invalid = |problem: &str| ConfigError {
            var: "WEBHOOK_SIGNING_SECRET",
            problem: problem.to_owned(),
        };
        // The engine's own parser first: the same rules, the same messages as the sender.
        SigningKeys::parse(secrets).map_err(invalid)?;
        let keys = secrets
            .split_whitespace()
            .map(|secret| Webhook::new(secret).map_err(|_| invalid("is not valid base64")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Verifier {
            token: Secret::new(token),
            keys: std::sync::Arc::new(keys),
        })
    }

    /// Checks the bearer token in constant time.
    pub fn check_token(&self, headers: &HeaderMap) -> Result<(), &'static str> {
        let given = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or("missing bearer token")?;
        if constant_time_eq(given.as_bytes(), self.token.expose().as_bytes()) {
            Ok(())
        } else {
            Err("wrong bearer token")
        }
    }

    /// Checks the signature against every key; passes when any key verifies.
    pub fn check_signature(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
        let mut first_error = None;
        for key in self.keys.iter() {
            match key.verify(body, headers) {
                Ok(()) => return Ok(()),
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        Err(first_error.map_or_else(|| "no signing key".into(), explain))
    }
}

/// What went wrong, in words an operator can act on.
fn explain(err: WebhookError) -> String {
    match err {
        WebhookError::InvalidSignature => {
            "signature does not match: another WEBHOOK_SIGNING_SECRET, or the body changed".into()
        }
        WebhookError::TimestampTooOldError => {
            "webhook-timestamp is more than 5 minutes old: a replay, or the clocks differ".into()
        }
        WebhookError::FutureTimestampError => {
            "webhook-timestamp is more than 5 minutes ahead: the clocks differ".into()
        }
        WebhookError::MissingHeader(name) => format!("missing webhook-{name} header"),
        WebhookError::InvalidHeader(name) => format!("malformed webhook-{name} header"),
        WebhookError::InvalidTimestamp => "malformed webhook-timestamp header".into(),
        WebhookError::InvalidPayload => "body is not UTF-8".into(),
        WebhookError::InvalidSecret(_) => "invalid signing key".into(),
    }
}

/// The `webhook-id` header, if printable (at most 100 characters are kept).
pub fn webhook_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .map(|v| crate::text::truncate(v, 100))
}

/// The fields of the notification contract: `{"type", "bookingId", "email"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// `new_request`, `approved` or `rejected` (other strings are accepted and shown).
    pub webhook_type: String,
    /// The booking the notification is about.
    pub booking_id: String,
    /// The recipient.
    pub email: String,
    /// The sender's `sequence` (capture order, growing across one booking's notifications);
    /// `None` from a sender that does not send one.
    pub sequence: Option<i64>,
}

/// Parses the body as the contract's JSON object; the error says which field is wrong.
pub fn notification(body: &[u8]) -> Result<Notification, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| "body is not JSON".to_owned())?;
    let field = |name: &str| {
        value
            .get(name)
            .and_then(serde_json::Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| crate::text::truncate(s, 200))
            .ok_or_else(|| format!("payload has no {name:?} string"))
    };
    Ok(Notification {
        webhook_type: field("type")?,
        booking_id: field("bookingId")?,
        email: field("email")?,
        sequence: match value.get("sequence") {
            None | Some(serde_json::Value::Null) => None,
            Some(n) => Some(
                n.as_i64()
                    .ok_or_else(|| "payload's \"sequence\" is not an integer".to_owned())?,
            ),
        },
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn configuration_errors_name_the_variable_not_the_value() {
        let err = Verifier::new("tok", "whsec_not*base64*hunter2").err();
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.starts_with("WEBHOOK_SIGNING_SECRET:"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        let err = Verifier::new(" ", SECRET).err().map(|e| e.var);
        assert_eq!(err, Some("WEBHOOK_AUTH_TOKEN"));
        let debug = format!("{:?}", Verifier::new("tok-abc", SECRET));
        assert!(
            !debug.contains("tok-abc") && !debug.contains("MfKQ"),
            "{debug}"
        );
    }

    #[test]
    fn the_payload_needs_the_three_contract_fields() {
        let ok = notification(br#"{"type":"approved","bookingId":"b1","email":"s@x.io","x":1}"#);
        assert_eq!(
            ok,
            Ok(Notification {
                webhook_type: "approved".into(),
                booking_id: "b1".into(),
                email: "s@x.io".into(),
                sequence: None,
            })
        );
        let ordered =
            notification(br#"{"type":"approved","bookingId":"b1","email":"s@x.io","sequence":7}"#);
        assert_eq!(ordered.map(|n| n.sequence), Ok(Some(7)));
        assert_eq!(
            notification(
                br#"{"type":"approved","bookingId":"b1","email":"s@x.io","sequence":"7"}"#
            ),
            Err("payload's \"sequence\" is not an integer".into())
        );
        assert_eq!(notification(b"nope"), Err("body is not JSON".into()));
        assert_eq!(
            notification(br#"{"type":"approved","bookingId":"b1","email":null}"#),
            Err("payload has no \"email\" string".into())
        );
        assert!(notification(br#"[1]"#).is_err());
    }
}
