//! The built `infra` binary as a newcomer meets it: without credentials, without a region,
//! against an endpoint that is not there, and when AWS refuses. Every failure is one line on
//! stderr naming what to do, with the documented exit status (1 show found nothing, 2 could
//! not run). Each run gets an empty environment and an empty home, so nothing of the
//! developer's AWS setup is read. `make test` builds the binary first.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;
use infra::aws::{none_if_not_found, sdk_error};

use crate::support::aws::{REGION, emulator, infra_binary, run_cli, sweep_schedule};

/// Runs `infra <args>` with only `env` set (and an empty `HOME`).
fn infra(home: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(infra_binary());
    command.env_clear().env("HOME", home).args(args);
    command.envs(env.iter().copied());
    command.output().expect("run infra")
}

/// The exit code, stdout and stderr of a run.
fn outcome(output: &Output) -> (Option<i32>, String, String) {
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr),
    )
}

/// Asserts `stderr` is one short line of plain text: no `Debug` dump of an SDK error.
fn assert_one_readable_line(stderr: &str) {
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.len() < 300, "{} characters: {stderr}", stderr.len());
    for dump in ["{", "Error {", "Some(", "\u{1b}["] {
        assert!(!stderr.contains(dump), "{dump:?} in {stderr}");
    }
}

const NO_CREDENTIALS: &str = "infra: no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID \
     and AWS_SECRET_ACCESS_KEY (see docs/deploy.md, \"Prerequisites\")\n";

#[test]
fn without_credentials_infra_names_the_fix_in_one_line_and_exits_2() {
    let home = tempdir();
    // No instance metadata either, as on a laptop: the chain finds nothing at all.
    let env = [
        ("AWS_REGION", REGION),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    for args in [
        ["alarms", "show"].as_slice(),
        &["schedule", "apply", "--account-id", "123456789012"],
        &["dashboard", "apply", "--dry-run"],
    ] {
        let (code, stdout, stderr) = outcome(&infra(&home, &env, args));
        assert_eq!((code, stdout.as_str()), (Some(2), ""), "{args:?}: {stderr}");
        assert_eq!(stderr, NO_CREDENTIALS, "{args:?}");
    }
}

#[test]
fn in_an_empty_environment_each_failure_is_one_line_with_exit_2() {
    let home = tempdir();
    let (code, stdout, stderr) = outcome(&infra(&home, &[], &["alarms", "show"]));
    assert_eq!((code, stdout.as_str()), (Some(2), ""), "{stderr}");
    assert_eq!(
        stderr,
        "infra: no AWS region: pass --region or set AWS_REGION (or a profile region)\n"
    );

    // With a region, whatever the instance metadata service does here (absent, or refusing
    // behind a proxy), the line says credentials are missing and how to set them.
    let (code, stdout, stderr) =
        outcome(&infra(&home, &[], &["--region", REGION, "alarms", "show"]));
    assert_eq!((code, stdout.as_str()), (Some(2), ""), "{stderr}");
    assert_one_readable_line(&stderr);
    assert!(stderr.starts_with("infra: no "), "{stderr}");
    assert!(
        stderr.contains("AWS credentials") && stderr.contains("AWS_PROFILE"),
        "{stderr}"
    );
}

#[test]
fn help_documents_the_exit_status() {
    let home = tempdir();
    let (code, stdout, _) = outcome(&infra(&home, &[], &["--help"]));
    assert_eq!(code, Some(0));
    assert!(stdout.contains("Exit status:"), "{stdout}");
    for line in ["  0  done", "  1  show found nothing", "  2  could not run"] {
        assert!(stdout.contains(line), "{line:?} in {stdout}");
    }
}

#[test]
fn an_endpoint_that_is_not_there_is_one_line_with_exit_2() {
    let home = tempdir();
    let closed = format!("http://127.0.0.1:{}", crate::support::cluster::free_port());
    let env = [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ];
    let args = [
        "--region",
        REGION,
        "--endpoint-url",
        &closed,
        "alarms",
        "show",
    ];
    let (code, stdout, stderr) = outcome(&infra(&home, &env, &args));
    assert_eq!((code, stdout.as_str()), (Some(2), ""), "{stderr}");
    assert_one_readable_line(&stderr);
    assert!(
        stderr.starts_with("infra: reading the alarms: "),
        "{stderr}"
    );
    assert!(
        stderr.contains("onnect"),
        "says it could not connect: {stderr}"
    );
}

#[tokio::test]
async fn aws_refusals_are_one_line_with_the_code_and_message_and_show_of_nothing_exits_1()
-> Result<()> {
    let (moto, config, clients) = emulator().await?;
    let home = tempdir();
    let env = [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ];
    let at = ["--region", REGION, "--endpoint-url", moto.endpoint.as_str()];
    let run = |args: &[&str]| outcome(&infra(&home, &env, &[at.as_slice(), args].concat()));

    let (code, stdout, stderr) = run(&["schedule", "show"]);
    assert_eq!((code, stdout.as_str()), (Some(1), ""), "{stderr}");
    assert_eq!(
        stderr,
        "infra: schedule booking-webhooks/retry-sweep does not exist: run `infra schedule apply`\n"
    );
    for (what, apply) in [
        ("alarms", "no alarm booking-webhooks-"),
        ("dashboard", "dashboard booking-webhooks does not exist"),
    ] {
        let (code, _, stderr) = run(&[what, "show"]);
        assert_eq!(code, Some(1), "{stderr}");
        assert!(stderr.starts_with(&format!("infra: {apply}")), "{stderr}");
        assert!(
            stderr.contains(&format!("run `infra {what} apply`")),
            "{stderr}"
        );
    }

    // A role someone attached a policy to: IAM refuses to delete it, and says why.
    let function = "arn:aws:lambda:eu-west-1:123456789012:function:retry-sweep";
    infra::schedule::apply(&clients, &sweep_schedule(function)).await?;
    let policy = (clients.iam.create_policy())
        .policy_name("extra")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}"#)
        .send()
        .await
        .map_err(sdk_error)?;
    let arn = policy.policy().and_then(|p| p.arn()).unwrap_or_default();
    let attach = clients
        .iam
        .attach_role_policy()
        .role_name("retry-sweep-scheduler");
    attach.policy_arn(arn).send().await.map_err(sdk_error)?;
    let (code, stdout, stderr) = run(&["schedule", "delete", "--purge"]);
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert_eq!(
        stderr,
        "infra: deleting IAM role retry-sweep-scheduler (detach policies attached by hand \
         first): DeleteConflict: Cannot delete entity, must detach all policies first.\n"
    );

    // The same mapping in-process: code and message, nothing else.
    let absent = clients.iam.get_role().role_name("absent").send().await;
    let err = sdk_error(absent.expect_err("no such role"));
    assert_eq!(err.to_string(), "NoSuchEntity: Role absent not found");
    let absent = clients.iam.get_role().role_name("absent").send().await;
    assert!(none_if_not_found(absent)?.is_none());
    let err = run_cli(&config, vec!["schedule", "show", "--name", "nope"]).await;
    let err = err.expect_err("absent");
    assert!(
        err.downcast_ref::<infra::change::Missing>().is_some(),
        "{err:#}"
    );
    Ok(())
}

/// An empty directory for `HOME`, removed on drop.
struct Home(PathBuf);

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl std::ops::Deref for Home {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

fn tempdir() -> Home {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("infra-home-{}-{id}", std::process::id()));
    std::fs::create_dir_all(&path).expect("temp HOME");
    Home(path)
}
