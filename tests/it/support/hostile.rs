//! Receivers that misbehave at the TCP level, which a well-behaved HTTP server cannot: they
//! never answer, cut a body short, flood, redirect to themselves, send odd `Retry-After`
//! values, or drip a body a byte at a time. Every loop is bounded in time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// How a hostile receiver answers every request.
#[derive(Debug, Clone)]
pub enum Misbehaviour {
    /// Reads the request and never answers.
    Silent,
    /// Answers `status` announcing a 1000-byte body, sends 10 bytes and closes.
    ClosesMidBody(u16),
    /// Answers `status` with a body of this many bytes.
    Flood(u16, usize),
    /// Answers 302 with its own URL as the `Location`.
    RedirectLoop,
    /// Answers 503 with this `Retry-After` value.
    RetryAfter(String),
    /// Answers `status`, then sends one body byte every 100 ms.
    SlowDrip(u16),
}

/// A running hostile receiver; stops when dropped.
pub struct Hostile {
    /// The URL to POST to.
    pub url: String,
    requests: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

/// No connection is held longer than this.
const CAP: Duration = Duration::from_secs(60);

impl Hostile {
    /// Starts a receiver on 127.0.0.1:0 that answers every request with `how`.
    pub async fn start(how: Misbehaviour) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let url = format!("http://{addr}/hook");
        let requests = Arc::new(AtomicUsize::new(0));
        let server = tokio::spawn({
            let (url, requests) = (url.clone(), requests.clone());
            async move {
                while let Ok((socket, _)) = listener.accept().await {
                    let (how, url, requests) = (how.clone(), url.clone(), requests.clone());
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(CAP, serve(socket, how, url, requests)).await;
                    });
                }
            }
        });
        Hostile {
            url,
            requests,
            server,
        }
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve(
    mut socket: TcpStream,
    how: Misbehaviour,
    url: String,
    requests: Arc<AtomicUsize>,
) -> std::io::Result<()> {
    read_request(&mut socket).await?;
    requests.fetch_add(1, Ordering::SeqCst);
    let head = |status: u16, extra: &str| {
        format!("HTTP/1.1 {status} Hostile\r\nConnection: close\r\n{extra}\r\n")
    };
    match how {
        Misbehaviour::Silent => {
            // Hold the connection open until the client gives up.
            let mut buf = [0u8; 1024];
            while socket.read(&mut buf).await? > 0 {}
        }
        Misbehaviour::ClosesMidBody(status) => {
            let text = head(status, "Content-Length: 1000\r\n") + "0123456789";
            socket.write_all(text.as_bytes()).await?;
        }
        Misbehaviour::Flood(status, bytes) => {
            let text = head(status, &format!("Content-Length: {bytes}\r\n"));
            socket.write_all(text.as_bytes()).await?;
            let chunk = vec![b'x'; 64 * 1024];
            let mut sent = 0;
            while sent < bytes {
                let n = chunk.len().min(bytes - sent);
                socket.write_all(&chunk[..n]).await?;
                sent += n;
            }
        }
        Misbehaviour::RedirectLoop => {
            let text = head(302, &format!("Location: {url}\r\nContent-Length: 0\r\n"));
            socket.write_all(text.as_bytes()).await?;
        }
        Misbehaviour::RetryAfter(value) => {
            let text = head(
                503,
                &format!("Retry-After: {value}\r\nContent-Length: 0\r\n"),
            );
            socket.write_all(text.as_bytes()).await?;
        }
        Misbehaviour::SlowDrip(status) => {
            let text = head(status, "Transfer-Encoding: chunked\r\n");
            socket.write_all(text.as_bytes()).await?;
            let started = Instant::now();
            while started.elapsed() < CAP {
                socket.write_all(b"1\r\nx\r\n").await?;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let _ = socket.shutdown().await;
    Ok(())
}

/// Reads one request: headers, then as many body bytes as `Content-Length` says.
async fn read_request(socket: &mut TcpStream) -> std::io::Result<()> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        data.extend_from_slice(&buf[..n]);
        let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while data.len() < end + 4 + length {
            let n = socket.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            data.extend_from_slice(&buf[..n]);
        }
        return Ok(());
    }
}
