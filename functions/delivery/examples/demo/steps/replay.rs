//! Step 6: a receiver answering 400, the delivery failed at once, then replayed after the fix.

use anyhow::Context as _;
use delivery::receiver::Verdict;
use serde_json::Value;

use crate::demo_db::Booking;
use crate::show::{Show, cell};
use crate::sweeper::summary;

use crate::checks::{check_accepted, short, sweep};
use crate::stage::Stage;
use crate::steps::GRACE;

pub(crate) async fn step_6(show: &Show, stage: &mut Stage) -> anyhow::Result<()> {
    show.heading(
        "6. The receiver answers 400 → failed at once; after the fix, a replay delivers it",
    );
    show.say("A receiver bug rejects every notification with 400. A 4xx other than 408, 425 and 429 will not get better by retrying, so the delivery fails at once, with the receiver's answer kept for the operator.");
    let port = stage.receiver()?.port;
    stage.stop_receiver().await?;
    show.run("webhooks receiver --status 400");
    stage.start_receiver(port, &["--status", "400"]).await?;
    let edsger = Booking {
        student: "Edsger",
        student_email: Some("edsger@example.com"),
        subject: "Algorithms",
        ..GRACE
    };
    let booking = stage.book(show, &edsger).await?;
    let received = stage.receiver()?.next().await?;
    show.received(&received);
    let delivery = stage
        .db()?
        .delivery_after(booking, "new_request", "pending")
        .await?;
    show.check(
        delivery.status == "failed"
            && delivery.attempt_count == 1
            && delivery.last_status_code == Some(400)
            && delivery.next_retry_at.is_none()
            && received.verdict == Verdict::FailedOnPurpose,
        &format!(
            "delivery {} failed on attempt 1 with HTTP 400, no retry scheduled; last_error: {}",
            short(delivery.id),
            cell(&delivery.last_error)
        ),
        format!(
            "{} after {} attempts (HTTP {})",
            delivery.status,
            delivery.attempt_count,
            cell(&delivery.last_status_code)
        ),
    )?;

    show.say("The fix is deployed (the receiver restarts without --status), and the operator replays the failed delivery: it is requeued with a fresh retry budget, and the next sweep sends it.");
    stage.stop_receiver().await?;
    stage.start_receiver(port, &[]).await?;
    show.run(&format!("webhooks replay {}", delivery.id));
    let env = stage.env()?;
    let replay = env
        .command(&env.webhooks)
        .args(["replay", &delivery.id.to_string(), "--json"])
        .stderr(env.log("replay")?)
        .output()
        .await?;
    let replayed: Value = serde_json::from_slice(&replay.stdout).with_context(|| {
        format!(
            "webhooks replay failed ({}); see target/demo/replay.log",
            replay.status
        )
    })?;
    show.result(&format!(
        "requeued {}, due now {}, still failed {}",
        replayed["requeued"], replayed["dueNow"], replayed["stillFailed"]
    ));
    show.check(replayed["requeued"] == 1, "requeued", &replayed)?;
    let report = sweep(show, stage).await?;
    let received = stage.receiver()?.next().await?;
    let delivery = stage.db()?.delivery(booking, "new_request").await?;
    show.check(
        report["succeeded"] == 1,
        "the sweep delivered it",
        summary(&report),
    )?;
    check_accepted(show, &received, &delivery, "new_request", booking)?;
    show.check(
        delivery.status == "succeeded" && delivery.attempt_count == 2,
        "succeeded on attempt 2",
        format!(
            "{} after {} attempts",
            delivery.status, delivery.attempt_count
        ),
    )
}
