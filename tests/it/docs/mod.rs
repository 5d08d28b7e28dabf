//! Every command in README.md, docs/*.md and migrations/README.md runs as written: the `sh`
//! blocks are read, and each page's commands that can run here are run in order as a reader
//! would run them — against a scratch Postgres database, moto configured as docs/deploy.md
//! says, cargo-lambda from target/venv/bin, `webhooks` on `PATH` as if installed. The rest are
//! skipped, each with its reason, listed in this test's output and in docs/development.md
//! (generated from the same list). And the `--help` docs/development.md shows is the real one.
//!
//! The pages run side by side; the slowest (deploy.md's `infra` against moto) takes about
//! fifteen seconds once everything is built.
//!
//! # Layout
//! - `blocks`: the commands of the pages.
//! - `skips`: what is not run, and why; the table docs/development.md shows.
//! - `shell`: one page's commands in one bash.

mod blocks;
mod shell;
mod skips;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use blocks::DocCommand;
use shell::{Outcome, Setting, run_page};

use crate::support::aws::Moto;
use crate::support::scratch::{ScratchDb, webhooks_binary};
use crate::support::{Receiver, Reply, SIGNING_SECRET, TOKEN, TestDb};

fn repository() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The database the pages use for local work; each page's shell gets a scratch one instead.
const DOCS_DATABASE: &str = "postgres://postgres@127.0.0.1:5432/webhooks_dev";

/// The delivery the pages' examples name.
const EXAMPLE_ID: &str = "0b7e3c1e-6a0e-4c1b-9a51-2f1f3a7d9c10";

/// The longest one page may take (a safety net: the slowest takes seconds).
const PAGE_LIMIT: Duration = Duration::from_secs(90);

/// What a page's shell stands on, kept until its commands have run.
#[derive(Default)]
struct Stage {
    setting: Setting,
    _db: Option<TestDb>,
    _scratch: Option<ScratchDb>,
    _moto: Option<Moto>,
}

/// The stage of `page`: a migrated scratch schema with the example delivery (failed), or what
/// the page starts from — an empty schema for migrations/README.md, an empty database for the
/// adoption of switching-from-pg-net.md (the page loads the old system into it), moto as the
/// rehearsal configures it for deploy.md.
async fn stage(page: &str, receiver: &str) -> Stage {
    let mut stage = Stage::default();
    let url = match page {
        "migrations/README.md" => {
            let db = TestDb::unmigrated().await;
            let url = db.url.clone();
            stage._db = Some(db);
            url
        }
        "docs/switching-from-pg-net.md" => {
            let db = ScratchDb::new().await;
            let url = db.url.clone();
            stage._scratch = Some(db);
            url
        }
        _ => {
            let db = TestDb::new().await;
            db.client()
                .await
                .execute(
                    "INSERT INTO webhook_deliveries (id, booking_id, webhook_type, recipient_email,
                            payload, status, attempt_count, next_retry_at, last_error,
                            last_status_code, last_attempt_at, resolved_at)
                     VALUES ($1::text::uuid, gen_random_uuid(), 'new_request', 'someone@example.com',
                            '{}', 'failed', 1, NULL, 'HTTP 400', 400, now(), now())",
                    &[&EXAMPLE_ID],
                )
                .await
                .expect("the example delivery");
            let url = db.url.clone();
            stage._db = Some(db);
            url
        }
    };
    let path = format!(
        "{}:{}:{}",
        webhooks_binary().parent().expect("bin dir").display(),
        repository().join("target/venv/bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let inherited = std::env::vars().filter(|(k, _)| {
        ["HOME", "TMPDIR", "CARGO_HOME", "CARGO_TARGET_DIR"].contains(&k.as_str())
            || k.starts_with("RUSTUP_")
    });
    let env = &mut stage.setting.env;
    env.extend(inherited);
    for (k, v) in [
        ("PATH", path.as_str()),
        ("DATABASE_URL", url.as_str()),
        ("WEBHOOK_URL", receiver),
        ("WEBHOOK_AUTH_TOKEN", TOKEN),
        ("WEBHOOK_SIGNING_SECRET", SIGNING_SECRET),
        ("RUST_LOG", "warn"),
    ] {
        env.push((k.to_owned(), v.to_owned()));
    }
    stage
        .setting
        .substitutions
        .push((DOCS_DATABASE.to_owned(), url));
    if page == "docs/deploy.md" {
        let (moto_env, exports) = rehearsal_settings();
        let moto_env: Vec<(&str, &str)> = moto_env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let moto = Moto::start_with_env(&moto_env).await.expect("moto starts");
        for (k, v) in exports {
            let v = v.replace("http://127.0.0.1:5000", &moto.endpoint);
            stage.setting.env.push((k, v));
        }
        stage._moto = Some(moto);
    }
    stage
}

/// `NAME=value` pairs.
type Variables = Vec<(String, String)>;

/// What docs/deploy.md's rehearsal sets: moto's variables (on its `moto_server` line) and
/// the shell's (its `export` lines).
fn rehearsal_settings() -> (Variables, Variables) {
    let page = std::fs::read_to_string(repository().join("docs/deploy.md")).expect("deploy.md");
    let (mut moto, mut exports) = (Vec::new(), Vec::new());
    let pairs = |words: &[&str]| -> Variables {
        words
            .iter()
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    };
    for command in blocks::commands_of("docs/deploy.md", &page) {
        if command.section != "Rehearsal against moto" {
            continue;
        }
        let words: Vec<&str> = command.text.split_whitespace().collect();
        match words.as_slice() {
            ["export", assignments @ ..] => exports.extend(pairs(assignments)),
            [
                assignments @ ..,
                "target/venv/bin/moto_server",
                "-p",
                _,
                "&",
            ] => {
                moto.extend(pairs(assignments));
            }
            _ => {}
        }
    }
    assert!(
        !exports.is_empty(),
        "deploy.md's rehearsal exports moto's settings"
    );
    (moto, exports)
}

