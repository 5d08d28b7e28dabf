//! Our own checks of schedule expressions, names and ARNs, run before any AWS call.
//!
//! EventBridge Scheduler rejects a bad value only when the call reaches it, and the emulator
//! the tests use (moto) validates nothing at all, so without these checks a typo would
//! either fail half-way through an `apply` or, against moto, pass unnoticed. The rules follow
//! the Scheduler, Lambda, IAM and SQS API references (patterns and length limits).

use std::fmt;
use std::time::Duration;

/// A value that failed validation: which input, what was wrong. The message never repeats a
/// secret (none of these inputs is one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {reason}")]
pub struct ValidationError {
    /// The kind of input, e.g. "schedule expression" or "Lambda function ARN".
    pub what: &'static str,
    /// The rejected value.
    pub value: String,
    /// Why it was rejected.
    pub reason: String,
}

fn invalid(what: &'static str, value: &str, reason: impl Into<String>) -> ValidationError {
    ValidationError {
        what,
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// A checked recurring schedule expression: `rate(…)` or `cron(…)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleExpression {
    /// `rate(value unit)`, with the period it stands for.
    Rate(Duration),
    /// `cron(minutes hours day-of-month month day-of-week year)`.
    Cron,
}

impl ScheduleExpression {
    /// The fixed period of a `rate(…)` expression; `None` for `cron(…)`.
    pub fn period(&self) -> Option<Duration> {
        match self {
            Self::Rate(period) => Some(*period),
            Self::Cron => None,
        }
    }
}

/// Checks a schedule expression for the sweep.
///
/// Accepts `rate(value unit)` (value a positive integer; unit minute(s), hour(s) or day(s),
/// singular exactly when the value is 1, as the EventBridge reference requires) and
/// `cron(…)` with its six fields. Rejects `at(…)`: a one-time schedule would run the sweep
/// once and then never again, which is never what the safety net wants.
pub fn schedule_expression(value: &str) -> Result<ScheduleExpression, ValidationError> {
    const WHAT: &str = "schedule expression";
    if let Some(body) = strip_call(value, "rate") {
        let mut parts = body.split(' ');
        let (Some(amount), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(invalid(WHAT, value, "expected rate(<value> <unit>)"));
        };
        if amount.is_empty() || !amount.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(
                WHAT,
                value,
                "the rate value must be a positive integer",
            ));
        }
        let amount: u64 = amount
            .parse()
            .map_err(|_| invalid(WHAT, value, "the rate value is too large"))?;
        if amount == 0 {
            return Err(invalid(WHAT, value, "the rate value must be at least 1"));
        }
        let (seconds, singular) = match unit {
            "minute" => (60, true),
            "minutes" => (60, false),
            "hour" => (3_600, true),
            "hours" => (3_600, false),
            "day" => (86_400, true),
            "days" => (86_400, false),
            _ => {
                return Err(invalid(
                    WHAT,
                    value,
                    "the unit must be minute(s), hour(s) or day(s)",
                ));
            }
        };
        if singular != (amount == 1) {
            return Err(invalid(
                WHAT,
                value,
                "use a singular unit for 1 and a plural one otherwise, e.g. rate(1 minute), rate(10 minutes)",
            ));
        }
        let period = amount
            .checked_mul(seconds)
            .ok_or_else(|| invalid(WHAT, value, "the rate value is too large"))?;
        return Ok(ScheduleExpression::Rate(Duration::from_secs(period)));
    }
    if let Some(body) = strip_call(value, "cron") {
        let fields = body.split(' ').filter(|f| !f.is_empty()).count();
        if fields != 6 {
            return Err(invalid(
                WHAT,
                value,
                format!(
                    "cron needs 6 fields (minutes hours day-of-month month day-of-week year), found {fields}"
                ),
            ));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || ",-*?/LW#".contains(c) || c == ' ';
        if !body.chars().all(allowed) {
            return Err(invalid(WHAT, value, "unexpected character in cron fields"));
        }
        return Ok(ScheduleExpression::Cron);
    }
    if strip_call(value, "at").is_some() {
        return Err(invalid(
            WHAT,
            value,
            "at(…) runs once; the sweep needs a recurring rate(…) or cron(…) expression",
        ));
    }
    Err(invalid(
        WHAT,
        value,
        "expected rate(<value> <unit>) or cron(<6 fields>)",
    ))
}

