//! `webhooks migrate`: each step as it completes, then the outcome and, when adopting, the
//! rollback script; with `--json`, the steps on stderr and the report as JSON on stdout.

use delivery::out;
use delivery::schema::{self, MigrateOptions};

use crate::Verdict;

/// `webhooks migrate`: each step as it completes, then the outcome and, when adopting, the
/// rollback script; with `json`, the steps on stderr and the report as JSON on stdout.
pub(crate) async fn migrate(
    options: MigrateOptions,
    json: bool,
) -> Result<Verdict, Box<dyn std::error::Error>> {
    let pool = crate::ops::reachable_pool().await?;
    let say = |line: &str| {
        if json {
            eprintln!("{line}");
        } else {
            out::line(line);
        }
    };
    if options.dry_run {
        say("dry run: every step runs in a transaction that is rolled back at the end");
    }
    let report = schema::migrate(&pool, options, &mut |line| say(line))
        .await
        .map_err(|e| {
            format!("{e}\nNothing was changed: `webhooks migrate` runs in one transaction.")
        })?;
    if json {
        out::line(&serde_json::to_string_pretty(&report)?);
        return Ok(Verdict::Fine);
    }
    if report.committed {
        out::line("committed");
    } else {
        out::line("dry run: rolled back, nothing was changed");
    }
    if let Some(script) = report.rollback_script {
        out::line(&format!("\n{script}"));
    }
    Ok(Verdict::Fine)
}
