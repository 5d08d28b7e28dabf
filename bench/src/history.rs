//! History does not slow the hot path: the engine's sweep (in process, the library call
//! `webhooks sweep` makes, against nginx) timed with 1,000 resolved historic deliveries and
//! again after growing them to `BENCH_HISTORY_ROWS` (1,000,000): an empty sweep (nothing due)
//! and a 100-row sweep (100 bookings captured just before). Historic rows are written
//! directly — succeeded, resolved, one attempt each — as years of traffic would leave them.
//! Then the plan of the sweep's claim, which must use a partial index (one whose predicate
//! leaves resolved rows out).

use std::time::{Duration, Instant};

use anyhow::bail;
use delivery::Clock;
use delivery::sweep::SweepOptions;

use crate::ctx::Ctx;
use crate::nginx::Nginx;
use crate::pg::{self, Scratch};
use crate::report::{Section, Verdict};
use crate::stats::{median, ms, thousands};

const SMALL: u64 = 1_000;
const EMPTY_SWEEPS: usize = 31;
const HUNDRED_SWEEPS: usize = 7;
/// "The same cost": the large history's median within this factor of the small one's.
const SAME: f64 = 1.25;

pub async fn run(ctx: &mut Ctx) -> anyhow::Result<Section> {
    let scratch = Scratch::create("history").await?;
    scratch.set("webhooks.notify", "off").await?;
    let nginx = Nginx::start(&ctx.file("nginx")).await?;
    let result = measure(ctx, &scratch, &nginx.url()).await;
    let seen = nginx.stop().await;
    scratch.drop().await?;
    let mut section = result?;
    let seen = seen?;
    if seen.requests != seen.distinct_ids {
        bail!(
            "the receiver saw {} requests for {} webhook-ids",
            seen.requests,
            seen.distinct_ids
        );
    }
    section.line(format!(
        "- the receiver saw {} requests, one per webhook-id",
        thousands(seen.requests as f64)
    ));
    Ok(section)
}

async fn measure(ctx: &mut Ctx, scratch: &Scratch, webhook_url: &str) -> anyhow::Result<Section> {
    let db = scratch.client().await?;
    let deps = delivery::Deps::new(ctx.engine_config(&scratch.url, webhook_url)?)?;
    let big = ctx.knobs.history_rows;
    let mut section = Section::new("History and the hot path");
    add_history(&db, SMALL).await?;
    let (empty_small, hundred_small) = timings(&db, &deps).await?;
    add_history(&db, big - SMALL).await?;
    let (empty_big, hundred_big) = timings(&db, &deps).await?;
    for (rows, empty, hundred) in [
        (SMALL, empty_small, hundred_small),
        (big, empty_big, hundred_big),
    ] {
        section.line(format!(
            "- {} historic rows: empty sweep median {empty:.2} ms (of {EMPTY_SWEEPS}), 100-row \
             sweep median {hundred:.2} ms (of {HUNDRED_SWEEPS})",
            thousands(rows as f64)
        ));
    }
    let label = format!(
        "{} vs {} historic rows",
        thousands(big as f64),
        thousands(SMALL as f64)
    );
    let empty_ratio = empty_big / empty_small;
    let hundred_ratio = hundred_big / hundred_small;
    section.row(
        &format!("Empty sweep, {label} (time ratio)"),
        format!("{empty_ratio:.2} ({empty_big:.2} / {empty_small:.2} ms)"),
        "≤ 1.25 (the same)",
        Verdict::of(empty_ratio <= SAME),
    );
    section.row(
        &format!("100-row sweep, {label} (time ratio)"),
        format!("{hundred_ratio:.2} ({hundred_big:.2} / {hundred_small:.2} ms)"),
        "≤ 1.25 (the same)",
        Verdict::of(hundred_ratio <= SAME),
    );
    let (partial, plan) = claim_plan(&db).await?;
    section.line(format!(
        "- plan of the sweep's claim with {} historic rows (EXPLAIN, `delivery::sql::DUE_CLAIM`):",
        thousands(big as f64)
    ));
    section.line(String::new());
    section.line("```");
    section.lines.extend(plan.lines().map(str::to_owned));
    section.line("```");
    section.row(
        "EXPLAIN of the claim uses a partial index",
        if partial.is_empty() {
            "no".into()
        } else {
            format!("yes ({})", partial.join(", "))
        },
        "yes",
        Verdict::of(!partial.is_empty()),
    );
    Ok(section)
}

