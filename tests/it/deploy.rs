//! `make deploy`, as docs/deploy.md says to run it. The rehearsal: the page's block "Rehearsal
//! against moto" is read and run line by line (moto on a free port instead of 5000), then what
//! it made is read back from moto with plain calls: both functions (`cargo lambda deploy`),
//! their roles, the schedule, the alarms, the dashboard. And the refusal: `make deploy` with
//! the example's settings stops before building anything, unless `DEPLOY_YES=1`.
//!
//! `make test` builds the functions for Lambda in debug beforehand (`make build
//! BUILD_PROFILE=debug`), so the rehearsal's own build finds them built.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context as _, Result, bail, ensure};
use infra::aws::{Clients, sdk_error};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::support::aws::{ACCOUNT, Moto, REGION, emulator_config};

fn repository() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The lines of the first `sh` block under "## Rehearsal against moto" in docs/deploy.md.
fn rehearsal() -> Vec<String> {
    let page = std::fs::read_to_string(repository().join("docs/deploy.md")).expect("deploy.md");
    let section = page.split("\n## Rehearsal against moto\n").nth(1);
    let section = section.expect("deploy.md has a section \"Rehearsal against moto\"");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next());
    let block = block.expect("an sh block in it");
    block.lines().map(str::to_owned).collect()
}

/// What a shell started by a reader of the page holds: only what a login shell has that the
/// build needs (`PATH`, `HOME`, Rust's own variables), nothing of the developer's AWS or
/// `WEBHOOK_…` settings; then what the block exports.
struct Shell {
    env: BTreeMap<String, String>,
}

impl Shell {
    fn new() -> Self {
        let keep = |k: &str| {
            ["PATH", "HOME", "TMPDIR", "CARGO_HOME", "CARGO_TARGET_DIR"].contains(&k)
                || k.starts_with("RUSTUP_")
        };
        let env = std::env::vars().filter(|(k, _)| keep(k)).collect();
        Shell { env }
    }

    /// Runs `line` with bash at the repository root.
    fn run(&self, line: &str) -> Output {
        let mut bash = Command::new("bash");
        bash.args(["-c", line])
            .current_dir(repository())
            .env_clear();
        bash.envs(&self.env).output().expect("run bash")
    }
}

fn text(output: &Output) -> String {
    let (out, err) = (&output.stdout, &output.stderr);
    format!(
        "{}{}",
        String::from_utf8_lossy(out),
        String::from_utf8_lossy(err)
    )
}

/// `GET path` from moto's Lambda API, as JSON. Moto reads the service and region from the
/// credential scope and checks no signature.
async fn lambda_get(endpoint: &str, path: &str) -> Result<Value> {
    let address = endpoint.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let scope = format!("Credential=test/20260101/{REGION}/lambda/aws4_request");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: AWS4-HMAC-SHA256 {scope}, \
         SignedHeaders=host, Signature=0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("an HTTP response")?;
    ensure!(
        head.starts_with("HTTP/1.1 200"),
        "GET {path}: {head}\n{body}"
    );
    Ok(serde_json::from_str(body)?)
}

