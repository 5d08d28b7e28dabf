//! Capture cost on the app's insert path: pgbench, 4 clients, one booking INSERT per
//! transaction, into `booking_requests` (the capture triggers) and into `booking_plain`, the
//! same table without them (`LIKE … INCLUDING ALL`: same columns, defaults, constraints and
//! indexes). Runs are adjacent — plain, triggers with `webhooks.notify` off, triggers with it
//! on, and with it on while `webhooks listen`'s flag is raised (V18: capture skips the NOTIFY),
//! in an order rotated each round — and each round gives a ratio; the median ratio is
//! reported, with `synchronous_commit` on (the server's default) and off. Tables are emptied
//! before every run. Then one long run on the triggers, to see the rate stay flat over a
//! long-lived connection.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use tokio::process::Command;

use crate::ctx::Ctx;
use crate::pg::{self, Scratch};
use crate::report::{Section, Verdict};
use crate::stats::{median, thousands};

const CLIENTS: &str = "4";
const TARGET_NOTIFY_OFF: f64 = 0.85;
const AIM_NOTIFY_ON: f64 = 0.6;
const TARGET_NOTIFY_POLLED: f64 = 0.75;
const AIM_ASYNC: f64 = 0.75;
const FLAT: f64 = 0.9;

const INSERT: &str = "INSERT INTO {table} (student_name, student_email, tutor_name, tutor_email, \
    subject, requested_start) VALUES ('Sam Student', 'student@example.com', 'Tia Tutor', \
    'tutor@example.com', 'maths', now() + interval '1 day');\n";

/// One pgbench configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Plain,
    NotifyOff,
    NotifyOn,
    /// Notify on while `webhooks listen` polls (V18): its flag raised for the run.
    Polled,
}

impl Variant {
    fn table(self) -> &'static str {
        match self {
            Variant::Plain => "booking_plain",
            _ => "booking_requests",
        }
    }
    fn notify(self) -> &'static str {
        if matches!(self, Variant::NotifyOn | Variant::Polled) {
            "on"
        } else {
            "off"
        }
    }
}

pub async fn run(ctx: &mut Ctx) -> anyhow::Result<Section> {
    let scratch = Scratch::create("capture").await?;
    let result = measure(ctx, &scratch).await;
    scratch.drop().await?;
    result
}

