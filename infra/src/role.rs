//! The IAM execution role EventBridge Scheduler assumes to invoke the sweep function.
//!
//! `apply` makes sure it exists with exactly two documents, so a fresh account needs nothing
//! done by hand:
//! - a trust policy letting only `scheduler.amazonaws.com` assume it, and only on behalf of
//!   this account's schedule group (the `aws:SourceAccount` / `aws:SourceArn` conditions AWS
//!   recommends against the confused-deputy problem);
//! - one inline policy allowing `lambda:InvokeFunction` on that one function, plus
//!   `sqs:SendMessage` on the dead-letter queue when there is one (Scheduler sends dead
//!   letters with this role too). Nothing else: least privilege.
//!
//! The role is tagged [`MANAGED_TAG`] so `delete --purge` never removes a role it did not
//! create.

use anyhow::Context as _;
use aws_sdk_iam::types::Tag;
use serde_json::{Value, json};

use crate::aws::Clients;
use crate::change::{Change, FieldChange};
use crate::error::sdk_error;

/// Name of the one inline policy on the role.
pub const POLICY_NAME: &str = "invoke-retry-sweep";

/// Tag key (and value) marking a role as created by this tool.
pub const MANAGED_TAG: (&str, &str) = ("managed-by", "booking-webhooks-infra");

const DESCRIPTION: &str = "Assumed by EventBridge Scheduler to invoke the booking-webhooks \
     retry sweep. Managed by `infra schedule apply`.";

/// What the execution role must look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSpec {
    /// Role name, e.g. `retry-sweep-scheduler`.
    pub name: String,
    /// Partition of the account (`aws` almost always).
    pub partition: String,
    /// Account that owns the role, the schedule and the function.
    pub account: String,
    /// Region of the schedule group.
    pub region: String,
    /// Schedule group whose schedules may assume the role.
    pub group: String,
    /// The one function the role may invoke.
    pub function_arn: String,
    /// The dead-letter queue the role may send to, if any.
    pub dead_letter_arn: Option<String>,
}

impl RoleSpec {
    /// The ARN the role has (roles are created at path `/`).
    pub fn arn(&self) -> String {
        format!(
            "arn:{}:iam::{}:role/{}",
            self.partition, self.account, self.name
        )
    }

    /// The trust policy: EventBridge Scheduler, for this account's schedule group only.
    pub fn trust_policy(&self) -> Value {
        json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": { "Service": "scheduler.amazonaws.com" },
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {
                        "aws:SourceAccount": self.account,
                        "aws:SourceArn": format!(
                            "arn:{}:scheduler:{}:{}:schedule-group/{}",
                            self.partition, self.region, self.account, self.group
                        ),
                    }
                }
            }]
        })
    }

    /// The inline permissions policy: invoke the one function, send to the one queue.
    pub fn permissions_policy(&self) -> Value {
        let mut statements = vec![json!({
            "Sid": "InvokeRetrySweep",
            "Effect": "Allow",
            "Action": "lambda:InvokeFunction",
            "Resource": self.function_arn,
        })];
        if let Some(queue) = &self.dead_letter_arn {
            statements.push(json!({
                "Sid": "SendDeadLetters",
                "Effect": "Allow",
                "Action": "sqs:SendMessage",
                "Resource": queue,
            }));
        }
        json!({ "Version": "2012-10-17", "Statement": statements })
    }
}

/// The outcome of [`ensure`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleReport {
    /// Role name.
    pub name: String,
    /// Role ARN (predicted, in a dry run that would create it).
    pub arn: String,
    /// What was (or would be) done.
    pub change: Change,
}

