//! `infra schedule apply | show | delete` against a real AWS API emulator: moto server, one
//! per test, on 127.0.0.1. Everything `apply` wrote is read back with plain SDK calls
//! (`GetSchedule`, `GetRole`, `GetRolePolicy`), not through our own mapping code. Then the
//! pure parts: the wanted schedule, the diff, the policies, the command line's arguments.
//!
//! moto validates nothing; `infra` checks only what AWS would accept but cannot work (a
//! function in another region, a FIFO dead-letter queue), and AWS checks the rest.

use anyhow::{Context as _, Result, ensure};
use aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput;
use aws_sdk_scheduler::primitives::DateTime;
use aws_sdk_scheduler::types::{FlexibleTimeWindow, FlexibleTimeWindowMode, ScheduleState};
use clap::Parser as _;
use infra::aws::{Clients, none_if_not_found, sdk_error};
use infra::change::{Change, Report};
use infra::cli::{Cli, Command, ScheduleCommand};
use infra::schedule::role::RoleArgs;
use infra::schedule::{self, DeleteOptions, SweepSchedule};
use serde_json::json;

use crate::support::aws::{
    ACCOUNT, REGION, decode_policy, delete_options, emulator, item, run_cli, sweep_schedule,
};

const FUNCTION: &str = "arn:aws:lambda:eu-west-1:123456789012:function:retry-sweep";
const ROLE_NAME: &str = "retry-sweep-scheduler";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/retry-sweep-scheduler";
const DLQ: &str = "arn:aws:sqs:eu-west-1:123456789012:retry-sweep-dlq";

async fn apply(clients: &Clients, desired: &SweepSchedule) -> Result<Report> {
    schedule::apply(clients, desired).await
}

/// What happened to the report's resource of `kind` ("schedule group", "execution role",
/// "schedule").
fn change<'a>(report: &'a Report, kind: &str) -> &'a Change {
    item(report, kind)
        .map(|item| &item.change)
        .unwrap_or_else(|| panic!("no {kind} in {report:?}"))
}

/// The names of the fields that changed on the resource of `kind`.
fn changed_fields(report: &Report, kind: &str) -> Vec<&'static str> {
    let found = item(report, kind).into_iter();
    found
        .flat_map(|i| i.change.fields())
        .map(|c| c.field)
        .collect()
}

async fn get_schedule(clients: &Clients, group: &str, name: &str) -> Result<GetScheduleOutput> {
    let get = clients
        .scheduler
        .get_schedule()
        .group_name(group)
        .name(name);
    (get.send().await.map_err(sdk_error)).with_context(|| format!("GetSchedule {group}/{name}"))
}

async fn schedule_is_absent(clients: &Clients, group: &str, name: &str) -> Result<bool> {
    let get = clients
        .scheduler
        .get_schedule()
        .group_name(group)
        .name(name);
    Ok(none_if_not_found(get.send().await)?.is_none())
}

async fn group_is_absent(clients: &Clients, group: &str) -> Result<bool> {
    let get = clients.scheduler.get_schedule_group().name(group);
    Ok(none_if_not_found(get.send().await)?.is_none())
}

async fn role_is_absent(clients: &Clients, name: &str) -> Result<bool> {
    let get = clients.iam.get_role().role_name(name);
    Ok(none_if_not_found(get.send().await)?.is_none())
}

/// The inline policy of the managed role, parsed.
async fn role_policy(clients: &Clients) -> Result<serde_json::Value> {
    let get = clients.iam.get_role_policy().role_name(ROLE_NAME);
    let out = get
        .policy_name(infra::schedule::role::POLICY_NAME)
        .send()
        .await
        .map_err(sdk_error)?;
    decode_policy(out.policy_document())
}

