//! The schedule's target: the retry-sweep function it invokes, resolved and checked before any
//! call, and the `Target` (input, retry policy, dead-letter queue) that invokes it.

use anyhow::bail;
use aws_sdk_scheduler::types::{DeadLetterConfig, RetryPolicy, Target};

/// The function the schedule invokes: its ARN, and the partition and account of the role.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub arn: String,
    pub partition: String,
    pub account: String,
}

const ARN_FORMAT: &str = "arn:aws:lambda:<region>:<12-digit account>:function:<name>";

impl Function {
    /// The function to invoke in `region`: `arn`, else built from `name` and `account`.
    /// Refuses, before any call, an ARN it cannot read and a function in another region
    /// (Scheduler invokes Lambda only in its own; usually a wrong `AWS_REGION`).
    pub fn resolve(
        arn: Option<&str>,
        account: Option<&str>,
        name: &str,
        region: &str,
    ) -> anyhow::Result<Function> {
        let arn = match (arn, account) {
            (Some(arn), _) => arn.to_owned(),
            (None, Some(account)) => {
                let name = name.trim();
                format!("arn:aws:lambda:{region}:{account}:function:{name}")
            }
            (None, None) => bail!(
                "which function? set WEBHOOK_SWEEP_FUNCTION_ARN (--function-arn), or \
                 AWS_ACCOUNT_ID (--account-id) with WEBHOOK_SWEEP_FUNCTION_NAME \
                 (--function-name, default retry-sweep)"
            ),
        };
        let parts: Vec<&str> = arn.split(':').collect();
        let [
            "arn",
            partition,
            "lambda",
            in_region,
            account,
            "function",
            name,
            ..,
        ] = parts[..]
        else {
            bail!("invalid Lambda function ARN {arn:?}: expected {ARN_FORMAT}");
        };
        if name.is_empty() || account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            bail!("invalid Lambda function ARN {arn:?}: expected {ARN_FORMAT}");
        }
        if in_region != region {
            bail!(
                "invalid Lambda function ARN {arn:?}: the function is in {in_region} but the \
                 schedule would be in {region}"
            );
        }
        let (partition, account) = (partition.to_owned(), account.to_owned());
        Ok(Function {
            arn,
            partition,
            account,
        })
    }
}

/// Refuses a FIFO dead-letter queue, which AWS accepts but Scheduler cannot use.
pub fn check_dead_letter_queue(queue: Option<&str>) -> anyhow::Result<()> {
    if let Some(queue) = queue.filter(|q| q.ends_with(".fifo")) {
        bail!("invalid SQS dead-letter queue ARN {queue:?}: Scheduler cannot use a FIFO queue");
    }
    Ok(())
}

/// The target as `GetSchedule` returns it: invoke `function_arn` as `role_arn` with input
/// `{}`, Scheduler's own retries bounded to 300 s and 3 attempts, then `dead_letter_queue`.
pub fn target(
    function_arn: &str,
    role_arn: &str,
    dead_letter_queue: Option<&str>,
) -> anyhow::Result<Target> {
    let retry = RetryPolicy::builder().maximum_event_age_in_seconds(300);
    let dead_letter = dead_letter_queue.map(|arn| DeadLetterConfig::builder().arn(arn).build());
    let target = Target::builder()
        .arn(function_arn)
        .role_arn(role_arn)
        .input("{}");
    let target = target.retry_policy(retry.maximum_retry_attempts(3).build());
    Ok(target.set_dead_letter_config(dead_letter).build()?)
}
