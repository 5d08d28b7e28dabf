//! Running the retry sweep the way the cloud does: `cargo lambda watch` serves the real
//! `retry-sweep` binary behind a local Lambda runtime API, and `cargo lambda invoke` sends it
//! the scheduler's event (`{}`). Where cargo-lambda is not installed (it comes from PyPI),
//! the same handler the Lambda's `main.rs` calls runs in-process instead, and the demo says so.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use delivery::{Clock, Config, Deps};
use serde_json::{Value, json};

use crate::procs::{Env, Proc, free_port, wait_for_port};

/// How long an invocation may take: a safety net, not a timing assumption.
const INVOKE_PATIENCE: Duration = Duration::from_secs(300);

/// How each sweep runs.
pub enum Sweeper {
    /// `cargo lambda invoke retry-sweep` against `cargo lambda watch` on `port`.
    Lambda {
        watch: Box<Proc>,
        port: u16,
        path: String,
    },
    /// `delivery::sweep::handle`, in this process; `why` says why not through the runtime.
    Library { deps: Box<Deps>, why: &'static str },
}

impl Sweeper {
    /// Starts `cargo lambda watch` with the demo's environment (cargo-lambda's directory first
    /// on `PATH`) and waits until it accepts invocations.
    pub async fn lambda(env: &Env, tool_dir: PathBuf) -> anyhow::Result<Sweeper> {
        let port = free_port()?;
        let path = std::env::join_paths(
            std::iter::once(tool_dir).chain(
                std::env::var_os("PATH")
                    .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
                    .unwrap_or_default(),
            ),
        )?
        .to_string_lossy()
        .into_owned();
        let mut command = env.command("cargo");
        command
            .args([
                "lambda",
                "watch",
                "--ignore-changes",
                "--invoke-address",
                "127.0.0.1",
            ])
            .args(["--invoke-port", &port.to_string()])
            .env("PATH", &path)
            .stdout(env.log("lambda")?)
            .stderr(env.log("lambda")?);
        let mut watch = Proc::spawn("cargo lambda watch", command, true)?;
        wait_for_port(port, &mut watch).await?;
        Ok(Sweeper::Lambda {
            watch: Box::new(watch),
            port,
            path,
        })
    }

    /// The handler in-process, configured exactly as the child processes are.
    pub fn library(env: &Env, why: &'static str) -> anyhow::Result<Sweeper> {
        let config = Config::from_lookup(|name| env.vars.get(name).cloned())?;
        Ok(Sweeper::Library {
            deps: Box::new(Deps::new(config)?),
            why,
        })
    }

    /// How a sweep is run, for the narration.
    pub fn command(&self) -> String {
        match self {
            Sweeper::Lambda { .. } => "cargo lambda invoke retry-sweep --data-ascii '{}'".into(),
            Sweeper::Library { why, .. } => {
                format!("delivery::sweep::handle({{}}, …)   # in-process: {why}")
            }
        }
    }

    /// One sweep with the scheduler's event `{}`; returns the function's report.
    pub async fn sweep(&mut self) -> anyhow::Result<Value> {
        match self {
            Sweeper::Lambda { watch, port, path } => {
                watch.ensure_running()?;
                let output = tokio::time::timeout(
                    // The first invocation starts the function: `cargo run` of the binary that
                    // `make demo` built, or a whole build if that one does not match.
                    INVOKE_PATIENCE,
                    tokio::process::Command::new("cargo")
                        .args([
                            "lambda",
                            "invoke",
                            "retry-sweep",
                            "--invoke-address",
                            "127.0.0.1",
                        ])
                        .args(["--invoke-port", &port.to_string(), "--data-ascii", "{}"])
                        .env("PATH", path.as_str())
                        .output(),
                )
                .await
                .context("the retry-sweep function did not answer within 300 s (cargo lambda watch builds it on first use if needed: see target/demo/lambda.log)")??;
                if !output.status.success() {
                    bail!(
                        "cargo lambda invoke retry-sweep failed: {}{}",
                        String::from_utf8_lossy(&output.stdout),
                        String::from_utf8_lossy(&output.stderr)
                    );
                }
                serde_json::from_slice(&output.stdout)
                    .context("retry-sweep did not return a JSON report")
            }
            Sweeper::Library { deps, .. } => {
                let report = delivery::sweep::handle(json!({}), deps, Clock::System, None).await?;
                Ok(serde_json::to_value(report)?)
            }
        }
    }

    /// Stops `cargo lambda watch` and the function it runs.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        match self {
            Sweeper::Lambda { watch, .. } => watch.stop().await,
            Sweeper::Library { .. } => Ok(()),
        }
    }
}

/// `{"processed": 1, "succeeded": 1, …}` → the counts that matter, as one line.
pub fn summary(report: &Value) -> String {
    let mut counts: Vec<String> = ["processed", "succeeded", "retrying", "failed"]
        .iter()
        .map(|k| format!("{k} {}", report[k]))
        .collect();
    // Not sent, so not in `processed`: shown when there are any.
    if report["superseded"].as_u64().is_some_and(|n| n > 0) {
        counts.push(format!("superseded {}", report["superseded"]));
    }
    counts.join(", ")
}
