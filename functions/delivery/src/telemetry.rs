//! Structured logs. JSON lines (CloudWatch-friendly) unless `WEBHOOK_LOG_FORMAT=text`; the
//! level comes from `RUST_LOG` (default `info`). Log fields carry ids, types, attempts,
//! outcomes and latencies — never tokens, secrets, email addresses or response bodies.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Safe to call twice (the second call does nothing).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let text = std::env::var("WEBHOOK_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("text"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if text {
        builder.try_init()
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init()
    };
}
