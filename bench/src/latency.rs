//! Latency in listen mode: bookings committed one at a time at a steady rate while
//! `webhooks listen` (the release binary, a real process) dispatches on NOTIFY; each one timed
//! from just before its INSERT is sent (an autocommit statement: the insert, the capture, the
//! commit's fsync, then the NOTIFY) to its arrival at the receiver.
//!
//! The receiver here is the bench's own (axum, in the bench process, which only inserts at
//! 100/s): it stamps each arrival with the same monotonic clock the inserter uses, to the
//! microsecond — nginx's log has millisecond timestamps only. It is still a separate process
//! from the sender (`webhooks listen`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use uuid::Uuid;

use crate::child::Job;
use crate::ctx::Ctx;
use crate::pg::Scratch;
use crate::report::{Section, Verdict};
use crate::stats::{ms, percentile, thousands};

const P50_MS: f64 = 3.0;
const P99_MS: f64 = 15.0;

/// Arrival times by booking id.
type Arrivals = Arc<Mutex<HashMap<Uuid, Vec<Instant>>>>;

pub async fn run(ctx: &mut Ctx) -> anyhow::Result<Section> {
    let scratch = Scratch::create("latency").await?;
    let result = measure(ctx, &scratch).await;
    scratch.drop().await?;
    result
}

async fn measure(ctx: &mut Ctx, scratch: &Scratch) -> anyhow::Result<Section> {
    let arrivals: Arrivals = Arc::default();
    let url = receiver(arrivals.clone()).await?;
    let job = Job::new(
        ctx.release("webhooks")?,
        &["listen", "--sweep-every", "off"],
    )
    .env(&ctx.engine_env(&scratch.url, &url));
    ctx.ran(job.display());
    let log = ctx.file("listen.log");
    let mut listen = job.spawn_plain(&log)?;
    let outcome = async {
        wait_for_line(&log, "listening", &mut listen).await?;
        commit_and_time(ctx, scratch, &arrivals).await
    }
    .await;
    let _ = listen.kill().await;
    outcome
}

/// Commits the bookings at the configured rate, waits for every arrival, computes.
async fn commit_and_time(
    ctx: &Ctx,
    scratch: &Scratch,
    arrivals: &Arrivals,
) -> anyhow::Result<Section> {
    let (n, per_second) = (ctx.knobs.latency_bookings, ctx.knobs.latency_rate);
    let db = scratch.client().await?;
    let insert = db
        .prepare(
            "INSERT INTO booking_requests (student_name, student_email, tutor_name, tutor_email, subject)
             VALUES ('Sam Student', 'student@example.com', 'Tia Tutor', 'tutor@example.com', 'maths')
             RETURNING id",
        )
        .await?;
    let mut sent: Vec<(Uuid, Instant)> = Vec::with_capacity(n);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for _ in 0..n {
        tick.tick().await;
        let before = Instant::now();
        let row = db.query_one(&insert, &[]).await?;
        sent.push((row.get(0), before));
    }
    let waited = Instant::now();
    while arrivals.lock().map(|a| a.len()).unwrap_or(0) < n {
        if waited.elapsed() > Duration::from_secs(30) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let arrived = arrivals.lock().map(|a| a.clone()).unwrap_or_default();
    let mut latencies = Vec::with_capacity(n);
    for (booking, before) in &sent {
        match arrived.get(booking).map(Vec::as_slice) {
            Some([at]) => latencies.push(ms(at.saturating_duration_since(*before))),
            Some(many) => bail!("booking {booking} arrived {} times", many.len()),
            None => bail!("booking {booking} never arrived (within 30 s of the last commit)"),
        }
    }
    let (p50, p99) = (percentile(&latencies, 50.0), percentile(&latencies, 99.0));
    let max = latencies.iter().copied().fold(0.0, f64::max);
    let mut section = Section::new("Latency in listen mode");
    section.line(format!(
        "- {} bookings at {per_second}/s, one autocommit INSERT each: p50 {p50:.2} ms, p99 \
         {p99:.2} ms, max {max:.2} ms; each arrived exactly once",
        thousands(n as f64)
    ));
    let what = format!("{} at {per_second}/s", thousands(n as f64));
    section.row(
        &format!("Listen latency p50, commit → receiver ({what})"),
        format!("{p50:.2} ms"),
        "≤ 3 ms",
        Verdict::of(p50 <= P50_MS),
    );
    section.row(
        &format!("Listen latency p99, commit → receiver ({what})"),
        format!("{p99:.2} ms"),
        "≤ 15 ms",
        Verdict::of(p99 <= P99_MS),
    );
    Ok(section)
}

/// Polls a child's stderr file until a line contains `needle` (or the child dies).
pub async fn wait_for_line(
    log: &std::path::Path,
    needle: &str,
    child: &mut tokio::process::Child,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(needle) {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("the process exited ({status}) before {needle:?}: {text}");
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("no {needle:?} within 60 s: {text}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A receiver that answers 200 and stamps each arrival by the body's `bookingId`.
async fn receiver(arrivals: Arrivals) -> anyhow::Result<String> {
    let app = axum::Router::new().fallback(axum::routing::any(move |body: String| {
        let at = Instant::now();
        let arrivals = arrivals.clone();
        async move {
            let booking = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| {
                    v["bookingId"]
                        .as_str()
                        .and_then(|s| Uuid::parse_str(s).ok())
                });
            if let (Some(booking), Ok(mut map)) = (booking, arrivals.lock()) {
                map.entry(booking).or_default().push(at);
            }
            "ok"
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the latency receiver")?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}/hook"))
}
