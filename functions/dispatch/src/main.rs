//! AWS Lambda `dispatch`: hands each event to [`delivery::dispatch::handle`].

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
        delivery::dispatch::handle(event.payload, deps, Clock::System)
            .await
            .map_err(|e| Diagnostic {
                error_type: e.kind().into(),
                error_message: e.to_string(),
            })
    }))
    .await
}
