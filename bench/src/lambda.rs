//! The Lambda path: `dispatch` served by `cargo lambda watch --release` (the runtime emulator
//! of `make watch`, from `make tools`), invoked for one delivery id at a time over its
//! invoke API, as the capture's wake-up would. Each invocation gets a booking captured just
//! before (with `webhooks.notify` off: nobody else dispatches it) and must report it sent; the
//! first few are the warm-up (the emulator starts the function on the first one) and are not
//! counted. The time is the invoke round trip seen by the caller, so it includes the
//! emulator's own hop: an upper bound on the handler time.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::process::Command;

use crate::ctx::Ctx;
use crate::nginx::{Nginx, free_port};
use crate::pg::Scratch;
use crate::report::{Section, Verdict};
use crate::stats::{median, ms, percentile};

const WARM_UP: usize = 3;
const P50_MS: f64 = 5.0;

pub async fn run(ctx: &mut Ctx) -> anyhow::Result<Section> {
    let scratch = Scratch::create("lambda").await?;
    scratch.set("webhooks.notify", "off").await?;
    let nginx = Nginx::start(&ctx.file("nginx")).await?;
    let result = measure(ctx, &scratch, &nginx.url()).await;
    let seen = nginx.stop().await;
    scratch.drop().await?;
    let mut section = result?;
    let seen = seen?;
    section.line(format!(
        "- the receiver saw {} requests with {} distinct webhook-ids",
        seen.requests, seen.distinct_ids
    ));
    Ok(section)
}

async fn measure(ctx: &mut Ctx, scratch: &Scratch, webhook_url: &str) -> anyhow::Result<Section> {
    let cargo_lambda = find_cargo_lambda(ctx)?;
    let env_file = ctx.file("lambda.env");
    let env: String = ctx
        .engine_env(&scratch.url, webhook_url)
        .iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect();
    std::fs::write(&env_file, env)?;
    let port = free_port()?;
    let args = [
        "lambda".to_owned(),
        "watch".into(),
        "--release".into(),
        "--ignore-changes".into(),
        "--invoke-address".into(),
        "127.0.0.1".into(),
        "--invoke-port".into(),
        port.to_string(),
        "--env-file".into(),
        env_file.display().to_string(),
    ];
    ctx.ran(format!("{} {}", cargo_lambda.display(), args.join(" ")));
    let log = ctx.file("watch.log");
    // Its own process group: the emulator starts the function as a child of its own, and
    // stopping the group stops both.
    let mut watch = Command::new(&cargo_lambda)
        .args(&args)
        .current_dir(&ctx.root)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log)?)
        .stderr(std::fs::File::create(ctx.file("watch.err"))?)
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .context("starting cargo lambda watch")?;
    let pid = watch.id();
    let outcome = invoke_all(ctx, scratch, port).await;
    if let Some(pid) = pid {
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{pid}")])
            .status()
            .await;
    }
    if tokio::time::timeout(Duration::from_secs(10), watch.wait())
        .await
        .is_err()
    {
        let _ = watch.kill().await;
    }
    outcome
}

async fn invoke_all(ctx: &Ctx, scratch: &Scratch, port: u16) -> anyhow::Result<Section> {
    let db = scratch.client().await?;
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/2015-03-31/functions/dispatch/invocations");
    let mut times = Vec::new();
    for i in 0..WARM_UP + ctx.knobs.invokes {
        let booking: uuid::Uuid = db
            .query_one(
                "INSERT INTO booking_requests (student_email, tutor_email)
                 VALUES ('student@example.com', 'tutor@example.com') RETURNING id",
                &[],
            )
            .await?
            .get(0);
        let id: uuid::Uuid = db
            .query_one(
                "SELECT id FROM webhook_deliveries WHERE booking_id = $1",
                &[&booking],
            )
            .await?
            .get(0);
        let body = serde_json::json!({ "deliveryId": id }).to_string();
        let started = Instant::now();
        let response = send_retrying(&http, &url, &body, i == 0).await?;
        let took = started.elapsed();
        let report: serde_json::Value = serde_json::from_str(&response)
            .with_context(|| format!("dispatch answered {response}"))?;
        if report["counts"]["succeeded"].as_u64() != Some(1) {
            bail!("dispatch did not deliver {id}: {response}");
        }
        if i >= WARM_UP {
            times.push(ms(took));
        }
    }
    let p50 = median(&times);
    let mut section = Section::new("Lambda dispatch under cargo lambda watch");
    section.line(format!(
        "- {} warm invocations (after {WARM_UP} warm-up), one delivery id each: round trip \
         p50 {p50:.2} ms, p90 {:.2} ms, max {:.2} ms; each reported the delivery sent",
        times.len(),
        percentile(&times, 90.0),
        times.iter().copied().fold(0.0, f64::max),
    ));
    section.row(
        "Lambda `dispatch` for one id, warm, p50 (invoke round trip)",
        format!("{p50:.2} ms"),
        "≤ 5 ms",
        Verdict::of(p50 <= P50_MS),
    );
    Ok(section)
}

/// Posts an invocation; the first one waits (up to 5 minutes: should it have to compile) for the emulator to come up
/// and start the function.
async fn send_retrying(
    http: &reqwest::Client,
    url: &str,
    body: &str,
    first: bool,
) -> anyhow::Result<String> {
    let started = Instant::now();
    loop {
        match http.post(url).body(body.to_owned()).send().await {
            Ok(response) => {
                let status = response.status();
                let text = response.text().await?;
                if status.is_success() {
                    return Ok(text);
                }
                if !first || started.elapsed() > Duration::from_secs(300) {
                    bail!("invoke answered {status}: {text}");
                }
            }
            Err(err) if first && started.elapsed() < Duration::from_secs(300) => {
                let _ = err;
            }
            Err(err) => return Err(err).context("invoking dispatch"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `cargo-lambda` from PATH (the Makefile puts target/venv/bin first) or the venv.
fn find_cargo_lambda(ctx: &Ctx) -> anyhow::Result<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([ctx.root.join("target/venv/bin")])
        .map(|dir| dir.join("cargo-lambda"))
        .find(|p| p.exists())
        .context("cargo-lambda not found: `make tools` installs it into target/venv")
}
