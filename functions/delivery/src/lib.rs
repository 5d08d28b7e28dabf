//! The booking webhook delivery engine: everything the `dispatch` and `retry-sweep` Lambda
//! functions and the `webhooks` command do, as a library so tests can drive it directly.
//!
//! A booking change is captured into `webhook_deliveries` by triggers in the booking's own
//! transaction (see `migrations/`). From there a delivery is *claimed* (row lock + lease),
//! *sent* (signed HTTP POST), and its *outcome recorded* (attempt row + new state) — by the
//! immediate dispatch first and by the retry sweep on a schedule after that.
//!
//! # Layout
//! By layer, from the entry points down; a module imports only from the layers below it (and
//! from its own folder). `docs/development.md` draws the same map.
//!
//! **Entry points** — what the functions and the `webhooks` command run:
//! - [`dispatch`]: the `dispatch` Lambda handler (`{"deliveryId"}`, `{"limit"}`, function URL),
//!   with its [`dispatch::report`], and [`dispatch::now`]: sending now, due or not
//!   (`webhooks send`).
//! - [`sweep`]: the `retry-sweep` Lambda handler, its report, and the work after a drain.
//! - [`listen`]: dispatching on Postgres NOTIFY (`webhooks listen`).
//! - `event`: the invocation events and the function-URL bearer token.
//! - [`ops`]: the operator's commands — `stats`, `failures`, `show`, `verify`, `doctor`,
//!   `cleanup`, `replay` — their tables, ids by unique prefix, and the output convention every
//!   command follows (`ops::output`).
//! - [`schema`]: `webhooks migrate` — checks, migrations (refinery, embedded from
//!   `migrations/`), the current definitions of the functions, triggers and views, and adopting
//!   the old pg_net system, in one transaction.
//! - `receiver` (feature `cli`): a local notification service that verifies what is sent.
//!
//! **Engine** — [`engine`]: claim under a lease, send, record as completed, hand on; the
//! sweep's pipeline.
//!
//! **Services** — what the engine stands on:
//! - [`db`]: the pool, bounded statements, and every SQL statement ([`db::sql`]).
//! - [`deps`]: [`Deps`], what every handler needs, built once per process.
//! - `send`: the HTTP client that performs one attempt ([`Sender`]).
//! - [`metrics`]: the CloudWatch metrics each invocation writes (EMF).
//!
//! **Settings** — [`config`]: the environment, read and validated once at cold start.
//!
//! **Vocabulary** — plain types and rules that import nothing above them:
//! [`error`], [`clock`], `outcome` (what an HTTP attempt means), [`backoff`], `sign` (Standard
//! Webhooks signatures), `status` (the delivery states), `text` (bounding outside text), `tls`,
//! [`signal`], [`telemetry`], `out` (standard output of the command line).
//!
//! The paths `claim`, `sql`, `emf`, `posture`, `health`, `failures`, `history`, `completeness`,
//! `retention`, `replay` and `table` are kept, re-exported below, for code written against the
//! flat layout (the tests).
#![warn(unreachable_pub)]

pub mod backoff;
pub mod clock;
pub mod config;
pub mod db;
pub mod deps;
pub mod dispatch;
pub mod engine;
pub mod error;
mod event;
pub mod listen;
pub mod metrics;
pub mod ops;
#[cfg(feature = "cli")]
pub mod out;
mod outcome;
#[cfg(feature = "cli")]
pub mod receiver;
pub mod schema;
mod send;
mod sign;
pub mod signal;
mod status;
pub mod sweep;
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
/// `webhooks doctor`, where it was before `ops/doctor/`.
pub use ops::doctor as posture;
/// The operator commands, where they were before `ops/` (for the tests' paths).
pub use ops::{completeness, endpoint, failures, health, history, replay, retention, table};
pub use outcome::{Attempt, AttemptResult, ErrorKind};
pub use send::Sender;
pub use status::DeliveryStatus;