/// Asserts every field of the schedule as `GetSchedule` returns it.
fn assert_sweep_schedule(
    out: &GetScheduleOutput,
    expression: &str,
    role_arn: &str,
    dead_letter: Option<&str>,
) -> Result<()> {
    assert_eq!(out.name(), Some("retry-sweep"));
    assert_eq!(out.group_name(), Some("booking-webhooks"));
    assert_eq!(
        out.arn(),
        Some("arn:aws:scheduler:eu-west-1:123456789012:schedule/booking-webhooks/retry-sweep")
    );
    assert_eq!(out.schedule_expression(), Some(expression));
    assert_eq!(out.schedule_expression_timezone(), Some("UTC"));
    assert_eq!(out.description(), Some(schedule::DESCRIPTION));
    assert_eq!(out.state(), Some(&ScheduleState::Enabled));
    let window = out
        .flexible_time_window()
        .context("no FlexibleTimeWindow")?;
    assert_eq!(window.mode(), &FlexibleTimeWindowMode::Off);
    assert_eq!(window.maximum_window_in_minutes(), None);
    let target = out.target().context("no Target")?;
    assert_eq!(target.arn(), FUNCTION);
    assert_eq!(target.role_arn(), role_arn);
    assert_eq!(target.input(), Some("{}"));
    let retry = target.retry_policy().context("no RetryPolicy")?;
    assert_eq!(retry.maximum_event_age_in_seconds(), Some(300));
    assert_eq!(retry.maximum_retry_attempts(), Some(3));
    assert_eq!(
        target.dead_letter_config().and_then(|d| d.arn()),
        dead_letter
    );
    assert_eq!(out.kms_key_arn(), None);
    assert_eq!(out.start_date(), None);
    assert_eq!(out.end_date(), None);
    Ok(())
}

