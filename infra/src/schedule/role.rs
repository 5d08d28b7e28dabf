//! The IAM execution role EventBridge Scheduler assumes to invoke the sweep function, so a
//! fresh account needs nothing done by hand: trusted only by this account's schedule group,
//! allowed only to invoke that one function (and send to the dead-letter queue, which
//! Scheduler does with this role too). Tagged [`MANAGED_TAG`] so that `delete --purge` never
//! removes a role it did not create.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_iam::types::{Role, Tag};
use clap::Args;
use percent_encoding::percent_decode_str;
use serde_json::json;

use super::target::Function;
use crate::args::non_empty;
use crate::aws::{Clients, none_if_not_found, sdk_error};
use crate::change::{Change, FieldChange};

/// Name of the one inline policy on the role.
pub const POLICY_NAME: &str = "invoke-retry-sweep";

/// Tag key and value marking a role as created by this tool.
pub const MANAGED_TAG: (&str, &str) = ("managed-by", "booking-webhooks-infra");

const DESCRIPTION: &str = "Assumed by EventBridge Scheduler to invoke the booking-webhooks \
     retry sweep. Managed by `infra schedule apply`.";

/// Which execution role: one of your own, used as is, or one `apply` manages.
#[derive(Debug, Clone, PartialEq, Eq, Default, Args)]
pub struct RoleArgs {
    /// Use this existing execution role as is; without it, apply manages a role of its own.
    #[arg(long, env = "WEBHOOK_SCHEDULER_ROLE_ARN", value_name = "ARN")]
    pub role_arn: Option<String>,
    /// Name of the managed execution role (default: the schedule name + "-scheduler").
    #[arg(long, env = "WEBHOOK_SCHEDULER_ROLE_NAME")]
    pub role_name: Option<String>,
}

impl RoleArgs {
    /// The role of your own (`--role-arn`): used as is, never changed or deleted.
    pub fn given(&self) -> Option<&str> {
        non_empty(&self.role_arn)
    }

    /// The name of the role `apply` manages for schedule `schedule` when none is given.
    pub fn managed_name(&self, schedule: &str) -> String {
        let name = non_empty(&self.role_name).map(str::to_owned);
        name.unwrap_or_else(|| format!("{schedule}-scheduler"))
    }
}

/// The trust policy: EventBridge Scheduler, on behalf of schedule group `group` in `region`
/// of `account` only (the conditions AWS recommends against the confused-deputy problem).
pub fn trust_policy(partition: &str, account: &str, region: &str, group: &str) -> String {
    let group = format!("arn:{partition}:scheduler:{region}:{account}:schedule-group/{group}");
    let only_ours = json!({ "aws:SourceAccount": account, "aws:SourceArn": group });
    let statement = json!({
        "Effect": "Allow",
        "Principal": { "Service": "scheduler.amazonaws.com" },
        "Action": "sts:AssumeRole",
        "Condition": { "StringEquals": only_ours },
    });
    json!({ "Version": "2012-10-17", "Statement": [statement] }).to_string()
}

/// The inline permissions policy: invoke `function`, send to `dead_letter_queue` if any.
pub fn permissions_policy(function: &str, dead_letter_queue: Option<&str>) -> String {
    let allow = |sid, action, resource| json!({ "Sid": sid, "Effect": "Allow", "Action": action, "Resource": resource });
    let mut statements = vec![allow("InvokeRetrySweep", "lambda:InvokeFunction", function)];
    if let Some(queue) = dead_letter_queue {
        statements.push(allow("SendDeadLetters", "sqs:SendMessage", queue));
    }
    json!({ "Version": "2012-10-17", "Statement": statements }).to_string()
}

