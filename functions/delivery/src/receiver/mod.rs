//! `webhooks receiver`: a local notification service that checks what the engine sends.
//!
//! Point `WEBHOOK_URL` at it — from `webhooks listen` on a laptop, or from a staging
//! deployment (`--host 0.0.0.0`) — and it answers like a careful production receiver:
//!
//! 1. `POST` only (any path), else 405;
//! 2. `Authorization: Bearer $WEBHOOK_AUTH_TOKEN`, else 401;
//! 3. a valid Standard Webhooks signature under one of the keys in `$WEBHOOK_SIGNING_SECRET`,
//!    with a `webhook-timestamp` within 5 minutes, checked with the specification's reference
//!    library (not with this crate's signer, so a signing bug cannot hide), else 401;
//! 4. a body with the contract's `type`, `bookingId` and `email` strings, else 400;
//! 5. a `webhook-id` it has already accepted is answered 200 again and marked a duplicate,
//!    never processed twice (the last [`DEDUPE_CAPACITY`] ids are remembered);
//! 6. then the misbehaviour switches ([`Misbehaviour`]) decide the status: 200 by default;
//! 7. an `approved`/`rejected` decision whose `sequence` is below the last one applied for its
//!    booking is answered 200 and marked stale, never applied: a request the sender gave up
//!    on (it answered after the sender's timeout) and retried can otherwise land after a newer
//!    decision. This is the recipe docs/receiver.md gives every receiver.
//!
//! Every request becomes one [`Received`] record, printed as one readable line (or one JSON
//! line with `--json`). Email addresses are masked (`g***@example.com`); tokens, secrets and
//! bodies are never printed.
//!
//! # Layout
//! - [`check`]: authentication, signature and payload checks.
//! - [`misbehave`]: the `--fail-first`, `--fail-for`, `--status` and `--delay` switches.
//! - [`record`]: the per-request record, its one-line rendering and the run's tallies.
//! - [`args`]: the command line (`webhooks receiver --help`).

pub mod args;
pub mod check;
pub mod misbehave;
pub mod record;

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use tokio::sync::mpsc;

pub use args::ReceiverArgs;
pub use check::Verifier;
pub use misbehave::Misbehaviour;
pub use record::{Received, ReceiverEvent, Tally, Verdict};

/// How many accepted `webhook-id`s are remembered for deduplication (oldest forgotten first),
/// so a receiver left running against a busy staging deployment stays within bounded memory.
pub const DEDUPE_CAPACITY: usize = 100_000;
/// The largest request body read; bigger ones are refused (413) by the server.
pub const BODY_LIMIT: usize = 256 * 1024;

/// Everything the receiver needs to run.
#[derive(Debug, Clone)]
pub struct ReceiverOptions {
    /// Address to listen on; port 0 picks a free port.
    pub addr: SocketAddr,
    /// Checks the bearer token and the signature.
    pub verifier: Verifier,
    /// How to misbehave on purpose.
    pub misbehaviour: Misbehaviour,
}

/// A receiver bound to its port, not yet serving (so the caller can print the address first).
#[derive(Debug)]
pub struct Bound {
    listener: tokio::net::TcpListener,
    options: ReceiverOptions,
}

/// Binds the listening socket. Fails if the address is taken or not available.
pub async fn bind(options: ReceiverOptions) -> std::io::Result<Bound> {
    let listener = tokio::net::TcpListener::bind(options.addr).await?;
    Ok(Bound { listener, options })
}

