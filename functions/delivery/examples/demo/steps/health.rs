//! Step 7: the health view and the error patterns.

use crate::show::Show;

use crate::checks::gist_column;
use crate::stage::Stage;

pub(crate) async fn step_7(show: &Show, stage: &mut Stage) -> anyhow::Result<()> {
    show.heading("7. The health view and the error patterns");
    show.say("What an operator looks at (`webhooks stats` reads the same view): per notification type, the states and the success rate; and what has been going wrong lately, by class.");
    show.run("SELECT webhook_type, total, succeeded, retrying, failed, skipped, superseded, success_rate_pct, avg_attempts_to_succeed FROM webhook_stats;");
    let health = stage
        .db()?
        .text_rows("SELECT webhook_type, total, succeeded, retrying, failed, skipped, superseded, success_rate_pct, avg_attempts_to_succeed FROM webhook_stats ORDER BY webhook_type = 'all', webhook_type")
        .await?;
    show.table(
        &[
            "webhook_type",
            "total",
            "succeeded",
            "retrying",
            "failed",
            "skipped",
            "superseded",
            "success_rate_pct",
            "avg_attempts_to_succeed",
        ],
        &health,
    );
    let counts: Vec<Vec<&str>> = health
        .iter()
        .map(|r| r.iter().take(7).map(String::as_str).collect())
        .collect();
    let expected = vec![
        vec!["approved", "2", "1", "0", "0", "0", "1"],
        vec!["new_request", "6", "5", "0", "0", "1", "0"],
        vec!["rejected", "2", "2", "0", "0", "0", "0"],
        vec!["all", "10", "8", "0", "0", "1", "1"],
    ];
    show.check(
        counts == expected,
        "10 notifications: 8 delivered, 1 skipped, 1 superseded, none retrying or failed",
        format!("{counts:?}"),
    )?;

    show.run("SELECT error_kind, status_code, attempts, latest_error FROM webhook_error_patterns;");
    let patterns = stage
        .db()?
        .text_rows("SELECT error_kind, coalesce(status_code::text, '-'), attempts, latest_error FROM webhook_error_patterns ORDER BY error_kind")
        .await?;
    let patterns = gist_column(patterns, 3);
    show.table(
        &["error_kind", "status_code", "attempts", "latest_error"],
        &patterns,
    );
    let kinds: Vec<(&str, &str, &str)> = patterns
        .iter()
        .map(|r| (r[0].as_str(), r[1].as_str(), r[2].as_str()))
        .collect();
    show.check(
        kinds == [("connect", "-", "4"), ("http_4xx", "400", "1")],
        "the outages (4 failed connects) and the receiver's 400 (1 attempt)",
        format!("{kinds:?}"),
    )?;
    Ok(())
}
