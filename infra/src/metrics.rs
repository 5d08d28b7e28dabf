//! The functions' metrics as `infra` reads them: the values of the contract in METRICS.md
//! that the alarms and the dashboard repeat. `infra` does not depend on the functions' crate,
//! so `tests/it/contract.rs` ties each value here to its source in `delivery`.

/// The CloudWatch namespace the functions write their metrics in
/// (`delivery::metrics::NAMESPACE`).
pub const NAMESPACE: &str = "BookingWebhooks";

/// How long, in seconds, the oldest due delivery may wait before the backlog-age alarm fires
/// (`delivery::posture::BACKLOG_AGE_LIMIT_S`, `webhooks doctor`'s limit too).
pub const BACKLOG_AGE_LIMIT_S: i64 = 1_800;

/// How long, in seconds, the notification service's circuit breaker may stay open before the
/// breaker-open alarm fires (`delivery::posture::BREAKER_OPEN_LIMIT_S`, `webhooks doctor`'s limit too).
pub const BREAKER_OPEN_LIMIT_S: i64 = 1_800;

/// The values of the `Function` dimension: each function's role, not its deployed name
/// (`delivery::metrics::Function::as_str`).
pub const FUNCTIONS: [&str; 2] = ["dispatch", "retry-sweep"];
