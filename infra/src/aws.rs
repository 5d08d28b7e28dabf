//! AWS access: the SDK configuration, the clients built from it, SDK errors as messages.

use std::error::Error as StdError;
use std::fmt::Debug;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_scheduler::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// The service clients every command uses, and the region they talk to.
#[derive(Debug, Clone)]
pub struct Clients {
    /// EventBridge Scheduler.
    pub scheduler: aws_sdk_scheduler::Client,
    /// IAM, for the scheduler's execution role.
    pub iam: aws_sdk_iam::Client,
    /// CloudWatch, for the alarms.
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    /// The region; every ARN built here names it.
    pub region: String,
}

impl Clients {
    /// Builds the clients from `config`.
    ///
    /// Fails when no region could be resolved (neither `--region`/`AWS_REGION` nor a
    /// profile gave one): every ARN built here needs it.
    pub fn new(config: &SdkConfig) -> anyhow::Result<Self> {
        let Some(region) = config.region() else {
            anyhow::bail!("no AWS region: pass --region or set AWS_REGION (or a profile region)");
        };
        Ok(Self {
            scheduler: aws_sdk_scheduler::Client::new(config),
            iam: aws_sdk_iam::Client::new(config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(config),
            region: region.to_string(),
        })
    }
}

/// Loads the SDK configuration the way every AWS tool does: credentials from the standard
/// chain (environment, `~/.aws` profiles, web identity, container or instance metadata),
/// `AWS_ENDPOINT_URL` honoured. `region` and `endpoint_url`, when given, win over the chain.
pub async fn load_config(region: Option<&str>, endpoint_url: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(Region::new(region.to_owned()));
    }
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// Converts an SDK error into a message with the whole cause chain and the service's error
/// code: `SdkError`'s own `Display` is only "service error", and some emulators (moto) send
/// typed errors with an empty message.
pub fn sdk_error<E, R>(error: SdkError<E, R>) -> anyhow::Error
where
    E: StdError + ProvideErrorMetadata + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    let code = error.code().map(|c| format!(" [{c}]")).unwrap_or_default();
    anyhow::anyhow!("{}{code}", DisplayErrorContext(&error))
}

/// A call's answer, or `None` when the service says the resource does not exist (Scheduler
/// `ResourceNotFoundException`, IAM `NoSuchEntity`, CloudWatch `ResourceNotFound`): reading
/// or deleting something absent is not an error.
pub fn none_if_not_found<T, E, R>(result: Result<T, SdkError<E, R>>) -> anyhow::Result<Option<T>>
where
    E: StdError + ProvideErrorMetadata + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    match result {
        Ok(out) => Ok(Some(out)),
        Err(e) => match e.code() {
            Some("ResourceNotFoundException" | "NoSuchEntity" | "ResourceNotFound") => Ok(None),
            _ => Err(sdk_error(e)),
        },
    }
}
