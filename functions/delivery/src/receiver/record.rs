//! What the receiver prints: one [`Received`] per request, as a readable line or a JSON line.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What became of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Verified and accepted (2xx): the notification would be sent.
    Accepted,
    /// Verified, but its `webhook-id` was accepted before: answered 200, not processed.
    Duplicate,
    /// Verified, then failed by a misbehaviour switch.
    FailedOnPurpose,
    /// Verified, but an older decision than one already applied for its booking (its
    /// `sequence` is lower): answered 200, not applied (the receiver recipe).
    Stale,
    /// Missing or wrong bearer token or signature (401).
    Unauthorized,
    /// The body is not the notification contract (400).
    BadRequest,
    /// Not a POST (405).
    MethodNotAllowed,
}

impl Verdict {
    /// The word printed in the log line.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Accepted => "accepted",
            Verdict::Duplicate => "duplicate",
            Verdict::FailedOnPurpose => "failing",
            Verdict::Stale => "stale",
            Verdict::Unauthorized => "unauthorized",
            Verdict::BadRequest => "bad request",
            Verdict::MethodNotAllowed => "not POST",
        }
    }
}

/// One request as the receiver saw it. Email addresses are masked; nothing secret is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Received {
    /// When it arrived.
    pub at: DateTime<Utc>,
    /// The status answered.
    pub status: u16,
    /// What became of it.
    pub verdict: Verdict,
    /// True when the Standard Webhooks signature verified.
    pub signature_verified: bool,
    /// The `webhook-id` header (the delivery id).
    pub webhook_id: Option<String>,
    /// The payload's `type`.
    pub webhook_type: Option<String>,
    /// The payload's `bookingId`.
    pub booking_id: Option<String>,
    /// The payload's `email`, masked: `g***@example.com`.
    pub recipient: Option<String>,
    /// The payload's `sequence`, if it has one.
    pub sequence: Option<i64>,
    /// Why it was rejected or failed, or which switch answered.
    pub detail: Option<String>,
}

impl Received {
    /// A record for a request arriving `at`, filled in as the checks go.
    pub fn new(at: DateTime<Utc>) -> Self {
        Received {
            at,
            status: 200,
            verdict: Verdict::Accepted,
            signature_verified: false,
            webhook_id: None,
            webhook_type: None,
            booking_id: None,
            recipient: None,
            sequence: None,
            detail: None,
        }
    }

    /// Ends the checks with a rejection.
    pub fn reject(mut self, status: u16, verdict: Verdict, why: &str) -> Self {
        self.status = status;
        self.verdict = verdict;
        self.detail = Some(why.to_owned());
        self
    }

    /// The response body: a short text the sender stores as its error excerpt.
    pub fn answer_body(&self) -> String {
        match (&self.verdict, &self.detail) {
            (Verdict::Accepted, _) => "ok".into(),
            (Verdict::Duplicate, _) => "ok (duplicate webhook-id: already accepted)".into(),
            (Verdict::Stale, _) => "ok (an older decision than one applied: ignored)".into(),
            (verdict, Some(detail)) => format!("{}: {detail}", verdict.as_str()),
            (verdict, None) => verdict.as_str().into(),
        }
    }
}

/// `12:00:01.234Z 200 accepted  new_request  id 3b1f2c4d  booking 6f1c0e2a  to g***@example.com  signature ok`
impl fmt::Display for Received {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {:<12}",
            self.at.format("%H:%M:%S%.3fZ"),
            self.status,
            self.verdict.as_str()
        )?;
        if let Some(kind) = &self.webhook_type {
            write!(f, " {kind:<11}")?;
        }
        if let Some(id) = &self.webhook_id {
            write!(f, "  id {}", short(id))?;
        }
        if let Some(booking) = &self.booking_id {
            write!(f, "  booking {}", short(booking))?;
        }
        if let Some(sequence) = self.sequence {
            write!(f, "  seq {sequence}")?;
        }
        if let Some(to) = &self.recipient {
            write!(f, "  to {to}")?;
        }
        if self.signature_verified {
            f.write_str("  signature ok")?;
        }
        if let Some(detail) = &self.detail {
            write!(f, "  ({detail})")?;
        }
        Ok(())
    }
}

/// The first 8 characters of an id: enough to find the row, short enough to read.
fn short(id: &str) -> &str {
    id.char_indices().nth(8).map_or(id, |(i, _)| &id[..i])
}

/// `grace@example.com` → `g***@example.com`: enough to tell recipients apart, not a leak.
pub fn mask_email(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{}", crate::text::truncate(domain, 60))
        }
        None => "***".into(),
    }
}

/// A line of `webhooks receiver --json`: one JSON object per line, tagged by `event`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum ReceiverEvent {
    /// Printed once the port is bound.
    Listening {
        /// The base URL to point `WEBHOOK_URL` at (any path works).
        url: String,
    },
    /// One request.
    Request(Received),
    /// Printed on shutdown.
    Stopped {
        /// What the run saw.
        tally: Tally,
    },
}

/// Counts of a run, printed when the receiver stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    /// Requests received.
    pub requests: u64,
    /// Accepted (2xx, first time).
    pub accepted: u64,
    /// Duplicates answered 200.
    pub duplicates: u64,
    /// Failed on purpose.
    pub failed_on_purpose: u64,
    /// Older decisions discarded (answered 200, not applied).
    pub stale: u64,
    /// Rejected: 401, 400 or 405.
    pub rejected: u64,
}

impl Tally {
    /// Counts one request.
    pub fn add(&mut self, received: &Received) {
        self.requests += 1;
        match received.verdict {
            Verdict::Accepted => self.accepted += 1,
            Verdict::Duplicate => self.duplicates += 1,
            Verdict::FailedOnPurpose => self.failed_on_purpose += 1,
            Verdict::Stale => self.stale += 1,
            Verdict::Unauthorized | Verdict::BadRequest | Verdict::MethodNotAllowed => {
                self.rejected += 1
            }
        }
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} requests: {} accepted, {} duplicates, {} stale decisions discarded, {} failed on purpose, {} rejected",
            self.requests,
            self.accepted,
            self.duplicates,
            self.stale,
            self.failed_on_purpose,
            self.rejected
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_masked() {
        assert_eq!(mask_email("grace@example.com"), "g***@example.com");
        assert_eq!(mask_email("no-at-sign"), "***");
        assert_eq!(mask_email("@x.io"), "***@x.io");
    }

    #[test]
    fn a_line_reads_well_and_json_round_trips() -> Result<(), serde_json::Error> {
        let at = DateTime::parse_from_rfc3339("2026-11-30T12:00:01.234Z")
            .map(|t| t.to_utc())
            .unwrap_or_default();
        let mut r = Received::new(at);
        r.signature_verified = true;
        r.webhook_id = Some("3b1f2c4d-0000-4000-8000-000000000000".into());
        r.webhook_type = Some("new_request".into());
        r.booking_id = Some("6f1c0e2a-0000-4000-8000-000000000000".into());
        r.recipient = Some(mask_email("grace@example.com"));
        assert_eq!(
            r.to_string(),
            "12:00:01.234Z 200 accepted     new_request  id 3b1f2c4d  booking 6f1c0e2a  to g***@example.com  signature ok"
        );
        let line = serde_json::to_string(&ReceiverEvent::Request(r.clone()))?;
        assert!(line.starts_with(r#"{"event":"request","at":"#), "{line}");
        assert_eq!(
            serde_json::from_str::<ReceiverEvent>(&line)?,
            ReceiverEvent::Request(r)
        );
        Ok(())
    }
}
