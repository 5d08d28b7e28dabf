//! `make bench`: every performance figure of issues #13 and #25 beside its target, printed as a table
//! and written into `bench/RESULTS.md` (see `bench/README` in RESULTS.md, and [`knobs`] for the
//! sizes). `bench bare-http N` is the bare-HTTP ceiling's own process (see [`drain`]).

mod capture;
mod child;
mod coldstart;
mod ctx;
mod drain;
mod history;
mod knobs;
mod lambda;
mod latency;
mod machine;
mod nginx;
mod outside;
mod pg;
mod pgcpu;
mod report;
mod run;
mod scaleout;
mod shapes;
mod stats;

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => run::all().await,
        ["bare-http", n] => drain::bare_http_main(n).await.map(|()| true),
        _ => Err(anyhow::anyhow!("usage: bench [bare-http N]")),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            eprintln!("bench: {err:#}");
            ExitCode::from(2)
        }
    }
}
