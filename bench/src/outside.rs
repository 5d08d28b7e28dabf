//! Capture cost as a user measures it from outside, with nothing of ours but the schema: pgbench
//! (4 clients, `-j 2`, the simple query protocol, `BENCH_OUTSIDE_SECS` each), the smallest
//! booking — `INSERT INTO booking_requests (tutor_email, student_email) VALUES (…)` — against
//! the *same* table with its user triggers disabled as the baseline; both emptied and a
//! CHECKPOINT before every run; per round, baseline / notify off / notify on / notify on with
//! `webhooks listen`'s flag raised (V18) / notify on with a real `webhooks listen` delivering to
//! nginx meanwhile (each delivery then checked at nginx), the order alternating; the median of
//! `BENCH_OUTSIDE_ROUNDS` rounds' ratios. `synchronous_commit` is the server's (on).
//!
//! Why it reads lower than the `capture` scenario's method: the booking is smaller (two columns
//! set, no timestamp expression), so the same capture work is a larger share of each insert, and
//! every run starts after a CHECKPOINT, so the first change of each page of the outbox and its
//! indexes writes the whole page to the WAL.

use anyhow::{Context as _, bail};

use crate::capture::{find_pgbench, pgbench_script};
use crate::child::Job;
use crate::ctx::Ctx;
use crate::latency::wait_for_line;
use crate::nginx::Nginx;
use crate::pg::{self, Scratch};
use crate::report::{Section, Verdict};
use crate::stats::{median, thousands};

const TARGET_NOTIFY_OFF: f64 = 0.85;
const TARGET_NOTIFY_ON: f64 = 0.75;

const INSERT: &str = "INSERT INTO booking_requests (tutor_email, student_email) \
    VALUES ('tutor@example.com', 'student@example.com');\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    Disabled,
    NotifyOff,
    NotifyOn,
    /// Notify on while `webhooks listen` polls (V18): its flag raised for the whole run, as a
    /// listener keeps it while bookings stream in; capture reads it and skips the NOTIFY.
    Polled,
    /// Notify on with a real `webhooks listen` delivering to nginx during the run: what an
    /// operator with a listener sees (the machine's two cores also send and record every
    /// booking meanwhile). Every delivery is checked at the receiver afterwards.
    Listened,
}

pub async fn run(ctx: &mut Ctx) -> anyhow::Result<Section> {
    let scratch = Scratch::create("outside").await?;
    let result = measure(ctx, &scratch).await;
    scratch.drop().await?;
    result
}

