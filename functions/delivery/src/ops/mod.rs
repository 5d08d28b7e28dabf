//! The operator's commands behind `webhooks stats | failures | show | verify | doctor | cleanup
//! | replay`: each reads (or, for retention and replay, writes) through `db` and renders a
//! table for people or JSON for scripts, as [`output`] says for every command.
//!
//! # Layout
//! - [`health`]: delivery health per type and overall (`stats`).
//! - [`failures`]: deliveries in trouble (`failures`).
//! - [`history`]: one delivery and its attempts (`show`).
//! - [`ids`]: delivery ids as typed, whole or a unique prefix (`show`, `replay`, `send`, `dispatch`).
//! - [`completeness`]: bookings whose expected delivery is missing (`verify`).
//! - [`doctor`]: a deployment's posture in plain words (`doctor`).
//! - [`endpoint`]: the notification service's breaker, pause, pace and held deliveries
//!   (`stats`, `doctor`, `pause`, `resume`).
//! - [`retention`]: deleting old resolved deliveries in batches (`cleanup`, `WEBHOOK_RETENTION`).
//! - [`replay`]: requeueing failed deliveries (`replay`).
//! - [`output`]: the one output convention of every command: tables that fit the terminal,
//!   colour only on a terminal, `--json` in camelCase.
//! - [`table`]: plain-text tables for the human output.

pub mod completeness;
pub mod doctor;
pub mod endpoint;
pub mod failures;
pub mod health;
pub mod history;
pub mod ids;
pub mod output;
pub mod replay;
pub mod retention;
pub mod table;