/// `name(body)` → `body`, when `value` has exactly that shape.
fn strip_call<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    value
        .strip_prefix(name)?
        .strip_prefix('(')?
        .strip_suffix(')')
}

/// Checks a schedule or schedule-group name: 1 to 64 of `[0-9a-zA-Z-_.]`.
pub fn schedule_name(what: &'static str, value: &str) -> Result<(), ValidationError> {
    name_of(
        what,
        value,
        b"-_.",
        "only letters, digits, '-', '_' and '.' are allowed",
    )
}

/// Checks an IAM role name: 1 to 64 of `[A-Za-z0-9+=,.@_-]`.
pub fn role_name(value: &str) -> Result<(), ValidationError> {
    name_of(
        "IAM role name",
        value,
        b"+=,.@_-",
        "only letters, digits and +=,.@_- are allowed",
    )
}

/// 1 to 64 characters, each a letter, a digit or one of `punctuation`.
fn name_of(
    what: &'static str,
    value: &str,
    punctuation: &[u8],
    rule: &str,
) -> Result<(), ValidationError> {
    if value.is_empty() || value.len() > 64 {
        return Err(invalid(what, value, "must be 1 to 64 characters"));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || punctuation.contains(&b))
    {
        return Err(invalid(what, value, rule));
    }
    Ok(())
}

/// Checks an AWS region name such as `eu-west-1` or `us-gov-west-1`.
pub fn region(value: &str) -> Result<(), ValidationError> {
    if is_region(value) {
        Ok(())
    } else {
        Err(invalid(
            "AWS region",
            value,
            "expected a region name such as eu-west-1",
        ))
    }
}

fn is_region(value: &str) -> bool {
    // <2 letters>-<one or more words>-<digit(s)>, e.g. ap-southeast-2, us-gov-west-1.
    let parts: Vec<&str> = value.split('-').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return false;
    };
    first.len() == 2
        && first.bytes().all(|b| b.is_ascii_lowercase())
        && !middle.is_empty()
        && middle
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        && !last.is_empty()
        && last.bytes().all(|b| b.is_ascii_digit())
}

/// Checks a 12-digit AWS account id.
pub fn account_id(value: &str) -> Result<(), ValidationError> {
    if is_account(value) {
        Ok(())
    } else {
        Err(invalid("AWS account id", value, "expected 12 digits"))
    }
}

fn is_account(value: &str) -> bool {
    value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit())
}

fn is_partition(value: &str) -> bool {
    matches!(value, "aws" | "aws-cn" | "aws-us-gov")
}

/// The parts of a Lambda function ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionArn {
    /// `aws`, `aws-cn` or `aws-us-gov`.
    pub partition: String,
    /// The function's region.
    pub region: String,
    /// The owning account.
    pub account: String,
    /// The function name.
    pub name: String,
    /// A version or alias, when the ARN is qualified.
    pub qualifier: Option<String>,
}

impl FunctionArn {
    /// The ARN of function `name` in `region` of `account`, in the `aws` partition.
    pub fn new(region: &str, account: &str, name: &str) -> Result<Self, ValidationError> {
        self::region(region)?;
        account_id(account)?;
        lambda_function_arn(&format!(
            "arn:aws:lambda:{region}:{account}:function:{name}"
        ))
    }
}

impl fmt::Display for FunctionArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:lambda:{}:{}:function:{}",
            self.partition, self.region, self.account, self.name
        )?;
        if let Some(qualifier) = &self.qualifier {
            write!(f, ":{qualifier}")?;
        }
        Ok(())
    }
}

