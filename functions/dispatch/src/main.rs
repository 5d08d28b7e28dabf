//! AWS Lambda `dispatch`: hands each event to [`delivery::dispatch::handle`].

use delivery::{Clock, Deps};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    delivery::telemetry::init();
    // Cold start: a missing or bad variable stops here, naming the variable.
    let deps = &Deps::from_env()?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let deadline = event.context.deadline();
        delivery::dispatch::handle(event.payload, deps, Clock::System, Some(deadline))
    }))
    .await
}
