//! `make bench`: how fast a sweep drains a backlog (an outage of the notification service just
//! ended), against a local receiver that answers 200 at once.
//!
//! Reported as ratios measured in one run: sweep throughput against the bare HTTP ceiling —
//! the same `Sender` (signing included) posting the same number of requests with the same
//! concurrency and no database — so the figure says what the claim/record work costs, not how
//! fast this machine is. Absolute rates are printed for context only.
//!
//! Environment: `DATABASE_URL` (default the local test database), `BENCH_DELIVERIES` (5000),
//! and `WEBHOOK_SWEEP_BATCH` / `WEBHOOK_SWEEP_CONCURRENCY` to compare settings.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use delivery::sweep::{SweepOptions, sweep};
use delivery::{Clock, Config, DbConfig, Deps};
use futures::StreamExt as _;
use uuid::Uuid;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() -> Result<()> {
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let n: usize = std::env::var("BENCH_DELIVERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let schema = format!("bench_{}", Uuid::new_v4().simple());
    let (admin, connection) = tokio_postgres::connect(&base, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    admin
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await?;
    let result = run(&base, &schema, n).await;
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await?;
    result
}

async fn run(base: &str, schema: &str, n: usize) -> Result<()> {
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    let received = Arc::new(AtomicUsize::new(0));
    let receiver = start_receiver(received.clone()).await?;
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("WEBHOOK_URL", receiver.as_str()),
        ("WEBHOOK_AUTH_TOKEN", "bench-token"),
        (
            "WEBHOOK_SIGNING_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ),
    ];
    // Batch size and concurrency may be overridden from the environment to compare settings.
    let config = Config::from_lookup(|k| {
        let fixed = env
            .iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| (*v).to_owned());
        fixed.or_else(|| {
            k.starts_with("WEBHOOK_SWEEP_")
                .then(|| std::env::var(k).ok())
                .flatten()
        })
    })?;
    let concurrency = config.sweep_concurrency;
    let deps = Deps::new(config)?;
    delivery::schema::migrate_quietly(&DbConfig::new(url.clone()).pool()?).await?;

    // Warm-up: connections to the receiver and the database.
    bare_http(&deps, 200, concurrency).await;

    let started = Instant::now();
    bare_http(&deps, n, concurrency).await;
    let http = started.elapsed();

    let db = deps.pool.get().await?;
    let started = Instant::now();
    db.execute(
        "INSERT INTO booking_requests (tutor_email) SELECT 'tutor' || i || '@example.com' FROM generate_series(1, $1::bigint) i",
        &[&(n as i64)],
    )
    .await?;
    let capture = started.elapsed();

    let before = received.load(Ordering::Relaxed);
    let started = Instant::now();
    let options = SweepOptions {
        batch_size: deps.config.sweep_batch,
        budget: Duration::from_secs(600),
        deadline: None,
    };
    let report = sweep(&deps, options, Clock::System).await?;
    let drained = started.elapsed();
    let sent = received.load(Ordering::Relaxed) - before;
    if report.succeeded != n || sent != n {
        return Err(format!(
            "expected {n} deliveries, sweep reported {} and the receiver saw {sent}",
            report.succeeded
        )
        .into());
    }

    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "deliveries: {n}, batch {}, concurrency {concurrency}",
        deps.config.sweep_batch
    );
    println!(
        "bare HTTP (sign + POST, no database): {:>8.0} /s",
        rate(http)
    );
    println!(
        "sweep drain (claim + POST + record):  {:>8.0} /s  ({} batches)",
        rate(drained),
        report.batches
    );
    println!(
        "capture (INSERT … SELECT, triggers):  {:>8.0} /s",
        rate(capture)
    );
    println!(
        "ratio sweep / bare HTTP: {:.2}",
        http.as_secs_f64() / drained.as_secs_f64()
    );
    Ok(())
}

/// `n` signed POSTs through the engine's sender, `concurrency` at a time, no database.
async fn bare_http(deps: &Deps, n: usize, concurrency: usize) {
    let body = r#"{"type": "new_request", "email": "t@example.com", "bookingId": "00000000-0000-0000-0000-000000000000"}"#;
    futures::stream::iter(0..n)
        .map(|_| deps.sender.send(Uuid::new_v4(), body, chrono::Utc::now()))
        .buffer_unordered(concurrency)
        .for_each(|_| async {})
        .await;
}

/// A receiver that answers 200 at once and counts requests.
async fn start_receiver(count: Arc<AtomicUsize>) -> Result<String> {
    let app = axum::Router::new().fallback(axum::routing::any(move || {
        let count = count.clone();
        async move {
            count.fetch_add(1, Ordering::Relaxed);
            "ok"
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}/hook"))
}
