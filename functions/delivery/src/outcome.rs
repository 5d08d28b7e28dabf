//! What an HTTP attempt means for its delivery.
//!
//! | result | class | delivery becomes |
//! |---|---|---|
//! | 2xx | success | `succeeded` |
//! | timeout, connect/DNS/TLS failure, reset, other transport error | retryable | `retrying` (or `failed` when the budget is spent) |
//! | 408, 425, 429, 5xx | retryable | same; `Retry-After` on 429/503 sets the time |
//! | 3xx (redirects are never followed) | permanent | `failed` at once |
//! | any other 4xx | permanent | `failed` at once |

use std::time::Duration;

use chrono::{DateTime, Utc};

use uuid::Uuid;

use crate::backoff::RetryPolicy;
use crate::status::DeliveryStatus;
use crate::text::truncate;

/// The class of a failed attempt, stored in `webhook_attempts.error_kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No complete response within the timeout.
    Timeout,
    /// Could not connect: refused, DNS, TLS handshake.
    Connect,
    /// The receiver answered 4xx.
    Http4xx,
    /// The receiver answered 5xx.
    Http5xx,
    /// The receiver answered 3xx; redirects are not followed.
    Redirect,
    /// Anything else: reset connection, malformed response, other status codes.
    Other,
}

impl ErrorKind {
    /// The value stored in the database.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::Http4xx => "http_4xx",
            ErrorKind::Http5xx => "http_5xx",
            ErrorKind::Redirect => "redirect",
            ErrorKind::Other => "other",
        }
    }
}

/// What came back from one HTTP attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    /// The receiver answered with a status line.
    Response {
        /// HTTP status code.
        status: u16,
        /// `Retry-After` on a 429 or 503, if present and parsable.
        retry_after: Option<Duration>,
        /// A short sanitized excerpt of the body, or of the `Location` of a redirect.
        excerpt: String,
    },
    /// No response: the request failed in transport.
    Transport {
        /// Timeout, connect or other.
        kind: ErrorKind,
        /// A short description without the URL.
        message: String,
    },
}

/// One HTTP attempt, as recorded in `webhook_attempts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// When the request started (the `webhook-timestamp` that was signed).
    pub started_at: DateTime<Utc>,
    /// Wall time of the attempt.
    pub duration_ms: i32,
    /// What came back.
    pub result: AttemptResult,
}

/// The class of an attempt's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Delivered.
    Delivered,
    /// Worth trying again.
    Retryable(ErrorKind),
    /// Trying again would give the same answer.
    Permanent(ErrorKind),
}

/// Classifies an attempt's result (see the module table).
pub(crate) fn classify(result: &AttemptResult) -> Verdict {
    match result {
        AttemptResult::Transport { kind, .. } => Verdict::Retryable(*kind),
        AttemptResult::Response { status, .. } => match *status {
            200..=299 => Verdict::Delivered,
            300..=399 => Verdict::Permanent(ErrorKind::Redirect),
            408 | 425 | 429 => Verdict::Retryable(ErrorKind::Http4xx),
            400..=499 => Verdict::Permanent(ErrorKind::Http4xx),
            500..=599 => Verdict::Retryable(ErrorKind::Http5xx),
            // 1xx as a final status, or codes outside the standard ranges: a broken receiver,
            // which may well be fixed.
            _ => Verdict::Retryable(ErrorKind::Other),
        },
    }
}

/// The state a delivery moves to after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Transition {
    /// The attempt's number (1-based).
    pub(crate) attempt: i32,
    /// The new status.
    pub(crate) status: DeliveryStatus,
    /// When to try again (only for `retrying`).
    pub(crate) next_retry_at: Option<DateTime<Utc>>,
    /// Set when the status is final.
    pub(crate) resolved_at: Option<DateTime<Utc>>,
    /// The HTTP status, if a response came.
    pub(crate) status_code: Option<i32>,
    /// The failure class, if it failed.
    pub(crate) error_kind: Option<ErrorKind>,
    /// A short description of the failure (bounded, no secrets).
    pub(crate) error: Option<String>,
}