#[tokio::test]
async fn apply_creates_then_changes_nothing_then_updates_only_the_new_rate() -> Result<()> {
    let (_moto, _, clients) = emulator().await?;
    let desired = sweep_schedule(FUNCTION);

    let first = apply(&clients, &desired).await?;
    assert_eq!(change(&first, "schedule group"), &Change::Created);
    assert_eq!(change(&first, "schedule"), &Change::Created);
    let role = item(&first, "execution role").context("a managed role is reported")?;
    assert_eq!(
        (role.name.as_str(), role.arn.as_deref()),
        (ROLE_NAME, Some(ROLE_ARN))
    );
    assert_eq!(role.change, Change::Created);
    assert_sweep_schedule(
        &get_schedule(&clients, "booking-webhooks", "retry-sweep").await?,
        "rate(10 minutes)",
        ROLE_ARN,
        None,
    )?;

    // The role Scheduler assumes: trusted by the scheduler of this account and group only,
    // allowed to invoke the one function and nothing else.
    let got = clients.iam.get_role().role_name(ROLE_NAME).send().await?;
    let trust = decode_policy(
        got.role()
            .and_then(|r| r.assume_role_policy_document())
            .context("no trust policy")?,
    )?;
    assert_eq!(
        trust["Statement"][0]["Principal"],
        json!({ "Service": "scheduler.amazonaws.com" })
    );
    assert_eq!(
        trust["Statement"][0]["Condition"]["StringEquals"]["aws:SourceArn"],
        "arn:aws:scheduler:eu-west-1:123456789012:schedule-group/booking-webhooks"
    );
    assert_eq!(
        role_policy(&clients).await?["Statement"],
        json!([{
            "Sid": "InvokeRetrySweep",
            "Effect": "Allow",
            "Action": "lambda:InvokeFunction",
            "Resource": FUNCTION,
        }])
    );

    let second = apply(&clients, &desired).await?;
    assert_eq!(change(&second, "schedule group"), &Change::Unchanged);
    assert_eq!(change(&second, "execution role"), &Change::Unchanged);
    assert_eq!(change(&second, "schedule"), &Change::Unchanged);
    let schedule_arn = |r: &Report| item(r, "schedule").and_then(|i| i.arn.clone());
    assert_eq!(schedule_arn(&second), schedule_arn(&first));
    assert!(schedule_arn(&first).is_some());

    let faster = SweepSchedule {
        expression: "rate(5 minutes)".into(),
        ..desired.clone()
    };
    let third = apply(&clients, &faster).await?;
    assert_eq!(change(&third, "schedule group"), &Change::Unchanged);
    assert_eq!(change(&third, "execution role"), &Change::Unchanged);
    let fields: Vec<String> = change(&third, "schedule")
        .fields()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        fields,
        ["ScheduleExpression: \"rate(10 minutes)\" -> \"rate(5 minutes)\""]
    );
    assert_sweep_schedule(
        &get_schedule(&clients, "booking-webhooks", "retry-sweep").await?,
        "rate(5 minutes)",
        ROLE_ARN,
        None,
    )?;

    // Someone edits the schedule by hand (disabled, flexible window, another time zone and
    // description): apply puts every field back.
    let current = get_schedule(&clients, "booking-webhooks", "retry-sweep").await?;
    clients
        .scheduler
        .update_schedule()
        .group_name("booking-webhooks")
        .name("retry-sweep")
        .schedule_expression("rate(5 minutes)")
        .schedule_expression_timezone("Europe/Berlin")
        .description("paused during the incident")
        .state(ScheduleState::Disabled)
        .flexible_time_window(
            FlexibleTimeWindow::builder()
                .mode(FlexibleTimeWindowMode::Flexible)
                .maximum_window_in_minutes(15)
                .build()?,
        )
        .set_target(current.target)
        .send()
        .await
        .map_err(sdk_error)?;
    let repaired = apply(&clients, &faster).await?;
    assert_eq!(
        changed_fields(&repaired, "schedule"),
        [
            "ScheduleExpressionTimezone",
            "Description",
            "State",
            "FlexibleTimeWindow.Mode",
            "FlexibleTimeWindow.MaximumWindowInMinutes"
        ]
    );
    assert_sweep_schedule(
        &get_schedule(&clients, "booking-webhooks", "retry-sweep").await?,
        "rate(5 minutes)",
        ROLE_ARN,
        None,
    )?;

    let shown = schedule::get(&clients, "booking-webhooks", "retry-sweep")
        .await?
        .context("show finds the schedule")?;
    assert_eq!(
        schedule::fields(&shown),
        schedule::fields(&faster.wanted(FUNCTION, ROLE_ARN)?)
    );
    assert_eq!(shown.arn.clone(), schedule_arn(&first));

    let deleted = schedule::delete(&clients, &delete_options()).await?;
    assert_eq!(change(&deleted, "schedule"), &Change::Deleted);
    assert_eq!(deleted.items.len(), 1, "no --purge: {deleted:?}");
    assert!(schedule_is_absent(&clients, "booking-webhooks", "retry-sweep").await?);
    assert!(
        !group_is_absent(&clients, "booking-webhooks").await?,
        "no --purge: group stays"
    );
    assert!(
        !role_is_absent(&clients, ROLE_NAME).await?,
        "no --purge: role stays"
    );
    assert!(
        schedule::get(&clients, "booking-webhooks", "retry-sweep")
            .await?
            .is_none()
    );

    let again = schedule::delete(&clients, &delete_options()).await?;
    assert_eq!(change(&again, "schedule"), &Change::Absent);
    Ok(())
}

