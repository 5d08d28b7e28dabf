//! Structured logs. JSON lines (CloudWatch-friendly) unless `WEBHOOK_LOG_FORMAT=text`; the
//! level comes from `RUST_LOG` (default `info`). Log fields carry ids, types, attempts,
//! outcomes and latencies — never tokens, secrets, email addresses or response bodies.
//!
//! Whatever `RUST_LOG` says, `trace` is for this project's own code only: other crates log at
//! `debug` at most. At `trace`, lambda_runtime logs every raw invocation event, and a
//! function-URL call to `dispatch` carries `Authorization: Bearer <WEBHOOK_DISPATCH_TOKEN>`;
//! the HTTP and Postgres clients log headers and statement parameters there too.
//!
//! A report is logged as a JSON object, not a Rust `Debug` string, so CloudWatch Logs
//! Insights can query its fields (`filter report.stillDue > 0`): `tracing::info!(report =
//! %telemetry::json(&report), "sweep finished")`. tracing's JSON formatter can only write a
//! field as a string, so [`json`] marks its text, and the writer puts the object in the
//! string's place before the line leaves.
//!
//! Under `cargo lambda watch` lambda_runtime warns that `AWS_LAMBDA_MAX_CONCURRENCY` is set
//! (to 1) without its `concurrency-tokio` feature: a limit of one is exactly how it runs, so
//! that warning says nothing and is dropped; any other value still warns.

use std::io::{IsTerminal as _, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use serde_json::Value;
use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::MakeWriter;
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
    let layer = if text {
        // Colour only on a terminal, never with NO_COLOR, never into a file.
        let colour = std::io::stderr().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(colour)
            .boxed()
    } else {
        JSON_LOGS.store(true, Ordering::Relaxed);
        tracing_subscriber::fmt::layer()
            .with_writer(ObjectFields)
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .boxed()
    };
    let layer = layer.with_filter(filter_fn(|meta| !is_local_concurrency_warning(meta)));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(layer.with_filter(no_secrets))
        .try_init();
}

/// True once the logs are JSON lines (then [`json`] marks its text for [`ObjectFields`]).
static JSON_LOGS: AtomicBool = AtomicBool::new(false);

/// Marks the text of a [`json`] field; a control character no serializer writes unescaped.
const OBJECT_MARK: char = '\u{1e}';

/// A value to log as a JSON object; make one with [`json`].
pub struct Json(String);

/// `value` as a log field that the JSON logs carry as an object, e.g.
/// `tracing::info!(report = %telemetry::json(&report), "sweep finished")`; in text logs it
/// reads as JSON.
pub fn json<T: Serialize>(value: &T) -> Json {
    Json(serde_json::to_string(value).unwrap_or_else(|e| format!("\"unserializable: {e}\"")))
}

impl std::fmt::Display for Json {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if JSON_LOGS.load(Ordering::Relaxed) {
            write!(f, "{OBJECT_MARK}{}", self.0)
        } else {
            f.write_str(&self.0)
        }
    }
}

/// Standard error for the JSON logs, where each field that [`json`] marked becomes the object
/// it holds.
struct ObjectFields;

impl<'a> MakeWriter<'a> for ObjectFields {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line(Vec::new())
    }
}

/// One formatted event, written to stderr when dropped (the formatter writes a whole line
/// through one writer).
struct Line(Vec<u8>);

impl Write for Line {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let line = with_objects(&self.0).unwrap_or_else(|| std::mem::take(&mut self.0));
        let _ = std::io::stderr().lock().write_all(&line);
    }
}

/// `line` (one JSON object and a newline) with each top-level string field that starts with
/// [`OBJECT_MARK`] replaced by the JSON it holds, the rest of the line as it was; `None` when
/// there is none.
fn with_objects(line: &[u8]) -> Option<Vec<u8>> {
    // The formatter escapes the mark as \u001e: only such lines are parsed again.
    if !line.windows(6).any(|w| w == b"\\u001e") {
        return None;
    }
    let event: serde_json::Map<String, Value> = serde_json::from_slice(line).ok()?;
    let mut out = String::from_utf8(line.to_vec()).ok()?;
    for value in event.values() {
        let Some(text) = value.as_str() else { continue };
        let Some(held) = text.strip_prefix(OBJECT_MARK) else {
            continue;
        };
        if serde_json::from_str::<Value>(held).is_err() {
            continue;
        }
        // The field as the formatter wrote it (serde_json's escaping), then the object itself.
        let literal = serde_json::to_string(text).ok()?;
        out = out.replacen(&literal, held, 1);
    }
    Some(out.into_bytes())
}

/// lambda_runtime's warning that `AWS_LAMBDA_MAX_CONCURRENCY` is set without its
/// concurrency feature, when it is set to 1 (what `cargo lambda watch` sets): running one
/// invocation at a time is exactly that limit.
fn is_local_concurrency_warning(meta: &tracing::Metadata<'_>) -> bool {
    *meta.level() == Level::WARN
        && meta.target() == "lambda_runtime::runtime"
        && std::env::var("AWS_LAMBDA_MAX_CONCURRENCY").is_ok_and(|v| v.trim() == "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marked_field_becomes_the_object_it_holds() {
        let line = format!(
            "{}\n",
            serde_json::json!({
                "level": "INFO",
                "message": "sweep finished",
                "report": format!("{OBJECT_MARK}{{\"stillDue\":3,\"budgetExhausted\":false}}"),
                "note": "{\"not\": \"marked\"}",
            })
        );
        let out = with_objects(line.as_bytes()).unwrap_or_default();
        let event: Value = serde_json::from_slice(&out).unwrap_or_default();
        assert_eq!(event["report"]["stillDue"], 3);
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.contains(r#""report":{"stillDue":3,"budgetExhausted":false}"#),
            "the object as serialized, in its place: {text}"
        );
        assert_eq!(event["note"], "{\"not\": \"marked\"}", "only marked fields");
        assert_eq!(out.last(), Some(&b'\n'));
        assert_eq!(with_objects(b"{\"message\":\"plain\"}\n"), None);
    }

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
