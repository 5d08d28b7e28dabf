//! Running a real process and timing it from spawn to exit, with its peak RSS.
//!
//! The peak RSS is the child's `ru_maxrss` as `wait4` reports it, read through GNU time
//! (`/usr/bin/time -f %M`, Debian's `time`, installed by `make bench`): the workspace forbids
//! `unsafe`, and polling `/proc/<pid>/status` would miss the last moments before exit. The
//! wrapper adds one fork/exec (well under a millisecond) to the measured wall time.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::process::Command;

/// GNU time.
pub const TIME: &str = "/usr/bin/time";

/// One finished run.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Spawn to exit.
    pub wall: Duration,
    /// Peak resident set of the process, in KiB.
    pub max_rss_kib: u64,
    pub stdout: String,
}

/// A command line to run: program, arguments and the environment it gets on top of ours.
#[derive(Debug, Clone)]
pub struct Job {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Job {
    pub fn new(program: impl Into<PathBuf>, args: &[&str]) -> Self {
        Job {
            program: program.into(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            env: Vec::new(),
        }
    }

    pub fn env(mut self, pairs: &[(String, String)]) -> Self {
        self.env.extend(pairs.iter().cloned());
        self
    }

    /// The command as a reader could type it (secrets in the environment are the bench's own
    /// throwaway values).
    pub fn display(&self) -> String {
        let mut words: Vec<String> = self
            .env
            .iter()
            .filter(|(k, _)| k.starts_with("WEBHOOK_SWEEP") || k == "RUST_LOG")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        words.push(self.program.display().to_string());
        words.extend(self.args.iter().cloned());
        words.join(" ")
    }

    /// Starts it under GNU time; `log` receives its stderr.
    pub fn spawn(&self, log: &Path) -> anyhow::Result<Running> {
        if !Path::new(TIME).exists() {
            bail!(
                "{TIME} is missing: `make bench` installs Debian's `time` (bench/ensure-tools.sh)"
            );
        }
        let rss = log.with_extension("rss");
        let stderr = std::fs::File::create(log)?;
        let started = Instant::now();
        let child = Command::new(TIME)
            .arg("-f")
            .arg("%M")
            .arg("-o")
            .arg(&rss)
            .arg(&self.program)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.program.display()))?;
        Ok(Running {
            child,
            started,
            rss,
            log: log.to_owned(),
            what: self.program.display().to_string(),
        })
    }

    /// Starts it directly (no GNU time, so signals reach it): a server that runs until
    /// killed. Its stderr goes to `log`, its stdout nowhere.
    pub fn spawn_plain(&self, log: &Path) -> anyhow::Result<tokio::process::Child> {
        Command::new(&self.program)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log)?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.program.display()))
    }

    /// Runs it to the end.
    pub async fn run(&self, log: &Path) -> anyhow::Result<Finished> {
        self.spawn(log)?.finish().await
    }
}

/// A started process.
pub struct Running {
    child: tokio::process::Child,
    started: Instant,
    rss: PathBuf,
    log: PathBuf,
    what: String,
}

impl Running {
    /// Waits for the exit; a failure carries the end of its stderr.
    pub async fn finish(self) -> anyhow::Result<Finished> {
        let output = self.child.wait_with_output().await?;
        let wall = self.started.elapsed();
        if !output.status.success() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: String = log.lines().rev().take(5).collect::<Vec<_>>().join("\n");
            bail!("{} failed ({}): {tail}", self.what, output.status);
        }
        let rss = std::fs::read_to_string(&self.rss).unwrap_or_default();
        let max_rss_kib = rss
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .next_back()
            .with_context(|| format!("no peak RSS from {TIME} in {}", self.rss.display()))?;
        Ok(Finished {
            wall,
            max_rss_kib,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        })
    }
}
