//! Steps 1 to 3: a booking delivered and its signature verified; an approval and a rejection;
//! a booking without a tutor address, skipped.

use uuid::Uuid;

use crate::demo_db::Booking;
use crate::show::{Show, cell};

use crate::checks::{expect_dispatched, short};
use crate::stage::Stage;

pub(crate) const GRACE: Booking = Booking {
    student: "Ada",
    student_email: Some("ada@example.com"),
    tutor: "Grace",
    tutor_email: Some("grace@example.com"),
    subject: "Maths",
};

pub(crate) async fn step_1(show: &Show, stage: &mut Stage) -> anyhow::Result<Uuid> {
    show.heading("1. Ada books a lesson with Grace → Grace hears about it");
    show.say("The insert fires a trigger that writes the notification into webhook_deliveries in the same transaction: a committed booking always has its notification, a rolled-back one never sends one. On commit Postgres NOTIFYs the dispatcher, which claims the row, signs the payload and POSTs it.");
    let booking = stage.book(show, &GRACE).await?;
    expect_dispatched(show, stage, booking, "new_request").await?;
    Ok(booking)
}

pub(crate) async fn step_2(show: &Show, stage: &mut Stage, grace: Uuid) -> anyhow::Result<()> {
    show.heading("2. Grace approves; another request is rejected → each student hears the answer");
    show.say("Only a real change of status into approved or rejected captures a notification, addressed to the student this time.");
    stage.decide(show, grace, "approved").await?;
    expect_dispatched(show, stage, grace, "approved").await?;

    let linus = Booking {
        student: "Linus",
        student_email: Some("linus@example.com"),
        subject: "Physics",
        ..GRACE
    };
    let booking = stage.book(show, &linus).await?;
    expect_dispatched(show, stage, booking, "new_request").await?;
    stage.decide(show, booking, "rejected").await?;
    expect_dispatched(show, stage, booking, "rejected").await?;
    Ok(())
}

pub(crate) async fn step_3(show: &Show, stage: &mut Stage) -> anyhow::Result<()> {
    show.heading("3. A booking with no tutor email yet → skipped, and the booking still commits");
    show.say("With nobody to notify, the trigger records the notification as skipped with the reason. It never fails the booking and never calls out.");
    let alan = Booking {
        student: "Alan",
        student_email: Some("alan@example.com"),
        tutor: "(to be assigned)",
        tutor_email: None,
        subject: "Logic",
    };
    let booking = stage.book(show, &alan).await?;
    let db = stage.db()?;
    show.check(
        db.booking_exists(booking).await?,
        "the booking committed",
        "no booking row",
    )?;
    let delivery = db.delivery(booking, "new_request").await?;
    let attempts = db.attempts(delivery.id).await?;
    show.check(
        delivery.status == "skipped"
            && delivery.last_error.as_deref() == Some("booking has no tutor_email")
            && attempts.is_empty(),
        &format!(
            "delivery {} is skipped (\"booking has no tutor_email\"): recorded, never sent",
            short(delivery.id)
        ),
        format!(
            "{} ({}), {} attempts",
            delivery.status,
            cell(&delivery.last_error),
            attempts.len()
        ),
    )
}