/// Checks and splits `arn:{partition}:lambda:{region}:{account}:function:{name}[:{qualifier}]`.
///
/// The name is 1 to 64 of `[A-Za-z0-9-_]`; the qualifier is `$LATEST`, a version number or an
/// alias name.
pub fn lambda_function_arn(value: &str) -> Result<FunctionArn, ValidationError> {
    const WHAT: &str = "Lambda function ARN";
    let parts: Vec<&str> = value.split(':').collect();
    let (partition, region, account, name, qualifier) = match parts.as_slice() {
        [
            "arn",
            partition,
            "lambda",
            region,
            account,
            "function",
            name,
        ] => (*partition, *region, *account, *name, None),
        [
            "arn",
            partition,
            "lambda",
            region,
            account,
            "function",
            name,
            qualifier,
        ] => (*partition, *region, *account, *name, Some(*qualifier)),
        _ => {
            return Err(invalid(
                WHAT,
                value,
                "expected arn:aws:lambda:<region>:<account>:function:<name>[:<alias or version>]",
            ));
        }
    };
    check_scope(WHAT, value, partition, Some(region), account)?;
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
    {
        return Err(invalid(
            WHAT,
            value,
            "the function name must be 1 to 64 letters, digits, '-' or '_'",
        ));
    }
    if let Some(qualifier) = qualifier {
        let ok = qualifier == "$LATEST"
            || (!qualifier.is_empty()
                && qualifier.len() <= 128
                && qualifier
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)));
        if !ok {
            return Err(invalid(
                WHAT,
                value,
                "the qualifier must be $LATEST, a version or an alias",
            ));
        }
    }
    Ok(FunctionArn {
        partition: partition.to_owned(),
        region: region.to_owned(),
        account: account.to_owned(),
        name: name.to_owned(),
        qualifier: qualifier.map(str::to_owned),
    })
}

/// Checks `arn:{partition}:iam::{account}:role/{path/}{name}` and returns the account.
pub fn iam_role_arn(value: &str) -> Result<String, ValidationError> {
    const WHAT: &str = "IAM role ARN";
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    let ["arn", partition, "iam", "", account, resource] = parts.as_slice() else {
        return Err(invalid(
            WHAT,
            value,
            "expected arn:aws:iam::<account>:role/<name>",
        ));
    };
    check_scope(WHAT, value, partition, None, account)?;
    let Some(path_and_name) = resource.strip_prefix("role/") else {
        return Err(invalid(WHAT, value, "not a role (expected ':role/')"));
    };
    let name = path_and_name.rsplit('/').next().unwrap_or_default();
    role_name(name).map_err(|e| invalid(WHAT, value, e.reason))?;
    Ok((*account).to_owned())
}

/// The parts of an SQS queue ARN that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueArn {
    /// The queue's region.
    pub region: String,
    /// The owning account.
    pub account: String,
}

/// The partition, region (IAM ARNs have none) and account parts every ARN we take share.
fn check_scope(
    what: &'static str,
    value: &str,
    partition: &str,
    region: Option<&str>,
    account: &str,
) -> Result<(), ValidationError> {
    if !is_partition(partition) {
        return Err(invalid(what, value, "unknown partition"));
    }
    if region.is_some_and(|r| !is_region(r)) {
        return Err(invalid(what, value, "the region part is not a region name"));
    }
    if !is_account(account) {
        return Err(invalid(what, value, "the account part must be 12 digits"));
    }
    Ok(())
}

