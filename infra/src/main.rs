//! `infra` binary: parses the command line and hands off to [`infra::cli::run`].

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser as _;
use infra::aws::NoCredentials;
use infra::change::Missing;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    // Logs go to stderr so stdout stays the report (`show` prints JSON there). The credential
    // chain's own warnings are left out: they end in `Debug` dumps of what our one line says.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,infra=info,aws_config=error"));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_env_filter(filter)
        .init();
    let cli = infra::cli::Cli::parse();
    let config = infra::aws::load_config(cli.region.as_deref(), cli.endpoint_url.as_deref()).await;
    match infra::cli::run(&cli, &config).await {
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        // Exit status: cli::EXIT_STATUS.
        Err(error) => {
            if let Some(none) = error.downcast_ref::<NoCredentials>() {
                // What failed adds nothing: every command needs credentials.
                eprintln!("infra: {none}");
            } else {
                // `{:#}` prints the whole context chain on one line: what failed, then why.
                eprintln!("infra: {error:#}");
            }
            let missing = error.downcast_ref::<Missing>().is_some();
            ExitCode::from(if missing { 1 } else { 2 })
        }
    }
}
