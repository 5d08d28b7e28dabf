//! Checks and small helpers the steps share: a request the receiver accepted, a dispatch that
//! happened, the gap between retries, a sweep's report, errors in short.

use std::time::Duration;

use delivery::receiver::{Received, Verdict};
use serde_json::Value;
use uuid::Uuid;

use crate::demo_db::Delivery;
use crate::show::{Show, cell};
use crate::sweeper::summary;

use crate::stage::Stage;

/// Shows and checks the receiver's record of one delivery that it accepted.
pub(crate) fn check_accepted(
    show: &Show,
    received: &Received,
    delivery: &Delivery,
    kind: &str,
    booking: Uuid,
) -> anyhow::Result<()> {
    show.received(received);
    show.check(
        received.verdict == Verdict::Accepted
            && received.signature_verified
            && received.webhook_id == Some(delivery.id.to_string())
            && received.webhook_type.as_deref() == Some(kind)
            && received.booking_id == Some(booking.to_string()),
        &format!(
            "{kind} arrived as webhook-id {}: bearer token and signature verified",
            short(delivery.id)
        ),
        format!("{received:?}"),
    )
}

/// Sends nothing itself: waits for the dispatcher's attempt, then checks the receiver and the row.
pub(crate) async fn expect_dispatched(
    show: &Show,
    stage: &mut Stage,
    booking: Uuid,
    kind: &str,
) -> anyhow::Result<Delivery> {
    let received = stage.receiver()?.next().await?;
    let delivery = stage.db()?.delivery_after(booking, kind, "pending").await?;
    check_accepted(show, &received, &delivery, kind, booking)?;
    show.check(
        delivery.status == "succeeded"
            && delivery.attempt_count == 1
            && delivery.last_status_code == Some(200),
        &format!(
            "delivery {} is succeeded after 1 attempt (HTTP 200)",
            short(delivery.id)
        ),
        format!(
            "{} after {} attempts (HTTP {})",
            delivery.status,
            delivery.attempt_count,
            cell(&delivery.last_status_code)
        ),
    )?;
    Ok(delivery)
}

/// Time from the last attempt to the next one.
pub(crate) fn gap(delivery: &Delivery) -> Duration {
    match (delivery.last_attempt_at, delivery.next_retry_at) {
        (Some(last), Some(next)) => (next - last).to_std().unwrap_or_default(),
        _ => Duration::ZERO,
    }
}

/// One sweep, narrated.
pub(crate) async fn sweep(show: &Show, stage: &mut Stage) -> anyhow::Result<Value> {
    let sweeper = stage.sweeper()?;
    show.run(&sweeper.command());
    let report = sweeper.sweep().await?;
    show.result(&summary(&report));
    Ok(report)
}

/// A long error chain shortened to its first and last parts: `connect: … Connection refused`.
pub(crate) fn gist(error: &str) -> String {
    let parts: Vec<&str> = error.split(": ").collect();
    match parts.as_slice() {
        [first, .., last] if error.chars().count() > 60 => format!("{first}: … {last}"),
        _ => error.to_owned(),
    }
}

pub(crate) fn gist_column(mut rows: Vec<Vec<String>>, column: usize) -> Vec<Vec<String>> {
    for row in &mut rows {
        if let Some(cell) = row.get_mut(column) {
            *cell = gist(cell);
        }
    }
    rows
}

/// The first 8 characters of an id, as the receiver prints it.
pub(crate) fn short(id: Uuid) -> String {
    id.simple().to_string()[..8].to_owned()
}