impl Bound {
    /// The address actually bound (the port is known here when 0 was asked for).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, sending one [`Received`] per request to `log`;
    /// requests in flight are answered first.
    pub async fn serve(
        self,
        log: mpsc::UnboundedSender<Received>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let state = Arc::new(Shared {
            verifier: self.options.verifier,
            misbehaviour: self.options.misbehaviour,
            started: Instant::now(),
            counted: AtomicU64::new(0),
            accepted: Mutex::new(Accepted::default()),
            applied: Mutex::new(Applied::default()),
            log,
        });
        let app = axum::Router::new()
            .fallback(receive)
            .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
            .with_state(state);
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

struct Shared {
    verifier: Verifier,
    misbehaviour: Misbehaviour,
    started: Instant,
    /// Verified, non-duplicate requests so far (what `--fail-first` counts).
    counted: AtomicU64,
    accepted: Mutex<Accepted>,
    applied: Mutex<Applied>,
    log: mpsc::UnboundedSender<Received>,
}

/// The `sequence` of the last decision applied per booking, bounded like [`Accepted`].
#[derive(Default)]
struct Applied {
    last: HashMap<String, i64>,
    order: VecDeque<String>,
}

impl Applied {
    /// Applies decision `sequence` of `booking` unless a later one was applied (then `Err` with the later one's).
    fn apply(&mut self, booking: &str, sequence: i64) -> Result<(), i64> {
        match self.last.get(booking) {
            Some(&last) if last > sequence => return Err(last),
            Some(_) => {}
            None => self.order.push_back(booking.to_owned()),
        }
        self.last.insert(booking.to_owned(), sequence);
        while self.order.len() > DEDUPE_CAPACITY {
            if let Some(oldest) = self.order.pop_front() {
                self.last.remove(&oldest);
            }
        }
        Ok(())
    }
}

/// Accepted ids, bounded: a set for lookups, a queue for the order to forget them in.
#[derive(Default)]
struct Accepted {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl Accepted {
    fn insert(&mut self, id: &str) {
        if self.ids.insert(id.to_owned()) {
            self.order.push_back(id.to_owned());
        }
        while self.order.len() > DEDUPE_CAPACITY {
            if let Some(oldest) = self.order.pop_front() {
                self.ids.remove(&oldest);
            }
        }
    }
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Slowness is the service's, so it applies to every request, rejected ones included.
    if !shared.misbehaviour.delay.is_zero() {
        tokio::time::sleep(shared.misbehaviour.delay).await;
    }
    let received = decide(&shared, &method, &headers, &body);
    let mut response = (
        StatusCode::from_u16(received.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        received.answer_body(),
    )
        .into_response();
    if received.verdict == Verdict::FailedOnPurpose
        && let Some(seconds) = shared.misbehaviour.retry_after
    {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    // Nobody listening any more (shutting down) is not the request's problem.
    let _ = shared.log.send(received);
    response
}

/// The whole decision for one request, in the order the module documentation gives.
fn decide(shared: &Shared, method: &Method, headers: &HeaderMap, body: &[u8]) -> Received {
    let mut received = Received::new(Utc::now());
    if method != Method::POST {
        return received.reject(405, Verdict::MethodNotAllowed, "only POST is accepted");
    }
    if let Err(why) = shared.verifier.check_token(headers) {
        return received.reject(401, Verdict::Unauthorized, why);
    }
    received.webhook_id = check::webhook_id(headers);
    if let Err(why) = shared.verifier.check_signature(headers, body) {
        return received.reject(401, Verdict::Unauthorized, &why);
    }
    received.signature_verified = true;
    let notification = match check::notification(body) {
        Ok(n) => n,
        Err(why) => return received.reject(400, Verdict::BadRequest, &why),
    };
    received.webhook_type = Some(notification.webhook_type);
    received.booking_id = Some(notification.booking_id);
    received.recipient = Some(record::mask_email(&notification.email));
    received.sequence = notification.sequence;
    let decision = matches!(
        received.webhook_type.as_deref(),
        Some("approved" | "rejected")
    );

    // The signature covers the id, so it is present here.
    let id = received.webhook_id.clone().unwrap_or_default();
    // One lock around look-up, decision and insert: two concurrent copies of one id cannot
    // both be accepted.
    let mut accepted = shared
        .accepted
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if accepted.ids.contains(&id) {
        received.status = 200;
        received.verdict = Verdict::Duplicate;
        received.detail = Some("already accepted: not processed again".into());
        return received;
    }
    let nth = shared.counted.fetch_add(1, Ordering::Relaxed) + 1;
    let answer = shared.misbehaviour.answer(nth, shared.started.elapsed());
    received.status = answer.status;
    received.detail = answer.reason;
    if (200..300).contains(&answer.status) {
        accepted.insert(&id);
        received.verdict = Verdict::Accepted;
        let booking = received.booking_id.clone().unwrap_or_default();
        if let (true, Some(sequence)) = (decision, notification.sequence) {
            let mut applied = shared
                .applied
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Err(last) = applied.apply(&booking, sequence) {
                received.verdict = Verdict::Stale;
                received.detail = Some(format!(
                    "sequence {sequence} is older than {last}, already applied for this booking: ignored"
                ));
            }
        }
    } else {
        received.verdict = Verdict::FailedOnPurpose;
    }
    received
}
