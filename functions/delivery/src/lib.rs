//! The booking webhook delivery engine: everything the `dispatch` and `retry-sweep` Lambda
//! functions and the `webhooks` command do, as a library so tests can drive it directly.
//!
//! A booking change is captured into `webhook_deliveries` by triggers in the booking's own
//! transaction (see `migrations/`). From there a delivery is *claimed* (row lock + lease),
//! *sent* (signed HTTP POST), and its *outcome recorded* (attempt row + new state) — by the
//! immediate dispatch first and by the retry sweep on a schedule after that.
//!
//! # Layout
//! Handlers and what they share (public):
//! - [`dispatch`]: the `dispatch` Lambda handler (`{"deliveryId"}` or `{"limit"}`).
//! - [`sweep`]: the `retry-sweep` Lambda handler.
//! - [`listen`]: local mode that dispatches on Postgres NOTIFY.
//! - `receiver` (feature `cli`): a local notification service that verifies what is sent.
//! - [`replay`]: requeueing failed deliveries by hand.
//! - [`engine`]: claim → send → record for a batch, and [`Deps`], what every handler needs.
//! - [`claim`]: taking deliveries under a lease so exactly one worker sends each.
//! - [`config`]: environment configuration, read and validated once at cold start.
//! - [`db`]: connections (pool, LISTEN session) from one [`DbConfig`].
//! - [`schema`]: `webhooks migrate` — checks, migrations (refinery, embedded from
//!   `migrations/`) and adopting the old pg_net system, in one transaction.
//! - [`sql`]: every SQL statement the engine runs, documented in one place.
//! - [`backoff`]: retry schedule, jitter and `Retry-After` handling.
//! - [`clock`], [`telemetry`], [`error`]: time source, JSON logs, the error type.
//! - [`signal`]: Ctrl-C or SIGTERM, how the long-running commands are stopped.
//!
//! Operations (the `webhooks` read and repair commands, and the functions' metrics):
//! - [`health`]: delivery health per type and overall (`stats`).
//! - [`failures`]: deliveries in trouble (`failures`).
//! - [`history`]: one delivery and its attempts (`show`).
//! - [`retention`]: deleting old resolved deliveries in batches (`cleanup`, `WEBHOOK_RETENTION`).
//! - [`completeness`]: bookings whose expected delivery is missing (`verify`).
//! - [`posture`]: a deployment's posture in plain words (`doctor`).
//! - [`metrics`]: the CloudWatch metrics each invocation writes, built with [`emf`].
//! - [`table`]: plain-text tables for the commands' human output.
//!
//! Inside (private):
//! - `event`: the invocation events and the function-URL bearer token.
//! - `status`: the delivery states.
//! - `outcome`: classifying an HTTP attempt and deciding the delivery's next state.
//! - `send`: the HTTP client that performs one attempt ([`Sender`]).
//! - `sign`: Standard Webhooks signatures (`webhook-signature: v1,…`).
//! - `record`: writing attempts and new states, one statement per batch.
//! - `tls`: TLS to Postgres with libpq's `sslmode` semantics.
//! - `text`: bounding outside text before it is stored or logged.
#![warn(unreachable_pub)]

pub mod backoff;
pub mod clock;
pub mod completeness;
pub mod config;
pub mod db;
pub mod deps;
pub mod dispatch;
pub mod engine;
pub mod error;
mod event;
pub mod failures;
pub mod health;
pub mod history;
pub mod listen;
pub mod metrics;
#[cfg(feature = "cli")]
pub mod out;
mod outcome;
pub mod posture;
#[cfg(feature = "cli")]
pub mod receiver;
pub mod replay;
pub mod retention;
pub mod schema;
mod send;
mod sign;
pub mod signal;
mod status;
pub mod sweep;
pub mod table;
pub mod telemetry;
mod text;
mod tls;

pub use clock::Clock;
pub use config::{Config, DbConfig};
/// The statements, where they were before `db/sql/` (for the tests' paths).
pub use db::sql;
pub use deps::Deps;
/// The claims, where they were before `engine/` (for the tests' paths).
pub use engine::claim;
pub use error::{Error, Result};
/// The EMF record builder, where it was before `metrics/`.
pub use metrics::emf;
pub use outcome::{Attempt, AttemptResult, ErrorKind};
pub use send::Sender;
pub use status::DeliveryStatus;
