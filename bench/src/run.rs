//! One `make bench`: every selected scenario in turn, then the table and the results file.

use crate::ctx::Ctx;
use crate::knobs::{Knobs, SCENARIOS};
use crate::report::{Report, Section};
use crate::{
    capture, coldstart, drain, history, lambda, latency, machine, outside, pg, scaleout, shapes,
};

/// Runs everything; `Ok(false)` when a scenario failed (its row says why).
pub async fn all() -> anyhow::Result<bool> {
    let knobs = Knobs::from_env()?;
    let mut ctx = Ctx::new(knobs)?;
    let started = chrono::Utc::now();
    let load_before = machine::load();
    let admin = pg::connect(&pg::base_url()).await?;
    let postgres: String = admin.query_one("SELECT version()", &[]).await?.get(0);
    drop(admin);
    let mut report = Report::default();
    for scenario in SCENARIOS {
        if !ctx.knobs.runs_scenario(scenario) {
            continue;
        }
        eprintln!("bench: {scenario} …");
        let began = std::time::Instant::now();
        let outcome = scenario_run(&mut ctx, scenario).await;
        eprintln!(
            "bench: {scenario} took {:.0} s",
            began.elapsed().as_secs_f64()
        );
        report.add(scenario, outcome);
    }
    let load_after = machine::load();
    println!("\n{}", report.text_table());
    println!("{}", report.tally());

    let mut preamble = vec![
        format!(
            "## Run of {} (UTC), {}",
            started.format("%Y-%m-%d %H:%M"),
            if ctx.knobs.quick { "quick" } else { "full" }
        ),
        String::new(),
    ];
    preamble.extend(machine::describe(&postgres));
    preamble.push(format!(
        "- load average (1/5/15 min) before: {load_before}; after: {load_after} \
         (the machine is shared with other work)"
    ));
    preamble.push(format!("- sizes: `{}`", ctx.knobs.describe()));
    preamble.push(String::new());
    preamble.push("Commands (`make bench` builds the release binaries and runs `target/release/bench`, which runs these):".into());
    preamble.push(String::new());
    preamble.push("```".into());
    preamble.extend(ctx.commands.iter().cloned());
    preamble.push("```".into());
    if ctx.knobs.write {
        let path = ctx.root.join("bench/RESULTS.md");
        report.write(&path, &preamble)?;
        eprintln!("bench: wrote {}", path.display());
    } else {
        eprintln!("bench: bench/RESULTS.md left as it was (BENCH_WRITE=1 writes a quick run too)");
    }
    let _ = std::fs::remove_dir_all(&ctx.work);
    Ok(!report.failed())
}

async fn scenario_run(ctx: &mut Ctx, scenario: &str) -> anyhow::Result<Section> {
    match scenario {
        "drain" => drain::run(ctx).await,
        "capture" => capture::run(ctx).await,
        "outside" => outside::run(ctx).await,
        "shapes" => shapes::run(ctx).await,
        "latency" => latency::run(ctx).await,
        "lambda" => lambda::run(ctx).await,
        "history" => history::run(ctx).await,
        "scaleout" => scaleout::run(ctx).await,
        "coldstart" => coldstart::run(ctx).await,
        other => Err(anyhow::anyhow!("{other}: no such scenario")),
    }
}
