//! The delivery engine shared by dispatch, sweep and listen: claim deliveries under a lease,
//! send them signed with bounded concurrency, decide each next state, and record the outcomes
//! as they complete.
//!
//! Deliveries a claim ended `superseded` are reported (and logged), never sent. A status
//! notification whose turn had not come when it was claimed for — an earlier one of its
//! booking was in flight here — is handed on: once the batch is recorded, the worker claims and
//! sends the later notifications of the bookings it just recorded. The sweep remains the safety
//! net.
//!
//! # Layout
//! - [`claim`]: the claims; [`lease`]: their length and size; [`explain`]: why a row was not
//!   claimed.
//! - [`attempt`]: one delivery's turn with a sender (the lease check, the request, the next
//!   state).
//! - [`record`]: outcomes written in groups as they complete; unsent rows given back.
//! - [`delivered`]: what became of a claimed delivery.
//! - [`endpoint`]: the notification service as a whole: breaker, pause, pacing, holds.
//! - [`deliver`]: a claim delivered, then handed on (dispatch, listen).
//! - [`pipeline`]: the sweep's drain, the next claim on its way while a batch is on the wire.

pub mod attempt;
pub mod claim;
pub mod deliver;
pub mod delivered;
pub mod endpoint;
pub mod explain;
pub mod lease;
pub(crate) mod pipeline;
pub mod record;

pub use deliver::deliver;
pub use delivered::{DeliveryOutcome, Recorded};
