//! `infra` binary: parses the command line and hands off to [`infra::cli::run`].

use std::process::ExitCode;

use clap::Parser as _;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    // Logs go to stderr so stdout stays the report (`show` prints JSON there).
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn,infra=info"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .init();
    let cli = infra::cli::Cli::parse();
    let config = infra::aws::load_config(cli.region.as_deref(), cli.endpoint_url.as_deref()).await;
    match infra::cli::run(&cli, &config).await {
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            // `{:#}` prints the whole context chain on one line: what failed, then why.
            eprintln!("infra: {error:#}");
            ExitCode::FAILURE
        }
    }
}
