//! Test support: a Postgres schema per test, a scripted HTTP receiver, engine dependencies.
//!
//! # Layout
//! - `db`: `TestDb` — a fresh schema with the migrations applied, dropped afterwards.
//! - `receiver`: `Receiver` — a real HTTP server on 127.0.0.1:0 that records requests and
//!   answers with scripted replies.
//! - `deps`: building `delivery::Deps` for a test database and receiver.
//! - `scratch`: a database of its own, the `webhooks` binary, catalog snapshots (migrate tests).
//! - `state`: reading a delivery's stored row and attempts for assertions.
//! - `cluster`: a throwaway Postgres cluster of the test's own (for restarts), free ports.
//! - `pgbouncer`: PgBouncer in transaction mode in front of a server.
//! - `hostile`: raw TCP receivers that misbehave (silence, cut bodies, floods, drips).

pub mod aws;
pub mod cluster;
pub mod db;
pub mod deps;
pub mod hostile;
pub mod pgbouncer;
pub mod receiver;
pub mod scratch;
pub mod state;

pub use db::TestDb;
pub use deps::{SIGNING_SECRET, TOKEN, deps, deps_for_url, deps_with};
pub use receiver::{Receiver, Reply};