/// Creates the role, or brings its trust and inline policy in line with `spec`. With
/// `dry_run`, only reads.
///
/// Fails on any IAM error other than "not found", e.g. when the caller may not read or
/// create roles.
pub async fn ensure(
    clients: &Clients,
    spec: &RoleSpec,
    dry_run: bool,
) -> anyhow::Result<RoleReport> {
    let iam = &clients.iam;
    let trust = spec.trust_policy();
    let permissions = spec.permissions_policy();

    let existing = match iam.get_role().role_name(&spec.name).send().await {
        Ok(out) => out.role,
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) =>
        {
            None
        }
        Err(e) => {
            return Err(sdk_error(e)).with_context(|| format!("reading IAM role {}", spec.name));
        }
    };

    let Some(role) = existing else {
        let mut arn = spec.arn();
        if !dry_run {
            let tag = Tag::builder()
                .key(MANAGED_TAG.0)
                .value(MANAGED_TAG.1)
                .build()
                .context("building the role tag")?;
            let created = iam
                .create_role()
                .role_name(&spec.name)
                .assume_role_policy_document(trust.to_string())
                .description(DESCRIPTION)
                .tags(tag)
                .send()
                .await
                .map_err(sdk_error)
                .with_context(|| format!("creating IAM role {}", spec.name))?;
            if let Some(role) = created.role {
                arn = role.arn;
            }
            put_permissions(clients, spec, &permissions).await?;
        }
        return Ok(RoleReport {
            name: spec.name.clone(),
            arn,
            change: Change::Created,
        });
    };

    let current_trust = role
        .assume_role_policy_document
        .as_deref()
        .map(decode_policy)
        .transpose()?;
    let current_permissions = match iam
        .get_role_policy()
        .role_name(&spec.name)
        .policy_name(POLICY_NAME)
        .send()
        .await
    {
        Ok(out) => Some(decode_policy(&out.policy_document)?),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) =>
        {
            None
        }
        Err(e) => {
            return Err(sdk_error(e)).with_context(|| {
                format!(
                    "reading inline policy {POLICY_NAME} of IAM role {}",
                    spec.name
                )
            });
        }
    };

    // Compare parsed documents, not strings: IAM hands documents back URL-encoded and may
    // re-serialize them.
    let mut changes = Vec::new();
    for (field, current, wanted) in [
        ("AssumeRolePolicyDocument", &current_trust, &trust),
        ("RolePolicy", &current_permissions, &permissions),
    ] {
        if current.as_ref() != Some(wanted) {
            changes.push(FieldChange {
                field,
                from: current.as_ref().map(Value::to_string),
                to: Some(wanted.to_string()),
            });
        }
    }

    if !dry_run {
        for change in &changes {
            if change.field == "AssumeRolePolicyDocument" {
                iam.update_assume_role_policy()
                    .role_name(&spec.name)
                    .policy_document(trust.to_string())
                    .send()
                    .await
                    .map_err(sdk_error)
                    .with_context(|| {
                        format!("updating the trust policy of IAM role {}", spec.name)
                    })?;
            } else {
                put_permissions(clients, spec, &permissions).await?;
            }
        }
    }
    Ok(RoleReport {
        name: spec.name.clone(),
        arn: role.arn,
        change: Change::from_changes(changes),
    })
}

async fn put_permissions(clients: &Clients, spec: &RoleSpec, policy: &Value) -> anyhow::Result<()> {
    clients
        .iam
        .put_role_policy()
        .role_name(&spec.name)
        .policy_name(POLICY_NAME)
        .policy_document(policy.to_string())
        .send()
        .await
        .map_err(sdk_error)
        .with_context(|| {
            format!(
                "writing inline policy {POLICY_NAME} of IAM role {}",
                spec.name
            )
        })?;
    Ok(())
}

/// What [`delete`] did with the role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleRemoval {
    /// The role (and its inline policy) was deleted, or would be in a dry run.
    Deleted,
    /// There was no such role.
    Absent,
    /// The role exists but lacks [`MANAGED_TAG`], so it was left alone.
    NotManaged,
}

