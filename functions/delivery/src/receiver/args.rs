//! `webhooks receiver`'s command line, and the loop that prints what arrives.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::sync::mpsc;

use super::{Misbehaviour, ReceiverEvent, ReceiverOptions, Tally, Verifier};
use crate::backoff::parse_duration;
use crate::config::ConfigError;

/// A local notification service: verifies the bearer token (WEBHOOK_AUTH_TOKEN) and the
/// Standard Webhooks signature (WEBHOOK_SIGNING_SECRET), deduplicates by webhook-id, prints
/// one line per request, and misbehaves on request. Ctrl-C stops it.
#[derive(Debug, Clone, clap::Args)]
pub struct ReceiverArgs {
    /// Port to listen on; 0 picks a free one (printed at start). 8787 matches .env.example.
    #[arg(long, default_value_t = 8787)]
    pub port: u16,
    /// Address to listen on: 0.0.0.0 accepts requests from other machines (a staging
    /// deployment pointed at this one).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Fail the first N verified requests (with --status, default 503), then accept.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub fail_first: u64,
    /// Fail every verified request for this long after start, e.g. 2m (with --status, default 503).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub fail_for: Option<Duration>,
    /// Status of failing answers; alone, every verified request gets it (400: reject for good).
    #[arg(long, value_name = "CODE", value_parser = clap::value_parser!(u16).range(200..=599))]
    pub status: Option<u16>,
    /// Wait this long before answering each request: milliseconds, or a duration like 2s.
    #[arg(long, value_name = "MS", value_parser = millis, default_value = "0")]
    pub delay: Duration,
    /// Send `Retry-After: S` with failing answers (the engine honours it on 429 and 503).
    #[arg(long, value_name = "S")]
    pub retry_after: Option<u64>,
    /// Print JSON lines ({"event": "listening" | "request" | "stopped", …}) instead of text.
    #[arg(long)]
    pub json: bool,
}

impl ReceiverArgs {
    /// The options, with the credentials read through `lookup` (the environment).
    pub fn options(
        &self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<ReceiverOptions, ConfigError> {
        let problem = "is required: the receiver expects what the sender is configured with";
        crate::config::all_set(
            &lookup,
            &["WEBHOOK_AUTH_TOKEN", "WEBHOOK_SIGNING_SECRET"],
            problem,
        )?;
        let required = |var: &'static str| {
            lookup(var).ok_or(ConfigError {
                var,
                problem: problem.into(),
            })
        };
        Ok(ReceiverOptions {
            addr: SocketAddr::new(self.host, self.port),
            verifier: Verifier::new(
                &required("WEBHOOK_AUTH_TOKEN")?,
                &required("WEBHOOK_SIGNING_SECRET")?,
            )?,
            misbehaviour: Misbehaviour {
                fail_first: self.fail_first,
                fail_for: self.fail_for,
                status: self.status,
                delay: self.delay,
                retry_after: self.retry_after,
            },
        })
    }
}

fn duration(text: &str) -> Result<Duration, String> {
    parse_duration(text.trim())
}

fn millis(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    match text.parse::<u64>() {
        Ok(ms) => Ok(Duration::from_millis(ms)),
        Err(_) => parse_duration(text),
    }
}

/// Runs `webhooks receiver` until Ctrl-C or SIGTERM, printing to stdout.
pub async fn run(args: ReceiverArgs) -> Result<(), Box<dyn std::error::Error>> {
    let options = args.options(|var| std::env::var(var).ok())?;
    let misbehaviour = options.misbehaviour.clone();
    let bound = super::bind(options.clone())
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", options.addr))?;
    let url = format!("http://{}", bound.local_addr()?);
    if args.json {
        print_json(&ReceiverEvent::Listening { url });
    } else {
        crate::out::line(&format!(
            "webhooks receiver listening on {url} (POST, any path): bearer token and signature required"
        ));
        if !misbehaviour.is_none() {
            crate::out::line(&format!(
                "misbehaving on purpose: {}",
                misbehaviour.describe()
            ));
        }
        crate::out::line("Ctrl-C to stop");
    }
    let (log, mut lines) = mpsc::unbounded_channel();
    let server = tokio::spawn(bound.serve(log, crate::signal::stop_requested()));
    let mut tally = Tally::default();
    // The channel closes when the server has stopped and answered everything in flight.
    while let Some(received) = lines.recv().await {
        tally.add(&received);
        if args.json {
            print_json(&ReceiverEvent::Request(received));
        } else {
            crate::out::line(&received.to_string());
        }
    }
    server.await??;
    if args.json {
        print_json(&ReceiverEvent::Stopped { tally });
    } else {
        crate::out::line(&format!("stopped: {tally}"));
    }
    Ok(())
}

fn print_json(event: &ReceiverEvent) {
    // Serializing these plain structs cannot fail.
    if let Ok(line) = serde_json::to_string(event) {
        crate::out::line(&line);
    }
}
