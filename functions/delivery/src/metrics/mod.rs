//! The metrics each Lambda invocation writes, as CloudWatch EMF lines ([`emf`]) on
//! stdout — the contract in `METRICS.md`, which the alarms are built on:
//!
//! - namespace `BookingWebhooks`;
//! - one aggregate record per invocation, dimension sets `[[], ["Function"]]` (`Function` is
//!   `dispatch` or `retry-sweep`): `DeliveriesSucceeded`, `DeliveriesRetrying`,
//!   `DeliveriesFailed`, `DeliveriesSkipped`, `DeliveriesSuperseded`, `Reclaimed` (Count),
//!   `AttemptLatency` (Milliseconds, one value per attempt), `InvocationErrors` (Count, 1 when
//!   the invocation returned an error); the sweep adds `DueBacklog` (Count), `OldestDueAge`
//!   (Seconds) and `MissingDeliveries` (Count);
//! - one record per webhook type seen, dimension set `[["Function", "WebhookType"]]`:
//!   `DeliveriesSucceeded`, `DeliveriesRetrying`, `DeliveriesFailed`.
//!
//! Counts are zero rather than absent, so an alarm on them always has data. Outcomes are
//! gathered while the handler runs ([`collect`] around it, [`observe`] in the engine), so
//! attempts recorded before a later error are still counted.
//!
//! Why stdout: on Lambda, JSON written to stdout in EMF is all it takes ("writing JSON to
//! standard out in the embedded metric format is sufficient"); the JSON logs of
//! [`crate::telemetry`] go to stderr, so the two streams never interleave mid-line. Each record
//! is one complete JSON object per line, written with one call, and also carries
//! `level`/`target`/`message` so it reads like any other log line.

//!
//! # Layout
//! - [`tally`]: what the engine observes during an invocation ([`collect`], [`observe`]).
//! - [`invocation`]: one invocation's figures as EMF lines, and where they are written.
//! - [`emf`]: the Embedded Metric Format record.
//!
//! The end-of-run steps that gather an invocation's figures belong to its handler
//! ([`crate::dispatch`], [`crate::sweep`]).

pub mod emf;
pub mod invocation;
pub mod tally;
#[cfg(test)]
mod tests;

pub(crate) use invocation::timestamp;
pub use invocation::{Invocation, SweepGauges, capture, emit};
pub use tally::{
    Tally, TypeCounts, collect, observe, observe_holds_expired, observe_superseded,
    observe_throttled,
};

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "BookingWebhooks";

/// Which function an invocation belongs to: its role, not its deployed name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// The immediate first attempt.
    Dispatch,
    /// The scheduled retry sweep.
    RetrySweep,
}

impl Function {
    /// The `Function` dimension value.
    pub fn as_str(self) -> &'static str {
        match self {
            Function::Dispatch => "dispatch",
            Function::RetrySweep => "retry-sweep",
        }
    }
}
