//! The one integration-test binary: a real Postgres (each test in its own schema), real HTTP
//! receivers on 127.0.0.1:0, and moto server for the AWS APIs.
//!
//! # Layout
//! - `support`: per-test database schema, scripted HTTP receiver.
//! - `capture`: triggers capture booking events transactionally.
//! - `schedule`: `infra schedule apply | show | delete` against moto.

mod support;

mod capture;
mod schedule;
