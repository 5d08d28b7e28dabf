//! `infra schedule apply | show | delete` against a real AWS API emulator: moto server,
//! one per test, on 127.0.0.1. Everything `apply` wrote is read back with plain SDK calls
//! (`GetSchedule`, `GetRole`, `GetRolePolicy`), not through our own mapping code.
//!
//! moto validates nothing, so the validation of expressions and ARNs is unit-tested in
//! `infra::validate`; here moto stands in for what the calls do.

use anyhow::{Context as _, Result, ensure};
use infra::aws::scheduler::operation::get_schedule::GetScheduleOutput;
use infra::aws::scheduler::types::{FlexibleTimeWindow, FlexibleTimeWindowMode, ScheduleState};
use infra::aws::{Clients, emulator_config};
use infra::change::Change;
use infra::schedule::{self, ApplyOptions, DeleteOptions, ExecutionRole, Removal, SweepSchedule};
use serde_json::json;

use self::moto::Moto;

const REGION: &str = "eu-west-1";
/// moto's default account.
const ACCOUNT: &str = "123456789012";
const FUNCTION: &str = "arn:aws:lambda:eu-west-1:123456789012:function:retry-sweep";
const ROLE_NAME: &str = "retry-sweep-scheduler";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/retry-sweep-scheduler";
const DLQ: &str = "arn:aws:sqs:eu-west-1:123456789012:retry-sweep-dlq";

/// A fresh moto server and clients pointed at it.
async fn emulator() -> Result<(Moto, Clients)> {
    let moto = Moto::start().await?;
    let config = emulator_config(&moto.endpoint, REGION).await;
    let clients = Clients::new(&config)?;
    Ok((moto, clients))
}

async fn apply(clients: &Clients, desired: &SweepSchedule) -> Result<schedule::ApplyReport> {
    schedule::apply(clients, desired, ApplyOptions::default()).await
}

async fn get_schedule(clients: &Clients, group: &str, name: &str) -> Result<GetScheduleOutput> {
    clients
        .scheduler
        .get_schedule()
        .group_name(group)
        .name(name)
        .send()
        .await
        .map_err(infra::error::sdk_error)
        .with_context(|| format!("GetSchedule {group}/{name}"))
}

async fn schedule_is_absent(clients: &Clients, group: &str, name: &str) -> Result<bool> {
    match clients
        .scheduler
        .get_schedule()
        .group_name(group)
        .name(name)
        .send()
        .await
    {
        Ok(_) => Ok(false),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(true)
        }
        Err(e) => Err(infra::error::sdk_error(e)),
    }
}

async fn group_is_absent(clients: &Clients, group: &str) -> Result<bool> {
    match clients
        .scheduler
        .get_schedule_group()
        .name(group)
        .send()
        .await
    {
        Ok(_) => Ok(false),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(true)
        }
        Err(e) => Err(infra::error::sdk_error(e)),
    }
}

async fn role_is_absent(clients: &Clients, name: &str) -> Result<bool> {
    match clients.iam.get_role().role_name(name).send().await {
        Ok(_) => Ok(false),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) =>
        {
            Ok(true)
        }
        Err(e) => Err(infra::error::sdk_error(e)),
    }
}