async fn measure(ctx: &mut Ctx, scratch: &Scratch) -> anyhow::Result<Section> {
    let pgbench = find_pgbench()?;
    let db = scratch.client().await?;
    db.batch_execute("CREATE TABLE booking_plain (LIKE booking_requests INCLUDING ALL)")
        .await?;
    for table in ["booking_requests", "booking_plain"] {
        let script = ctx.file(&format!("insert-{table}.sql"));
        std::fs::write(&script, INSERT.replace("{table}", table))?;
    }
    let mut section = Section::new("Capture cost (pgbench)");
    let rounds = ctx.knobs.pgbench_rounds;
    let secs = ctx.knobs.pgbench_secs;
    for sync in ["on", "off"] {
        let (mut off_ratios, mut on_ratios, mut polled_ratios) =
            (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let mut order = [
                Variant::Plain,
                Variant::NotifyOff,
                Variant::NotifyOn,
                Variant::Polled,
            ];
            order.rotate_left(round % 4);
            let mut tps = [0.0; 4];
            for variant in order {
                pg::truncate(&db).await?;
                db.batch_execute("TRUNCATE booking_plain").await?;
                if variant == Variant::Polled {
                    pg::raise_listener_flag(&db, secs).await?;
                }
                let (value, _) =
                    pgbench_run(ctx, &pgbench, scratch, variant, sync, secs, false).await?;
                pg::lower_listener_flag(&db).await?;
                tps[variant as usize] = value;
            }
            section.line(format!(
                "- synchronous_commit={sync}, round {}: plain {} tps, triggers notify off {} \
                 tps ({:.2}), notify on {} tps ({:.2}), notify on while listen polls {} tps \
                 ({:.2})",
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
        let (off, on, polled) = (
            median(&off_ratios),
            median(&on_ratios),
            median(&polled_ratios),
        );
        let of = if rounds > 1 {
            format!(", median of {rounds}")
        } else {
            String::new()
        };
        if sync == "on" {
            section.row(
                &format!("Capture TPS ratio, notify off, synchronous_commit on{of}"),
                format!("{off:.2}"),
                "≥ 0.85",
                Verdict::of(off >= TARGET_NOTIFY_OFF),
            );
            section.row(
                &format!(
                    "Capture TPS ratio, notify on, no listener polling, synchronous_commit on{of}"
                ),
                format!("{on:.2}"),
                "> 0.6 (aim)",
                Verdict::of(on > AIM_NOTIFY_ON),
            );
            section.row(
                &format!(
                    "Capture TPS ratio, notify on while listen polls (V18), synchronous_commit \
                     on{of}"
                ),
                format!("{polled:.2}"),
                "≥ 0.75",
                Verdict::of(polled >= TARGET_NOTIFY_POLLED),
            );
        } else {
            section.row(
                &format!("Capture TPS ratio, notify off, synchronous_commit off{of}"),
                format!("{off:.2}"),
                "≥ 0.75 (aim)",
                Verdict::of(off >= AIM_ASYNC),
            );
            section.row(
                &format!("Capture TPS ratio, notify on, synchronous_commit off{of}"),
                format!("{on:.2}"),
                "—",
                Verdict::Reported,
            );
        }
    }

    pg::truncate(&db).await?;
    let long = ctx.knobs.long_secs;
    let (_, per_second) =
        pgbench_run(ctx, &pgbench, scratch, Variant::NotifyOn, "on", long, true).await?;
    // Skip the first second (connections warming up); compare the first and last eighths.
    let slice = (per_second.len() / 8).max(1);
    if per_second.len() < 2 * slice + 1 {
        bail!("pgbench -P 1 gave {} progress lines", per_second.len());
    }
    let first = median(&per_second[1..1 + slice]);
    let last = median(&per_second[per_second.len() - slice..]);
    let flat = last / first;
    section.line(format!(
        "- long-lived connections: {long} s with the triggers (notify on, synchronous_commit \
         on), per-second tps: first {slice} s (after the first second) {} tps, last {slice} s {} tps",
        thousands(first),
        thousands(last)
    ));
    section.row(
        &format!("Capture over {long} s of long-lived connections: last / first tps"),
        format!("{flat:.2}"),
        "≥ 0.90 (flat)",
        Verdict::of(flat >= FLAT),
    );
    Ok(section)
}

/// One pgbench run; returns its tps and, with `progress`, the tps of every second.
async fn pgbench_run(
    ctx: &mut Ctx,
    pgbench: &PathBuf,
    scratch: &Scratch,
    variant: Variant,
    sync: &str,
    secs: u64,
    progress: bool,
) -> anyhow::Result<(f64, Vec<f64>)> {
    let script = ctx.file(&format!("insert-{}.sql", variant.table()));
    let options = format!(
        "-c synchronous_commit={sync} -c webhooks.notify={}",
        variant.notify()
    );
    pgbench_script(ctx, pgbench, scratch, &script, &options, secs, progress).await
}

/// One pgbench run of `script` (4 clients, 2 threads, the simple query protocol) with
/// `PGOPTIONS=options`; returns its tps and, with `progress`, the tps of every second.
pub async fn pgbench_script(
    ctx: &mut Ctx,
    pgbench: &PathBuf,
    scratch: &Scratch,
    script: &std::path::Path,
    options: &str,
    secs: u64,
    progress: bool,
) -> anyhow::Result<(f64, Vec<f64>)> {
    let mut args: Vec<String> = vec![
        "-n".into(),
        "-c".into(),
        CLIENTS.into(),
        "-j".into(),
        "2".into(),
        "-T".into(),
        secs.to_string(),
        "-f".into(),
        script.display().to_string(),
    ];
    if progress {
        args.extend(["-P".into(), "1".into()]);
    }
    ctx.ran(format!(
        "PGOPTIONS='{options}' {} {} <scratch database URL>",
        pgbench.display(),
        args.join(" ")
    ));
    args.push(scratch.url.clone());
    let output = Command::new(pgbench)
        .args(&args)
        .env("PGOPTIONS", options)
        .output()
        .await
        .context("running pgbench")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!("pgbench failed ({}): {stderr}", output.status);
    }
    let tps = stdout
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .with_context(|| format!("no tps in pgbench's output: {stdout}"))?;
    // "progress: 3.0 s, 2817.9 tps, lat 1.417 ms stddev 0.633, 0 failed"
    let per_second = stderr
        .lines()
        .filter(|l| l.starts_with("progress:"))
        .filter_map(|l| l.split(", ").nth(1))
        .filter_map(|t| t.strip_suffix(" tps"))
        .filter_map(|v| v.parse().ok())
        .collect();
    Ok((tps, per_second))
}

/// pgbench of the newest server version installed (Debian ships it with the server under
/// `/usr/lib/postgresql/<v>/bin`), else the one on PATH.
pub fn find_pgbench() -> anyhow::Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let path = e.path().join("bin/pgbench");
            path.exists().then_some((v, path))
        })
        .collect();
    versions.sort();
    if let Some((_, path)) = versions.pop() {
        return Ok(path);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("pgbench"))
        .find(|p| p.exists())
        .context("pgbench not found: `make bench` installs it (bench/ensure-tools.sh)")
}
