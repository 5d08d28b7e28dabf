//! The notification service as a whole (issue 22): an outage of any length holds deliveries
//! instead of failing them, the circuit breaker lets one probe through, recovery is paced,
//! every worker keeps under the rate ceiling, a receiver's `Retry-After` pauses them all, an
//! operator's `webhooks pause` holds them across processes, and a hold has an upper bound.
//! Time is passed in (`Clock::Fixed`) wherever the engine decides by it; the pace is about
//! real time (the database's clock), measured as arrivals at the receiver.

use std::collections::{BTreeMap, HashSet};
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use delivery::Clock;
use delivery::sweep::{SweepOptions, SweepReport, sweep};
use serde_json::json;
use uuid::Uuid;

use crate::support::receiver::Received;
use crate::support::scratch::webhooks_binary;
use crate::support::{Receiver, Reply, TestDb, deps, deps_with};

fn minutes(n: i64) -> chrono::Duration {
    chrono::Duration::minutes(n)
}

async fn sweep_at(deps: &delivery::Deps, at: DateTime<Utc>) -> SweepReport {
    sweep(deps, options(deps), Clock::Fixed(at))
        .await
        .expect("sweep runs")
}

fn options(deps: &delivery::Deps) -> SweepOptions {
    SweepOptions {
        batch_size: deps.config.sweep_batch,
        budget: Duration::from_secs(60),
        deadline: None,
    }
}