/// The files the commands write into the repository (`> missing.json`), moved aside while
/// they run so that a reader's own is never overwritten, and put back afterwards.
struct Aside {
    files: Vec<(PathBuf, Option<PathBuf>)>,
}

impl Aside {
    fn new(root: &Path, commands: &[&DocCommand]) -> Aside {
        let mut files = Vec::new();
        for command in commands {
            let words: Vec<&str> = command.text.split_whitespace().collect();
            for (i, word) in words.iter().enumerate() {
                let target = match word.strip_prefix('>') {
                    Some("") => words.get(i + 1).copied(),
                    Some(rest) if !rest.starts_with('&') => Some(rest),
                    _ => None,
                };
                let Some(target) = target.filter(|t| !t.contains('/')) else {
                    continue;
                };
                let path = root.join(target);
                if files.iter().any(|(seen, _)| *seen == path) {
                    continue;
                }
                let kept = path.with_extension("docs-test-aside");
                let kept = std::fs::rename(&path, &kept).is_ok().then_some(kept);
                files.push((path, kept));
            }
        }
        Aside { files }
    }
}

impl Drop for Aside {
    fn drop(&mut self) {
        for (path, kept) in &self.files {
            let _ = std::fs::remove_file(path);
            if let Some(kept) = kept {
                let _ = std::fs::rename(kept, path);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_documented_command_runs_as_written() {
    let root = repository();
    let all = blocks::commands(&root);
    let stale = skips::unused(&all);
    assert!(
        stale.is_empty(),
        "skip rules that match no command: {stale:#?}"
    );
    let (skipped, to_run): (Vec<_>, Vec<_>) = all.iter().partition(|c| skips::reason(c).is_some());
    let _aside = Aside::new(&root, &to_run);
    let receiver = Receiver::start(Reply::status(200)).await;
    let started = Instant::now();
    let mut pages: Vec<&str> = to_run.iter().map(|c| c.page.as_str()).collect();
    pages.dedup();
    let runs = pages.iter().map(|page| {
        let commands: Vec<DocCommand> = to_run
            .iter()
            .filter(|c| c.page == *page)
            .map(|c| (*c).clone())
            .collect();
        let (root, receiver, page) = (root.clone(), receiver.url.clone(), *page);
        async move {
            let stage = stage(page, &receiver).await;
            let setting = stage.setting.clone();
            let outcomes = tokio::task::spawn_blocking(move || {
                run_page(&root, &commands, &setting, PAGE_LIMIT)
            })
            .await
            .expect("page run");
            drop(stage);
            outcomes
        }
    });
    let outcomes: Vec<Outcome> = futures::future::join_all(runs)
        .await
        .into_iter()
        .flatten()
        .collect();

    println!(
        "docs: {} commands of {} pages run in {:.1} s; {} not run:",
        outcomes.len(),
        pages.len(),
        started.elapsed().as_secs_f64(),
        skipped.len()
    );
    for command in &skipped {
        let why = skips::reason(command).unwrap_or_default();
        println!(
            "  {}:{} `{}`: {why}",
            command.page,
            command.line,
            command.short()
        );
    }
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| o.status != Some(0))
        .map(|o| {
            let how = o
                .status
                .map_or_else(|| "did not end".to_owned(), |s| format!("exited {s}"));
            format!(
                "{}:{} `{}` {how}:\n{}",
                o.command.page, o.command.line, o.command.text, o.output
            )
        })
        .collect();
    assert!(
        failed.is_empty(),
        "not as written:\n\n{}",
        failed.join("\n\n")
    );
}

#[test]
fn development_md_lists_the_commands_not_run_and_why() {
    let root = repository();
    let all = blocks::commands(&root);
    let skipped: Vec<(&DocCommand, &'static str)> = all
        .iter()
        .filter_map(|c| skips::reason(c).map(|why| (c, why)))
        .collect();
    let table = skips::table(&skipped);
    let page = std::fs::read_to_string(root.join("docs/development.md")).expect("development.md");
    assert!(
        page.contains(&table),
        "docs/development.md should show this table, generated from tests/it/docs/skips.rs:\n\n{table}"
    );
}

#[test]
fn development_md_shows_the_real_help() {
    let page =
        std::fs::read_to_string(repository().join("docs/development.md")).expect("development.md");
    let section = page
        .split("\n## The `webhooks` command\n")
        .nth(1)
        .expect("a section on the webhooks command");
    let shown = section
        .split("\n```\n")
        .nth(1)
        .expect("a block in it")
        .trim_end();
    let help = std::process::Command::new(webhooks_binary())
        .arg("--help")
        .env("COLUMNS", "100")
        .output()
        .expect("webhooks --help");
    let real = String::from_utf8_lossy(&help.stdout);
    assert_eq!(
        shown,
        real.trim_end(),
        "docs/development.md's --help is not the real one (COLUMNS=100 webhooks --help)"
    );
}