/// Checks `arn:{partition}:sqs:{region}:{account}:{name}` for a dead-letter queue.
///
/// FIFO queues (`….fifo`) are rejected: EventBridge Scheduler supports only standard queues
/// as a dead-letter queue.
pub fn sqs_queue_arn(value: &str) -> Result<QueueArn, ValidationError> {
    const WHAT: &str = "SQS dead-letter queue ARN";
    let parts: Vec<&str> = value.split(':').collect();
    let ["arn", partition, "sqs", region, account, name] = parts.as_slice() else {
        return Err(invalid(
            WHAT,
            value,
            "expected arn:aws:sqs:<region>:<account>:<queue name>",
        ));
    };
    check_scope(WHAT, value, partition, Some(region), account)?;
    if name.ends_with(".fifo") {
        return Err(invalid(
            WHAT,
            value,
            "EventBridge Scheduler cannot use a FIFO queue as a dead-letter queue",
        ));
    }
    if name.is_empty()
        || name.len() > 80
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
    {
        return Err(invalid(
            WHAT,
            value,
            "the queue name must be 1 to 80 letters, digits, '-' or '_'",
        ));
    }
    Ok(QueueArn {
        region: (*region).to_owned(),
        account: (*account).to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_expressions_give_their_period() {
        let minutes = |m: u64| Some(Duration::from_secs(60 * m));
        assert_eq!(
            schedule_expression("rate(10 minutes)").map(|e| e.period()),
            Ok(minutes(10))
        );
        assert_eq!(
            schedule_expression("rate(1 minute)").map(|e| e.period()),
            Ok(minutes(1))
        );
        assert_eq!(
            schedule_expression("rate(2 hours)").map(|e| e.period()),
            Ok(minutes(120))
        );
        assert_eq!(
            schedule_expression("rate(1 day)").map(|e| e.period()),
            Ok(minutes(1440))
        );
    }

    #[test]
    fn malformed_rate_expressions_are_rejected_with_a_reason() {
        for bad in [
            "rate(10 minute)",
            "rate(1 minutes)",
            "rate(0 minutes)",
            "rate(-5 minutes)",
            "rate(1.5 hours)",
            "rate(10 seconds)",
            "rate(10  minutes)",
            "rate(10minutes)",
            "rate( 10 minutes)",
            "rate()",
            "rate(10 minutes",
            "Rate(10 minutes)",
            "rate(99999999999999999999 minutes)",
            "rate(999999999999999999 days)",
            "every 10 minutes",
            "",
        ] {
            let err = schedule_expression(bad).expect_err(bad);
            assert_eq!(err.what, "schedule expression", "{bad}");
            assert!(!err.reason.is_empty(), "{bad}");
        }
    }

    #[test]
    fn cron_needs_six_fields_and_at_is_refused() {
        assert_eq!(
            schedule_expression("cron(0/10 * * * ? *)"),
            Ok(ScheduleExpression::Cron)
        );
        assert_eq!(
            schedule_expression("cron(0/10 * * * ? *)").map(|e| e.period()),
            Ok(None)
        );
        assert!(schedule_expression("cron(0/10 * * * ?)").is_err());
        assert!(schedule_expression("cron(0/10 * * * ? * *)").is_err());
        assert!(schedule_expression("cron(0/10 * * * ? $)").is_err());
        let at = schedule_expression("at(2030-01-01T00:00:00)").expect_err("at");
        assert!(at.reason.contains("recurring"), "{at}");
    }

    #[test]
    fn function_arns_are_split_and_rebuilt() {
        let arn = lambda_function_arn("arn:aws:lambda:eu-west-1:123456789012:function:retry-sweep")
            .expect("valid");
        assert_eq!(arn.region, "eu-west-1");
        assert_eq!(arn.account, "123456789012");
        assert_eq!(arn.name, "retry-sweep");
        assert_eq!(arn.qualifier, None);
        assert_eq!(
            arn.to_string(),
            "arn:aws:lambda:eu-west-1:123456789012:function:retry-sweep"
        );

        let qualified =
            lambda_function_arn("arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:f:live")
                .expect("valid");
        assert_eq!(qualified.qualifier.as_deref(), Some("live"));
        assert_eq!(
            qualified.to_string(),
            "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:f:live"
        );

        let built = FunctionArn::new("us-east-1", "123456789012", "retry-sweep").expect("valid");
        assert_eq!(
            built.to_string(),
            "arn:aws:lambda:us-east-1:123456789012:function:retry-sweep"
        );
    }

    #[test]
    fn bad_function_arns_are_rejected() {
        for bad in [
            "retry-sweep",
            "arn:aws:lambda:eu-west-1:123456789012:function:",
            "arn:aws:lambda:eu-west-1:12345678901:function:retry-sweep",
            "arn:aws:lambda:eu-west-1:123456789012:layer:retry-sweep",
            "arn:aws:lambda:euwest1:123456789012:function:retry-sweep",
            "arn:aws:lambda:eu-west-1:123456789012:function:retry sweep",
            "arn:aws:lambda:eu-west-1:123456789012:function:retry-sweep:",
            "arn:aws:lambda:eu-west-1:123456789012:function:retry-sweep:a:b",
            "arn:gcp:lambda:eu-west-1:123456789012:function:retry-sweep",
            "arn:aws:sqs:eu-west-1:123456789012:function:retry-sweep",
        ] {
            assert!(lambda_function_arn(bad).is_err(), "{bad}");
        }
        assert!(FunctionArn::new("eu-west-1", "1234", "retry-sweep").is_err());
        assert!(FunctionArn::new("nowhere", "123456789012", "retry-sweep").is_err());
    }

    #[test]
    fn role_arns_may_have_a_path_and_give_their_account() {
        assert_eq!(
            iam_role_arn("arn:aws:iam::123456789012:role/retry-sweep-scheduler").as_deref(),
            Ok("123456789012")
        );
        assert_eq!(
            iam_role_arn("arn:aws:iam::123456789012:role/service-role/my.role@x").as_deref(),
            Ok("123456789012")
        );
        for bad in [
            "arn:aws:iam::123456789012:user/alice",
            "arn:aws:iam:eu-west-1:123456789012:role/r",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::123456789012:role/has space",
            "arn:aws:iam::abc:role/r",
            "role/r",
        ] {
            assert!(iam_role_arn(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dead_letter_queues_must_be_standard_sqs_queues() {
        assert_eq!(
            sqs_queue_arn("arn:aws:sqs:eu-west-1:123456789012:retry-sweep-dlq"),
            Ok(QueueArn {
                region: "eu-west-1".into(),
                account: "123456789012".into()
            })
        );
        let fifo = sqs_queue_arn("arn:aws:sqs:eu-west-1:123456789012:dlq.fifo").expect_err("fifo");
        assert!(fifo.reason.contains("FIFO"), "{fifo}");
        for bad in [
            "arn:aws:sns:eu-west-1:123456789012:topic",
            "arn:aws:sqs:eu-west-1:123456789012:",
            "arn:aws:sqs:eu-west-1:123456789012:a/b",
            "https://sqs.eu-west-1.amazonaws.com/123456789012/dlq",
        ] {
            assert!(sqs_queue_arn(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_and_regions_follow_the_api_patterns() {
        assert!(schedule_name("schedule name", "retry-sweep").is_ok());
        assert!(schedule_name("schedule name", "a.b_c-1").is_ok());
        assert!(schedule_name("schedule name", "").is_err());
        assert!(schedule_name("schedule name", &"x".repeat(65)).is_err());
        assert!(schedule_name("schedule group", "with/slash").is_err());
        assert!(role_name("retry-sweep-scheduler").is_ok());
        assert!(role_name("a+b=c,d.e@f").is_ok());
        assert!(role_name("a b").is_err());
        assert!(role_name(&"r".repeat(65)).is_err());
        for ok in [
            "eu-west-1",
            "us-gov-west-1",
            "ap-southeast-2",
            "il-central-1",
        ] {
            assert!(region(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "eu",
            "eu-west",
            "EU-WEST-1",
            "eu--1",
            "eu-west-x",
            "europe-west-1",
        ] {
            assert!(region(bad).is_err(), "{bad}");
        }
        assert!(account_id("123456789012").is_ok());
        assert!(account_id("12345678901a").is_err());
    }
}
