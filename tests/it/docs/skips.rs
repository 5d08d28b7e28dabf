//! The documented commands deliberately not run here, each with why — and the table of them
//! that docs/development.md shows, generated from this list so the two cannot disagree.

use super::blocks::DocCommand;

const REAL_AWS: &str = "real AWS: the AWS CLI or a deployed function (make deploy is rehearsed on \
                        moto by tests/it/deploy.rs)";
const SERVER: &str = "a server that runs until Ctrl-C";
const CI: &str = "the demo or the test suite itself: CI runs them (.ci/run)";
const TEMPLATE: &str = "a template: your own values go where it says `<…>`";
const SLOW: &str = "minutes: a release build, a benchmark or an install";
const YOURS: &str = "writes or reads your own .env.deploy, or opens an editor";
const WALKTHROUGH: &str = "needs make receiver and make listen running (the walk-through)";
const SUMMARY: &str = "the page's summary of steps 2 and 3, which run";
const REHEARSAL: &str = "run line by line, on moto, by tests/it/deploy.rs";

/// `(page, how the command starts — or `§` and the title of its section — why it is not run)`.
pub const SKIPS: &[(&str, &str, &str)] = &[
    ("README.md", "make demo", CI),
    ("README.md", "make test", CI),
    ("docs/connecting.md", "DATABASE_URL=postgres://", TEMPLATE),
    ("docs/deploy.md", "§Rehearsal against moto", REHEARSAL),
    ("docs/deploy.md", "cp .env.example .env.deploy", YOURS),
    ("docs/deploy.md", "$EDITOR", YOURS),
    ("docs/deploy.md", "make build", SLOW),
    ("docs/deploy.md", "make deploy", REAL_AWS),
    ("docs/deploy.md", "aws ", REAL_AWS),
    (
        "docs/deploy.md",
        "PATH=target/venv/bin:$PATH cargo lambda invoke --remote",
        REAL_AWS,
    ),
    ("docs/development.md", "make demo", CI),
    ("docs/development.md", "make receiver", SERVER),
    ("docs/development.md", "make listen", SERVER),
    (
        "docs/development.md",
        "psql -h 127.0.0.1 -U postgres webhooks_dev",
        WALKTHROUGH,
    ),
    ("docs/development.md", "set -a && . ./.env.deploy", YOURS),
    ("docs/development.md", "export DATABASE_URL=", CI),
    ("docs/development.md", "cargo nextest run", CI),
    ("docs/development.md", "cargo test", CI),
    ("docs/development.md", "BENCH_", SLOW),
    (
        "docs/development.md",
        "WEBHOOK_SWEEP_CONCURRENCY=64 make bench",
        SLOW,
    ),
    ("docs/how-it-works.md", "scripts/capture-bench.sh", SLOW),
    ("docs/operations.md", "cargo install", SLOW),
    (
        "docs/switching-from-pg-net.md",
        "cargo run -q --bin webhooks -- migrate --adopt-seed --dry-run > adoption-plan.txt   #",
        SUMMARY,
    ),
    (
        "docs/switching-from-pg-net.md",
        "sed -n '/^-- Rollback to the pg_net system/,$p' adoption-plan.txt > rollback.sql",
        SUMMARY,
    ),
    (
        "docs/switching-from-pg-net.md",
        "cargo run -q --bin webhooks -- migrate --adopt-seed      ",
        SUMMARY,
    ),
    (
        "docs/switching-from-pg-net.md",
        "export DATABASE_URL='postgres://postgres:<password>",
        TEMPLATE,
    ),
];

/// True when the rule `(page, start)` is about `command`.
fn applies(page: &str, start: &str, command: &DocCommand) -> bool {
    command.page == page
        && match start.strip_prefix('§') {
            Some(section) => command.section == section,
            None => command.text.starts_with(start),
        }
}

/// Why `command` is not run, if it is one of [`SKIPS`].
pub fn reason(command: &DocCommand) -> Option<&'static str> {
    SKIPS
        .iter()
        .find(|(page, start, _)| applies(page, start, command))
        .map(|(_, _, why)| *why)
}

/// The rules that matched none of `commands`: stale, to be removed.
pub fn unused(commands: &[DocCommand]) -> Vec<String> {
    SKIPS
        .iter()
        .filter(|(page, start, _)| !commands.iter().any(|c| applies(page, start, c)))
        .map(|(page, start, _)| format!("{page}: {start}"))
        .collect()
}

/// The Markdown table of the skipped commands, one row per page and reason.
pub fn table(skipped: &[(&DocCommand, &'static str)]) -> String {
    let mut rows: Vec<(&str, &str, Vec<String>)> = Vec::new();
    for (command, why) in skipped {
        let short = format!("`{}`", command.brief());
        match rows
            .iter_mut()
            .find(|(page, reason, _)| *page == command.page.as_str() && reason == why)
        {
            Some((_, _, shorts)) if shorts.contains(&short) => {}
            Some((_, _, shorts)) => shorts.push(short),
            None => rows.push((command.page.as_str(), why, vec![short])),
        }
    }
    let mut out = "| page | not run | why |\n|---|---|---|\n".to_owned();
    for (page, why, shorts) in rows {
        out.push_str(&format!("| {page} | {} | {why} |\n", shorts.join(", ")));
    }
    out
}