/// The most text kept per error (the column allows 512).
pub(crate) const ERROR_MAX_CHARS: usize = 500;

/// Decides the next state of delivery `id` after `attempt`, which ended at `finished_at`:
/// `attempts_made` attempts came before it, and `max_retries` retries are allowed after the
/// first. The id only seeds the jitter.
pub(crate) fn decide(
    id: Uuid,
    attempts_made: i32,
    max_retries: i32,
    attempt: &Attempt,
    policy: &RetryPolicy,
    finished_at: DateTime<Utc>,
) -> Transition {
    let number = attempts_made.saturating_add(1);
    let (status_code, retry_after) = match &attempt.result {
        AttemptResult::Response {
            status,
            retry_after,
            ..
        } => (Some(i32::from(*status)), *retry_after),
        AttemptResult::Transport { .. } => (None, None),
    };
    let verdict = classify(&attempt.result);
    let mut next = Transition {
        attempt: number,
        status: DeliveryStatus::Succeeded,
        next_retry_at: None,
        resolved_at: Some(finished_at),
        status_code,
        error_kind: None,
        error: None,
    };
    let (kind, retryable) = match verdict {
        Verdict::Delivered => return next,
        Verdict::Retryable(kind) => (kind, true),
        Verdict::Permanent(kind) => (kind, false),
    };
    next.error_kind = Some(kind);
    let retry_at = retryable
        .then(|| policy.next_attempt_at(id, number, max_retries, retry_after, finished_at))
        .flatten();
    let mut error = describe(&attempt.result);
    match retry_at {
        Some(at) => {
            next.status = DeliveryStatus::Retrying;
            next.next_retry_at = Some(at);
            next.resolved_at = None;
        }
        None => {
            next.status = DeliveryStatus::Failed;
            error.push_str(if retryable {
                " (no retries left)"
            } else {
                " (permanent, not retried)"
            });
        }
    }
    next.error = Some(truncate(&error, ERROR_MAX_CHARS));
    next
}

/// Whether `result` tells that the notification service itself is failing (the circuit
/// breaker counts these): no response, a timeout (408), or a 5xx. Every other response — a
/// success, a redirect, a 4xx, a 429 (asking to slow down, handled by its `Retry-After`) —
/// is an answer: the service is up, whatever it thought of this delivery.
pub(crate) fn service_failing(result: &AttemptResult) -> bool {
    match result {
        AttemptResult::Transport { .. } => true,
        AttemptResult::Response { status, .. } => *status == 408 || (500..=599).contains(status),
    }
}

/// `t`, for an attempt that failed with `result` while the notification service was held
/// (its breaker open): not counted toward `max_retries` — the delivery stays `retrying`, due
/// at `due` (when the next probe may go; it is held until the breaker closes), and the error
/// says so.
pub(crate) fn held(t: Transition, result: &AttemptResult, due: DateTime<Utc>) -> Transition {
    let error = format!(
        "{} (held: the notification service is failing; not counted toward max_retries)",
        describe(result)
    );
    Transition {
        status: DeliveryStatus::Retrying,
        next_retry_at: Some(due),
        resolved_at: None,
        error: Some(truncate(&error, ERROR_MAX_CHARS)),
        ..t
    }
}

