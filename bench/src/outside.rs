//! Capture cost as a user measures it from outside, with nothing of ours but the schema: pgbench
//! (4 clients, `-j 2`, the simple query protocol, `BENCH_OUTSIDE_SECS` each), the smallest
//! booking — `INSERT INTO booking_requests (tutor_email, student_email) VALUES (…)` — against
//! the *same* table with its user triggers disabled as the baseline; both emptied and a
//! CHECKPOINT before every run; per round, baseline / notify off / notify on, the order
//! alternating; the median of `BENCH_OUTSIDE_ROUNDS` rounds' ratios. `synchronous_commit` is the
//! server's (on).
//!
//! Why it reads lower than the `capture` scenario's method: the booking is smaller (two columns
//! set, no timestamp expression), so the same capture work is a larger share of each insert, and
//! every run starts after a CHECKPOINT, so the first change of each page of the outbox and its
//! indexes writes the whole page to the WAL.

use anyhow::Context as _;

use crate::capture::{find_pgbench, pgbench_script};
use crate::ctx::Ctx;
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
    for round in 0..rounds {
        let mut order = [Run::Disabled, Run::NotifyOff, Run::NotifyOn, Run::Polled];
        if round % 2 == 1 {
            order.reverse();
        }
        let mut tps = [0.0; 4];
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
            let notify = if matches!(which, Run::NotifyOn | Run::Polled) {
                "on"
            } else {
                "off"
            };
            if which == Run::Polled {
                pg::raise_listener_flag(&db, secs).await?;
            }
            let options = format!("-c webhooks.notify={notify}");
            let (value, _) =
                pgbench_script(ctx, &pgbench, scratch, &script, &options, secs, false).await?;
            pg::lower_listener_flag(&db).await?;
            tps[which as usize] = value;
        }
        section.line(format!(
            "- round {}: triggers disabled {} tps, notify off {} tps ({:.2}), notify on {} tps \
             ({:.2}), notify on while listen polls {} tps ({:.2})",
            round + 1,
            thousands(tps[0]),
            thousands(tps[1]),
            tps[1] / tps[0],
            thousands(tps[2]),
            tps[2] / tps[0],
            thousands(tps[3]),
            tps[3] / tps[0],
        ));
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
    Ok(section)
}
