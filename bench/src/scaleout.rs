//! Scale-out: 1, 2 and 4 `webhooks sweep` processes started together on one backlog (in the
//! cloud: several retry-sweep invocations at once). Aggregate throughput is the backlog over
//! the time from the first spawn to the last exit; duplicates are counted at the receiver
//! (requests minus distinct `webhook-id`s). Every delivery must be sent: the reports add up to
//! the backlog and the table holds it all succeeded.

use std::time::Instant;

use anyhow::bail;

use crate::child::Job;
use crate::ctx::Ctx;
use crate::nginx::Nginx;
use crate::pg::{self, Scratch};
use crate::report::{Section, Verdict};
use crate::stats::{rate, thousands};

const PROCESSES: [usize; 3] = [1, 2, 4];

pub async fn run(ctx: &mut Ctx) -> anyhow::Result<Section> {
    let scratch = Scratch::create("scaleout").await?;
    let result = measure(ctx, &scratch).await;
    scratch.drop().await?;
    result
}

async fn measure(ctx: &mut Ctx, scratch: &Scratch) -> anyhow::Result<Section> {
    scratch.set("webhooks.notify", "off").await?;
    let db = scratch.client().await?;
    let n = ctx.knobs.scaleout_backlog;
    let mut section = Section::new(&format!("Scale-out ({} backlog)", thousands(n as f64)));
    let mut duplicates = Vec::new();
    let mut single = 0.0;
    for k in PROCESSES {
        pg::truncate(&db).await?;
        pg::backlog(&db, n).await?;
        let nginx = Nginx::start(&ctx.file("nginx")).await?;
        let job = Job::new(ctx.release("webhooks")?, &["sweep", "--json"])
            .env(&ctx.engine_env(&scratch.url, &nginx.url()));
        ctx.ran(job.display());
        let started = Instant::now();
        let running: Vec<_> = (0..k)
            .map(|i| job.spawn(&ctx.file(&format!("sweep-{i}.log"))))
            .collect::<anyhow::Result<_>>()?;
        let finished = futures::future::join_all(running.into_iter().map(|r| r.finish())).await;
        let wall = started.elapsed();
        let seen = nginx.stop().await?;
        let mut reported = 0;
        for f in finished {
            let report: serde_json::Value = serde_json::from_str(f?.stdout.trim())?;
            reported += report["succeeded"].as_u64().unwrap_or(0);
        }
        let (succeeded, rows) = pg::delivered(&db).await?;
        if reported != n || succeeded as u64 != n || rows as u64 != n {
            bail!(
                "{k} processes: reports say {reported} succeeded, the table {succeeded} of \
                 {rows}, expected {n}"
            );
        }
        let dups = seen.requests.saturating_sub(seen.distinct_ids);
        if seen.distinct_ids as u64 != n {
            bail!(
                "{k} processes: the receiver saw {} distinct webhook-ids of {n}",
                seen.distinct_ids
            );
        }
        let aggregate = rate(n, wall);
        if k == 1 {
            single = aggregate;
        }
        section.line(format!(
            "- {k} process(es): {}/s aggregate ({:.2} s first spawn to last exit, {:.2}× one \
             process), receiver {} requests / {} distinct webhook-ids / {} connections",
            thousands(aggregate),
            wall.as_secs_f64(),
            aggregate / single,
            seen.requests,
            seen.distinct_ids,
            seen.connections,
        ));
        section.row(
            &format!("Scale-out, {k} sweep process(es), aggregate deliveries/s"),
            format!("{} ({:.2}×)", thousands(aggregate), aggregate / single),
            "—",
            Verdict::Reported,
        );
        duplicates.push(dups);
    }
    let total: usize = duplicates.iter().sum();
    section.row(
        "Scale-out, duplicates at the receiver (1, 2, 4 processes)",
        duplicates
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        "0",
        Verdict::of(total == 0),
    );
    Ok(section)
}
