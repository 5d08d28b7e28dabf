//! A real HTTP receiver on 127.0.0.1:0 standing in for the notification service (svix's
//! approach): it records every request and answers with scripted replies.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::{Notify, Semaphore};

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Extra response headers.
    pub headers: Vec<(&'static str, String)>,
    /// Response body.
    pub body: String,
    /// Hold the response this long first (a slow receiver).
    pub delay: Option<Duration>,
    /// Hold the response until the test adds a permit (a request kept in flight).
    pub gate: Option<Arc<Semaphore>>,
}

impl Reply {
    /// A bare status.
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: None,
            gate: None,
        }
    }
    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
    /// Sets the body.
    pub fn body(mut self, body: impl Into<String>) -> Reply {
        self.body = body.into();
        self
    }
    /// Answers only after `delay`.
    pub fn slow(mut self, delay: Duration) -> Reply {
        self.delay = Some(delay);
        self
    }
    /// Answers only once `gate` has a permit for it (`gate.add_permits(1)`), so a test decides
    /// when the request ends without waiting for time.
    pub fn held(mut self, gate: Arc<Semaphore>) -> Reply {
        self.gate = Some(gate);
        self
    }
}

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Received {
    /// Request headers.
    pub headers: HeaderMap,
    /// Raw body bytes.
    pub body: Bytes,
}

impl Received {
    /// A header as text ("" when absent).
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

struct Inner {
    requests: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
    arrived: Notify,
}

/// The running receiver; stops when dropped.
pub struct Receiver {
    /// The URL to POST to.
    pub url: String,
    inner: Arc<Inner>,
    server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Starts a receiver answering every request with `default` (after any scripted replies).
    pub async fn start(default: Reply) -> Receiver {
        let inner = Arc::new(Inner {
            requests: Mutex::new(Vec::new()),
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(default),
            arrived: Notify::new(),
        });
        let app = axum::Router::new()
            .fallback(axum::routing::any(record))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr: SocketAddr = listener.local_addr().expect("receiver address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url: format!("http://{addr}/functions/v1/send-booking-notification"),
            inner,
            server,
        }
    }

    /// Answers the next requests with these replies, in order, before the default.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.script.lock().expect("lock").extend(replies);
    }

    /// Answers every later request with `reply`.
    pub fn set_default(&self, reply: Reply) {
        *self.inner.default.lock().expect("lock") = reply;
    }

    /// Everything received so far.
    pub fn requests(&self) -> Vec<Received> {
        self.inner.requests.lock().expect("lock").clone()
    }

    /// Waits until at least `n` requests have arrived; panics after `limit` (a safety net for
    /// a broken test, not a timing assumption).
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Received> {
        let waiting = async {
            loop {
                let notified = self.inner.arrived.notified();
                if self.inner.requests.lock().expect("lock").len() >= n {
                    return;
                }
                notified.await;
            }
        };
        if tokio::time::timeout(limit, waiting).await.is_err() {
            panic!(
                "expected {n} requests, got {} within {limit:?}",
                self.requests().len()
            );
        }
        self.requests()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn record(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let reply = {
        let mut script = inner.script.lock().expect("lock");
        script
            .pop_front()
            .unwrap_or_else(|| inner.default.lock().expect("lock").clone())
    };
    inner
        .requests
        .lock()
        .expect("lock")
        .push(Received { headers, body });
    inner.arrived.notify_waiters();
    if let Some(delay) = reply.delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(gate) = &reply.gate {
        let _ = gate.acquire().await.map(|permit| permit.forget());
    }
    let mut response = (
        StatusCode::from_u16(reply.status).expect("valid status"),
        reply.body,
    )
        .into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(&value).expect("valid header value"),
        );
    }
    response
}

/// A URL on which nothing listens: connections are refused.
pub async fn refusing_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    drop(listener);
    format!("http://{addr}/hook")
}
