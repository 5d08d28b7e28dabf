//! AWS access: the SDK configuration, the clients built from it, SDK errors as messages.

use std::error::Error as StdError;
use std::fmt::{self, Debug};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_scheduler::error::{ProvideErrorMetadata, SdkError};

/// The service clients every command uses, and the region every ARN built here names.
#[allow(missing_docs)]
#[derive(Debug, Clone)]
pub struct Clients {
    pub scheduler: aws_sdk_scheduler::Client,
    pub iam: aws_sdk_iam::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub region: String,
}

impl Clients {
    /// Builds the clients from `config`; fails when it has no region.
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

/// The SDK configuration from the standard credential chain, `AWS_ENDPOINT_URL` honoured;
/// `region` and `endpoint_url`, when given, win over the chain.
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

/// The standard credential chain gave no credentials: none is set anywhere, or (with `why`)
/// the one source it reached failed, e.g. an instance metadata service that refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoCredentials {
    /// The innermost cause, when a source failed rather than found nothing.
    pub why: Option<String>,
}

impl fmt::Display for NoCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.why {
            None => write!(f, "no AWS credentials: {SET_CREDENTIALS}"),
            Some(why) => write!(f, "no usable AWS credentials ({why}): {SET_CREDENTIALS}"),
        }
    }
}

impl StdError for NoCredentials {}

const SET_CREDENTIALS: &str = "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and \
     AWS_SECRET_ACCESS_KEY (see docs/deploy.md, \"Prerequisites\")";

/// An SDK error as one line: the service's error code and message when the service answered;
/// otherwise what went wrong on the way, cause by cause (`SdkError`'s own `Display` is only
/// "service error", and the SDK's `DisplayErrorContext` ends in a `Debug` dump). A failure to
/// get credentials is [`NoCredentials`].
pub fn sdk_error<E, R>(error: SdkError<E, R>) -> anyhow::Error
where
    E: StdError + ProvideErrorMetadata + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    if let SdkError::ServiceError(_) = &error {
        // moto sends some typed errors with an empty message.
        let code = error.code().unwrap_or("unnamed error");
        return match error.message().filter(|m| !m.trim().is_empty()) {
            Some(message) => anyhow::anyhow!("{code}: {}", one_line(message)),
            None => anyhow::anyhow!("{code}"),
        };
    }
    let mut next: Option<&(dyn StdError + 'static)> = Some(&error);
    while let Some(cause) = next {
        match cause.downcast_ref::<CredentialsError>() {
            Some(CredentialsError::CredentialsNotLoaded(_)) => {
                return anyhow::Error::new(NoCredentials { why: None });
            }
            Some(other) => {
                let why = innermost(other).trim_end_matches('.').to_owned();
                return anyhow::Error::new(NoCredentials { why: Some(why) });
            }
            None => next = cause.source(),
        }
    }
    anyhow::anyhow!("{}", one_line(&chain(&error)))
}

/// `error` and its causes, each once (many errors repeat their source in their own message),
/// joined by ": ".
fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut causes: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(cause) = next {
        let text = cause.to_string();
        if !causes.last().is_some_and(|last| last.contains(&text)) {
            causes.push(text);
        }
        next = cause.source();
    }
    causes.join(": ")
}

/// The message of the last cause of `error`, on one line.
fn innermost(error: &(dyn StdError + 'static)) -> String {
    let mut last = error;
    while let Some(cause) = last.source() {
        last = cause;
    }
    one_line(&last.to_string())
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An operation's error that the SDK can type as "the resource does not exist".
pub trait NotFound {
    /// True when the service answered that the resource does not exist.
    fn is_not_found(&self) -> bool;
}

/// Implements [`NotFound`] with the SDK's own predicate of each operation's error: the code
/// differs by service (`ResourceNotFoundException`, IAM's `NoSuchEntity`, CloudWatch's
/// `ResourceNotFound`), and the SDK knows which.
macro_rules! not_found {
    ($($error:ty => $predicate:ident),* $(,)?) => {
        $(impl NotFound for $error {
            fn is_not_found(&self) -> bool {
                self.$predicate()
            }
        })*
    };
}

not_found! {
    aws_sdk_scheduler::operation::get_schedule::GetScheduleError => is_resource_not_found_exception,
    aws_sdk_scheduler::operation::delete_schedule::DeleteScheduleError => is_resource_not_found_exception,
    aws_sdk_scheduler::operation::get_schedule_group::GetScheduleGroupError => is_resource_not_found_exception,
    aws_sdk_iam::operation::get_role::GetRoleError => is_no_such_entity_exception,
    aws_sdk_iam::operation::get_role_policy::GetRolePolicyError => is_no_such_entity_exception,
    aws_sdk_iam::operation::delete_role_policy::DeleteRolePolicyError => is_no_such_entity_exception,
    aws_sdk_cloudwatch::operation::delete_alarms::DeleteAlarmsError => is_resource_not_found,
    aws_sdk_cloudwatch::operation::get_dashboard::GetDashboardError => is_dashboard_not_found_error,
    aws_sdk_cloudwatch::operation::delete_dashboards::DeleteDashboardsError => is_dashboard_not_found_error,
}

/// A call's answer, or `None` when the service says the resource does not exist: reading or
/// deleting something absent is not an error.
pub fn none_if_not_found<T, E, R>(result: Result<T, SdkError<E, R>>) -> anyhow::Result<Option<T>>
where
    E: StdError + ProvideErrorMetadata + NotFound + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    match result {
        Ok(out) => Ok(Some(out)),
        Err(e) if e.as_service_error().is_some_and(NotFound::is_not_found) => Ok(None),
        Err(e) => Err(sdk_error(e)),
    }
}