/// The `KEY=value` lines of an env file.
fn read_env_file(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path).expect("env file");
    let lines = text.lines().map(str::trim);
    let pairs = lines
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='));
    pairs.map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn make_deploy_rehearsed_on_moto_as_deploy_md_says() -> Result<()> {
    let mut shell = Shell::new();
    let mut moto: Option<Moto> = None;
    let mut outputs: BTreeMap<String, String> = BTreeMap::new();
    for line in rehearsal() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [] => {}
            // Moto in the background: ours, on a free port, with the variables the line sets.
            [.., "target/venv/bin/moto_server", "-p", "5000", "&"] => {
                let assignments = &words[..words.len() - 4];
                let env: Vec<(&str, &str)> = assignments
                    .iter()
                    .filter_map(|a| a.split_once('='))
                    .collect();
                ensure!(env.len() == assignments.len(), "{line}");
                moto = Some(Moto::start_with_env(&env).await?);
            }
            ["export", assignments @ ..] => {
                let endpoint = &moto.as_ref().context("moto starts first")?.endpoint;
                for assignment in assignments {
                    let (key, value) = assignment.split_once('=').context("KEY=value")?;
                    let value = value.replace("http://127.0.0.1:5000", endpoint);
                    shell.env.insert(key.to_owned(), value);
                }
            }
            // Stopping moto is dropping ours.
            ["kill", "%1"] => drop(moto.take()),
            _ => {
                let output = shell.run(&line);
                ensure!(
                    output.status.success(),
                    "`{line}` failed:\n{}",
                    text(&output)
                );
                outputs.insert(line.clone(), String::from_utf8_lossy(&output.stdout).into());
            }
        }
        if line.starts_with("make deploy") {
            // Read back before the block stops moto.
            let moto = moto.as_ref().context("moto is running")?;
            let deployed = outputs.get(&line).cloned().unwrap_or_default();
            let env_file = words
                .iter()
                .find_map(|w| w.strip_prefix("LAMBDA_ENV_FILE="));
            let env_file = repository().join(env_file.unwrap_or(".env.deploy"));
            read_back(moto, &deployed, &env_file).await?;
        }
    }
    let shown = |what: &str| -> Result<Value> {
        let line = format!("cargo run -q -p infra -- {what} show");
        let printed = outputs
            .get(&line)
            .with_context(|| format!("the block runs `{line}`"))?;
        Ok(serde_json::from_str(printed)?)
    };
    let function = format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:retry-sweep");
    assert_eq!(shown("schedule")?["Target"]["Arn"], function);
    assert_eq!(shown("alarms")?.as_array().map(Vec::len), Some(6));
    assert_eq!(shown("dashboard")?["DashboardName"], "booking-webhooks");
    ensure!(moto.is_none(), "the block stops moto");
    Ok(())
}

/// Checks what `make deploy` made, with plain calls to moto.
async fn read_back(moto: &Moto, printed: &str, env_file: &Path) -> Result<()> {
    for line in [
        "schedule group booking-webhooks: created",
        "schedule booking-webhooks/retry-sweep: created",
        "alarm booking-webhooks-backlog-age: created",
        "dashboard booking-webhooks: created",
    ] {
        ensure!(printed.contains(line), "{line:?} not in:\n{printed}");
    }
    let config = emulator_config(&moto.endpoint, REGION).await;
    let clients = Clients::new(&config)?;
    let environment = read_env_file(env_file);
    for (function, timeout) in [("dispatch", 30), ("retry-sweep", 120)] {
        let got = lambda_get(&moto.endpoint, &format!("/2015-03-31/functions/{function}")).await?;
        let c = &got["Configuration"];
        let arn = format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}");
        assert_eq!(c["FunctionArn"], arn.as_str());
        assert_eq!(c["Runtime"], "provided.al2023", "{function}");
        assert_eq!(c["Handler"], "bootstrap", "{function}");
        assert_eq!(c["Architectures"][0], "x86_64", "{function}");
        assert_eq!(
            (&c["Timeout"], &c["MemorySize"]),
            (&timeout.into(), &256.into())
        );
        let variables: BTreeMap<String, String> =
            serde_json::from_value(c["Environment"]["Variables"].clone())?;
        assert_eq!(
            variables, environment,
            "{function}: every line of the env file"
        );
        // Its role: cargo-lambda's, logs only.
        let role = c["Role"].as_str().context("a role")?;
        let Some(role) = role.rsplit_once(":role/").map(|(_, name)| name) else {
            bail!("not a role ARN: {role}");
        };
        let attached = clients.iam.list_attached_role_policies().role_name(role);
        let attached = attached.send().await.map_err(sdk_error)?;
        let names: Vec<_> = attached
            .attached_policies()
            .iter()
            .filter_map(|p| p.policy_name())
            .collect();
        assert_eq!(
            names,
            ["AWSLambdaBasicExecutionRole"],
            "{function}'s role {role}"
        );
    }
    Ok(())
}