/// Medians (ms) of the empty sweeps and of the 100-row sweeps.
async fn timings(db: &tokio_postgres::Client, deps: &delivery::Deps) -> anyhow::Result<(f64, f64)> {
    let mut empty = Vec::new();
    for _ in 0..EMPTY_SWEEPS {
        let (took, sent) = sweep(deps).await?;
        if sent != 0 {
            bail!("an empty sweep sent {sent}");
        }
        empty.push(ms(took));
    }
    let mut hundred = Vec::new();
    for _ in 0..HUNDRED_SWEEPS {
        pg::backlog(db, 100).await?;
        let (took, sent) = sweep(deps).await?;
        if sent != 100 {
            bail!("a 100-row sweep delivered {sent}");
        }
        hundred.push(ms(took));
    }
    Ok((median(&empty), median(&hundred)))
}

async fn sweep(deps: &delivery::Deps) -> anyhow::Result<(Duration, usize)> {
    let options = SweepOptions {
        batch_size: deps.config.sweep_batch,
        budget: Duration::from_secs(600),
        deadline: None,
    };
    let started = Instant::now();
    let report = delivery::sweep::sweep(deps, options, Clock::System).await?;
    Ok((started.elapsed(), report.succeeded))
}

/// Adds `n` resolved deliveries (succeeded, one attempt each, spread over the past), then
/// VACUUM ANALYZE.
async fn add_history(db: &tokio_postgres::Client, n: u64) -> anyhow::Result<()> {
    db.execute(
        "WITH d AS (
            INSERT INTO webhook_deliveries
                   (booking_id, webhook_type, recipient_email, payload, status, attempt_count,
                    next_retry_at, last_status_code, last_attempt_at, created_at, resolved_at)
            SELECT b, 'new_request', 'tutor@example.com',
                   jsonb_build_object('type', 'new_request', 'bookingId', b,
                                      'email', 'tutor@example.com'),
                   'succeeded', 1, NULL, 200, t, t, t
              FROM (SELECT gen_random_uuid() AS b,
                           now() - interval '1 hour' - i * interval '1 second' AS t
                      FROM generate_series(1, $1::bigint) i) s
            RETURNING id, last_attempt_at)
         INSERT INTO webhook_attempts (delivery_id, attempt, started_at, duration_ms, status_code)
         SELECT id, 1, last_attempt_at, 5, 200 FROM d",
        &[&i64::try_from(n)?],
    )
    .await?;
    db.batch_execute("VACUUM ANALYZE webhook_deliveries, webhook_attempts, booking_requests")
        .await?;
    Ok(())
}

/// The claim's plan, and the partial indexes of `webhook_deliveries` it names.
async fn claim_plan(db: &tokio_postgres::Client) -> anyhow::Result<(Vec<String>, String)> {
    db.batch_execute(&format!(
        "PREPARE bench_claim AS {}",
        delivery::sql::DUE_CLAIM
    ))
    .await?;
    let rows = db
        .query(
            "EXPLAIN (COSTS OFF) EXECUTE bench_claim(NULL, NULL, 30000, 100, true)",
            &[],
        )
        .await?;
    let plan: String = rows.iter().map(|r| r.get::<_, String>(0) + "\n").collect();
    db.batch_execute("DEALLOCATE bench_claim").await?;
    let partial: Vec<String> = db
        .query(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
              WHERE i.indrelid = 'webhook_deliveries'::regclass AND i.indpred IS NOT NULL",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get::<_, String>(0))
        .filter(|name| plan.contains(name.as_str()))
        .collect();
    Ok((partial, plan))
}
