//! Step 5: a booking approved then rejected while the receiver is down: the approval superseded,
//! only the rejection delivered.

use std::time::Duration;

use uuid::Uuid;

use crate::demo_db::Booking;
use crate::show::{Show, cell};
use crate::sweeper::summary;

use crate::checks::{check_accepted, expect_dispatched, gap, short, sweep};
use crate::stage::{MINUTE, Stage};
use crate::steps::GRACE;

pub(crate) async fn step_5(show: &Show, stage: &mut Stage) -> anyhow::Result<()> {
    show.heading(
        "5. Approved, then rejected while the service is down → only the rejection is sent",
    );
    show.say("Katherine books with Grace and Grace hears about it. Then the service goes down: Grace approves, and the approval cannot be delivered; she changes her mind and rejects. Sent now, the approval would tell Katherine something no longer true, so the claim that would send it ends it superseded instead (WEBHOOK_SUPERSEDE, on by default: docs/superseded.md). Only the current decision is delivered.");
    let katherine = Booking {
        student: "Katherine",
        student_email: Some("katherine@example.com"),
        subject: "Astronomy",
        ..GRACE
    };
    let booking = stage.book(show, &katherine).await?;
    expect_dispatched(show, stage, booking, "new_request").await?;
    let port = stage.receiver()?.port;
    stage.stop_receiver().await?;
    show.ok("receiver stopped");
    let mut decisions = Vec::new();
    for status in ["approved", "rejected"] {
        stage.decide(show, booking, status).await?;
        decisions.push(
            stage
                .db()?
                .delivery_after(booking, status, "pending")
                .await?,
        );
    }
    let (approval, rejection) = (&decisions[0], &decisions[1]);
    show.check(
        decisions.iter().all(|d| {
            d.status == "retrying"
                && d.attempt_count == 1
                && (5 * MINUTE..5 * MINUTE + Duration::from_secs(10)).contains(&gap(d))
        }),
        "each failed to connect on attempt 1 → both retrying, due in 5 minutes",
        format!(
            "approval {} after {}, rejection {} after {} attempts",
            approval.status, approval.attempt_count, rejection.status, rejection.attempt_count
        ),
    )?;

    show.say("The receiver comes back and five minutes pass: the sweep takes both retries.");
    stage.start_receiver(port, &[]).await?;
    show.ok("receiver running again");
    let ids: Vec<Uuid> = decisions.iter().map(|d| d.id).collect();
    stage.db()?.travel(&ids, 5 * MINUTE).await?;
    let report = sweep(show, stage).await?;
    let received = stage.receiver()?.next().await?;
    let rejection = stage.db()?.delivery(booking, "rejected").await?;
    let approval = stage.db()?.delivery(booking, "approved").await?;
    show.check(
        report["superseded"] == 1 && report["succeeded"] == 1,
        "the sweep superseded one notification and delivered one",
        summary(&report),
    )?;
    check_accepted(show, &received, &rejection, "rejected", booking)?;
    show.check(
        approval.status == "superseded"
            && approval.superseded_by == Some(rejection.id)
            && approval.attempt_count == 1,
        &format!(
            "the approval {} is superseded by the rejection {}: the receiver never gets it; its one refused attempt is kept",
            short(approval.id),
            short(rejection.id)
        ),
        format!(
            "{} (superseded_by {}) after {} attempts",
            approval.status,
            cell(&approval.superseded_by),
            approval.attempt_count
        ),
    )?;
    show.run(&format!(
        "SELECT webhook_type, status, superseded_by FROM webhook_deliveries WHERE booking_id = '{booking}' ORDER BY capture_seq;"
    ));
    let rows = stage
        .db()?
        .text_rows(&format!(
            "SELECT webhook_type, status, coalesce(left(superseded_by::text, 8), '-') FROM webhook_deliveries WHERE booking_id = '{booking}' ORDER BY capture_seq"
        ))
        .await?;
    show.table(&["webhook_type", "status", "superseded_by"], &rows);
    Ok(())
}