/// The inline policy of the managed role, parsed.
async fn role_policy(clients: &Clients) -> Result<serde_json::Value> {
    let out = clients
        .iam
        .get_role_policy()
        .role_name(ROLE_NAME)
        .policy_name(infra::role::POLICY_NAME)
        .send()
        .await
        .map_err(infra::error::sdk_error)?;
    infra::role::decode_policy(out.policy_document())
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
    let (_moto, clients) = emulator().await?;
    let desired = SweepSchedule::new(FUNCTION);

    let first = apply(&clients, &desired).await?;
    assert_eq!(first.group, Change::Created);
    assert_eq!(first.schedule, Change::Created);
    let role = first.role.as_ref().context("a managed role is reported")?;
    assert_eq!(
        (role.name.as_str(), role.arn.as_str()),
        (ROLE_NAME, ROLE_ARN)
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
    let trust = infra::role::decode_policy(
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
    assert_eq!(second.group, Change::Unchanged);
    assert_eq!(second.role.map(|r| r.change), Some(Change::Unchanged));
    assert_eq!(second.schedule, Change::Unchanged);
    assert_eq!(second.schedule_arn, first.schedule_arn);

    let faster = SweepSchedule {
        expression: "rate(5 minutes)".into(),
        ..desired.clone()
    };
    let third = apply(&clients, &faster).await?;
    assert_eq!(third.group, Change::Unchanged);
    assert_eq!(third.role.map(|r| r.change), Some(Change::Unchanged));
    let fields: Vec<String> = third
        .schedule
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
        .map_err(infra::error::sdk_error)?;
    let repaired = apply(&clients, &faster).await?;
    let fields: Vec<&str> = repaired.schedule.fields().iter().map(|c| c.field).collect();
    assert_eq!(
        fields,
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

    let shown = schedule::show(&clients, "booking-webhooks", "retry-sweep")
        .await?
        .context("show finds the schedule")?;
    assert_eq!(shown.spec, faster.spec(ROLE_ARN));
    assert_eq!(shown.arn, first.schedule_arn);

    let deleted = schedule::delete(
        &clients,
        "booking-webhooks",
        "retry-sweep",
        &DeleteOptions::default(),
    )
    .await?;
    assert_eq!(deleted.schedule, Removal::Deleted);
    assert_eq!((deleted.group, deleted.role), (None, None));
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
        schedule::show(&clients, "booking-webhooks", "retry-sweep")
            .await?
            .is_none()
    );

    let again = schedule::delete(
        &clients,
        "booking-webhooks",
        "retry-sweep",
        &DeleteOptions::default(),
    )
    .await?;
    assert_eq!(again.schedule, Removal::Absent);
    Ok(())
}

#[tokio::test]
async fn dry_run_reports_the_plan_and_writes_nothing() -> Result<()> {
    let (_moto, clients) = emulator().await?;
    let desired = SweepSchedule::new(FUNCTION);
    let dry = ApplyOptions {
        dry_run: true,
        ..ApplyOptions::default()
    };

    let plan = schedule::apply(&clients, &desired, dry).await?;
    assert!(plan.dry_run);
    assert_eq!(plan.group, Change::Created);
    assert_eq!(
        plan.role.as_ref().map(|r| (&r.change, r.arn.as_str())),
        Some((&Change::Created, ROLE_ARN))
    );
    assert_eq!(plan.schedule, Change::Created);
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
    let plan = schedule::apply(&clients, &slower, dry).await?;
    assert_eq!(plan.group, Change::Unchanged);
    let role_fields: Vec<&str> = plan
        .role
        .iter()
        .flat_map(|r| r.change.fields())
        .map(|c| c.field)
        .collect();
    assert_eq!(role_fields, ["RolePolicy"]);
    let fields: Vec<&str> = plan.schedule.fields().iter().map(|c| c.field).collect();
    assert_eq!(
        fields,
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

    let plan = schedule::delete(
        &clients,
        "booking-webhooks",
        "retry-sweep",
        &DeleteOptions {
            dry_run: true,
            purge_group: true,
            purge_role: Some(ROLE_NAME.into()),
        },
    )
    .await?;
    assert_eq!(plan.schedule, Removal::Deleted);
    assert_eq!(
        plan.group,
        Some(("booking-webhooks".into(), Removal::Deleted))
    );
    assert_eq!(plan.role, Some((ROLE_NAME.into(), Removal::Deleted)));
    assert!(!schedule_is_absent(&clients, "booking-webhooks", "retry-sweep").await?);
    assert!(!group_is_absent(&clients, "booking-webhooks").await?);
    assert!(!role_is_absent(&clients, ROLE_NAME).await?);
    Ok(())
}

#[tokio::test]
async fn a_dead_letter_queue_is_set_and_the_managed_role_may_send_to_it() -> Result<()> {
    let (_moto, clients) = emulator().await?;
    apply(&clients, &SweepSchedule::new(FUNCTION)).await?;

    let with_dlq = SweepSchedule {
        dead_letter_arn: Some(DLQ.into()),
        ..SweepSchedule::new(FUNCTION)
    };
    let report = apply(&clients, &with_dlq).await?;
    let role_fields: Vec<&str> = report
        .role
        .iter()
        .flat_map(|r| r.change.fields())
        .map(|c| c.field)
        .collect();
    assert_eq!(role_fields, ["RolePolicy"]);
    let fields: Vec<&str> = report.schedule.fields().iter().map(|c| c.field).collect();
    assert_eq!(fields, ["Target.DeadLetterConfig.Arn"]);
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
    assert_eq!(again.role.map(|r| r.change), Some(Change::Unchanged));
    assert_eq!(again.schedule, Change::Unchanged);
    Ok(())
}

#[tokio::test]
async fn a_given_role_is_used_as_is_and_no_role_is_created() -> Result<()> {
    let (_moto, clients) = emulator().await?;
    let own_role = "arn:aws:iam::123456789012:role/platform/sweep-invoker";
    let desired = SweepSchedule {
        role: ExecutionRole::Existing(own_role.into()),
        ..SweepSchedule::new(FUNCTION)
    };
    let report = apply(&clients, &desired).await?;
    assert_eq!(report.role, None);
    assert_eq!(report.schedule, Change::Created);
    assert_sweep_schedule(
        &get_schedule(&clients, "booking-webhooks", "retry-sweep").await?,
        "rate(10 minutes)",
        own_role,
        None,
    )?;
    assert!(role_is_absent(&clients, ROLE_NAME).await?);

    // Switching to a managed role later swaps the ARN on the schedule.
    let managed = apply(&clients, &SweepSchedule::new(FUNCTION)).await?;
    let fields: Vec<String> = managed
        .schedule
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
    let (moto, clients) = emulator().await?;
    let config = emulator_config(&moto.endpoint, REGION).await;
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
        .map_err(infra::error::sdk_error)?;
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
        .map_err(infra::error::sdk_error)?;
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

/// Runs `infra <args>` the way the binary does, against `config`.
async fn run_cli(config: &infra::aws::aws_config::SdkConfig, args: Vec<&str>) -> Result<String> {
    let cli = infra::cli::Cli::parse_args(std::iter::once("infra").chain(args))?;
    infra::cli::run(&cli, config).await
}

/// moto server as a child process: started on a free port of 127.0.0.1, killed on drop.
mod moto {
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use anyhow::{Context as _, Result, bail};

    /// How long moto may take to answer after starting (it imports all of botocore's
    /// models; on a loaded 2-core machine that takes a few seconds).
    const READY_TIMEOUT: Duration = Duration::from_secs(60);

    /// A running moto server.
    pub struct Moto {
        child: Child,
        log: PathBuf,
        /// `http://127.0.0.1:<port>`
        pub endpoint: String,
    }

    /// `$MOTO_SERVER`, else the one `make tools` installs into `target/venv`.
    fn binary() -> Result<PathBuf> {
        let path = match std::env::var_os("MOTO_SERVER") {
            Some(path) => PathBuf::from(path),
            None => {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/venv/bin/moto_server")
            }
        };
        if !path.is_file() {
            bail!(
                "moto_server not found at {}: run `make tools` (installs moto[server] into \
                 target/venv) or set MOTO_SERVER to its path",
                path.display()
            );
        }
        Ok(path)
    }

    impl Moto {
        /// Starts moto and waits until it accepts connections.
        pub async fn start() -> Result<Self> {
            let binary = binary()?;
            // The port is found by binding :0 and released just before moto binds it; if
            // another process takes it in between, moto exits and we try another.
            let mut last_error = None;
            for _ in 0..3 {
                let port = std::net::TcpListener::bind("127.0.0.1:0")?
                    .local_addr()?
                    .port();
                let log =
                    std::env::temp_dir().join(format!("moto-{}-{port}.log", std::process::id()));
                let child = Command::new(&binary)
                    .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(std::fs::File::create(&log)?)
                    .spawn()
                    .with_context(|| format!("starting {}", binary.display()))?;
                let mut moto = Self {
                    child,
                    log,
                    endpoint: format!("http://127.0.0.1:{port}"),
                };
                match moto.wait_ready(port).await {
                    Ok(()) => return Ok(moto),
                    Err(e) => last_error = Some(e),
                }
            }
            Err(last_error.unwrap_or_else(|| anyhow::anyhow!("moto did not start")))
        }

        async fn wait_ready(&mut self, port: u16) -> Result<()> {
            let deadline = Instant::now() + READY_TIMEOUT;
            loop {
                if let Some(status) = self.child.try_wait()? {
                    bail!("moto_server exited ({status}): {}", self.log_tail());
                }
                if tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
                {
                    return Ok(());
                }
                if Instant::now() > deadline {
                    bail!(
                        "moto_server did not listen on port {port} within {READY_TIMEOUT:?}: {}",
                        self.log_tail()
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }

        fn log_tail(&self) -> String {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().rev().take(20).collect();
            lines.into_iter().rev().collect::<Vec<_>>().join("\n")
        }
    }

    impl Drop for Moto {
        fn drop(&mut self) {
            // Best effort: the process may already be gone.
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_file(&self.log);
        }
    }
}
