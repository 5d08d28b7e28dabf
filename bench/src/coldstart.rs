//! Cold start of each Lambda binary, as deployed (built with `-p`, no `cli` feature): from
//! spawn to its first `GET /2018-06-01/runtime/invocation/next` — the moment it is ready for
//! its first event — against a stand-in Runtime API served here (`AWS_LAMBDA_RUNTIME_API`).
//! That request is never answered; the process is killed and started again.
//!
//! Without the database connect: the functions build their pool lazily (`Deps::new` opens no
//! connection; the first event does), so `DATABASE_URL` points at a loopback port nothing
//! listens on — a binary that connected at start would fail there instead of asking for an
//! event, so the figure also checks that the connect stays out of the cold start.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::sync::mpsc;

use crate::ctx::Ctx;
use crate::nginx::free_port;
use crate::report::{Section, Verdict};
use crate::stats::{median, ms};

const FUNCTIONS: [&str; 2] = ["dispatch", "retry-sweep"];

pub async fn run(ctx: &mut Ctx) -> anyhow::Result<Section> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Instant>();
    let api = runtime_api(tx).await?;
    let nowhere = format!("postgres://postgres@127.0.0.1:{}/none", free_port()?);
    let mut section = Section::new("Cold start of the Lambda binaries");
    for name in FUNCTIONS {
        let binary = ctx.lambda(name)?;
        let size = std::fs::metadata(&binary)?.len() as f64 / 1024.0 / 1024.0;
        let mut env = ctx.engine_env(&nowhere, "http://127.0.0.1:9/hook");
        env.extend([
            ("AWS_LAMBDA_RUNTIME_API".into(), api.clone()),
            ("AWS_LAMBDA_FUNCTION_NAME".into(), name.into()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), "256".into()),
            ("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into()),
            ("AWS_LAMBDA_LOG_GROUP_NAME".into(), "bench".into()),
            ("AWS_LAMBDA_LOG_STREAM_NAME".into(), "bench".into()),
        ]);
        ctx.ran(format!(
            "AWS_LAMBDA_RUNTIME_API={api} {} (until its first GET …/invocation/next)",
            binary.display()
        ));
        let mut times = Vec::new();
        for _ in 0..ctx.knobs.cold_starts {
            while rx.try_recv().is_ok() {}
            let log = ctx.file(&format!("{name}.stderr"));
            let started = Instant::now();
            let mut child = tokio::process::Command::new(&binary)
                .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log)?)
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting {}", binary.display()))?;
            let ready = tokio::select! {
                at = rx.recv() => Ok(at),
                status = child.wait() => Err(status),
                () = tokio::time::sleep(Duration::from_secs(10)) => Ok(None),
            };
            let _ = child.kill().await;
            let at = match ready {
                Ok(Some(at)) => at,
                Ok(None) => bail!("{name} did not ask for an event within 10 s"),
                Err(status) => {
                    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
                    bail!("{name} exited ({status:?}) before asking for an event: {stderr}");
                }
            };
            times.push(ms(at.saturating_duration_since(started)));
        }
        let p50 = median(&times);
        let max = times.iter().copied().fold(0.0, f64::max);
        section.line(format!(
            "- {name}: spawn → first GET /runtime/invocation/next, median {p50:.2} ms, max \
             {max:.2} ms ({} starts); binary {size:.2} MiB (`{}`)",
            times.len(),
            binary.display()
        ));
        section.row(
            &format!("Cold start `{name}`, spawn → ready for the first event (median)"),
            format!("{p50:.2} ms"),
            "—",
            Verdict::Reported,
        );
        section.row(
            &format!("Binary size `{name}` (release, stripped)"),
            format!("{size:.2} MiB"),
            "—",
            Verdict::Reported,
        );
    }
    Ok(section)
}

/// A stand-in Lambda Runtime API: stamps each `…/invocation/next` and never answers it.
async fn runtime_api(tx: mpsc::UnboundedSender<Instant>) -> anyhow::Result<String> {
    let app = axum::Router::new().route(
        "/2018-06-01/runtime/invocation/next",
        axum::routing::get(move || {
            let _ = tx.send(Instant::now());
            futures::future::pending::<&'static str>()
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr.to_string())
}
