//! The fault suite (`make test-faults`): delivery keeps its guarantees under faults, on a real
//! Postgres and real receivers. Each scenario prints one line of figures:
//!
//! `fault-suite <scenario>: runs=… faults=… deliveries=… lost=… duplicates=…`
//!
//! - runs: handler invocations (dispatches and sweeps, killed ones included);
//! - faults: faults injected (refused connections, restarts, killed backends or processes,
//!   hostile answers, invocations cut at their deadline);
//! - lost: deliveries that did not end in the state the scenario requires;
//! - duplicates: requests beyond the first per `webhook-id` (a receiver drops them by id).
//!
//! # Layout
//! - `receiver_down`: the receiver refuses every connection for the whole lifecycle.
//! - `crash`: the server crashes right after a claim of approvals; per-booking order holds.
//! - `database`: Postgres stopped mid-sweep (a throwaway cluster), backends terminated.
//! - `killed`: a `webhooks sweep` process SIGKILLed mid-batch.
//! - `locked`: a recording behind another session's lock: ended on the server, retried once.
//! - `paused`: a `webhooks sweep` process SIGSTOPped past its lease while another worker
//!   supersedes and delivers; nothing stale reaches the receiver when it resumes.
//! - `hostile`: receivers that never answer, cut bodies, flood, loop, drip.
//! - `slow_backlog`: 2,000 due rows, batch 1000, a 2 s receiver, 20 s invocations.
//! - `pgbouncer`: the whole lifecycle through PgBouncer in transaction mode.

mod crash;
mod database;
mod hostile;
mod killed;
mod locked;
mod paused;
mod pgbouncer;
mod receiver_down;
mod slow_backlog;

use std::collections::HashMap;

/// One scenario's figures.
#[derive(Debug, Default)]
struct Figures {
    runs: usize,
    faults: usize,
    deliveries: usize,
    lost: usize,
    duplicates: usize,
}

impl Figures {
    /// Prints the scenario's line (shown by `make test-faults`).
    fn report(&self, scenario: &str) {
        println!(
            "fault-suite {scenario}: runs={} faults={} deliveries={} lost={} duplicates={}",
            self.runs, self.faults, self.deliveries, self.lost, self.duplicates
        );
    }
}

/// Requests beyond the first per `webhook-id`, and the most any one id was sent.
fn duplicates(webhook_ids: impl IntoIterator<Item = String>) -> (usize, usize) {
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for id in webhook_ids {
        *per_id.entry(id).or_default() += 1;
    }
    let extra = per_id.values().map(|n| n - 1).sum();
    (extra, per_id.values().copied().max().unwrap_or(0))
}
