//! Turning SDK errors into messages that say what AWS answered.

use std::error::Error as StdError;

use aws_sdk_scheduler::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// Converts an SDK error into an [`anyhow::Error`] whose message carries the whole cause
/// chain and the service's error code.
///
/// `SdkError`'s own `Display` is only "service error"; the code matters because some
/// emulators (moto) send typed errors with an empty message.
pub fn sdk_error<E, R>(error: SdkError<E, R>) -> anyhow::Error
where
    E: StdError + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let code = error.code().map(|c| format!(" [{c}]")).unwrap_or_default();
    anyhow::anyhow!("{}{code}", DisplayErrorContext(&error))
}
