//! AWS test support: a moto server per test, an SDK configuration for it, the `infra`
//! command line run in-process, `infra`'s inputs with their defaults (schedule, alarms,
//! dashboard), the built `infra` binary, reports looked up by kind, and IAM's URL-encoded
//! policy documents decoded.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use clap::Parser as _;
use infra::alarms::{AlarmNames, AlarmSet};
use infra::aws::Clients;
use infra::change::{Item, Report};
use infra::dashboard::{DashboardName, DashboardSet};
use infra::schedule::role::RoleArgs;
use infra::schedule::{DeleteOptions, ScheduleId, SweepSchedule};

/// The region every AWS test uses.
pub const REGION: &str = "eu-west-1";
/// moto's default account.
pub const ACCOUNT: &str = "123456789012";

/// How long moto may take to answer after starting (it imports all of botocore's models; on
/// a loaded 2-core machine that takes a few seconds).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running moto server on 127.0.0.1, killed on drop.
pub struct Moto {
    child: Child,
    log: PathBuf,
    /// `http://127.0.0.1:<port>`
    pub endpoint: String,
}

/// A fresh moto server, its SDK configuration, and clients pointed at it.
pub async fn emulator() -> Result<(Moto, SdkConfig, Clients)> {
    let moto = Moto::start().await?;
    let config = emulator_config(&moto.endpoint, REGION).await;
    let clients = Clients::new(&config)?;
    Ok((moto, config, clients))
}

/// A configuration for an AWS API emulator at `endpoint_url`: fixed fake credentials, and
/// nothing read from the host's environment or `~/.aws`, so a developer's real credentials
/// can never be picked up by a test.
pub async fn emulator_config(endpoint_url: &str, region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .empty_test_environment()
        .test_credentials()
        .region(Region::new(region.to_owned()))
        .endpoint_url(endpoint_url)
        .load()
        .await
}

/// Runs `infra <args>` the way the binary does (environment fallbacks included), against
/// `config`, and returns what it prints.
pub async fn run_cli(config: &SdkConfig, args: Vec<&str>) -> Result<String> {
    let cli = infra::cli::Cli::try_parse_from(std::iter::once("infra").chain(args))?;
    infra::cli::run(&cli, config).await
}

/// The default schedule, group and managed role (what the command line gives without flags
/// or variables), invoking `function_arn`.
pub fn sweep_schedule(function_arn: &str) -> SweepSchedule {
    SweepSchedule {
        id: schedule_id(),
        role: RoleArgs::default(),
        expression: "rate(10 minutes)".into(),
        function_arn: Some(function_arn.into()),
        function_name: "retry-sweep".into(),
        account_id: None,
        dead_letter_arn: None,
        dry_run: false,
    }
}

/// `infra schedule delete` of the default schedule: no `--purge`, no `--dry-run`.
pub fn delete_options() -> DeleteOptions {
    DeleteOptions {
        id: schedule_id(),
        role: RoleArgs::default(),
        purge: false,
        dry_run: false,
    }
}

fn schedule_id() -> ScheduleId {
    let (name, group) = ("retry-sweep".into(), "booking-webhooks".into());
    ScheduleId { name, group }
}

/// The six alarms with the default prefix and no topic, for `function_name` and `group`.
pub fn alarm_set(function_name: &str, group: &str) -> AlarmSet {
    AlarmSet {
        names: AlarmNames {
            prefix: "booking-webhooks".into(),
        },
        topic_arn: None,
        function_name: function_name.into(),
        group: group.into(),
        dry_run: false,
    }
}

/// The dashboard with the default name and function names, for schedule group `group`.
pub fn dashboard_set(group: &str) -> DashboardSet {
    DashboardSet {
        name: DashboardName {
            name: "booking-webhooks".into(),
        },
        dispatch_function_name: "dispatch".into(),
        function_name: "retry-sweep".into(),
        group: group.into(),
        dry_run: false,
    }
}

/// The first resource of `kind` in `report`, if it has one.
pub fn item<'a>(report: &'a Report, kind: &str) -> Option<&'a Item> {
    report.items.iter().find(|item| item.kind == kind)
}

/// Parses a policy document as IAM returns it: URL-encoded JSON.
pub fn decode_policy(document: &str) -> Result<serde_json::Value> {
    let text = percent_encoding::percent_decode_str(document).decode_utf8()?;
    serde_json::from_str(&text).context("policy document is not JSON")
}

/// The `infra` binary `make test` builds, next to this test binary's `deps/` directory.
pub fn infra_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile = exe.parent().and_then(|deps| deps.parent());
    let path = profile.expect("target/<profile>").join("infra");
    assert!(
        path.exists(),
        "{} not found: `make test` builds it (cargo build -p infra)",
        path.display()
    );
    path
}

/// `$MOTO_SERVER`, else the one `make tools` installs into `target/venv`.
fn binary() -> Result<PathBuf> {
    let path = match std::env::var_os("MOTO_SERVER") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/venv/bin/moto_server"),
    };
    if !path.is_file() {
        bail!(
            "moto_server not found at {}: run `make tools` (installs moto[server] into \
             target/venv) or set MOTO_SERVER to its path",
            path.display()
        );
    }
    Ok(path)
}

impl Moto {
    /// Starts moto and waits until it accepts connections.
    pub async fn start() -> Result<Self> {
        Self::start_with_env(&[]).await
    }

    /// Starts moto with `env` set (e.g. `MOTO_IAM_LOAD_MANAGED_POLICIES=true`) and waits until
    /// it accepts connections.
    pub async fn start_with_env(env: &[(&str, &str)]) -> Result<Self> {
        let binary = binary()?;
        // The port is found by binding :0 and released just before moto binds it; if
        // another process takes it in between, moto exits and we try another.
        let mut last_error = None;
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let log = std::env::temp_dir().join(format!("moto-{}-{port}.log", std::process::id()));
            let child = Command::new(&binary)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .envs(env.iter().copied())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log)?)
                .spawn()
                .with_context(|| format!("starting {}", binary.display()))?;
            let mut moto = Self {
                child,
                log,
                endpoint: format!("http://127.0.0.1:{port}"),
            };
            match moto.wait_ready(port).await {
                Ok(()) => return Ok(moto),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("moto did not start")))
    }

    async fn wait_ready(&mut self, port: u16) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("moto_server exited ({status}): {}", self.log_tail());
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "moto_server did not listen on port {port} within {READY_TIMEOUT:?}: {}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(20).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // Best effort: the process may already be gone.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}