/// `make deploy <args>` with `cargo` replaced by a stub that logs its arguments and fails, so
/// nothing is built or deployed: returns the run and what the stub was asked to do.
fn make_deploy_with_stub_cargo(env: &[(&str, &str)], args: &[&str]) -> (Output, String) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("deploy-stub-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("stub dir");
    let (stub, log) = (dir.join("cargo"), dir.join("cargo.log"));
    std::fs::write(
        &stub,
        "#!/bin/sh\necho \"$*\" >> \"$CARGO_STUB_LOG\"\nexit 1\n",
    )
    .expect("stub");
    let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(&stub, mode).expect("chmod stub");
    let _ = std::fs::remove_file(&log);
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", dir.display());
    let output = Command::new("make")
        .args(["-C", &repository().display().to_string(), "deploy"])
        .args(args)
        .env_clear()
        .env("PATH", path)
        .env("CARGO_STUB_LOG", &log)
        .envs(env.iter().copied())
        .output()
        .expect("run make");
    let asked = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    (output, asked)
}

#[test]
fn make_deploy_refuses_the_example_settings_before_building_unless_told() {
    let example = repository().join(".env.example");
    let example = example.display().to_string();

    let (output, asked) =
        make_deploy_with_stub_cargo(&[], &[&format!("LAMBDA_ENV_FILE={example}")]);
    let printed = text(&output);
    assert!(!output.status.success(), "{printed}");
    for line in [
        "DATABASE_URL is still .env.example's",
        "WEBHOOK_URL is still .env.example's",
        "or DEPLOY_YES=1 to deploy these anyway",
    ] {
        assert!(printed.contains(line), "{line:?} not in:\n{printed}");
    }
    assert!(
        !asked.contains("lambda") && !asked.contains("infra"),
        "ran: {asked}"
    );

    // A real database, but the receiver left on this machine: only that is named.
    let dir = std::env::temp_dir().join(format!("deploy-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let local = dir.join("local.env");
    let real_db = "DATABASE_URL=postgres://webhooks@db.example.com:6543/postgres?sslmode=require\n";
    std::fs::write(
        &local,
        format!("{real_db}WEBHOOK_URL=http://localhost:8787/hook\n"),
    )
    .expect("env");
    let (output, asked) =
        make_deploy_with_stub_cargo(&[], &[&format!("LAMBDA_ENV_FILE={}", local.display())]);
    let printed = text(&output);
    assert!(!output.status.success(), "{printed}");
    assert!(
        printed.contains("WEBHOOK_URL points at a loopback host"),
        "{printed}"
    );
    assert!(!printed.contains("DATABASE_URL"), "{printed}");
    assert!(!asked.contains("lambda"), "ran: {asked}");

    // Real settings, or the example's with DEPLOY_YES=1: it goes on to build (the stub fails).
    let real = dir.join("real.env");
    std::fs::write(
        &real,
        format!("{real_db}WEBHOOK_URL=https://hooks.example.com/notify\n"),
    )
    .expect("env");
    let real = format!("LAMBDA_ENV_FILE={}", real.display());
    let yes = [
        format!("LAMBDA_ENV_FILE={example}"),
        "DEPLOY_YES=1".to_owned(),
    ];
    for args in [
        vec![real.as_str()],
        yes.iter().map(String::as_str).collect(),
    ] {
        let (output, asked) = make_deploy_with_stub_cargo(&[], &args);
        assert!(
            !text(&output).contains("refused"),
            "{args:?}: {}",
            text(&output)
        );
        assert!(
            asked.contains("lambda build --release --x86-64 -p dispatch -p retry-sweep"),
            "{args:?}: {asked}"
        );
    }

    let missing = format!("LAMBDA_ENV_FILE={}", dir.join("absent.env").display());
    let (output, asked) = make_deploy_with_stub_cargo(&[], &[&missing]);
    assert!(
        text(&output).contains("absent.env missing: cp .env.example"),
        "{}",
        text(&output)
    );
    assert!(!asked.contains("lambda"), "ran: {asked}");
    let _ = std::fs::remove_dir_all(&dir);
}
