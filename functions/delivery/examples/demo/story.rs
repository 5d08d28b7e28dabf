//! The seven steps. Each says what happens and why, does it through the real parts, shows the
//! rows that matter and checks every claim; the first claim that does not hold ends the run.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use base64::Engine as _;
use delivery::receiver::{Received, Verdict};
use serde_json::Value;
use uuid::Uuid;

use crate::demo_db::{Booking, Delivery, DemoDb, clock};
use crate::procs::{Env, Proc, ReceiverProc, find_cargo_lambda};
use crate::show::{Show, cell};
use crate::sweeper::{Sweeper, summary};

/// The path the receiver is addressed at: the Supabase edge function's, as in production.
const PATH: &str = "/functions/v1/send-booking-notification";
const MINUTE: Duration = Duration::from_secs(60);

/// Everything the demo started, so it can all be stopped whatever happens.
#[derive(Default)]
pub struct Stage {
    env: Option<Env>,
    db: Option<DemoDb>,
    receiver: Option<ReceiverProc>,
    dispatcher: Option<Proc>,
    sweeper: Option<Sweeper>,
    /// Requests the receivers got, over all their runs (each run checked when it stops).
    requests: u64,
}

impl Stage {
    fn env(&self) -> anyhow::Result<&Env> {
        self.env.as_ref().ok_or_else(|| anyhow!("not set up"))
    }
    fn db(&self) -> anyhow::Result<&DemoDb> {
        self.db.as_ref().ok_or_else(|| anyhow!("not set up"))
    }
    fn receiver(&mut self) -> anyhow::Result<&mut ReceiverProc> {
        self.receiver
            .as_mut()
            .ok_or_else(|| anyhow!("the receiver is not running"))
    }
    fn sweeper(&mut self) -> anyhow::Result<&mut Sweeper> {
        self.sweeper.as_mut().ok_or_else(|| anyhow!("not set up"))
    }

    /// Shows the booking's INSERT, then runs it.
    async fn book(&self, show: &Show, booking: &Booking) -> anyhow::Result<Uuid> {
        show.run(&booking.sql());
        self.db()?.book(booking).await
    }

    /// Shows the status change, then makes it.
    async fn decide(&self, show: &Show, booking: Uuid, status: &str) -> anyhow::Result<()> {
        show.run(&format!(
            "UPDATE booking_requests SET status = '{status}' WHERE id = '{booking}';"
        ));
        self.db()?.set_status(booking, status).await
    }

    /// Stops the receiver, checking it got no request the story did not expect.
    async fn stop_receiver(&mut self) -> anyhow::Result<()> {
        if let Some(receiver) = self.receiver.take() {
            self.requests += receiver.stop().await?.requests;
        }
        Ok(())
    }

