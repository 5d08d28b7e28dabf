//! The stage the story plays on: the environment, the database, the receiver and dispatcher
//! processes and the sweeper, set up before step 1 and torn down after the last.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail};
use base64::Engine as _;
use serde_json::Value;
use uuid::Uuid;

use crate::demo_db::{Booking, DemoDb};
use crate::procs::{Env, Proc, ReceiverProc, find_cargo_lambda};
use crate::show::Show;
use crate::sweeper::{Sweeper, summary};

/// The path the receiver is addressed at: the Supabase edge function's, as in production.
pub(crate) const PATH: &str = "/functions/v1/send-booking-notification";
pub(crate) const MINUTE: Duration = Duration::from_secs(60);

/// Everything the demo started, so it can all be stopped whatever happens.
#[derive(Default)]
pub struct Stage {
    env: Option<Env>,
    db: Option<DemoDb>,
    receiver: Option<ReceiverProc>,
    dispatcher: Option<Proc>,
    sweeper: Option<Sweeper>,
    /// Requests the receivers got, over all their runs (each run checked when it stops).
    pub(crate) requests: u64,
}

impl Stage {
    pub(crate) fn env(&self) -> anyhow::Result<&Env> {
        self.env.as_ref().ok_or_else(|| anyhow!("not set up"))
    }
    pub(crate) fn db(&self) -> anyhow::Result<&DemoDb> {
        self.db.as_ref().ok_or_else(|| anyhow!("not set up"))
    }
    pub(crate) fn receiver(&mut self) -> anyhow::Result<&mut ReceiverProc> {
        self.receiver
            .as_mut()
            .ok_or_else(|| anyhow!("the receiver is not running"))
    }
    pub(crate) fn sweeper(&mut self) -> anyhow::Result<&mut Sweeper> {
        self.sweeper.as_mut().ok_or_else(|| anyhow!("not set up"))
    }

    /// Shows the booking's INSERT, then runs it.
    pub(crate) async fn book(&self, show: &Show, booking: &Booking) -> anyhow::Result<Uuid> {
        show.run(&booking.sql());
        self.db()?.book(booking).await
    }

    /// Shows the status change, then makes it.
    pub(crate) async fn decide(
        &self,
        show: &Show,
        booking: Uuid,
        status: &str,
    ) -> anyhow::Result<()> {
        show.run(&format!(
            "UPDATE booking_requests SET status = '{status}' WHERE id = '{booking}';"
        ));
        self.db()?.set_status(booking, status).await
    }

    /// Stops the receiver, checking it got no request the story did not expect.
    pub(crate) async fn stop_receiver(&mut self) -> anyhow::Result<()> {
        if let Some(receiver) = self.receiver.take() {
            self.requests += receiver.stop().await?.requests;
        }
        Ok(())
    }

    /// (Re)starts the receiver on `port` with `switches`.
    pub(crate) async fn start_receiver(
        &mut self,
        port: u16,
        switches: &[&str],
    ) -> anyhow::Result<()> {
        let receiver = ReceiverProc::start(self.env()?, port, switches).await?;
        self.receiver = Some(receiver);
        Ok(())
    }

    /// Stops every process still running and drops the database (unless `keep`).
    pub async fn tear_down(&mut self, show: &Show, keep: bool) -> anyhow::Result<()> {
        show.heading("Clean-up");
        let mut stopped = Vec::new();
        if let Some(receiver) = self.receiver.take() {
            // The story checks the receiver's tally when it stops it; here it only has to go.
            drop(receiver);
            stopped.push("the receiver");
        }
        if let Some(mut dispatcher) = self.dispatcher.take() {
            dispatcher.stop().await?;
            stopped.push("the dispatcher");
        }
        if let Some(mut sweeper) = self.sweeper.take() {
            if matches!(sweeper, Sweeper::Lambda { .. }) {
                stopped.push("cargo lambda watch");
            }
            sweeper.stop().await?;
        }
        if !stopped.is_empty() {
            show.ok(&format!("stopped {}", stopped.join(", ")));
        }
        if let Some(db) = self.db.take() {
            if keep {
                show.note(&format!("kept database {} (--keep):", db.name));
                show.run(&format!("psql \"{}\"", redact(&db.url)));
                show.note("drop it with:");
                show.run(&format!(
                    "psql \"{}\" -c 'DROP DATABASE {}'",
                    redact(&db.server_url),
                    db.name
                ));
            } else {
                let name = db.name.clone();
                db.drop_database().await?;
                show.ok(&format!("dropped database {name}"));
            }
        }
        Ok(())
    }
}

