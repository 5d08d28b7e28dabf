//! What the engine observed during one invocation: counted as it happens, inside the scope of
//! [`collect`] (outside it, as in `webhooks sweep` or `listen`, nothing is counted).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use crate::status::DeliveryStatus;

/// Outcomes of one webhook type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TypeCounts {
    /// Attempts that ended `succeeded`.
    pub succeeded: u64,
    /// Attempts that ended `retrying`.
    pub retrying: u64,
    /// Attempts that ended `failed`.
    pub failed: u64,
}

/// What the engine did during one invocation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Outcomes per webhook type (only types seen).
    pub by_type: BTreeMap<String, TypeCounts>,
    /// Deliveries that ended `superseded`.
    pub superseded: u64,
    /// Expired leases taken over.
    pub reclaimed: u64,
    /// Latency of every attempt, in milliseconds.
    pub latencies_ms: Vec<f64>,
    /// Requests that waited for their slot under the endpoint's pace (rate ceiling, slow
    /// start).
    pub throttled: u64,
    /// Held deliveries failed for being held longer than `WEBHOOK_HOLD_MAX`.
    pub holds_expired: u64,
}

impl Tally {
    /// Counts one attempt. `recorded` is false when another worker took the delivery over
    /// while it was in flight: the attempt's latency counts, its outcome is not ours to report.
    pub fn observe(
        &mut self,
        webhook_type: &str,
        status: DeliveryStatus,
        latency_ms: i32,
        reclaimed: bool,
        recorded: bool,
    ) {
        self.latencies_ms.push(f64::from(latency_ms.max(0)));
        self.reclaimed += u64::from(reclaimed);
        if !recorded {
            return;
        }
        let counts = self.by_type.entry(webhook_type.to_owned()).or_default();
        match status.as_str() {
            "succeeded" => counts.succeeded += 1,
            "retrying" => counts.retrying += 1,
            "failed" => counts.failed += 1,
            "superseded" => self.superseded += 1,
            _ => {}
        }
    }

    pub(crate) fn total(&self) -> TypeCounts {
        self.by_type
            .values()
            .fold(TypeCounts::default(), |sum, c| TypeCounts {
                succeeded: sum.succeeded + c.succeeded,
                retrying: sum.retrying + c.retrying,
                failed: sum.failed + c.failed,
            })
    }
}

tokio::task_local! {
    static TALLY: Arc<Mutex<Tally>>;
}

/// Runs `work` (one handler invocation) and returns its output with what the engine observed
/// meanwhile. Outside such a scope [`observe`] does nothing (`webhooks sweep`, `listen`).
pub async fn collect<F: Future>(work: F) -> (F::Output, Tally) {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let output = TALLY.scope(tally.clone(), work).await;
    let tally = std::mem::take(&mut *tally.lock().unwrap_or_else(|e| e.into_inner()));
    (output, tally)
}

/// Counts one attempt towards the current invocation (see [`Tally::observe`]).
pub fn observe(
    webhook_type: &str,
    status: DeliveryStatus,
    latency_ms: i32,
    reclaimed: bool,
    recorded: bool,
) {
    let _ = TALLY.try_with(|tally| {
        tally.lock().unwrap_or_else(|e| e.into_inner()).observe(
            webhook_type,
            status,
            latency_ms,
            reclaimed,
            recorded,
        );
    });
}

/// Counts one delivery a claim ended `superseded` towards the current invocation: no attempt,
/// so no latency; `reclaimed` when its expired lease was taken over.
pub fn observe_superseded(reclaimed: bool) {
    let _ = TALLY.try_with(|tally| {
        let mut tally = tally.lock().unwrap_or_else(|e| e.into_inner());
        tally.superseded += 1;
        tally.reclaimed += u64::from(reclaimed);
    });
}

/// Counts one request that waited for its slot under the endpoint's pace.
pub fn observe_throttled() {
    let _ = TALLY.try_with(|tally| {
        tally.lock().unwrap_or_else(|e| e.into_inner()).throttled += 1;
    });
}

/// Counts `n` held deliveries failed for being held longer than `WEBHOOK_HOLD_MAX`.
pub fn observe_holds_expired(n: u64) {
    let _ = TALLY.try_with(|tally| {
        tally
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .holds_expired += n;
    });
}
