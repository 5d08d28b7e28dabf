//! The processes the demo starts — the receiver, the dispatcher, `cargo lambda watch` — and
//! how it stops them: SIGTERM, a grace period, then SIGKILL; on every exit path, because a
//! guard that still holds a process kills it when dropped (errors and panics included).

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use delivery::receiver::{Received, ReceiverEvent, Tally};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// How long a stopped process gets to finish before it is killed.
const GRACE: Duration = Duration::from_secs(5);
/// A safety net for anything the demo waits for; never a timing assumption.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Where things are and the environment every child gets.
pub struct Env {
    /// The workspace root (cargo lambda runs from there).
    pub root: PathBuf,
    /// The `webhooks` binary built next to the demo.
    pub webhooks: PathBuf,
    /// Log files of the children.
    pub logs: PathBuf,
    /// Variables set for every child (the demo's configuration).
    pub vars: HashMap<String, String>,
}

impl Env {
    /// A command with the demo's configuration instead of the caller's: any `DATABASE_URL`
    /// or `WEBHOOK_*` of the user's shell is removed, so nothing reaches their systems.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name == "DATABASE_URL" || name.starts_with("WEBHOOK_") || name == "RUST_LOG" {
                command.env_remove(name.as_ref());
            }
        }
        command
            .envs(&self.vars)
            .current_dir(&self.root)
            .stdin(Stdio::null());
        command
    }

    /// A log file for `name`, appended to (a restarted receiver keeps one log).
    pub fn log(&self, name: &str) -> anyhow::Result<std::fs::File> {
        let path = self.logs.join(format!("{name}.log"));
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))
    }
}

/// A running child. Dropping it kills it (and its process group, if it has one).
pub struct Proc {
    name: &'static str,
    child: Option<Child>,
    /// Kept apart from `child`, which forgets its id once it has been waited for.
    pid: Option<u32>,
    /// True when the child leads its own process group, so a terminal's Ctrl-C reaches only
    /// the demo (which then stops everything in order), and a signal reaches whatever the
    /// child started in its group.
    group: bool,
}

impl Proc {
    /// Starts `command`; `group` puts it in a process group of its own.
    pub fn spawn(name: &'static str, mut command: Command, group: bool) -> anyhow::Result<Proc> {
        if group {
            command.process_group(0);
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot start the {name}"))?;
        Ok(Proc {
            name,
            pid: child.id(),
            child: Some(child),
            group,
        })
    }

    /// Fails if the process has already exited (it should be serving).
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.as_mut()
            && let Some(status) = child.try_wait()?
        {
            bail!("the {} exited ({status}); see its log", self.name);
        }
        Ok(())
    }

    /// SIGTERM, then SIGKILL if it has not exited within [`GRACE`].
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if child.try_wait()?.is_none() {
            signal(self.pid, self.group, "TERM");
            if tokio::time::timeout(GRACE, child.wait()).await.is_err() {
                signal(self.pid, self.group, "KILL");
                child.wait().await?;
            }
        }
        if self.group {
            // Anything the child started in its group and left behind.
            signal(self.pid, true, "KILL");
        }
        Ok(())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.child.take().is_some() {
            signal(self.pid, self.group, "KILL");
        }
    }
}

