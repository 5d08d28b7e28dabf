//! Listen polls instead of NOTIFY while bookings stream in (V18): capture stops paying the
//! NOTIFY lock, every booking is still sent once, and a booking that trusted the flag and
//! committed after listen fell asleep is still sent by listen, not left to the sweep.

use std::collections::HashMap;
use std::time::Duration;

use delivery::Clock;
use delivery::listen::{ListenOptions, listen};
use delivery::sql;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_postgres::Client;
use uuid::Uuid;

use crate::support::db::{Listener, connect};
use crate::support::{Receiver, Reply, TestDb};

const LIMIT: Duration = Duration::from_secs(15);

/// True while the flag is in the future on the database's clock.
const RAISED: &str = "SELECT coalesce(pg_sequence_last_value('webhook_listener_awake_until'), 0)
                            > (extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// A running `listen` (no periodic sweep: only listen itself can send what it misses).
struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<delivery::Result<()>>,
}

impl Running {
    fn start(db: &TestDb, receiver: &Receiver) -> Running {
        let deps = crate::support::deps::deps(db, &receiver.url);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            let options = ListenOptions { sweep_every: None };
            listen(&deps, Clock::System, options, shutdown).await
        });
        Running { stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task
            .await
            .expect("listener task")
            .expect("listen ends cleanly");
    }
}

async fn raised(client: &Client) -> bool {
    client.query_one(RAISED, &[]).await.expect("flag").get(0)
}

/// Waits until the flag is `up` (raised) or not; panics after [`LIMIT`].
async fn until_flag(client: &Client, up: bool) {
    let waiting = async {
        while raised(client).await != up {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    if tokio::time::timeout(LIMIT, waiting).await.is_err() {
        panic!(
            "the listener flag never went {}",
            if up { "up" } else { "down" }
        );
    }
}

/// Commits bookings five to a transaction (their NOTIFYs arrive together) until listen
/// raises its flag; the deliveries captured on the way.
async fn wake(db: &TestDb, client: &Client) -> Vec<Uuid> {
    let mut captured = Vec::new();
    for _ in 0..50 {
        let rows = client
            .query(
                "INSERT INTO booking_requests (tutor_email)
                 SELECT 'tutor' || g || '@example.com' FROM generate_series(1, 5) g RETURNING id",
                &[],
            )
            .await
            .expect("five bookings");
        for row in rows {
            captured.push(db.delivery_id(row.get(0), "new_request").await);
        }
        let woke = async {
            while !raised(client).await {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        };
        if tokio::time::timeout(Duration::from_millis(500), woke)
            .await
            .is_ok()
        {
            return captured;
        }
    }
    panic!("listen never raised its flag for bursts of five bookings");
}

/// How many times each webhook-id reached the receiver.
fn sent(receiver: &Receiver) -> HashMap<String, usize> {
    let mut sent = HashMap::new();
    for request in receiver.requests() {
        *sent.entry(request.header("webhook-id")).or_default() += 1;
    }
    sent
}

#[tokio::test]
async fn while_bookings_stream_in_listen_polls_and_capture_stops_notifying() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let client = db.client().await;
    let running = Running::start(&db, &receiver);
    let mut notifications = Listener::start(&db.url, sql::CAPTURE_CHANNEL).await;

    let mut all = wake(&db, &client).await;
    // `webhooks doctor` sees it polling.
    let polling: Option<bool> = client
        .query_one(sql::NOTIFY_POSTURE, &[])
        .await
        .expect("doctor's read")
        .get(3);
    assert_eq!(polling, Some(true), "doctor sees the listener polling");
    // Every NOTIFY so far is of the bookings that woke it.
    while notifications
        .next(Duration::from_millis(50))
        .await
        .is_some()
    {}
    let mut streamed = Vec::new();
    for _ in 0..40 {
        streamed.push(db.booking_with_delivery().await.1);
    }
    all.extend(&streamed);
    receiver.wait_for(all.len(), LIMIT).await;
    let mut notified = 0;
    while let Some(id) = notifications.next(Duration::from_millis(50)).await {
        notified += usize::from(streamed.iter().any(|s| s.to_string() == id));
    }
    // Each of these commits within milliseconds of the last, so listen stays awake and none
    // should notify; a stalled machine may let it fall asleep once or twice.
    assert!(
        notified < streamed.len() / 4,
        "{notified} of {} bookings streamed to a polling listener still notified",
        streamed.len()
    );

    // Quiet: it falls asleep, and the next booking notifies and is sent on it.
    until_flag(&client, false).await;
    let (_, after) = db.booking_with_delivery().await;
    assert_eq!(
        notifications.next(LIMIT).await,
        Some(after.to_string()),
        "a sleeping listener is woken by NOTIFY"
    );
    all.push(after);
    receiver.wait_for(all.len(), LIMIT).await;
    running.stop().await;

    let sent = sent(&receiver);
    for id in &all {
        assert_eq!(
            sent.get(&id.to_string()),
            Some(&1),
            "{id} sent exactly once"
        );
    }
    assert_eq!(sent.len(), all.len(), "nothing else sent");
    assert_eq!(
        db.count("SELECT count(*) FROM webhook_deliveries WHERE status <> 'succeeded'")
            .await,
        0
    );
}

#[tokio::test]
async fn a_booking_that_trusted_the_flag_and_committed_after_listen_fell_asleep_is_sent_at_once() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let client = db.client().await;
    let booker = connect(&db.url).await;
    let running = Running::start(&db, &receiver);
    let mut notifications = Listener::start(&db.url, sql::CAPTURE_CHANNEL).await;
    let mut expected = 0;

    // A machine stalled long enough lets the flag lapse before the booking's trigger reads it;
    // then the booking notifies and there is nothing to show: try again.
    for _ in 0..5 {
        expected += wake(&db, &client).await.len();
        booker.batch_execute("BEGIN").await.expect("begin");
        let booking: Uuid = booker
            .query_one(
                "INSERT INTO booking_requests (tutor_email) VALUES ('late@example.com') RETURNING id",
                &[],
            )
            .await
            .expect("insert")
            .get(0);
        let trusted: bool = booker.query_one(RAISED, &[]).await.expect("flag").get(0);
        // Listen finds nothing more to poll and falls asleep while the booking is open.
        until_flag(&client, false).await;
        booker.batch_execute("COMMIT").await.expect("commit");
        let late = db.delivery_id(booking, "new_request").await;
        expected += 1;
        receiver.wait_for(expected, LIMIT).await;
        assert_eq!(
            sent(&receiver).get(&late.to_string()),
            Some(&1),
            "sent once"
        );
        let mut notified = false;
        while let Some(id) = notifications.next(Duration::from_millis(50)).await {
            notified |= id == late.to_string();
        }
        if trusted && !notified {
            running.stop().await;
            return;
        }
    }
    panic!("the flag lapsed before the open booking's trigger in every try");
}

/// A listener that died while polling leaves the flag raised (for a second; here for a
/// minute): the next one lowers it as it starts, so bookings NOTIFY it again at once.
#[tokio::test]
async fn a_flag_left_raised_by_a_dead_listener_is_lowered_when_listen_starts() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let client = db.client().await;
    client
        .execute(sql::LISTENER_AWAKE, &[&60_000_i64])
        .await
        .expect("a stale flag");
    let running = Running::start(&db, &receiver);
    // Caught up (nothing to send), so it has started: the flag is down.
    until_flag(&client, false).await;
    let (_, booked) = db.booking_with_delivery().await;
    let requests = receiver.wait_for(1, LIMIT).await;
    assert_eq!(requests[0].header("webhook-id"), booked.to_string());
    running.stop().await;
}
