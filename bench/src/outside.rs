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
use crate::pg::Scratch;
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
    let (mut off_ratios, mut on_ratios) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let mut order = [Run::Disabled, Run::NotifyOff, Run::NotifyOn];
        if round % 2 == 1 {
            order.reverse();
        }
        let mut tps = [0.0; 3];
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
            let notify = if which == Run::NotifyOn { "on" } else { "off" };
            let options = format!("-c webhooks.notify={notify}");
            let (value, _) =
                pgbench_script(ctx, &pgbench, scratch, &script, &options, secs, false).await?;
            tps[which as usize] = value;
        }
        section.line(format!(
            "- round {}: triggers disabled {} tps, notify off {} tps ({:.2}), notify on {} tps \
             ({:.2})",
            round + 1,
            thousands(tps[0]),
            thousands(tps[1]),
            tps[1] / tps[0],
            thousands(tps[2]),
            tps[2] / tps[0],
        ));
        off_ratios.push(tps[1] / tps[0]);
        on_ratios.push(tps[2] / tps[0]);
    }
    db.batch_execute("ALTER TABLE booking_requests ENABLE TRIGGER USER")
        .await?;
    let (off, on) = (median(&off_ratios), median(&on_ratios));
    section.row(
        &format!("Capture TPS ratio from outside, notify off, median of {rounds}"),
        format!("{off:.2}"),
        "≥ 0.85",
        Verdict::of(off >= TARGET_NOTIFY_OFF),
    );
    section.row(
        &format!("Capture TPS ratio from outside, notify on, median of {rounds}"),
        format!("{on:.2}"),
        "≥ 0.75",
        Verdict::of(on >= TARGET_NOTIFY_ON),
    );
    Ok(section)
}