/// Sends a signal with `kill(1)` (the crate forbids `unsafe`, so no libc): to the process,
/// or to its whole group.
fn signal(pid: Option<u32>, group: bool, name: &str) {
    let Some(pid) = pid else { return };
    let target = if group {
        format!("-{pid}")
    } else {
        pid.to_string()
    };
    let _ = std::process::Command::new("kill")
        .args([&format!("-{name}"), "--", &target])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// `webhooks receiver --json`, read line by line.
pub struct ReceiverProc {
    proc: Proc,
    /// The base URL it listens on.
    pub url: String,
    /// The port (kept across restarts so `WEBHOOK_URL` stays right).
    pub port: u16,
    events: mpsc::UnboundedReceiver<ReceiverEvent>,
    /// Requests taken by the story so far; checked against the receiver's own tally.
    taken: u64,
}

impl ReceiverProc {
    /// Starts a receiver on `port` (0: any free port) with extra switches, and waits until it
    /// says where it listens.
    pub async fn start(env: &Env, port: u16, switches: &[&str]) -> anyhow::Result<ReceiverProc> {
        let mut command = env.command(&env.webhooks);
        command
            .args(["receiver", "--json", "--port", &port.to_string()])
            .args(switches)
            .stdout(Stdio::piped())
            .stderr(env.log("receiver")?);
        let mut proc = Proc::spawn("receiver", command, true)?;
        let stdout = proc
            .child
            .as_mut()
            .and_then(|c| c.stdout.take())
            .ok_or_else(|| anyhow!("receiver stdout not captured"))?;
        let (tx, mut events) = mpsc::unbounded_channel();
        let mut log = env.log("receiver")?;
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let event = serde_json::from_str::<ReceiverEvent>(&line);
                let text = match &event {
                    Ok(ReceiverEvent::Request(r)) => r.to_string(),
                    _ => line.clone(),
                };
                let _ = writeln!(log, "{text}");
                if let Ok(event) = event
                    && tx.send(event).is_err()
                {
                    break;
                }
            }
        });
        let first = tokio::time::timeout(PATIENCE, events.recv()).await;
        let Ok(Some(ReceiverEvent::Listening { url })) = first else {
            proc.ensure_running()?;
            bail!("the receiver did not report its address; see target/demo/receiver.log");
        };
        let port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| anyhow!("the receiver reported an odd address: {url}"))?;
        Ok(ReceiverProc {
            proc,
            url,
            port,
            events,
            taken: 0,
        })
    }

    /// The next request the receiver logs.
    pub async fn next(&mut self) -> anyhow::Result<Received> {
        loop {
            match tokio::time::timeout(PATIENCE, self.events.recv()).await {
                Ok(Some(ReceiverEvent::Request(received))) => {
                    self.taken += 1;
                    return Ok(received);
                }
                Ok(Some(_)) => continue,
                Ok(None) => {
                    bail!("the receiver stopped unexpectedly; see target/demo/receiver.log")
                }
                Err(_) => bail!("no request reached the receiver within {PATIENCE:?}"),
            }
        }
    }

    /// Stops it and checks that it saw no request the story did not take (a duplicate send
    /// or a stray retry would show up here).
    pub async fn stop(mut self) -> anyhow::Result<Tally> {
        signal(self.proc.pid, false, "TERM");
        let mut tally = None;
        while let Ok(Some(event)) = tokio::time::timeout(GRACE, self.events.recv()).await {
            if let ReceiverEvent::Stopped { tally: t } = event {
                tally = Some(t);
            }
        }
        self.proc.stop().await?;
        let tally = tally.ok_or_else(|| anyhow!("the receiver did not report its tally"))?;
        if tally.requests != self.taken {
            bail!(
                "the receiver got {} requests but the story expected {}: see target/demo/receiver.log",
                tally.requests,
                self.taken
            );
        }
        Ok(tally)
    }
}

/// Waits until something accepts TCP connections on `port` (a child getting ready).
pub async fn wait_for_port(port: u16, proc: &mut Proc) -> anyhow::Result<()> {
    let started = tokio::time::Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        proc.ensure_running()?;
        if started.elapsed() > PATIENCE {
            bail!("nothing listens on 127.0.0.1:{port} after {PATIENCE:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await; // readiness polling of a child
    }
    Ok(())
}

/// A free port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `cargo-lambda` on `PATH`, else in the venv `make tools` fills; `None` if neither.
pub fn find_cargo_lambda(root: &Path) -> Option<PathBuf> {
    let venv = root.join("target/venv/bin");
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([venv])
        .find(|dir| dir.join("cargo-lambda").is_file())
}
