//! The receiver of the throughput figures: Debian's nginx answering `return 200;` with
//! keep-alive, one worker, our own config on a free port — a separate process in C, so the
//! receiver neither shares a runtime with the sender nor is the bottleneck (the issue's
//! figures were measured against the same). `make bench` installs it (`bench/ensure-tools.sh`).
//!
//! Every request is logged as `<connection serial> <webhook-id>`; the log is read after nginx
//! has exited (which flushes it), so a measurement is verified at the receiver: requests,
//! distinct `webhook-id`s (a duplicate shows as fewer ids than requests) and connections.
//! One nginx per measurement, so each log holds exactly one measurement.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::process::{Child, Command};

/// Where Debian installs it.
pub const NGINX: &str = "/usr/sbin/nginx";

/// What the receiver saw.
#[derive(Debug, Clone, Copy, Default)]
pub struct Seen {
    pub requests: usize,
    pub distinct_ids: usize,
    pub connections: usize,
}

impl Seen {
    /// An error unless exactly `n` requests arrived, each with its own `webhook-id`.
    pub fn expect_exactly(&self, n: u64) -> anyhow::Result<()> {
        if self.requests as u64 != n || self.distinct_ids as u64 != n {
            bail!(
                "the receiver saw {} requests with {} distinct webhook-ids, expected {n} of each",
                self.requests,
                self.distinct_ids
            );
        }
        Ok(())
    }
}

/// A running nginx.
pub struct Nginx {
    child: Child,
    dir: PathBuf,
    pub port: u16,
}

impl Nginx {
    /// Starts nginx in `dir` (created; its config, log and temp files live there) on a free
    /// loopback port and waits until it accepts connections.
    pub async fn start(dir: &Path) -> anyhow::Result<Self> {
        if !Path::new(NGINX).exists() {
            bail!("{NGINX} is missing: `make bench` installs it (bench/ensure-tools.sh)");
        }
        tokio::fs::create_dir_all(dir).await?;
        let _ = tokio::fs::remove_file(dir.join("access.log")).await;
        let port = free_port()?;
        let conf = dir.join("nginx.conf");
        tokio::fs::write(&conf, config(dir, port)).await?;
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting nginx")?;
        let mut nginx = Nginx {
            child,
            dir: dir.to_owned(),
            port,
        };
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if let Some(status) = nginx.child.try_wait()? {
                let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
                bail!("nginx exited at start ({status}): {log}");
            }
            if started.elapsed() > Duration::from_secs(10) {
                bail!("nginx did not accept connections within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The probe connection above sent no request, so it is not in the log.
        Ok(nginx)
    }

    /// The URL the sender posts to.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// Stops nginx gracefully (`-s quit`: idle connections closed, the log flushed), waits
    /// for it to exit and reads what it saw.
    pub async fn stop(mut self) -> anyhow::Result<Seen> {
        let status = Command::new(NGINX)
            .arg("-p")
            .arg(&self.dir)
            .arg("-c")
            .arg(self.dir.join("nginx.conf"))
            .arg("-e")
            .arg(self.dir.join("error.log"))
            .args(["-s", "quit"])
            .status()
            .await?;
        if !status.success() {
            bail!("nginx -s quit failed: {status}");
        }
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .context("nginx did not exit within 30 s of -s quit")??;
        read_log(&self.dir.join("access.log"))
    }
}

fn read_log(path: &Path) -> anyhow::Result<Seen> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut ids = HashSet::new();
    let mut connections = HashSet::new();
    let mut requests = 0;
    for line in text.lines() {
        let (connection, id) = line.split_once(' ').unwrap_or((line, "-"));
        requests += 1;
        connections.insert(connection.to_owned());
        ids.insert(id.to_owned());
    }
    Ok(Seen {
        requests,
        distinct_ids: ids.len(),
        connections: connections.len(),
    })
}

/// A port the kernel just handed out (closed again for nginx to bind).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn config(dir: &Path, port: u16) -> String {
    let dir = dir.display();
    format!(
        "# Written by the bench for one measurement.
daemon off;
master_process on;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; multi_accept on; }}
http {{
    client_body_temp_path {dir}/tmp;
    proxy_temp_path {dir}/tmp;
    fastcgi_temp_path {dir}/tmp;
    uwsgi_temp_path {dir}/tmp;
    scgi_temp_path {dir}/tmp;
    log_format bench '$connection $http_webhook_id';
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        access_log {dir}/access.log bench buffer=256k;
        location / {{ return 200; }}
    }}
}}
"
    )
}