async fn status_counts(db: &TestDb) -> BTreeMap<String, i64> {
    let client = db.client().await;
    client
        .query(
            "SELECT status, count(*) FROM webhook_deliveries GROUP BY status",
            &[],
        )
        .await
        .expect("counts")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

async fn endpoint_state(db: &TestDb) -> String {
    let client = db.client().await;
    client
        .query_one("SELECT state FROM webhook_endpoints", &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or_else(|_| "none".into())
}

/// The most requests that arrived within any one second.
fn busiest_second(arrivals: &[Instant]) -> usize {
    let mut sorted = arrivals.to_vec();
    sorted.sort();
    (0..sorted.len())
        .map(|i| {
            sorted[i..]
                .iter()
                .take_while(|at| at.duration_since(sorted[i]) < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn an_outage_three_times_the_retry_schedule_holds_everything_and_recovery_sends_each_once() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(503)).await;
    let deps = deps(&db, &receiver.url);
    let t0 = Utc::now();
    let first = db.backlog(25).await;

    // The service goes down as the bookings come in: 25 failures open the breaker (20).
    let report = delivery::dispatch::handle(json!({"limit": 100}), &deps, Clock::Fixed(t0), None)
        .await
        .expect("dispatch");
    assert_eq!(report.counts.retrying, 25);
    assert_eq!(endpoint_state(&db).await, "open");
    let before_open = receiver.requests().len();
    assert_eq!(before_open, 25);

    // Three times the whole schedule (5 + 15 + 45 minutes), a sweep every ten minutes, and
    // more bookings on the way: held, never failed, and only probes reach the service.
    let (mut probes, mut held_at_dispatch) = (0, 0);
    let mut later = Vec::new();
    for m in (10..=200).step_by(10) {
        let at = t0 + minutes(m);
        if m % 50 == 0 {
            let booking = db.insert_booking(Some("tutor@example.com"), None).await;
            let id = db.delivery_id(booking, "new_request").await;
            let dispatched =
                delivery::dispatch::dispatch_ids(&deps, &[id], Clock::Fixed(at), Duration::ZERO)
                    .await
                    .expect("dispatch");
            assert_eq!(
                serde_json::to_value(&dispatched.unchanged).expect("json"),
                json!([{ "id": id, "reason": "held" }]),
                "+{m} min: a new booking is held, not sent"
            );
            assert!(dispatched.held.is_some());
            held_at_dispatch += 1;
            later.push(id);
        }
        let report = sweep_at(&deps, at).await;
        assert!(report.probes <= 1, "+{m} min: {report:?}");
        assert_eq!(report.failed, 0, "+{m} min: {report:?}");
        assert!(report.held.is_some(), "+{m} min: {report:?}");
        probes += report.probes;
        let counts = status_counts(&db).await;
        assert_eq!(counts.get("failed"), None, "+{m} min: {counts:?}");
    }
    assert_eq!(held_at_dispatch, 4);
    assert!(
        probes >= 3,
        "the cool-down doubles up to 10 minutes: {probes} probes"
    );
    assert_eq!(
        receiver.requests().len(),
        before_open + probes,
        "during the outage only the probes reached the service"
    );
    // The probes did not spend the retries: every delivery keeps its whole schedule but the
    // first attempt, and each probe's attempt says it was held.
    let client = db.client().await;
    let spent: i64 = client
        .query_one(
            "SELECT count(*) FROM webhook_deliveries WHERE attempt_count > max_retries",
            &[],
        )
        .await
        .expect("budget")
        .get(0);
    assert_eq!(spent, 0);
    let held_attempts: i64 = client
        .query_one(
            "SELECT count(*) FROM webhook_attempts WHERE error LIKE '%held: the notification service is failing%'",
            &[],
        )
        .await
        .expect("attempts")
        .get(0);
    assert!(
        held_attempts >= probes as i64,
        "{held_attempts} held attempts"
    );

    // The service is back: the next probe closes the breaker and the same sweep drains the
    // rest (paced by the slow start), each delivery exactly once.
    receiver.set_default(Reply::status(200));
    let recovered_from = receiver.requests().len();
    let mut at = t0 + minutes(210);
    for _ in 0..6 {
        let report = sweep_at(&deps, at).await;
        if report.held.is_none() && report.still_due == 0 {
            break;
        }
        at += minutes(10);
    }
    assert_eq!(endpoint_state(&db).await, "closed");
    let counts = status_counts(&db).await;
    assert_eq!(counts.get("succeeded"), Some(&29), "{counts:?}");
    // Held during the outage (the probes), each hold ended by its counted success.
    let holds = db
        .count("SELECT count(*) FROM webhook_deliveries WHERE held_since IS NOT NULL")
        .await;
    assert_eq!(holds, 0);
    let after: Vec<Received> = receiver.requests()[recovered_from..].to_vec();
    let ids: Vec<String> = after.iter().map(|r| r.header("webhook-id")).collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), 29, "each held delivery once after recovery");
    assert_eq!(unique.len(), 29);
    for id in first.iter().chain(&later) {
        assert!(unique.contains(&id.to_string()), "{id} delivered");
    }
    // Recovery was paced: the slow start begins at 10 a second (the probe, then about ten
    // in the first second; one request of tolerance).
    let start = after[0].at;
    let first_second = after
        .iter()
        .filter(|r| r.at.duration_since(start) < Duration::from_secs(1))
        .count();
    assert!(first_second <= 12, "{first_second} in the first second");
}

#[tokio::test]
async fn four_concurrent_sweeps_keep_under_the_rate_ceiling_with_and_without_slow_start() {
    for slow_start in [false, true] {
        let db = TestDb::new().await;
        let receiver = Receiver::start(Reply::status(200)).await;
        let ceiling = 40.0_f64;
        let rate = if slow_start { "off" } else { "40" };
        let n = if slow_start { 300 } else { 160 };
        db.backlog(n).await;
        // The windows below count from here, before the ramp's origin: a clock started after
        // it (once the workers are built, on a loaded machine a tenth of a second later) would
        // count the first requests of the fourth second among the first three.
        let started = Instant::now();
        if slow_start {
            // The breaker has just closed (its probe succeeded): the ramp starts now.
            let client = db.client().await;
            client
                .execute(
                    "INSERT INTO webhook_endpoints (origin, closed_at, ramp_from)
                     VALUES ($1, now(), clock_timestamp())",
                    &[&origin(&receiver.url)],
                )
                .await
                .expect("just closed");
        }
        let vars = [("WEBHOOK_MAX_RATE", rate), ("WEBHOOK_SWEEP_BATCH", "50")];
        let workers: Vec<delivery::Deps> = (0..4)
            .map(|_| deps_with(&db, &receiver.url, &vars))
            .collect();
        let sweeps = workers.iter().map(|deps| async move {
            sweep(deps, options(deps), Clock::System)
                .await
                .expect("sweep")
        });
        let reports = futures::future::join_all(sweeps).await;
        let sent: usize = reports.iter().map(|r| r.succeeded).sum();
        assert_eq!(sent, n as usize, "slow start {slow_start}: {reports:?}");
        let arrivals: Vec<Instant> = receiver.requests().iter().map(|r| r.at).collect();
        let ids: HashSet<String> = receiver
            .requests()
            .iter()
            .map(|r| r.header("webhook-id"))
            .collect();
        assert_eq!(ids.len(), n as usize, "none twice");
        if slow_start {
            // 10 a second, doubling every second: the first second holds about 10, the first
            // three about 10 + 20 + 40 (10 % and one request of tolerance: the workers' sleep
            // and the receiver's clock are not exact).
            let within = |s: f64| {
                arrivals
                    .iter()
                    .filter(|at| at.duration_since(started).as_secs_f64() < s)
                    .count()
            };
            assert!(within(1.0) <= 12, "first second: {}", within(1.0));
            assert!(within(3.0) <= 78, "first three seconds: {}", within(3.0));
        } else {
            let busiest = busiest_second(&arrivals);
            assert!(
                busiest as f64 <= ceiling * 1.1 + 1.0,
                "{busiest} requests within one second under a ceiling of {ceiling}"
            );
        }
    }
}

/// The origin of a URL, as the engine keys the service.
fn origin(url: &str) -> String {
    // scheme://host:port, the path dropped (the test receivers have no user or default port).
    url.splitn(4, '/').take(3).collect::<Vec<_>>().join("/")
}

#[tokio::test]
async fn a_429_with_retry_after_30_stops_every_worker_for_30_seconds() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    receiver.script([Reply::status(429).header("retry-after", "30")]);
    let (one, other) = (deps(&db, &receiver.url), deps(&db, &receiver.url));
    let t0 = Utc::now();
    let (_, first) = db.booking_with_delivery().await;
    let report = delivery::dispatch::dispatch_ids(&one, &[first], Clock::Fixed(t0), Duration::ZERO)
        .await
        .expect("dispatch");
    assert_eq!(report.retrying, vec![first]);

    // Another worker, ten seconds later: the new booking and the due backlog wait.
    let ids = db.backlog(5).await;
    let fresh: Vec<Uuid> = ids.into_iter().filter(|id| *id != first).collect();
    let held = delivery::dispatch::dispatch_ids(
        &other,
        &fresh,
        Clock::Fixed(t0 + chrono::Duration::seconds(10)),
        Duration::ZERO,
    )
    .await
    .expect("dispatch");
    assert_eq!(held.counts.unchanged, fresh.len(), "{held:?}");
    assert!(
        held.held.as_ref().is_some_and(|hold| !hold.breaker()),
        "paused, not the breaker: {held:?}"
    );
    let swept = sweep_at(&other, t0 + chrono::Duration::seconds(29)).await;
    assert_eq!(swept.processed, 0, "{swept:?}");
    assert_eq!(receiver.requests().len(), 1, "nothing after the 429");

    // Thirty seconds on, every worker sends again (the 429'd delivery is due too).
    let swept = sweep_at(&one, t0 + chrono::Duration::seconds(31)).await;
    assert_eq!(swept.succeeded, 6, "{swept:?}");
}

#[tokio::test]
async fn responses_that_blame_the_delivery_never_open_the_breaker() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(400)).await;
    let deps = deps(&db, &receiver.url);
    let t0 = Utc::now();
    db.backlog(30).await;
    let report = delivery::dispatch::handle(json!({"limit": 100}), &deps, Clock::Fixed(t0), None)
        .await
        .expect("dispatch");
    assert_eq!(report.counts.failed, 30, "permanent: failed at once");
    assert_eq!(endpoint_state(&db).await, "closed");
    // Nor do 404s, 410s and 422s ten minutes apart: the service answers.
    for (m, status) in [(10, 404), (20, 410), (30, 422)] {
        receiver.set_default(Reply::status(status));
        let (_, id) = db.booking_with_delivery().await;
        let sent = delivery::dispatch::dispatch_ids(
            &deps,
            &[id],
            Clock::Fixed(t0 + minutes(m)),
            Duration::ZERO,
        )
        .await
        .expect("dispatch");
        assert_eq!(sent.failed, vec![id], "{status}: sent, not held");
    }
    assert_eq!(endpoint_state(&db).await, "closed");
}

