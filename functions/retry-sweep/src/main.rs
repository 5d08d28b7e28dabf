//! AWS Lambda `retry-sweep`: hands each scheduled event to [`delivery::sweep::handle`].

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use delivery::{Clock, Deps};
use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    delivery::telemetry::init();
    // Cold start: a missing or bad variable stops here, naming the variable.
    let deps = Deps::from_env()?;
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = deadline(event.context.deadline);
        delivery::sweep::handle(event.payload, deps, Clock::System, deadline)
            .await
            .map_err(|e| Diagnostic {
                error_type: e.kind().into(),
                error_message: e.to_string(),
            })
    }))
    .await
}

/// The invocation deadline (epoch milliseconds) as an `Instant`, so the sweep can stop
/// claiming batches in time.
fn deadline(epoch_ms: u64) -> Option<Instant> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_millis() as u64;
    Some(Instant::now() + Duration::from_millis(epoch_ms.checked_sub(now_ms)?))
}
