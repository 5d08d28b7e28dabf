//! Structured logs. JSON lines (CloudWatch-friendly) unless `WEBHOOK_LOG_FORMAT=text`; the
//! level comes from `RUST_LOG` (default `info`). Log fields carry ids, types, attempts,
//! outcomes and latencies — never tokens, secrets, email addresses or response bodies.
//!
//! Whatever `RUST_LOG` says, `trace` is for this project's own code only: other crates log at
//! `debug` at most. At `trace`, lambda_runtime logs every raw invocation event, and a
//! function-URL call to `dispatch` carries `Authorization: Bearer <WEBHOOK_DISPATCH_TOKEN>`;
//! the HTTP and Postgres clients log headers and statement parameters there too.

use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The crates whose `trace` events are kept: the library, the functions and the commands.
const OWN_TARGETS: [&str; 5] = ["delivery", "dispatch", "retry_sweep", "webhooks", "infra"];

/// True for an event that may be logged at all: everything but another crate's `trace`.
pub fn allowed(target: &str, level: &Level) -> bool {
    *level < Level::TRACE || OWN_TARGETS.iter().any(|own| is_under(target, own))
}

fn is_under(target: &str, module: &str) -> bool {
    target == module
        || target
            .strip_prefix(module)
            .is_some_and(|rest| rest.starts_with("::"))
}

/// Installs the global subscriber. Safe to call twice (the second call does nothing).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let text = std::env::var("WEBHOOK_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("text"));
    let no_secrets = filter_fn(|meta| allowed(meta.target(), meta.level()));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let layer = if text {
        fmt.boxed()
    } else {
        fmt.json()
            .flatten_event(true)
            .with_current_span(false)
            .boxed()
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(layer.with_filter(no_secrets))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_is_kept_only_for_our_own_code() {
        assert!(allowed("delivery::engine", &Level::TRACE));
        assert!(allowed("webhooks", &Level::TRACE));
        assert!(!allowed(
            "lambda_runtime::layers::api_response",
            &Level::TRACE
        ));
        assert!(!allowed("tokio_postgres::query", &Level::TRACE));
        assert!(!allowed("deliveryman", &Level::TRACE));
        assert!(allowed(
            "lambda_runtime::layers::api_response",
            &Level::DEBUG
        ));
        assert!(allowed("hyper", &Level::INFO));
    }
}
