//! Step 8: an outage three times longer than the whole retry schedule. The circuit breaker
//! opens, deliveries are held (not failed, no retry spent), only probes reach the service,
//! and when it is back the backlog drains under the slow start.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::bail;

use crate::checks::sweep;
use crate::procs::PATIENCE;
use crate::stage::{MINUTE, Stage};
use crate::sweeper::summary;

/// Bookings made as the service goes down: fewer than WEBHOOK_BREAKER_AFTER (20), so the
/// dispatcher's failures alone do not open the breaker; the sweep's do.
const N: i64 = 12;

pub(crate) async fn step_8(show: &crate::show::Show, stage: &mut Stage) -> anyhow::Result<()> {
    show.heading("8. A long outage → deliveries are held, not failed, and recovery is paced");
    show.say("The notification service is someone else's. This time it goes down for three hours — three times the whole retry schedule — while bookings keep coming. The seed would have failed them all after 65 minutes. Here a circuit breaker, shared by every worker through webhook_endpoints, notices that the service as a whole is failing and holds the deliveries instead.");
    let port = stage.receiver()?.port;
    stage.stop_receiver().await?;
    show.ok("receiver stopped");
    show.run(&format!(
        "INSERT INTO booking_requests (student_name, tutor_name, tutor_email, subject) SELECT 'Student ' || i, 'Hedy', 'hedy@example.com', 'Physics' FROM generate_series(1, {N}) i;"
    ));
    let ids = stage.db()?.book_many(N, "Hedy").await?;
    // The dispatcher tries each at once and fails to connect.
    wait_for(stage, &ids, "attempt_count = 1").await?;
    show.ok(&format!(
        "the dispatcher tried all {N} at once: connect errors, retrying in 5 minutes"
    ));

    show.say("Five minutes pass (the demo moves the deliveries' and the breaker's timestamps back). The sweep retries them: all fail again — now more than WEBHOOK_BREAKER_AFTER (20) failures in a row — and the breaker opens. Those last failures are logged but not counted: the retries they would have used are still there.");
    stage.db()?.travel(&ids, 5 * MINUTE).await?;
    stage.db()?.travel_endpoints(5 * MINUTE).await?;
    let report = sweep(show, stage).await?;
    let open = state(stage).await?;
    show.check(
        open.0 == "open" && report["failed"] == 0,
        "the breaker is open, nothing failed",
        format!("breaker {}, {}", open.0, summary(&report)),
    )?;
    let kept = stage
        .db()?
        .count_of(
            "SELECT count(*) FROM webhook_deliveries WHERE id = ANY($1) AND status = 'retrying' AND max_retries + 1 - attempt_count = 3",
            &ids,
        )
        .await?;
    show.check(
        kept == N,
        "every delivery still has 3 retries left, as after its first attempt: the failures while the breaker is open did not count",
        format!("{kept} of {N}"),
    )?;

    show.say("Three hours pass, a sweep after each: the breaker lets one probe through once its cool-down is over (doubling from 60 s up to 10 minutes); everything else waits.");
    let mut probes = 0;
    for _ in 0..3 {
        stage.db()?.travel(&ids, 60 * MINUTE).await?;
        stage.db()?.travel_endpoints(60 * MINUTE).await?;
        let report = sweep(show, stage).await?;
        probes += report["probes"].as_u64().unwrap_or(0);
        if report["failed"] != 0 {
            bail!("a delivery failed during the outage: {report}");
        }
    }
    let attempts = stage
        .db()?
        .count_of(
            "SELECT count(*) FROM webhook_attempts WHERE delivery_id = ANY($1)",
            &ids,
        )
        .await?;
    let failed = stage
        .db()?
        .count_of(
            "SELECT count(*) FROM webhook_deliveries WHERE id = ANY($1) AND status = 'failed'",
            &ids,
        )
        .await?;
    show.check(
        failed == 0 && probes == 3 && attempts == 2 * N + 3,
        "after 3 h 5 min of outage: nothing failed, and the only requests were the 3 probes",
        format!("{failed} failed, {probes} probes, {attempts} attempts in all"),
    )?;
    show.say("The operator sees it in `webhooks stats` and `webhooks doctor` (breaker open for 3 h, deliveries held), the BreakerOpenFor metric and the breaker-open alarm.");

    show.say("The service comes back. At the next sweep the probe succeeds, the breaker closes, and the same sweep drains the backlog — not all at once: a slow start from 10 requests a second, doubling every second, so a service that has just recovered is not knocked over again.");
    stage.start_receiver(port, &[]).await?;
    show.ok("receiver running again");
    stage.db()?.travel(&ids, 10 * MINUTE).await?;
    stage.db()?.travel_endpoints(10 * MINUTE).await?;
    let report = sweep(show, stage).await?;
    let mut arrivals = Vec::new();
    let mut seen = HashSet::new();
    for _ in 0..N {
        let received = stage.receiver()?.next().await?;
        seen.insert(received.webhook_id.clone().unwrap_or_default());
        arrivals.push(received.at);
    }
    arrivals.sort();
    let first = arrivals.first().copied().unwrap_or_default();
    let last = arrivals.last().copied().unwrap_or_default();
    // The probe, then the rest at 10 a second: spread over a second at least (unpaced, they
    // would all arrive within a few milliseconds).
    let spread =
        (last - arrivals.get(1).copied().unwrap_or(first)).num_milliseconds() as f64 / 1000.0;
    show.check(
        report["succeeded"] == N && seen.len() == N as usize && state(stage).await?.0 == "closed",
        &format!("all {N} delivered, each once; the breaker is closed"),
        summary(&report),
    )?;
    show.check(
        spread >= 0.8,
        "paced: after the probe, the other 11 at the slow start's 10 a second",
        format!("the 11 after the probe arrived over {spread:.1} s"),
    )?;
    stage.stop_receiver().await?;
    show.ok(&format!(
        "the receiver got {} requests in all, each one the story expected: no duplicate, no stray retry",
        stage.requests
    ));
    Ok(())
}

/// The breaker's state and failure count.
async fn state(stage: &Stage) -> anyhow::Result<(String, i32)> {
    let db = stage.db()?.pool.get().await?;
    let row = db
        .query_one("SELECT state, failures FROM webhook_endpoints", &[])
        .await?;
    Ok((row.get(0), row.get(1)))
}

/// Waits until every one of `ids` satisfies `condition` (the dispatcher works in the
/// background).
async fn wait_for(stage: &Stage, ids: &[uuid::Uuid], condition: &str) -> anyhow::Result<()> {
    let sql = format!("SELECT count(*) FROM webhook_deliveries WHERE id = ANY($1) AND {condition}");
    let started = tokio::time::Instant::now();
    while stage.db()?.count_of(&sql, ids).await? < ids.len() as i64 {
        if started.elapsed() > PATIENCE {
            bail!(
                "the dispatcher did not try them within {PATIENCE:?}; see target/demo/dispatcher.log"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await; // polling the outcome
    }
    Ok(())
}