/// Runs `webhooks args…` against the test's database, for the service at `webhook_url`.
fn webhooks(db: &TestDb, webhook_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(webhooks_binary())
        .args(args)
        .env_clear()
        .env("DATABASE_URL", &db.url)
        .env("WEBHOOK_URL", webhook_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run webhooks")
}

#[tokio::test]
async fn pause_holds_and_resume_releases_across_processes() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let deps = deps(&db, &receiver.url);

    let paused = webhooks(
        &db,
        &receiver.url,
        &["pause", "--for", "2h", "--reason", "service maintenance"],
    );
    assert_eq!(paused.status.code(), Some(0), "{paused:?}");
    let shown = String::from_utf8_lossy(&paused.stdout);
    assert!(shown.contains("service maintenance"), "{shown}");

    // Another process (this one): nothing is sent, not even a probe; no attempt is spent.
    let (_, id) = db.booking_with_delivery().await;
    let held = delivery::dispatch::dispatch_ids(&deps, &[id], Clock::System, Duration::ZERO)
        .await
        .expect("dispatch");
    assert_eq!(held.counts.unchanged, 1, "{held:?}");
    let swept = sweep(&deps, options(&deps), Clock::System)
        .await
        .expect("sweep");
    assert_eq!((swept.processed, swept.probes), (0, 0), "{swept:?}");
    assert!(receiver.requests().is_empty());
    assert_eq!(db.delivery(id).await.attempt_count, 0);

    let stats = webhooks(&db, &receiver.url, &["stats"]);
    let stats = String::from_utf8_lossy(&stats.stdout);
    assert!(
        stats.contains("paused until") && stats.contains("service maintenance"),
        "{stats}"
    );
    let doctor = webhooks(&db, &receiver.url, &["doctor"]);
    let doctor = String::from_utf8_lossy(&doctor.stdout);
    assert!(doctor.contains("is paused until"), "{doctor}");

    let resumed = webhooks(&db, &receiver.url, &["resume"]);
    assert_eq!(resumed.status.code(), Some(0), "{resumed:?}");
    let swept = sweep(&deps, options(&deps), Clock::System)
        .await
        .expect("sweep");
    assert_eq!(swept.succeeded, 1, "{swept:?}");
    assert_eq!(receiver.requests().len(), 1);

    // Without WEBHOOK_URL there is nothing to pause: a clear error, exit 2.
    let no_url = Command::new(webhooks_binary())
        .args(["pause", "--for", "1h"])
        .env_clear()
        .env("DATABASE_URL", &db.url)
        .output()
        .expect("run webhooks");
    assert_eq!(no_url.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_url.stderr).contains("WEBHOOK_URL is not set"));
}