async fn measure(ctx: &mut Ctx, scratch: &Scratch) -> anyhow::Result<Section> {
    let pgbench = find_pgbench()?;
    let db = scratch.client().await?;
    let script = ctx.file("insert-outside.sql");
    std::fs::write(&script, INSERT).context("writing the pgbench script")?;
    let mut section = Section::new("Capture cost as measured from outside (pgbench)");
    let (rounds, secs) = (ctx.knobs.outside_rounds, ctx.knobs.outside_secs);
    let (mut off_ratios, mut on_ratios, mut polled_ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut listened_ratios, mut listened) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let mut order = [
            Run::Disabled,
            Run::NotifyOff,
            Run::NotifyOn,
            Run::Polled,
            Run::Listened,
        ];
        if round % 2 == 1 {
            order.reverse();
        }
        let mut tps = [0.0; 5];
        for which in order {
            let triggers = if which == Run::Disabled {
                "DISABLE"
            } else {
                "ENABLE"
            };
            db.batch_execute(&format!(
                "TRUNCATE booking_requests, webhook_deliveries CASCADE;
                 ALTER TABLE booking_requests {triggers} TRIGGER USER;
                 CHECKPOINT"
            ))
            .await?;
            let notify = if matches!(which, Run::NotifyOn | Run::Polled | Run::Listened) {
                "on"
            } else {
                "off"
            };
            if which == Run::Polled {
                pg::raise_listener_flag(&db, secs).await?;
            }
            let listener = if which == Run::Listened {
                Some(Listener::start(ctx, scratch, round).await?)
            } else {
                None
            };
            let options = format!("-c webhooks.notify={notify}");
            let ran = pgbench_script(ctx, &pgbench, scratch, &script, &options, secs, false).await;
            if let Some(listener) = listener {
                let delivered = listener.finish(&db).await?;
                listened.push(delivered);
            }
            let (value, _) = ran?;
            pg::lower_listener_flag(&db).await?;
            tps[which as usize] = value;
        }
        section.line(format!(
            "- round {}: triggers disabled {} tps, notify off {} tps ({:.2}), notify on {} tps \
             ({:.2}), notify on while listen polls {} tps ({:.2}), notify on with listen \
             delivering {} tps ({:.2})",
            round + 1,
            thousands(tps[0]),
            thousands(tps[1]),
            tps[1] / tps[0],
            thousands(tps[2]),
            tps[2] / tps[0],
            thousands(tps[3]),
            tps[3] / tps[0],
            thousands(tps[4]),
            tps[4] / tps[0],
        ));
        listened_ratios.push(tps[4] / tps[0]);
        off_ratios.push(tps[1] / tps[0]);
        on_ratios.push(tps[2] / tps[0]);
        polled_ratios.push(tps[3] / tps[0]);
    }
    db.batch_execute("ALTER TABLE booking_requests ENABLE TRIGGER USER")
        .await?;
    let (off, on, polled) = (
        median(&off_ratios),
        median(&on_ratios),
        median(&polled_ratios),
    );
    section.row(
        &format!("Capture TPS ratio from outside, notify off, median of {rounds}"),
        format!("{off:.2}"),
        "≥ 0.85",
        Verdict::of(off >= TARGET_NOTIFY_OFF),
    );
    section.row(
        &format!(
            "Capture TPS ratio from outside, notify on, no listener polling (every booking \
             NOTIFYs), median of {rounds}"
        ),
        format!("{on:.2}"),
        "—",
        Verdict::Reported,
    );
    section.row(
        &format!(
            "Capture TPS ratio from outside, notify on while listen polls (V18), median of \
             {rounds}"
        ),
        format!("{polled:.2}"),
        "≥ 0.75",
        Verdict::of(polled >= TARGET_NOTIFY_ON),
    );
    let with_listener = median(&listened_ratios);
    let (notified, polled_batches, delivered) = listened.iter().fold((0, 0, 0), |sum, run| {
        (
            sum.0 + run.notify_batches,
            sum.1 + run.poll_batches,
            sum.2 + run.delivered,
        )
    });
    section.line(format!(
        "- with listen delivering: {} bookings captured and each delivered exactly once (checked \
         at nginx); listen's batches: {} on NOTIFY, {} on its polls",
        thousands(delivered as f64),
        thousands(notified as f64),
        thousands(polled_batches as f64),
    ));
    section.row(
        &format!(
            "Capture TPS ratio from outside, notify on with a real listen delivering meanwhile, \
             median of {rounds}"
        ),
        format!("{with_listener:.2}"),
        "—",
        Verdict::Reported,
    );
    Ok(section)
}

/// What one run with a real listener did.
struct Listened {
    delivered: u64,
    notify_batches: usize,
    poll_batches: usize,
}

/// `webhooks listen` (the release binary) delivering to an nginx of its own.
struct Listener {
    nginx: Nginx,
    child: tokio::process::Child,
    log: std::path::PathBuf,
}

impl Listener {
    async fn start(ctx: &mut Ctx, scratch: &Scratch, round: usize) -> anyhow::Result<Self> {
        let nginx = Nginx::start(&ctx.file(&format!("outside-nginx-{round}"))).await?;
        let job = Job::new(
            ctx.release("webhooks")?,
            &["listen", "--sweep-every", "off"],
        )
        .env(&ctx.engine_env(&scratch.url, &nginx.url()));
        ctx.ran(job.display());
        let log = ctx.file(&format!("outside-listen-{round}.log"));
        let mut child = job.spawn_plain(&log)?;
        wait_for_line(&log, "listening", &mut child).await?;
        Ok(Listener { nginx, child, log })
    }

    /// Waits until every captured booking is delivered (60 s at most), stops the listener and
    /// nginx, and checks the receiver saw each delivery exactly once.
    async fn finish(mut self, db: &tokio_postgres::Client) -> anyhow::Result<Listened> {
        let started = std::time::Instant::now();
        let captured: i64 = loop {
            let row = db
                .query_one(
                    "SELECT count(*), count(*) FILTER (WHERE status <> 'succeeded')
                       FROM webhook_deliveries",
                    &[],
                )
                .await?;
            let (all, open): (i64, i64) = (row.get(0), row.get(1));
            if open == 0 {
                break all;
            }
            if started.elapsed() > std::time::Duration::from_secs(60) {
                bail!("{open} of {all} deliveries still not delivered 60 s after the run");
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        let _ = self.child.kill().await;
        let seen = self.nginx.stop().await?;
        let delivered = u64::try_from(captured)?;
        seen.expect_exactly(delivered)?;
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        Ok(Listened {
            delivered,
            notify_batches: log.matches("dispatched on notify").count(),
            poll_batches: log.matches("dispatched on poll").count(),
        })
    }
}
