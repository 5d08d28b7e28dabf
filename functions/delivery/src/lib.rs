//! The booking webhook delivery engine: everything the `dispatch` and `retry-sweep` Lambda
//! functions and the `webhooks` command do, as a library so tests can drive it directly.
//!
//! A booking change is captured into `webhook_deliveries` by triggers in the booking's own
//! transaction (see `migrations/`). From there a delivery is *claimed* (row lock + lease),
//! *sent* (signed HTTP POST), and its *outcome recorded* (attempt row + new state) — by the
//! immediate dispatch first and by the retry sweep on a schedule after that.
//!
//! # Layout
//! - [`config`]: environment configuration, read and validated once at cold start.
//! - [`db`]: connection pool and migrations (refinery, embedded from `migrations/`).
//! - [`tls`]: TLS to Postgres with libpq's `sslmode` semantics.
//! - [`sql`]: every SQL statement the engine runs, documented in one place.
//! - [`sign`]: Standard Webhooks signatures (`webhook-signature: v1,…`).
//! - [`backoff`]: retry schedule, jitter and `Retry-After` handling.
//! - [`outcome`]: classifying an HTTP attempt and deciding the delivery's next state.
//! - [`send`]: the HTTP client that performs one attempt.
//! - [`claim`]: taking deliveries under a lease so exactly one worker sends each.
//! - [`record`]: writing attempts and new states, one statement per batch.
//! - [`engine`]: claim → send → record for a batch; shared by dispatch and sweep.
//! - [`dispatch`]: the `dispatch` Lambda handler (`{"deliveryId"}` or `{"limit"}`).
//! - [`sweep`]: the `retry-sweep` Lambda handler.
//! - [`replay`]: requeueing failed deliveries by hand.
//! - [`listen`]: local mode that dispatches on Postgres NOTIFY.
//! - [`clock`], [`telemetry`], [`error`]: time source, JSON logs, the error type.

pub mod backoff;
pub mod claim;
pub mod clock;
pub mod config;
pub mod db;
pub mod dispatch;
pub mod engine;
pub mod error;
pub mod listen;
pub mod outcome;
pub mod record;
pub mod replay;
pub mod send;
pub mod sign;
pub mod sql;
pub mod sweep;
pub mod telemetry;
pub mod tls;

pub use clock::Clock;
pub use config::Config;
pub use engine::Deps;
pub use error::{Error, Result};
