//! What every scenario shares: where things are, the sizes, and the environment the engine's
//! processes get.

use std::path::{Path, PathBuf};

use anyhow::bail;

use crate::knobs::Knobs;

/// The bench's throwaway credentials (never a real secret).
pub const AUTH_TOKEN: &str = "bench-token";
pub const SIGNING_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Engine settings passed through from the bench's own environment.
const PASSED_THROUGH: [&str; 6] = [
    "WEBHOOK_SWEEP_BATCH",
    "WEBHOOK_SWEEP_CONCURRENCY",
    "WEBHOOK_DB_POOL_SIZE",
    "WEBHOOK_SUPERSEDE",
    "WEBHOOK_LOG_FORMAT",
    "RUST_LOG",
];

pub struct Ctx {
    pub knobs: Knobs,
    /// The workspace root.
    pub root: PathBuf,
    /// Scratch files of this run (configs, logs): `target/bench/run-<pid>`.
    pub work: PathBuf,
    /// Commands run, for the results file.
    pub commands: Vec<String>,
}

impl Ctx {
    pub fn new(knobs: Knobs) -> anyhow::Result<Self> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let work = root
            .join("target/bench")
            .join(format!("run-{}", std::process::id()));
        std::fs::create_dir_all(&work)?;
        Ok(Ctx {
            knobs,
            root,
            work,
            commands: Vec::new(),
        })
    }

    /// A release binary of the workspace (`make bench` builds them first).
    pub fn release(&self, name: &str) -> anyhow::Result<PathBuf> {
        let path = self.root.join("target/release").join(name);
        if !path.exists() {
            bail!(
                "{} is missing: run `make bench` (it builds the release binaries first)",
                path.display()
            );
        }
        Ok(path)
    }

    /// A Lambda binary as deployed (built with `-p`, without the `cli` feature); `make bench`
    /// copies them to `target/bench/lambda/` before anything else overwrites them.
    pub fn lambda(&self, name: &str) -> anyhow::Result<PathBuf> {
        let path = self.root.join("target/bench/lambda").join(name);
        if !path.exists() {
            bail!("{} is missing: run `make bench`", path.display());
        }
        Ok(path)
    }

    /// A file in this run's scratch directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.work.join(name)
    }

    /// The environment of an engine process: database, receiver, the bench's credentials,
    /// and the passed-through settings.
    pub fn engine_env(&self, database_url: &str, webhook_url: &str) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = vec![
            ("DATABASE_URL".into(), database_url.into()),
            ("WEBHOOK_URL".into(), webhook_url.into()),
            ("WEBHOOK_AUTH_TOKEN".into(), AUTH_TOKEN.into()),
            ("WEBHOOK_SIGNING_SECRET".into(), SIGNING_SECRET.into()),
            // A 100,000 backlog must drain in one sweep: the longest budget there is (15 min).
            ("WEBHOOK_SWEEP_BUDGET_MS".into(), "900000".into()),
        ];
        for var in PASSED_THROUGH {
            if let Ok(value) = std::env::var(var) {
                env.push((var.into(), value));
            }
        }
        env
    }

    /// The engine's configuration for the same environment (for the in-process parts).
    pub fn engine_config(
        &self,
        database_url: &str,
        webhook_url: &str,
    ) -> anyhow::Result<delivery::Config> {
        let env = self.engine_env(database_url, webhook_url);
        Ok(delivery::Config::from_lookup(|k| {
            env.iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.clone())
        })?)
    }

    /// Notes a command for the results file, with paths relative to the workspace root.
    pub fn ran(&mut self, command: String) {
        let command = command
            .replace(&format!("{}/", self.root.display()), "")
            .replace(&format!("run-{}", std::process::id()), "run-<pid>");
        if !self.commands.contains(&command) {
            self.commands.push(command);
        }
    }
}
