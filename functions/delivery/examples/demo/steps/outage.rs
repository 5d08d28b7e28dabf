//! Step 4: the receiver down, the attempts failing on the 5/15/45-minute plan, then delivered
//! by the `retry-sweep` Lambda.

use std::time::Duration;

use crate::demo_db::{Booking, clock};
use crate::show::{Show, cell};
use crate::sweeper::summary;

use crate::checks::{check_accepted, gap, gist, gist_column, sweep};
use crate::stage::{MINUTE, Stage};
use crate::steps::GRACE;

pub(crate) async fn step_4(show: &Show, stage: &mut Stage) -> anyhow::Result<()> {
    show.heading("4. The notification service goes down → the attempt fails and is retried later");
    show.say("The demo stops the receiver. Barbara books a lesson with Grace; the dispatcher's attempt cannot connect. That is an outcome to record, not an error: the delivery waits for its next attempt.");
    let port = stage.receiver()?.port;
    stage.stop_receiver().await?;
    show.ok("receiver stopped");
    let barbara = Booking {
        student: "Barbara",
        student_email: Some("barbara@example.com"),
        subject: "Chemistry",
        ..GRACE
    };
    let booking = stage.book(show, &barbara).await?;
    let delivery = stage
        .db()?
        .delivery_after(booking, "new_request", "pending")
        .await?;
    let attempts = stage.db()?.attempts(delivery.id).await?;
    let gap = gap(&delivery);
    show.check(
        delivery.status == "retrying"
            && attempts.len() == 1
            && attempts[0].error_kind.as_deref() == Some("connect")
            && delivery.max_retries == 3
            && (5 * MINUTE..5 * MINUTE + 10 * Duration::from_secs(1)).contains(&gap),
        "attempt 1 failed to connect → retrying, attempt 2 due in 5 minutes",
        format!(
            "{} after {} attempts, next attempt {gap:?} after the last",
            delivery.status,
            attempts.len()
        ),
    )?;
    let first = delivery.last_attempt_at.map(clock).unwrap_or_default();
    let due = delivery.next_retry_at.map(clock).unwrap_or_default();
    show.say("The plan for this delivery (max_retries = 3: four attempts in all):");
    show.table(
        &["attempt", "when", "outcome"],
        &[
            vec![
                "1".into(),
                first,
                "connect: nothing listens → retrying".into(),
            ],
            vec![
                "2".into(),
                format!("{due}  (+5 min)"),
                "next_retry_at".into(),
            ],
            vec![
                "3".into(),
                "15 min after attempt 2 fails".into(),
                String::new(),
            ],
            vec![
                "4".into(),
                "45 min after attempt 3 fails".into(),
                "if it fails too: failed".into(),
            ],
        ],
    );
    show.say("An operator sees it with the seed's own query:");
    show.run("SELECT webhook_type, attempt_count, last_error, next_retry_at FROM webhook_failures WHERE status = 'retrying';");
    let rows = stage
        .db()?
        .text_rows("SELECT webhook_type, attempt_count, last_error, to_char(next_retry_at AT TIME ZONE 'UTC', 'HH24:MI:SS\"Z\"') FROM webhook_failures WHERE status = 'retrying'")
        .await?;
    let rows = gist_column(rows, 2);
    show.table(
        &[
            "webhook_type",
            "attempt_count",
            "last_error",
            "next_retry_at",
        ],
        &rows,
    );

    show.say("Nobody waits five minutes here. The demo moves time forward by moving this delivery's timestamps (its row and its attempts) five minutes into the past: to the sweep, which reads the real clock, that is exactly five minutes passing. The engine is not touched.");
    stage.db()?.travel(&[delivery.id], 5 * MINUTE).await?;
    let report = sweep(show, stage).await?;
    let delivery = stage.db()?.delivery(booking, "new_request").await?;
    show.check(
        report["processed"] == 1 && report["retrying"] == 1 && delivery.attempt_count == 2,
        "the sweep retried it: still down, so attempt 2 failed → attempt 3 due in 15 minutes",
        format!(
            "{} and the delivery is {} after {} attempts",
            summary(&report),
            delivery.status,
            delivery.attempt_count
        ),
    )?;
    let gap = self::gap(&delivery);
    show.check(
        (15 * MINUTE..15 * MINUTE + Duration::from_secs(10)).contains(&gap),
        "the next delay is 15 minutes, as planned",
        format!("{gap:?}"),
    )?;

    show.say("The receiver comes back (same port, so WEBHOOK_URL is unchanged), and fifteen more minutes pass.");
    stage.start_receiver(port, &[]).await?;
    show.ok("receiver running again");
    stage.db()?.travel(&[delivery.id], 15 * MINUTE).await?;
    let report = sweep(show, stage).await?;
    let received = stage.receiver()?.next().await?;
    let delivery = stage.db()?.delivery(booking, "new_request").await?;
    show.check(
        report["succeeded"] == 1,
        "the sweep delivered it",
        summary(&report),
    )?;
    check_accepted(show, &received, &delivery, "new_request", booking)?;
    let attempts = stage.db()?.attempts(delivery.id).await?;
    show.check(
        delivery.status == "succeeded" && attempts.len() == 3,
        "succeeded on attempt 3, under the same webhook-id as attempts 1 and 2 (the receiver can deduplicate)",
        format!("{} after {} attempts", delivery.status, attempts.len()),
    )?;
    show.table(
        &[
            "attempt",
            "started_at",
            "status_code",
            "error_kind",
            "error",
        ],
        &attempts
            .iter()
            .map(|a| {
                vec![
                    a.attempt.to_string(),
                    clock(a.started_at),
                    cell(&a.status_code),
                    cell(&a.error_kind),
                    a.error.as_deref().map_or("-".into(), gist),
                ]
            })
            .collect::<Vec<_>>(),
    );
    show.say("(The started_at times are the moved ones: 20 and 15 minutes before attempt 3, as if the outage had really lasted that long.)");
    Ok(())
}