#[tokio::test]
async fn dry_run_reports_the_plan_and_writes_nothing() -> Result<()> {
    let (_moto, _, clients) = emulator().await?;
    let desired = sweep_schedule(FUNCTION);

    let dry = |desired: &SweepSchedule| SweepSchedule {
        dry_run: true,
        ..desired.clone()
    };
    let plan = schedule::apply(&clients, &dry(&desired)).await?;
    assert!(plan.dry_run);
    assert_eq!(change(&plan, "schedule group"), &Change::Created);
    assert_eq!(
        item(&plan, "execution role").map(|r| (&r.change, r.arn.as_deref())),
        Some((&Change::Created, Some(ROLE_ARN)))
    );
    assert_eq!(change(&plan, "schedule"), &Change::Created);
    assert!(
        plan.to_string()
            .contains("schedule booking-webhooks/retry-sweep: would be created"),
        "{plan}"
    );
    assert!(group_is_absent(&clients, "booking-webhooks").await?);
    assert!(role_is_absent(&clients, ROLE_NAME).await?);

    apply(&clients, &desired).await?;
    let slower = SweepSchedule {
        expression: "rate(15 minutes)".into(),
        dead_letter_arn: Some(DLQ.into()),
        ..desired
    };
    let plan = schedule::apply(&clients, &dry(&slower)).await?;
    assert_eq!(change(&plan, "schedule group"), &Change::Unchanged);
    assert_eq!(changed_fields(&plan, "execution role"), ["RolePolicy"]);
    assert_eq!(
        changed_fields(&plan, "schedule"),
        ["ScheduleExpression", "Target.DeadLetterConfig.Arn"]
    );
    assert_sweep_schedule(
        &get_schedule(&clients, "booking-webhooks", "retry-sweep").await?,
        "rate(10 minutes)",
        ROLE_ARN,
        None,
    )?;
    assert_eq!(
        role_policy(&clients).await?["Statement"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    let purge = DeleteOptions {
        dry_run: true,
        purge: true,
        ..delete_options()
    };
    let plan = schedule::delete(&clients, &purge).await?;
    assert_eq!(change(&plan, "schedule"), &Change::Deleted);
    let group = item(&plan, "schedule group").context("group purge reported")?;
    assert_eq!(
        (group.name.as_str(), &group.change),
        ("booking-webhooks", &Change::Deleted)
    );
    let role = item(&plan, "execution role").context("role purge reported")?;
    assert_eq!(
        (role.name.as_str(), &role.change),
        (ROLE_NAME, &Change::Deleted)
    );
    assert!(!schedule_is_absent(&clients, "booking-webhooks", "retry-sweep").await?);
    assert!(!group_is_absent(&clients, "booking-webhooks").await?);
    assert!(!role_is_absent(&clients, ROLE_NAME).await?);
    Ok(())
}

#[tokio::test]
async fn a_dead_letter_queue_is_set_and_the_managed_role_may_send_to_it() -> Result<()> {
    let (_moto, _, clients) = emulator().await?;
    apply(&clients, &sweep_schedule(FUNCTION)).await?;

    let with_dlq = SweepSchedule {
        dead_letter_arn: Some(DLQ.into()),
        ..sweep_schedule(FUNCTION)
    };
    let report = apply(&clients, &with_dlq).await?;
    assert_eq!(changed_fields(&report, "execution role"), ["RolePolicy"]);
    assert_eq!(
        changed_fields(&report, "schedule"),
        ["Target.DeadLetterConfig.Arn"]
    );
    assert_sweep_schedule(
        &get_schedule(&clients, "booking-webhooks", "retry-sweep").await?,
        "rate(10 minutes)",
        ROLE_ARN,
        Some(DLQ),
    )?;
    assert_eq!(
        role_policy(&clients).await?["Statement"][1],
        json!({ "Sid": "SendDeadLetters", "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": DLQ })
    );

    let again = apply(&clients, &with_dlq).await?;
    assert_eq!(change(&again, "execution role"), &Change::Unchanged);
    assert_eq!(change(&again, "schedule"), &Change::Unchanged);
    Ok(())
}

#[tokio::test]
async fn purge_keeps_a_group_that_holds_others_and_names_them_all_past_the_first_page() -> Result<()>
{
    let (_moto, _, clients) = emulator().await?;
    apply(&clients, &sweep_schedule(FUNCTION)).await?;
    // More than one ListSchedules page (moto answers 50 at a time, AWS at most 100).
    let others: Vec<String> = (0..55).map(|i| format!("other-{i:02}")).collect();
    for name in &others {
        let target = aws_sdk_scheduler::types::Target::builder()
            .arn(FUNCTION)
            .role_arn(ROLE_ARN)
            .build()?;
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()?;
        (clients.scheduler.create_schedule())
            .group_name("booking-webhooks")
            .name(name)
            .schedule_expression("rate(1 hour)")
            .flexible_time_window(window)
            .target(target)
            .send()
            .await
            .map_err(sdk_error)?;
    }

    let purge = DeleteOptions {
        purge: true,
        ..delete_options()
    };
    let report = schedule::delete(&clients, &purge).await?;
    assert_eq!(change(&report, "schedule"), &Change::Deleted);
    let Change::Kept(why) = change(&report, "schedule group") else {
        panic!("the group is kept: {report:?}");
    };
    let missing: Vec<_> = others.iter().filter(|n| !why.contains(*n)).collect();
    assert!(missing.is_empty(), "not named: {missing:?} in {why}");
    assert!(!group_is_absent(&clients, "booking-webhooks").await?);
    Ok(())
}

#[tokio::test]
async fn a_given_role_is_used_as_is_and_no_role_is_created() -> Result<()> {
    let (_moto, _, clients) = emulator().await?;
    let own_role = "arn:aws:iam::123456789012:role/platform/sweep-invoker";
    let desired = SweepSchedule {
        role: RoleArgs {
            role_arn: Some(own_role.into()),
            role_name: None,
        },
        ..sweep_schedule(FUNCTION)
    };
    let report = apply(&clients, &desired).await?;
    assert_eq!(item(&report, "execution role"), None);
    assert_eq!(change(&report, "schedule"), &Change::Created);
    assert_sweep_schedule(
        &get_schedule(&clients, "booking-webhooks", "retry-sweep").await?,
        "rate(10 minutes)",
        own_role,
        None,
    )?;
    assert!(role_is_absent(&clients, ROLE_NAME).await?);

    // Switching to a managed role later swaps the ARN on the schedule.
    let managed = apply(&clients, &sweep_schedule(FUNCTION)).await?;
    let fields: Vec<String> = change(&managed, "schedule")
        .fields()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        fields,
        [format!("Target.RoleArn: \"{own_role}\" -> \"{ROLE_ARN}\"")]
    );
    Ok(())
}

#[tokio::test]
async fn the_command_line_applies_shows_and_purges() -> Result<()> {
    let (moto, config, clients) = emulator().await?;
    // Every input is a flag, so WEBHOOK_… variables in the developer's shell change nothing.
    let common = [
        "--region",
        REGION,
        "--endpoint-url",
        moto.endpoint.as_str(),
        "--name",
        "retry-sweep",
        "--group",
        "booking-webhooks",
    ];
    let role = ["--role-arn", "", "--role-name", ROLE_NAME];
    let apply_args = [
        [
            "schedule",
            "apply",
            "--function-arn",
            "",
            "--account-id",
            ACCOUNT,
            "--function-name",
            "retry-sweep",
            "--expression",
            "rate(10 minutes)",
            "--dlq-arn",
            "",
        ]
        .as_slice(),
        &common,
        &role,
    ]
    .concat();
    let out = run_cli(&config, apply_args.clone()).await?;
    assert_eq!(
        out,
        "schedule group booking-webhooks: created\n\
         execution role retry-sweep-scheduler: created (arn:aws:iam::123456789012:role/retry-sweep-scheduler)\n\
         schedule booking-webhooks/retry-sweep: created \
         (arn:aws:scheduler:eu-west-1:123456789012:schedule/booking-webhooks/retry-sweep)\n"
    );
    let out = run_cli(&config, apply_args).await?;
    assert_eq!(out.matches(": unchanged").count(), 3, "{out}");

    let shown: serde_json::Value = serde_json::from_str(
        &run_cli(&config, [["schedule", "show"].as_slice(), &common].concat()).await?,
    )?;
    assert_eq!(shown["ScheduleExpression"], "rate(10 minutes)");
    assert_eq!(shown["Target"]["Arn"], FUNCTION);
    assert_eq!(shown["Target"]["RoleArn"], ROLE_ARN);

    // Another schedule in the group: purging must not take the group (and it) away.
    let other = get_schedule(&clients, "booking-webhooks", "retry-sweep").await?;
    clients
        .scheduler
        .create_schedule()
        .group_name("booking-webhooks")
        .name("someone-elses")
        .schedule_expression("rate(1 day)")
        .flexible_time_window(
            FlexibleTimeWindow::builder()
                .mode(FlexibleTimeWindowMode::Off)
                .build()?,
        )
        .set_target(other.target)
        .send()
        .await
        .map_err(sdk_error)?;
    let out = run_cli(
        &config,
        [["schedule", "delete", "--purge"].as_slice(), &common, &role].concat(),
    )
    .await?;
    assert_eq!(
        out,
        "schedule booking-webhooks/retry-sweep: deleted\n\
         schedule group booking-webhooks: kept (it still holds someone-elses)\n\
         execution role retry-sweep-scheduler: deleted\n"
    );
    assert!(!group_is_absent(&clients, "booking-webhooks").await?);
    assert!(role_is_absent(&clients, ROLE_NAME).await?);

    clients
        .scheduler
        .delete_schedule()
        .group_name("booking-webhooks")
        .name("someone-elses")
        .send()
        .await
        .map_err(sdk_error)?;
    let out = run_cli(
        &config,
        [["schedule", "delete", "--purge"].as_slice(), &common, &role].concat(),
    )
    .await?;
    assert_eq!(
        out,
        "schedule booking-webhooks/retry-sweep: absent\n\
         schedule group booking-webhooks: deleted\n\
         execution role retry-sweep-scheduler: absent\n"
    );
    assert!(group_is_absent(&clients, "booking-webhooks").await?);

    let err = run_cli(&config, [["schedule", "show"].as_slice(), &common].concat())
        .await
        .expect_err("show of a deleted schedule fails");
    ensure!(err.to_string().contains("does not exist"), "{err:#}");
    Ok(())
}

// The pure parts: no emulator needed.

#[test]
fn the_default_schedule_is_the_ten_minute_sweep() -> Result<()> {
    let desired = sweep_schedule(FUNCTION);
    let function = desired.function("eu-west-1")?;
    assert_eq!(
        (
            function.arn.as_str(),
            function.partition.as_str(),
            function.account.as_str()
        ),
        (FUNCTION, "aws", ACCOUNT)
    );
    let wanted = desired.wanted(FUNCTION, ROLE_ARN)?;
    let fields: std::collections::BTreeMap<_, _> = schedule::fields(&wanted).into_iter().collect();
    assert_eq!(fields["ScheduleExpression"], "rate(10 minutes)");
    assert_eq!(fields["ScheduleExpressionTimezone"], "UTC");
    assert_eq!(fields["State"], "ENABLED");
    assert_eq!(fields["FlexibleTimeWindow.Mode"], "OFF");
    assert_eq!(fields["Target.Arn"], FUNCTION);
    assert_eq!(fields["Target.RoleArn"], ROLE_ARN);
    assert_eq!(fields["Target.Input"], "{}");
    assert_eq!(fields["Target.RetryPolicy.MaximumEventAgeInSeconds"], 300);
    assert_eq!(fields["Target.RetryPolicy.MaximumRetryAttempts"], 3);
    assert_eq!(fields["Target.DeadLetterConfig.Arn"], json!(null));
    assert_eq!(desired.role.given(), None);
    assert_eq!(desired.role.managed_name(&desired.id.name), ROLE_NAME);
    Ok(())
}

#[test]
fn what_aws_accepts_but_cannot_work_is_refused_before_any_call() {
    let err = sweep_schedule(FUNCTION)
        .function("us-east-1")
        .expect_err("region");
    assert!(err.to_string().contains("us-east-1"), "{err}");

    let base = sweep_schedule(FUNCTION);
    for function in [
        "retry-sweep",
        "arn:aws:lambda:eu-west-1:12345:function:retry-sweep",
        "arn:aws:lambda:eu-west-1:123456789012:layer:retry-sweep",
        "arn:aws:lambda:eu-west-1:123456789012:function:",
    ] {
        let case = sweep_schedule(function);
        assert!(case.function("eu-west-1").is_err(), "{case:?}");
    }
    let fifo = SweepSchedule {
        dead_letter_arn: Some("arn:aws:sqs:eu-west-1:123456789012:q.fifo".into()),
        ..base
    };
    let err = fifo.function("eu-west-1").expect_err("fifo");
    assert!(err.to_string().contains("FIFO"), "{err}");
}

#[test]
fn a_diff_names_exactly_the_fields_that_differ() -> Result<()> {
    let desired = sweep_schedule(FUNCTION);
    let role = "arn:aws:iam::123456789012:role/r";
    let wanted = desired.wanted(FUNCTION, role)?;
    let diff = |now: &GetScheduleOutput, want: &GetScheduleOutput| {
        Change::between(&schedule::fields(now), &schedule::fields(want))
    };
    assert_eq!(diff(&wanted, &wanted), Change::Unchanged);

    let mut drifted = wanted.clone();
    drifted.state = Some(ScheduleState::Disabled);
    drifted.start_date = Some(DateTime::from_secs(1_893_456_000));
    let change = diff(&drifted, &wanted);
    let fields: Vec<_> = change.fields().iter().map(|c| c.field).collect();
    assert_eq!(fields, ["State", "StartDate"]);
    assert_eq!(
        change.fields()[1].from.as_deref(),
        Some("\"2030-01-01T00:00:00Z\"")
    );
    assert_eq!(change.fields()[1].to, None);

    let faster = SweepSchedule {
        expression: "rate(5 minutes)".into(),
        ..desired
    }
    .wanted(FUNCTION, role)?;
    let change = diff(&wanted, &faster);
    assert_eq!(change.fields().len(), 1);
    assert_eq!(
        change.fields()[0].to_string(),
        "ScheduleExpression: \"rate(10 minutes)\" -> \"rate(5 minutes)\""
    );
    Ok(())
}

#[test]
fn the_schedule_shows_as_json_with_api_field_names() -> Result<()> {
    let wanted = SweepSchedule {
        dead_letter_arn: Some("arn:aws:sqs:eu-west-1:123456789012:dlq".into()),
        ..sweep_schedule(FUNCTION)
    }
    .wanted(FUNCTION, "arn:aws:iam::123456789012:role/r")?;
    let json = schedule::to_json(&wanted);
    assert_eq!(json["Name"], "retry-sweep");
    assert_eq!(json["ScheduleExpression"], "rate(10 minutes)");
    assert_eq!(json["FlexibleTimeWindow"], json!({ "Mode": "OFF" }));
    assert_eq!(json["Target"]["RetryPolicy"]["MaximumRetryAttempts"], 3);
    assert_eq!(
        json["Target"]["DeadLetterConfig"]["Arn"],
        "arn:aws:sqs:eu-west-1:123456789012:dlq"
    );
    assert!(json.get("KmsKeyArn").is_none());
    assert!(json.get("Arn").is_none(), "not created yet: no ARN");
    Ok(())
}

#[test]
fn trust_is_limited_to_the_scheduler_of_this_account_and_group() -> Result<()> {
    let trust: serde_json::Value = serde_json::from_str(&infra::schedule::role::trust_policy(
        "aws",
        ACCOUNT,
        "eu-west-1",
        "booking-webhooks",
    ))?;
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
    Ok(())
}

#[test]
fn permissions_cover_the_one_function_and_only_the_given_queue() -> Result<()> {
    let policy = |dlq| -> Result<serde_json::Value> {
        Ok(serde_json::from_str(
            &infra::schedule::role::permissions_policy(FUNCTION, dlq),
        )?)
    };
    assert_eq!(
        policy(None)?["Statement"],
        json!([{
            "Sid": "InvokeRetrySweep",
            "Effect": "Allow",
            "Action": "lambda:InvokeFunction",
            "Resource": "arn:aws:lambda:eu-west-1:123456789012:function:retry-sweep",
        }])
    );
    let with = policy(Some("arn:aws:sqs:eu-west-1:123456789012:dlq"))?;
    assert_eq!(with["Statement"].as_array().map(Vec::len), Some(2));
    assert_eq!(with["Statement"][1]["Action"], "sqs:SendMessage");
    assert_eq!(
        with["Statement"][1]["Resource"],
        "arn:aws:sqs:eu-west-1:123456789012:dlq"
    );
    Ok(())
}

#[test]
fn reports_say_what_changed_and_would_change() {
    let now = [("A", json!("1")), ("B.C", json!("2")), ("D", json!(null))];
    let want = [("A", json!("1")), ("B.C", json!("3")), ("D", json!(7))];
    let change = Change::between(&now, &want);
    let lines: Vec<_> = change.fields().iter().map(ToString::to_string).collect();
    assert_eq!(lines, ["B.C: \"2\" -> \"3\"", "D: (unset) -> 7"]);
    assert_eq!(Change::between(&now, &now), Change::Unchanged);
    let mut report = Report::new(true);
    report.push("thing", "t", Some("arn:t".into()), change);
    report.push("other", "o", None, Change::Kept("why".into()));
    assert_eq!(
        report.to_string(),
        "dry run: nothing was changed; the plan is\n\
         thing t: would be updated (arn:t)\n  B.C: \"2\" -> \"3\"\n  D: (unset) -> 7\n\
         other o: kept (why)\n"
    );
    assert_eq!(
        infra::change::to_json(now),
        json!({ "A": "1", "B": { "C": "2" } })
    );
}

/// `infra schedule apply <extra>` parsed as the binary parses it.
fn apply_args(extra: &[&str]) -> SweepSchedule {
    let argv = ["infra", "schedule", "apply"].iter().chain(extra);
    match Cli::try_parse_from(argv).expect("parses").command {
        Command::Schedule(ScheduleCommand::Apply(args)) => args,
        other => panic!("not apply: {other:?}"),
    }
}

#[test]
fn cli_definition_is_consistent() {
    use clap::CommandFactory as _;
    Cli::command().debug_assert();
}

#[test]
fn the_function_arn_is_built_from_name_and_account() -> Result<()> {
    let args = apply_args(&[
        "--function-arn",
        "",
        "--account-id",
        "123456789012",
        "--function-name",
        "sweeper",
    ]);
    assert_eq!(
        args.function("eu-west-1")?.arn,
        "arn:aws:lambda:eu-west-1:123456789012:function:sweeper"
    );
    assert_eq!(args.role.managed_name(&args.id.name), ROLE_NAME);
    assert_eq!(args.id.group, "booking-webhooks");
    assert_eq!(args.expression, "rate(10 minutes)");
    assert_eq!(args.dead_letter_queue(), None);
    Ok(())
}

#[test]
fn flags_override_the_defaults() -> Result<()> {
    let args = apply_args(&[
        "--function-arn",
        "arn:aws:lambda:eu-west-1:123456789012:function:retry-sweep",
        "--role-arn",
        "arn:aws:iam::123456789012:role/mine",
        "--name",
        "sweep",
        "--group",
        "default",
        "--expression",
        "rate(5 minutes)",
        "--dlq-arn",
        "arn:aws:sqs:eu-west-1:123456789012:dlq",
        "--dry-run",
    ]);
    assert!(args.dry_run);
    assert_eq!(
        args.role.given(),
        Some("arn:aws:iam::123456789012:role/mine")
    );
    assert_eq!(
        (args.id.name.as_str(), args.id.group.as_str()),
        ("sweep", "default")
    );
    assert_eq!(args.expression, "rate(5 minutes)");
    assert_eq!(
        args.dead_letter_queue(),
        Some("arn:aws:sqs:eu-west-1:123456789012:dlq")
    );
    assert_eq!(
        args.function("eu-west-1")?.arn,
        "arn:aws:lambda:eu-west-1:123456789012:function:retry-sweep"
    );
    Ok(())
}

#[test]
fn a_managed_role_is_named_after_the_schedule_unless_named() {
    let named = apply_args(&["--role-arn", "", "--role-name", "", "--name", "nightly"]);
    assert_eq!(named.role.managed_name(&named.id.name), "nightly-scheduler");
    let explicit = apply_args(&["--role-arn", "", "--role-name", "ops-sweeper"]);
    assert_eq!(explicit.role.managed_name(&explicit.id.name), "ops-sweeper");
}

#[test]
fn empty_values_count_as_unset() {
    let args = apply_args(&["--role-arn", "", "--dlq-arn", " "]);
    assert_eq!(args.dead_letter_queue(), None);
    assert_eq!(args.role.given(), None);
}

#[test]
fn missing_or_bad_inputs_fail_with_the_variable_to_set() {
    let err = apply_args(&["--function-arn", "", "--account-id", ""])
        .function("eu-west-1")
        .expect_err("no function");
    assert!(
        err.to_string().contains("WEBHOOK_SWEEP_FUNCTION_ARN"),
        "{err}"
    );

    let err = apply_args(&["--function-arn", "", "--account-id", "12345"])
        .function("eu-west-1")
        .expect_err("bad account");
    assert!(err.to_string().contains("account"), "{err}");
}
