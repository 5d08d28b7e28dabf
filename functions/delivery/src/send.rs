//! One HTTP attempt: `POST $WEBHOOK_URL` with the stored payload as the body, signed.
//!
//! Headers: `Content-Type: application/json`, `Authorization: Bearer $WEBHOOK_AUTH_TOKEN`,
//! and the Standard Webhooks trio `webhook-id` (the delivery id, the same on every retry),
//! `webhook-timestamp` (unix seconds of this attempt) and `webhook-signature`.
//! Redirects are never followed. The timeout covers the whole request, body included; at most
//! [`BODY_LIMIT`] bytes of the response are read and only a short, sanitized excerpt is kept.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, LOCATION, RETRY_AFTER};
use uuid::Uuid;

use crate::backoff::parse_retry_after;
use crate::config::{Config, Secret};
use crate::error::Error;
use crate::error::Result;
use crate::outcome::{Attempt, AttemptResult, ErrorKind};
use crate::sign::SigningKeys;
use crate::text::truncate;

/// The most response body read per attempt.
pub(crate) const BODY_LIMIT: usize = 64 * 1024;
/// The most characters of a body or error message kept.
pub(crate) const EXCERPT_CHARS: usize = 200;

/// Sends deliveries to the notification service. One per process: it holds the connection
/// pool, so consecutive attempts reuse kept-alive connections.
#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
    url: reqwest::Url,
    authorization: HeaderValue,
    token: Secret,
    keys: SigningKeys,
}

impl Sender {
    /// Builds the HTTP client from the configuration.
    pub(crate) fn new(config: &Config) -> Result<Self> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("booking-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::HttpSetup(crate::error::chain(&e.without_url())))?;
        let mut authorization =
            HeaderValue::try_from(format!("Bearer {}", config.auth_token.expose())).map_err(
                |_| Error::HttpSetup("WEBHOOK_AUTH_TOKEN is not a valid header value".into()),
            )?;
        // Keeps the value out of reqwest's and hyper's Debug output.
        authorization.set_sensitive(true);
        Ok(Sender {
            client,
            url: config.webhook_url.clone(),
            authorization,
            token: config.auth_token.clone(),
            keys: config.signing_keys.clone(),
        })
    }

    /// Makes one attempt to deliver `body` as delivery `id`, signed with timestamp `now`.
    /// Never fails: every result, including transport errors, is an [`Attempt`] to record.
    pub async fn send(&self, id: Uuid, body: &str, now: DateTime<Utc>) -> Attempt {
        let clock = Instant::now();
        let msg_id = id.to_string();
        let timestamp = now.timestamp();
        let signature = self.keys.sign(&msg_id, timestamp, body.as_bytes());
        let request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(AUTHORIZATION, self.authorization.clone())
            .header("webhook-id", msg_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.to_owned());
        let result = match request.send().await {
            Ok(response) => self.read(response, now).await,
            Err(err) => {
                let kind = transport_kind(&err);
                // reqwest's message names the URL, which may carry credentials: drop it.
                let message = self.sanitize(&crate::error::chain(&err.without_url()));
                AttemptResult::Transport { kind, message }
            }
        };
        Attempt {
            started_at: now,
            duration_ms: i32::try_from(clock.elapsed().as_millis()).unwrap_or(i32::MAX),
            result,
        }
    }

    async fn read(&self, mut response: reqwest::Response, now: DateTime<Utc>) -> AttemptResult {
        let status = response.status().as_u16();
        let retry_after = match status {
            429 | 503 => response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, now)),
            _ => None,
        };
        if (300..400).contains(&status) {
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let excerpt = self.sanitize(&format!("Location: {location}"));
            return AttemptResult::Response {
                status,
                retry_after,
                excerpt,
            };
        }
        // Read (a bounded part of) the body even on success: a fully read response lets the
        // connection go back to the pool. A body error after a 2xx status does not undo the
        // delivery — the receiver has accepted it.
        let mut body = Vec::new();
        while body.len() < BODY_LIMIT {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    body.extend_from_slice(&chunk[..chunk.len().min(BODY_LIMIT - body.len())])
                }
                Ok(None) | Err(_) => break,
            }
        }
        let excerpt = if (200..300).contains(&status) {
            String::new()
        } else {
            self.sanitize(&String::from_utf8_lossy(&body))
        };
        AttemptResult::Response {
            status,
            retry_after,
            excerpt,
        }
    }

    /// One line of printable text, the bearer token masked, at most [`EXCERPT_CHARS`].
    fn sanitize(&self, text: &str) -> String {
        let mut line: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if !self.token.expose().is_empty() {
            line = line.replace(self.token.expose(), "[redacted]");
        }
        truncate(&line, EXCERPT_CHARS)
    }
}

fn transport_kind(err: &reqwest::Error) -> ErrorKind {
    if err.is_timeout() {
        ErrorKind::Timeout
    } else if err.is_connect() {
        ErrorKind::Connect
    } else {
        ErrorKind::Other
    }
}
