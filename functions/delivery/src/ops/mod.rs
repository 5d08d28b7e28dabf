//! The operator's commands behind `webhooks stats | failures | show | verify | doctor | cleanup
//! | replay`: each reads (or, for retention and replay, writes) through `db` and renders a
//! table for people or JSON for scripts.
//!
//! # Layout
//! - [`health`]: delivery health per type and overall (`stats`).
//! - [`failures`]: deliveries in trouble (`failures`).
//! - [`history`]: one delivery and its attempts (`show`).
//! - [`completeness`]: bookings whose expected delivery is missing (`verify`).
//! - [`doctor`]: a deployment's posture in plain words (`doctor`).
//! - [`endpoint`]: the notification service's breaker, pause, pace and held deliveries
//!   (`stats`, `doctor`, `pause`, `resume`).
//! - [`retention`]: deleting old resolved deliveries in batches (`cleanup`, `WEBHOOK_RETENTION`).
//! - [`replay`]: requeueing failed deliveries (`replay`).
//! - [`table`]: plain-text tables for the human output.

pub mod completeness;
pub mod doctor;
pub mod endpoint;
pub mod failures;
pub mod health;
pub mod history;
pub mod replay;
pub mod retention;
pub mod table;