/// Creates role `name` for schedules of `group` to invoke `function` (and send to
/// `dead_letter_queue`), or rewrites whichever of its two documents is not exactly ours.
/// Returns the role's ARN and what changed; with `dry_run`, only reads. Fails on IAM errors.
pub async fn ensure(
    clients: &Clients,
    name: &str,
    function: &Function,
    group: &str,
    dead_letter_queue: Option<&str>,
    dry_run: bool,
) -> anyhow::Result<(String, Change)> {
    let (partition, account) = (&function.partition, &function.account);
    let trust = trust_policy(partition, account, &clients.region, group);
    let permissions = permissions_policy(&function.arn, dead_letter_queue);
    let iam = &clients.iam;
    let Some(role) = get(clients, name).await? else {
        if !dry_run {
            let tag = Tag::builder().key(MANAGED_TAG.0).value(MANAGED_TAG.1);
            let create = iam.create_role().role_name(name).description(DESCRIPTION);
            let create = create.tags(tag.build()?).assume_role_policy_document(trust);
            (create.send().await.map_err(sdk_error))
                .with_context(|| format!("creating IAM role {name}"))?;
            put_permissions(clients, name, &permissions).await?;
        }
        return Ok((
            format!("arn:{partition}:iam::{account}:role/{name}"),
            Change::Created,
        ));
    };
    let policy = iam
        .get_role_policy()
        .role_name(name)
        .policy_name(POLICY_NAME);
    let policy = (none_if_not_found(policy.send().await))
        .with_context(|| format!("reading inline policy {POLICY_NAME} of IAM role {name}"))?;
    // IAM keeps a document's text as written and hands it back URL-encoded.
    let decode = |d: &str| percent_decode_str(d).decode_utf8_lossy().into_owned();
    let trust_now = role.assume_role_policy_document().map(decode);
    let permissions_now = policy.map(|p| decode(&p.policy_document));
    let mut changes = Vec::new();
    if trust_now.as_ref() != Some(&trust) {
        if !dry_run {
            let update = iam.update_assume_role_policy().role_name(name);
            (update
                .policy_document(&trust)
                .send()
                .await
                .map_err(sdk_error))
            .with_context(|| format!("updating the trust policy of IAM role {name}"))?;
        }
        let (from, to) = (trust_now, Some(trust));
        changes.push(FieldChange {
            field: "AssumeRolePolicyDocument",
            from,
            to,
        });
    }
    if permissions_now.as_ref() != Some(&permissions) {
        if !dry_run {
            put_permissions(clients, name, &permissions).await?;
        }
        let (from, to) = (permissions_now, Some(permissions));
        changes.push(FieldChange {
            field: "RolePolicy",
            from,
            to,
        });
    }
    Ok((role.arn, Change::updated(changes)))
}

async fn get(clients: &Clients, name: &str) -> anyhow::Result<Option<Role>> {
    let got = clients.iam.get_role().role_name(name).send().await;
    let got = none_if_not_found(got).with_context(|| format!("reading IAM role {name}"))?;
    Ok(got.and_then(|out| out.role))
}

async fn put_permissions(clients: &Clients, name: &str, document: &str) -> anyhow::Result<()> {
    let put = clients.iam.put_role_policy().role_name(name);
    let put = put.policy_name(POLICY_NAME).policy_document(document);
    (put.send().await.map_err(sdk_error))
        .with_context(|| format!("writing inline policy {POLICY_NAME} of IAM role {name}"))?;
    Ok(())
}

/// Deletes role `name` if this tool created it (it carries [`MANAGED_TAG`]); any other role
/// is [`Change::Kept`]. With `dry_run`, only reads. Fails if IAM refuses, e.g. because
/// someone attached other policies to the role.
pub async fn delete(clients: &Clients, name: &str, dry_run: bool) -> anyhow::Result<Change> {
    let Some(role) = get(clients, name).await? else {
        return Ok(Change::Absent);
    };
    let tags = role.tags().iter().map(|t| (t.key(), t.value()));
    if !tags.into_iter().any(|tag| tag == MANAGED_TAG) {
        let why = format!("not created by this tool (no {} tag)", MANAGED_TAG.0);
        return Ok(Change::Kept(why));
    }
    if !dry_run {
        // A role with inline policies cannot be deleted; ours has exactly one.
        let policy = clients.iam.delete_role_policy().role_name(name);
        (none_if_not_found(policy.policy_name(POLICY_NAME).send().await))
            .with_context(|| format!("deleting inline policy {POLICY_NAME} of IAM role {name}"))?;
        let deleted = clients.iam.delete_role().role_name(name).send().await;
        deleted.map_err(sdk_error).with_context(|| {
            format!("deleting IAM role {name} (detach policies attached by hand first)")
        })?;
    }
    Ok(Change::Deleted)
}

/// Runs a write that names the role (a schedule); while the role is fresh, retries the
/// `ValidationException` Scheduler answers until IAM has propagated it ("…must allow AWS
/// EventBridge Scheduler to assume the role"), for at most a minute.
pub async fn retry_while_propagating<T, E, R, Fut>(
    role_is_fresh: bool,
    mut call: impl FnMut() -> Fut,
) -> anyhow::Result<T>
where
    Fut: Future<Output = Result<T, SdkError<E, R>>>,
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut pause = Duration::from_secs(2);
    loop {
        let result = call().await;
        let refused = result.as_ref().err().and_then(|e| e.code()) == Some("ValidationException");
        if !(role_is_fresh && refused && Instant::now() + pause < deadline) {
            return result.map_err(sdk_error);
        }
        tracing::info!("execution role not usable yet (IAM propagation); retrying in {pause:?}");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(10));
    }
}