    /// (Re)starts the receiver on `port` with `switches`.
    async fn start_receiver(&mut self, port: u16, switches: &[&str]) -> anyhow::Result<()> {
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
fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("…"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Sets up, then tells the story.
pub async fn run(sweep_via: &str, show: &Show, stage: &mut Stage) -> anyhow::Result<()> {
    show.title("Booking webhooks: the whole delivery story, live, on this machine");
    set_up(sweep_via, show, stage).await?;
    let grace = step_1(show, stage).await?;
    step_2(show, stage, grace).await?;
    step_3(show, stage).await?;
    step_4(show, stage).await?;
    step_5(show, stage).await?;
    step_6(show, stage).await?;
    step_7(show, stage).await
}

const GRACE: Booking = Booking {
    student: "Ada",
    student_email: Some("ada@example.com"),
    tutor: "Grace",
    tutor_email: Some("grace@example.com"),
    subject: "Maths",
};

async fn set_up(sweep_via: &str, show: &Show, stage: &mut Stage) -> anyhow::Result<()> {
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
async fn wait_until_listening(db: &DemoDb, dispatcher: &mut Proc) -> anyhow::Result<()> {
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

/// Shows and checks the receiver's record of one delivery that it accepted.
fn check_accepted(
    show: &Show,
    received: &Received,
    delivery: &Delivery,
    kind: &str,
    booking: Uuid,
) -> anyhow::Result<()> {
    show.received(received);
    show.check(
        received.verdict == Verdict::Accepted
            && received.signature_verified
            && received.webhook_id == Some(delivery.id.to_string())
            && received.webhook_type.as_deref() == Some(kind)
            && received.booking_id == Some(booking.to_string()),
        &format!(
            "{kind} arrived as webhook-id {}: bearer token and signature verified",
            short(delivery.id)
        ),
        format!("{received:?}"),
    )
}

/// Sends nothing itself: waits for the dispatcher's attempt, then checks the receiver and the row.
async fn expect_dispatched(
    show: &Show,
    stage: &mut Stage,
    booking: Uuid,
    kind: &str,
) -> anyhow::Result<Delivery> {
    let received = stage.receiver()?.next().await?;
    let delivery = stage.db()?.delivery_after(booking, kind, "pending").await?;
    check_accepted(show, &received, &delivery, kind, booking)?;
    show.check(
        delivery.status == "succeeded"
            && delivery.attempt_count == 1
            && delivery.last_status_code == Some(200),
        &format!(
            "delivery {} is succeeded after 1 attempt (HTTP 200)",
            short(delivery.id)
        ),
        format!(
            "{} after {} attempts (HTTP {})",
            delivery.status,
            delivery.attempt_count,
            cell(&delivery.last_status_code)
        ),
    )?;
    Ok(delivery)
}

async fn step_1(show: &Show, stage: &mut Stage) -> anyhow::Result<Uuid> {
    show.heading("1. Ada books a lesson with Grace → Grace hears about it");
    show.say("The insert fires a trigger that writes the notification into webhook_deliveries in the same transaction: a committed booking always has its notification, a rolled-back one never sends one. On commit Postgres NOTIFYs the dispatcher, which claims the row, signs the payload and POSTs it.");
    let booking = stage.book(show, &GRACE).await?;
    expect_dispatched(show, stage, booking, "new_request").await?;
    Ok(booking)
}

async fn step_2(show: &Show, stage: &mut Stage, grace: Uuid) -> anyhow::Result<()> {
    show.heading("2. Grace approves; another request is rejected → each student hears the answer");
    show.say("Only a real change of status into approved or rejected captures a notification, addressed to the student this time.");
    stage.decide(show, grace, "approved").await?;
    expect_dispatched(show, stage, grace, "approved").await?;

    let linus = Booking {
        student: "Linus",
        student_email: Some("linus@example.com"),
        subject: "Physics",
        ..GRACE
    };
    let booking = stage.book(show, &linus).await?;
    expect_dispatched(show, stage, booking, "new_request").await?;
    stage.decide(show, booking, "rejected").await?;
    expect_dispatched(show, stage, booking, "rejected").await?;
    Ok(())
}

async fn step_3(show: &Show, stage: &mut Stage) -> anyhow::Result<()> {
    show.heading("3. A booking with no tutor email yet → skipped, and the booking still commits");
    show.say("With nobody to notify, the trigger records the notification as skipped with the reason. It never fails the booking and never calls out.");
    let alan = Booking {
        student: "Alan",
        student_email: Some("alan@example.com"),
        tutor: "(to be assigned)",
        tutor_email: None,
        subject: "Logic",
    };
    let booking = stage.book(show, &alan).await?;
    let db = stage.db()?;
    show.check(
        db.booking_exists(booking).await?,
        "the booking committed",
        "no booking row",
    )?;
    let delivery = db.delivery(booking, "new_request").await?;
    let attempts = db.attempts(delivery.id).await?;
    show.check(
        delivery.status == "skipped"
            && delivery.last_error.as_deref() == Some("booking has no tutor_email")
            && attempts.is_empty(),
        &format!(
            "delivery {} is skipped (\"booking has no tutor_email\"): recorded, never sent",
            short(delivery.id)
        ),
        format!(
            "{} ({}), {} attempts",
            delivery.status,
            cell(&delivery.last_error),
            attempts.len()
        ),
    )
}

async fn step_4(show: &Show, stage: &mut Stage) -> anyhow::Result<()> {
    show.heading("4. The notification service goes down → the attempt fails and is retried later");
    show.say("The demo stops the receiver. Barbara books a lesson with Grace; the dispatcher's attempt cannot connect. That is an outcome to record, not an error: the delivery waits for its next attempt.");
    let port = stage.receiver()?.port;
    stage.stop_receiver().await?;
    show.ok("receiver stopped");
    let barbara = Booking {
        student: "Barbara",
        student_email: Some("barbara@example.com"),
        subject: "Chemistry",
        ..GRACE
    };
    let booking = stage.book(show, &barbara).await?;
    let delivery = stage
        .db()?
        .delivery_after(booking, "new_request", "pending")
        .await?;
    let attempts = stage.db()?.attempts(delivery.id).await?;
    let gap = gap(&delivery);
    show.check(
        delivery.status == "retrying"
            && attempts.len() == 1
            && attempts[0].error_kind.as_deref() == Some("connect")
            && delivery.max_retries == 3
            && (5 * MINUTE..5 * MINUTE + 10 * Duration::from_secs(1)).contains(&gap),
        "attempt 1 failed to connect → retrying, attempt 2 due in 5 minutes",
        format!(
            "{} after {} attempts, next attempt {gap:?} after the last",
            delivery.status,
            attempts.len()
        ),
    )?;
    let first = delivery.last_attempt_at.map(clock).unwrap_or_default();
    let due = delivery.next_retry_at.map(clock).unwrap_or_default();
    show.say("The plan for this delivery (max_retries = 3: four attempts in all):");
    show.table(
        &["attempt", "when", "outcome"],
        &[
            vec![
                "1".into(),
                first,
                "connect: nothing listens → retrying".into(),
            ],
            vec![
                "2".into(),
                format!("{due}  (+5 min)"),
                "next_retry_at".into(),
            ],
            vec![
                "3".into(),
                "15 min after attempt 2 fails".into(),
                String::new(),
            ],
            vec![
                "4".into(),
                "45 min after attempt 3 fails".into(),
                "if it fails too: failed".into(),
            ],
        ],
    );
    show.say("An operator sees it with the seed's own query:");
    show.run("SELECT webhook_type, attempt_count, last_error, next_retry_at FROM webhook_failures WHERE status = 'retrying';");
    let rows = stage
        .db()?
        .text_rows("SELECT webhook_type, attempt_count, last_error, to_char(next_retry_at AT TIME ZONE 'UTC', 'HH24:MI:SS\"Z\"') FROM webhook_failures WHERE status = 'retrying'")
        .await?;
    let rows = gist_column(rows, 2);
    show.table(
        &[
            "webhook_type",
            "attempt_count",
            "last_error",
            "next_retry_at",
        ],
        &rows,
    );

    show.say("Nobody waits five minutes here. The demo moves time forward by moving this delivery's timestamps (its row and its attempts) five minutes into the past: to the sweep, which reads the real clock, that is exactly five minutes passing. The engine is not touched.");
    stage.db()?.travel(&[delivery.id], 5 * MINUTE).await?;
    let report = sweep(show, stage).await?;
    let delivery = stage.db()?.delivery(booking, "new_request").await?;
    show.check(
        report["processed"] == 1 && report["retrying"] == 1 && delivery.attempt_count == 2,
        "the sweep retried it: still down, so attempt 2 failed → attempt 3 due in 15 minutes",
        format!(
            "{} and the delivery is {} after {} attempts",
            summary(&report),
            delivery.status,
            delivery.attempt_count
        ),
    )?;
    let gap = self::gap(&delivery);
    show.check(
        (15 * MINUTE..15 * MINUTE + Duration::from_secs(10)).contains(&gap),
        "the next delay is 15 minutes, as planned",
        format!("{gap:?}"),
    )?;

    show.say("The receiver comes back (same port, so WEBHOOK_URL is unchanged), and fifteen more minutes pass.");
    stage.start_receiver(port, &[]).await?;
    show.ok("receiver running again");
    stage.db()?.travel(&[delivery.id], 15 * MINUTE).await?;
    let report = sweep(show, stage).await?;
    let received = stage.receiver()?.next().await?;
    let delivery = stage.db()?.delivery(booking, "new_request").await?;
    show.check(
        report["succeeded"] == 1,
        "the sweep delivered it",
        summary(&report),
    )?;
    check_accepted(show, &received, &delivery, "new_request", booking)?;
    let attempts = stage.db()?.attempts(delivery.id).await?;
    show.check(
        delivery.status == "succeeded" && attempts.len() == 3,
        "succeeded on attempt 3, under the same webhook-id as attempts 1 and 2 (the receiver can deduplicate)",
        format!("{} after {} attempts", delivery.status, attempts.len()),
    )?;
    show.table(
        &[
            "attempt",
            "started_at",
            "status_code",
            "error_kind",
            "error",
        ],
        &attempts
            .iter()
            .map(|a| {
                vec![
                    a.attempt.to_string(),
                    clock(a.started_at),
                    cell(&a.status_code),
                    cell(&a.error_kind),
                    a.error.as_deref().map_or("-".into(), gist),
                ]
            })
            .collect::<Vec<_>>(),
    );
    show.say("(The started_at times are the moved ones: 20 and 15 minutes before attempt 3, as if the outage had really lasted that long.)");
    Ok(())
}

/// Time from the last attempt to the next one.
fn gap(delivery: &Delivery) -> Duration {
    match (delivery.last_attempt_at, delivery.next_retry_at) {
        (Some(last), Some(next)) => (next - last).to_std().unwrap_or_default(),
        _ => Duration::ZERO,
    }
}

/// One sweep, narrated.
async fn sweep(show: &Show, stage: &mut Stage) -> anyhow::Result<Value> {
    let sweeper = stage.sweeper()?;
    show.run(&sweeper.command());
    let report = sweeper.sweep().await?;
    show.result(&summary(&report));
    Ok(report)
}

async fn step_5(show: &Show, stage: &mut Stage) -> anyhow::Result<()> {
    show.heading(
        "5. Approved, then rejected while the service is down → only the rejection is sent",
    );
    show.say("Katherine books with Grace and Grace hears about it. Then the service goes down: Grace approves, and the approval cannot be delivered; she changes her mind and rejects. Sent now, the approval would tell Katherine something no longer true, so the claim that would send it ends it superseded instead (WEBHOOK_SUPERSEDE, on by default: docs/superseded.md). Only the current decision is delivered.");
    let katherine = Booking {
        student: "Katherine",
        student_email: Some("katherine@example.com"),
        subject: "Astronomy",
        ..GRACE
    };
    let booking = stage.book(show, &katherine).await?;
    expect_dispatched(show, stage, booking, "new_request").await?;
    let port = stage.receiver()?.port;
    stage.stop_receiver().await?;
    show.ok("receiver stopped");
    let mut decisions = Vec::new();
    for status in ["approved", "rejected"] {
        stage.decide(show, booking, status).await?;
        decisions.push(
            stage
                .db()?
                .delivery_after(booking, status, "pending")
                .await?,
        );
    }
    let (approval, rejection) = (&decisions[0], &decisions[1]);
    show.check(
        decisions.iter().all(|d| {
            d.status == "retrying"
                && d.attempt_count == 1
                && (5 * MINUTE..5 * MINUTE + Duration::from_secs(10)).contains(&gap(d))
        }),
        "each failed to connect on attempt 1 → both retrying, due in 5 minutes",
        format!(
            "approval {} after {}, rejection {} after {} attempts",
            approval.status, approval.attempt_count, rejection.status, rejection.attempt_count
        ),
    )?;

    show.say("The receiver comes back and five minutes pass: the sweep takes both retries.");
    stage.start_receiver(port, &[]).await?;
    show.ok("receiver running again");
    let ids: Vec<Uuid> = decisions.iter().map(|d| d.id).collect();
    stage.db()?.travel(&ids, 5 * MINUTE).await?;
    let report = sweep(show, stage).await?;
    let received = stage.receiver()?.next().await?;
    let rejection = stage.db()?.delivery(booking, "rejected").await?;
    let approval = stage.db()?.delivery(booking, "approved").await?;
    show.check(
        report["superseded"] == 1 && report["succeeded"] == 1,
        "the sweep superseded one notification and delivered one",
        summary(&report),
    )?;
    check_accepted(show, &received, &rejection, "rejected", booking)?;
    show.check(
        approval.status == "superseded"
            && approval.superseded_by == Some(rejection.id)
            && approval.attempt_count == 1,
        &format!(
            "the approval {} is superseded by the rejection {}: the receiver never gets it; its one refused attempt is kept",
            short(approval.id),
            short(rejection.id)
        ),
        format!(
            "{} (superseded_by {}) after {} attempts",
            approval.status,
            cell(&approval.superseded_by),
            approval.attempt_count
        ),
    )?;
    show.run(&format!(
        "SELECT webhook_type, status, superseded_by FROM webhook_deliveries WHERE booking_id = '{booking}' ORDER BY capture_seq;"
    ));
    let rows = stage
        .db()?
        .text_rows(&format!(
            "SELECT webhook_type, status, coalesce(left(superseded_by::text, 8), '-') FROM webhook_deliveries WHERE booking_id = '{booking}' ORDER BY capture_seq"
        ))
        .await?;
    show.table(&["webhook_type", "status", "superseded_by"], &rows);
    Ok(())
}

async fn step_6(show: &Show, stage: &mut Stage) -> anyhow::Result<()> {
    show.heading(
        "6. The receiver answers 400 → failed at once; after the fix, a replay delivers it",
    );
    show.say("A receiver bug rejects every notification with 400. A 4xx other than 408, 425 and 429 will not get better by retrying, so the delivery fails at once, with the receiver's answer kept for the operator.");
    let port = stage.receiver()?.port;
    stage.stop_receiver().await?;
    show.run("webhooks receiver --status 400");
    stage.start_receiver(port, &["--status", "400"]).await?;
    let edsger = Booking {
        student: "Edsger",
        student_email: Some("edsger@example.com"),
        subject: "Algorithms",
        ..GRACE
    };
    let booking = stage.book(show, &edsger).await?;
    let received = stage.receiver()?.next().await?;
    show.received(&received);
    let delivery = stage
        .db()?
        .delivery_after(booking, "new_request", "pending")
        .await?;
    show.check(
        delivery.status == "failed"
            && delivery.attempt_count == 1
            && delivery.last_status_code == Some(400)
            && delivery.next_retry_at.is_none()
            && received.verdict == Verdict::FailedOnPurpose,
        &format!(
            "delivery {} failed on attempt 1 with HTTP 400, no retry scheduled; last_error: {}",
            short(delivery.id),
            cell(&delivery.last_error)
        ),
        format!(
            "{} after {} attempts (HTTP {})",
            delivery.status,
            delivery.attempt_count,
            cell(&delivery.last_status_code)
        ),
    )?;

    show.say("The fix is deployed (the receiver restarts without --status), and the operator replays the failed delivery: it is requeued with a fresh retry budget, and the next sweep sends it.");
    stage.stop_receiver().await?;
    stage.start_receiver(port, &[]).await?;
    show.run(&format!("webhooks replay {}", delivery.id));
    let env = stage.env()?;
    let replay = env
        .command(&env.webhooks)
        .args(["replay", &delivery.id.to_string()])
        .stderr(env.log("replay")?)
        .output()
        .await?;
    let replayed: Value = serde_json::from_slice(&replay.stdout).with_context(|| {
        format!(
            "webhooks replay failed ({}); see target/demo/replay.log",
            replay.status
        )
    })?;
    show.result(&format!(
        "requeued {}, due now {}, still failed {}",
        replayed["requeued"], replayed["dueNow"], replayed["stillFailed"]
    ));
    show.check(replayed["requeued"] == 1, "requeued", &replayed)?;
    let report = sweep(show, stage).await?;
    let received = stage.receiver()?.next().await?;
    let delivery = stage.db()?.delivery(booking, "new_request").await?;
    show.check(
        report["succeeded"] == 1,
        "the sweep delivered it",
        summary(&report),
    )?;
    check_accepted(show, &received, &delivery, "new_request", booking)?;
    show.check(
        delivery.status == "succeeded" && delivery.attempt_count == 2,
        "succeeded on attempt 2",
        format!(
            "{} after {} attempts",
            delivery.status, delivery.attempt_count
        ),
    )
}

async fn step_7(show: &Show, stage: &mut Stage) -> anyhow::Result<()> {
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

    stage.stop_receiver().await?;
    show.ok(&format!(
        "the receiver got {} requests in all, each one the story expected: no duplicate, no stray retry",
        stage.requests
    ));
    Ok(())
}

/// A long error chain shortened to its first and last parts: `connect: … Connection refused`.
fn gist(error: &str) -> String {
    let parts: Vec<&str> = error.split(": ").collect();
    match parts.as_slice() {
        [first, .., last] if error.chars().count() > 60 => format!("{first}: … {last}"),
        _ => error.to_owned(),
    }
}

fn gist_column(mut rows: Vec<Vec<String>>, column: usize) -> Vec<Vec<String>> {
    for row in &mut rows {
        if let Some(cell) = row.get_mut(column) {
            *cell = gist(cell);
        }
    }
    rows
}

/// The first 8 characters of an id, as the receiver prints it.
fn short(id: Uuid) -> String {
    id.simple().to_string()[..8].to_owned()
}
