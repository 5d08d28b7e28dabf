//! A real HTTP receiver on 127.0.0.1:0 standing in for the notification service (svix's
//! approach): it records every request and answers with scripted replies.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
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
    /// When it arrived, on this machine's monotonic clock.
    pub at: std::time::Instant,
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
    /// The body as JSON (`null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }
}

struct Inner {
    requests: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
    arrived: Notify,
    /// Connections accepted and not yet closed, and a signal on each close.
    open: AtomicUsize,
    closed: Notify,
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
            open: AtomicUsize::new(0),
            closed: Notify::new(),
        });
        let app = axum::Router::new()
            .fallback(axum::routing::any(record))
            .with_state(inner.clone());
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr: SocketAddr = listener.local_addr().expect("receiver address");
        let listener = Counting {
            listener,
            inner: inner.clone(),
        };
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

    /// Waits until every connection made to the receiver so far is closed: after the sender
    /// died, nothing it wrote is still on its way in, so [`Receiver::requests`] is final for
    /// it. Panics after `limit` (a safety net, not a timing assumption).
    pub async fn wait_for_no_connections(&self, limit: Duration) {
        let waiting = async {
            loop {
                let closed = self.inner.closed.notified();
                if self.inner.open.load(Ordering::SeqCst) == 0 {
                    return;
                }
                closed.await;
            }
        };
        if tokio::time::timeout(limit, waiting).await.is_err() {
            panic!(
                "{} connections still open after {limit:?}",
                self.inner.open.load(Ordering::SeqCst)
            );
        }
    }
}

/// The receiver's listener: counts the connections it accepted that are still open.
struct Counting {
    listener: TcpListener,
    inner: Arc<Inner>,
}

impl axum::serve::Listener for Counting {
    type Io = Counted;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Counted, SocketAddr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.listener).await;
        self.inner.open.fetch_add(1, Ordering::SeqCst);
        let inner = self.inner.clone();
        (Counted { stream, inner }, addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// An accepted connection; dropped (closed) once the server is done with it.
struct Counted {
    stream: TcpStream,
    inner: Arc<Inner>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.inner.open.fetch_sub(1, Ordering::SeqCst);
        self.inner.closed.notify_waiters();
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
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
    inner.requests.lock().expect("lock").push(Received {
        headers,
        body,
        at: std::time::Instant::now(),
    });
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
