//! AWS clients: the SDK configuration from the standard chain, or one for an emulator.
//!
//! The SDK crates are re-exported so callers (the integration tests) can read back what
//! `apply` wrote with the same types, without depending on them directly.

pub use aws_config;
pub use aws_sdk_iam as iam;
pub use aws_sdk_scheduler as scheduler;

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// The two service clients every command uses, built from one [`SdkConfig`].
#[derive(Debug, Clone)]
pub struct Clients {
    /// EventBridge Scheduler.
    pub scheduler: scheduler::Client,
    /// IAM, for the scheduler's execution role.
    pub iam: iam::Client,
    /// The region the clients talk to; function ARNs built from a name use it.
    pub region: String,
}

impl Clients {
    /// Builds both clients from `config`.
    ///
    /// Fails when no region could be resolved (neither `--region`/`AWS_REGION` nor a
    /// profile gave one): every ARN built here needs it.
    pub fn new(config: &SdkConfig) -> anyhow::Result<Self> {
        let region = config
            .region()
            .map(|r| r.as_ref().to_owned())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no AWS region: pass --region or set AWS_REGION (or a profile region)"
                )
            })?;
        crate::validate::region(&region)?;
        Ok(Self {
            scheduler: scheduler::Client::new(config),
            iam: iam::Client::new(config),
            region,
        })
    }
}

/// Loads the SDK configuration the way every AWS tool does: credentials from the standard
/// chain (environment, `~/.aws` profiles, web identity, container or instance metadata),
/// `AWS_ENDPOINT_URL` honoured. `region` and `endpoint_url`, when given, override what the
/// chain would find.
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

/// A configuration for an AWS API emulator (moto, LocalStack) at `endpoint_url`: fixed fake
/// credentials, and nothing read from the host's environment or `~/.aws`, so a developer's
/// real credentials can never be picked up by a test. Never use it against AWS.
pub async fn emulator_config(endpoint_url: &str, region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .empty_test_environment()
        .test_credentials()
        .region(Region::new(region.to_owned()))
        .endpoint_url(endpoint_url)
        .load()
        .await
}