/// A one-line description of a failed result.
fn describe(result: &AttemptResult) -> String {
    match result {
        AttemptResult::Transport { kind, message } => format!("{}: {message}", kind.as_str()),
        AttemptResult::Response {
            status, excerpt, ..
        } if (300..400).contains(status) => {
            format!("HTTP {status} redirect not followed: {excerpt}")
        }
        AttemptResult::Response {
            status, excerpt, ..
        } if excerpt.is_empty() => format!("HTTP {status}"),
        AttemptResult::Response {
            status, excerpt, ..
        } => format!("HTTP {status}: {excerpt}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16) -> AttemptResult {
        AttemptResult::Response {
            status,
            retry_after: None,
            excerpt: String::new(),
        }
    }

    /// Decides after `attempts_made` earlier attempts, with 3 retries allowed.
    fn decide_after(
        attempts_made: i32,
        result: AttemptResult,
        finished_at: DateTime<Utc>,
    ) -> Transition {
        let attempt = attempt(result);
        decide(
            Uuid::new_v4(),
            attempts_made,
            3,
            &attempt,
            &policy(),
            finished_at,
        )
    }

    fn attempt(result: AttemptResult) -> Attempt {
        Attempt {
            started_at: DateTime::<Utc>::UNIX_EPOCH,
            duration_ms: 5,
            result,
        }
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            schedule: Default::default(),
            jitter: 0.0,
            retry_after_max: Duration::from_secs(3600),
        }
    }

    #[test]
    fn classifies_statuses_and_transport_errors() {
        for ok in [200, 201, 202, 204, 299] {
            assert_eq!(classify(&response(ok)), Verdict::Delivered, "{ok}");
        }
        for retry in [408, 425, 429] {
            assert_eq!(
                classify(&response(retry)),
                Verdict::Retryable(ErrorKind::Http4xx),
                "{retry}"
            );
        }
        for retry in [500, 502, 503, 504] {
            assert_eq!(
                classify(&response(retry)),
                Verdict::Retryable(ErrorKind::Http5xx),
                "{retry}"
            );
        }
        for permanent in [400, 401, 403, 404, 410, 422] {
            assert_eq!(
                classify(&response(permanent)),
                Verdict::Permanent(ErrorKind::Http4xx),
                "{permanent}"
            );
        }
        for redirect in [301, 302, 307, 308] {
            assert_eq!(
                classify(&response(redirect)),
                Verdict::Permanent(ErrorKind::Redirect),
                "{redirect}"
            );
        }
        let timeout = AttemptResult::Transport {
            kind: ErrorKind::Timeout,
            message: "x".into(),
        };
        assert_eq!(classify(&timeout), Verdict::Retryable(ErrorKind::Timeout));
    }

    #[test]
    fn success_resolves_the_delivery() {
        let now = Utc::now();
        let t = decide_after(0, response(204), now);
        assert_eq!(
            (t.attempt, t.status, t.resolved_at, t.next_retry_at),
            (1, DeliveryStatus::Succeeded, Some(now), None)
        );
        assert_eq!(
            (t.status_code, t.error_kind, t.error),
            (Some(204), None, None)
        );
    }

    #[test]
    fn a_server_error_schedules_a_retry_until_the_budget_is_spent() {
        let now = Utc::now();
        let t = decide_after(0, response(503), now);
        assert_eq!(t.status, DeliveryStatus::Retrying);
        assert_eq!(t.next_retry_at, Some(now + chrono::Duration::minutes(5)));
        assert_eq!(t.error.as_deref(), Some("HTTP 503"));

        let last = decide_after(3, response(503), now);
        assert_eq!(
            (last.attempt, last.status, last.resolved_at),
            (4, DeliveryStatus::Failed, Some(now))
        );
        assert_eq!(last.error.as_deref(), Some("HTTP 503 (no retries left)"));
    }

    #[test]
    fn a_client_error_fails_at_once_with_its_reason() {
        let result = AttemptResult::Response {
            status: 400,
            retry_after: None,
            excerpt: "bad email".into(),
        };
        let t = decide_after(0, result, Utc::now());
        assert_eq!(t.status, DeliveryStatus::Failed);
        assert_eq!(t.error_kind, Some(ErrorKind::Http4xx));
        assert_eq!(
            t.error.as_deref(),
            Some("HTTP 400: bad email (permanent, not retried)")
        );
    }

    #[test]
    fn errors_are_bounded() {
        let result = AttemptResult::Response {
            status: 500,
            retry_after: None,
            excerpt: "x".repeat(2000),
        };
        let t = decide_after(0, result, Utc::now());
        assert_eq!(t.error.map(|e| e.chars().count()), Some(ERROR_MAX_CHARS));
    }
}