/// A URL with any password replaced, for printing.
pub(crate) fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("…"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

pub(crate) async fn set_up(sweep_via: &str, show: &Show, stage: &mut Stage) -> anyhow::Result<()> {
    show.heading("Setting up");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.canonicalize().unwrap_or(root);
    let webhooks = std::env::current_exe()?
        .parent()
        .and_then(|examples| examples.parent())
        .map(|profile| profile.join("webhooks"))
        .filter(|path| path.is_file())
        .ok_or_else(|| anyhow!("the webhooks binary is missing: `make demo` builds it"))?;
    let logs = root.join("target/demo");
    std::fs::create_dir_all(&logs)?;
    for name in ["receiver", "dispatcher", "lambda", "migrate"] {
        let _ = std::fs::remove_file(logs.join(format!("{name}.log")));
    }
    let server = std::env::var("DATABASE_URL").map_err(|_| {
        anyhow!("DATABASE_URL names no server: run `make demo`, which finds or starts one")
    })?;

    let db = DemoDb::create(&server).await?;
    let (db_name, db_url) = (db.name.clone(), db.url.clone());
    stage.db = Some(db);

    // Fresh credentials per run: the receiver only accepts what this run's engine signs.
    let mut key = Uuid::new_v4().as_bytes().to_vec();
    key.extend_from_slice(Uuid::new_v4().as_bytes());
    let vars: HashMap<String, String> = [
        ("DATABASE_URL", db_url),
        (
            "WEBHOOK_AUTH_TOKEN",
            format!("demo-{}", Uuid::new_v4().simple()),
        ),
        (
            "WEBHOOK_SIGNING_SECRET",
            format!(
                "whsec_{}",
                base64::engine::general_purpose::STANDARD.encode(key)
            ),
        ),
        // Round times in the story; production adds up to 10 % so retries spread out.
        ("WEBHOOK_RETRY_JITTER", "0".into()),
        ("WEBHOOK_LOG_FORMAT", "text".into()),
        ("RUST_LOG", "info".into()),
        // The children's logs go to files: no colour codes in them.
        ("NO_COLOR", "1".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut env = Env {
        root,
        webhooks,
        logs,
        vars,
    };

    let migrate = env
        .command(&env.webhooks)
        .args(["migrate", "--json"])
        .stderr(env.log("migrate")?)
        .output()
        .await?;
    if !migrate.status.success() {
        bail!("webhooks migrate failed; see target/demo/migrate.log");
    }
    let applied: Value = serde_json::from_slice(&migrate.stdout)?;
    let versions = applied["applied"].as_array().map_or(0, Vec::len);
    show.ok(&format!(
        "database     {db_name}: created for this run, {versions} migrations applied (webhooks migrate); dropped at the end"
    ));

    let receiver = ReceiverProc::start(&env, 0, &[]).await?;
    show.ok(&format!(
        "receiver     webhooks receiver on {}: checks the bearer token and the signature",
        receiver.url
    ));
    env.vars
        .insert("WEBHOOK_URL".into(), format!("{}{PATH}", receiver.url));
    stage.receiver = Some(receiver);

    let mut listen = env.command(&env.webhooks);
    listen
        .args(["listen", "--sweep-every", "off"])
        .stdout(env.log("dispatcher")?)
        .stderr(env.log("dispatcher")?);
    let dispatcher = stage
        .dispatcher
        .insert(Proc::spawn("dispatcher", listen, true)?);
    let db = stage.db.as_ref().ok_or_else(|| anyhow!("not set up"))?;
    wait_until_listening(db, dispatcher).await?;
    show.ok("dispatcher   webhooks listen: sends each delivery the moment its booking commits");

    let tool = find_cargo_lambda(&env.root);
    let sweeper = match (sweep_via, tool) {
        ("library", _) => Sweeper::library(&env, "--sweep-via library")?,
        ("auto", None) => Sweeper::library(&env, "cargo-lambda is not installed")?,
        (_, Some(dir)) => Sweeper::lambda(&env, dir).await?,
        ("lambda", None) => bail!("cargo-lambda is not installed: `make tools` installs it"),
        (other, None) => bail!("--sweep-via {other}: expected auto, lambda or library"),
    };
    let sweeper = stage.sweeper.insert(sweeper);
    let warm = sweeper.sweep().await?;
    match sweeper {
        Sweeper::Lambda { port, .. } => show.ok(&format!(
            "retry sweep  the retry-sweep Lambda under cargo lambda watch (127.0.0.1:{port}), answering: {}",
            summary(&warm)
        )),
        Sweeper::Library { why, .. } => {
            show.ok(&format!("retry sweep  the retry-sweep handler, in-process: {}", summary(&warm)));
            show.note(&format!(
                "{why}: the sweep calls the handler the Lambda's main.rs calls, in-process (`make tools` installs cargo-lambda)"
            ));
        }
    }
    show.say("Retries follow the default schedule: 5, 15 and 45 minutes. Jitter is off in the demo so the times come out round; in production up to 10 % is added so retries after an outage spread out.");
    stage.env = Some(env);
    Ok(())
}

/// Waits until the dispatcher's LISTEN is in place, so step 1 shows the NOTIFY path (a
/// booking committed earlier would still be sent: listen catches up when it starts).
pub(crate) async fn wait_until_listening(db: &DemoDb, dispatcher: &mut Proc) -> anyhow::Result<()> {
    let started = tokio::time::Instant::now();
    loop {
        let rows = db
            .text_rows(
                "SELECT count(*) FROM pg_stat_activity
                  WHERE datname = current_database() AND query ILIKE 'LISTEN %'",
            )
            .await?;
        if rows
            .first()
            .and_then(|r| r.first())
            .is_some_and(|n| n != "0")
        {
            return Ok(());
        }
        dispatcher.ensure_running()?;
        if started.elapsed() > crate::procs::PATIENCE {
            bail!("the dispatcher did not LISTEN; see target/demo/dispatcher.log");
        }
        tokio::time::sleep(Duration::from_millis(50)).await; // readiness polling of a child
    }
}