#[tokio::test]
async fn held_past_hold_max_fails_with_a_reason_that_says_so_and_replays() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(503)).await;
    let deps = deps_with(&db, &receiver.url, &[("WEBHOOK_HOLD_MAX", "1h")]);
    let t0 = Utc::now();
    let ids = db.backlog(20).await;
    delivery::dispatch::handle(json!({"limit": 100}), &deps, Clock::Fixed(t0), None)
        .await
        .expect("dispatch");
    assert_eq!(endpoint_state(&db).await, "open");

    for m in [10, 30, 50] {
        let report = sweep_at(&deps, t0 + minutes(m)).await;
        assert_eq!(
            (report.failed, report.holds_expired),
            (0, 0),
            "+{m}: {report:?}"
        );
    }
    let report = sweep_at(&deps, t0 + minutes(70)).await;
    assert_eq!(report.holds_expired, 20, "{report:?}");
    let row = db.delivery(ids[0]).await;
    assert_eq!(row.status, "failed");
    assert!(
        row.last_error
            .as_deref()
            .is_some_and(|e| e.contains("held longer than WEBHOOK_HOLD_MAX")),
        "{:?}",
        row.last_error
    );

    // The service is back: replay sends them (the first is the probe that closes the breaker).
    receiver.set_default(Reply::status(200));
    let what = delivery::replay::Requeue {
        ids: None,
        since: None,
        max_retries: 3,
        include_replaced: false,
    };
    let requeued = delivery::replay::requeue(&deps.pool, &what, Clock::Fixed(t0 + minutes(80)))
        .await
        .expect("replay");
    assert_eq!(requeued.requeued, 20);
    let mut at = t0 + minutes(81);
    for _ in 0..4 {
        sweep_at(&deps, at).await;
        at += minutes(10);
    }
    assert_eq!(status_counts(&db).await.get("succeeded"), Some(&20));
}
