//! The one integration-test binary: a real Postgres (each test in its own schema), real HTTP
//! receivers on 127.0.0.1:0, and moto server for the AWS APIs.
//!
//! # Layout
//! - `support`: per-test database schema, scripted HTTP receiver.
//! - `migrate`: `webhooks migrate` in one transaction; incompatible `booking_requests` refused.
//! - `adopt`: taking over a running deployment of the old pg_net system.
//! - `capture`: triggers capture booking events transactionally.
//! - `definer`: the capture functions run no other role's code (search_path, overloads).
//! - `dispatch`: the immediate, signed delivery and its outcome classes.
//! - `hot_path`: the plans of the claims and the record, heap-only leases, the sweep's
//!   pipeline (issue 13).
//! - `faults`: the fault suite (`make test-faults`): outages, restarts, kills, hostile
//!   receivers, slow backlogs, PgBouncer; each scenario prints its figures.
//! - `lambda`: both functions under `cargo lambda watch`, invoked with `cargo lambda invoke`;
//!   their deploy settings as `cargo lambda deploy` reads them.
//! - `lifecycle`: the second time through: adopt again after a rollback, repair by the
//!   doctor's advice, intermediate builds' databases, psql, the migration ledger (issue 20).
//! - `listen`: dispatch on NOTIFY, catch-up, reconnect.
//! - `listen_poll`: polling instead of NOTIFY while bookings stream in, the flag capture reads,
//!   and the bookings that trusted it as listen fell asleep (issue 25).
//! - `outage`: the notification service as a whole: an outage held, the breaker's probe, paced
//!   recovery, the rate ceiling, Retry-After, pause/resume, the hold's bound (issue 22).
//! - `ops`: the operator commands (stats, failures, show, cleanup, verify, doctor) and metrics.
//! - `receiver`: `webhooks receiver` against the real signer: checks, dedupe, misbehaviour.
//! - `robustness`: bad rows, repeated recording, schema invariants, the database clock, deadlines.
//! - `superseded`: a replaced status notification is never sent; order with supersede off;
//!   replay; the claim protocol under two workers (issue 15).
//! - `sweep`: retries on schedule, reclaiming, overlapping sweeps, budget, requeue.
//! - `tls`: TLS to Postgres: sslmode, CA bundle.
//! - `schedule`: `infra schedule apply | show | delete` against moto.
//! - `alarms`: `infra alarms apply | show | delete` against moto.
//! - `dashboard`: `infra dashboard apply | show | delete` against moto; its body against what
//!   the functions emit; the picture of it in the docs.
//! - `deploy`: `make deploy` rehearsed on moto as docs/deploy.md says; its refusal of the
//!   example's settings.
//! - `docs`: every command of README.md and docs/ runs as written, or is listed as not run
//!   with why; the `--help` the docs show is the real one.
//! - `infra_cli`: the built `infra` binary's first-contact errors and exit status.
//! - `contract`: the metric contract of METRICS.md: what the functions emit against what
//!   `infra` repeats and reads.
//! - `security`: what a hostile role, receiver or input could do (issue 8).

// Test code may panic on setup failures: a clear `expect` message is the report.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

mod adopt;
mod alarms;
mod capture;
mod contract;
mod dashboard;
mod definer;
mod deploy;
mod dispatch;
mod docs;
mod faults;
mod hot_path;
mod infra_cli;
mod lambda;
mod lifecycle;
mod listen;
mod listen_poll;
mod migrate;
mod ops;
mod outage;
mod receiver;
mod robustness;
mod schedule;
mod security;
mod superseded;
mod sweep;
mod tls;