/// Deletes the role if this tool created it (it carries [`MANAGED_TAG`]). With `dry_run`,
/// only reads.
///
/// Fails if IAM refuses, e.g. because someone attached other policies to the role.
pub async fn delete(clients: &Clients, name: &str, dry_run: bool) -> anyhow::Result<RoleRemoval> {
    let iam = &clients.iam;
    let role = match iam.get_role().role_name(name).send().await {
        Ok(out) => out.role,
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) =>
        {
            None
        }
        Err(e) => return Err(sdk_error(e)).with_context(|| format!("reading IAM role {name}")),
    };
    let Some(role) = role else {
        return Ok(RoleRemoval::Absent);
    };
    let managed = role
        .tags
        .unwrap_or_default()
        .iter()
        .any(|t| t.key == MANAGED_TAG.0 && t.value == MANAGED_TAG.1);
    if !managed {
        return Ok(RoleRemoval::NotManaged);
    }
    if dry_run {
        return Ok(RoleRemoval::Deleted);
    }
    // A role with inline policies cannot be deleted; ours has exactly one.
    match iam
        .delete_role_policy()
        .role_name(name)
        .policy_name(POLICY_NAME)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) => {}
        Err(e) => {
            return Err(sdk_error(e)).with_context(|| {
                format!("deleting inline policy {POLICY_NAME} of IAM role {name}")
            });
        }
    }
    iam.delete_role()
        .role_name(name)
        .send()
        .await
        .map_err(sdk_error)
        .with_context(|| {
            format!(
                "deleting IAM role {name} (other policies attached by hand must be detached first)"
            )
        })?;
    Ok(RoleRemoval::Deleted)
}

/// Parses a policy document as IAM returns it: URL-encoded JSON (RFC 3986), though some
/// implementations return it plain.
pub fn decode_policy(document: &str) -> anyhow::Result<Value> {
    if let Ok(value) = serde_json::from_str(document) {
        return Ok(value);
    }
    let decoded =
        percent_decode(document).context("policy document is neither JSON nor URL-encoded JSON")?;
    serde_json::from_str(&decoded).context("URL-decoded policy document is not JSON")
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dead_letter_arn: Option<&str>) -> RoleSpec {
        RoleSpec {
            name: "retry-sweep-scheduler".into(),
            partition: "aws".into(),
            account: "123456789012".into(),
            region: "eu-west-1".into(),
            group: "booking-webhooks".into(),
            function_arn: "arn:aws:lambda:eu-west-1:123456789012:function:retry-sweep".into(),
            dead_letter_arn: dead_letter_arn.map(Into::into),
        }
    }

    #[test]
    fn trust_is_limited_to_the_scheduler_of_this_account_and_group() {
        let trust = spec(None).trust_policy();
        let statement = &trust["Statement"][0];
        assert_eq!(
            statement["Principal"],
            json!({ "Service": "scheduler.amazonaws.com" })
        );
        assert_eq!(statement["Action"], "sts:AssumeRole");
        assert_eq!(
            statement["Condition"]["StringEquals"],
            json!({
                "aws:SourceAccount": "123456789012",
                "aws:SourceArn": "arn:aws:scheduler:eu-west-1:123456789012:schedule-group/booking-webhooks",
            })
        );
    }

    #[test]
    fn permissions_cover_the_one_function_and_only_the_given_queue() {
        let without = spec(None).permissions_policy();
        assert_eq!(
            without["Statement"],
            json!([{
                "Sid": "InvokeRetrySweep",
                "Effect": "Allow",
                "Action": "lambda:InvokeFunction",
                "Resource": "arn:aws:lambda:eu-west-1:123456789012:function:retry-sweep",
            }])
        );
        let with = spec(Some("arn:aws:sqs:eu-west-1:123456789012:dlq")).permissions_policy();
        assert_eq!(with["Statement"].as_array().map(Vec::len), Some(2));
        assert_eq!(with["Statement"][1]["Action"], "sqs:SendMessage");
        assert_eq!(
            with["Statement"][1]["Resource"],
            "arn:aws:sqs:eu-west-1:123456789012:dlq"
        );
        assert_eq!(
            spec(None).arn(),
            "arn:aws:iam::123456789012:role/retry-sweep-scheduler"
        );
    }

    #[test]
    fn policies_are_read_plain_or_url_encoded() {
        let plain = r#"{"Version":"2012-10-17","Statement":[]}"#;
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
        assert_eq!(decode_policy(plain).ok(), decode_policy(encoded).ok());
        assert_eq!(
            decode_policy(encoded).ok().map(|v| v["Version"].clone()),
            Some(json!("2012-10-17"))
        );
        assert!(decode_policy("%7").is_err());
        assert!(decode_policy("not json").is_err());
    }
}
