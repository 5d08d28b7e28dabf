//! Polling instead of NOTIFY while bookings stream in (V18, issue 25).
//!
//! Why: a transaction that NOTIFYs takes a database-wide lock at commit and holds it through
//! its WAL flush, so bookings that notify commit one at a time — the app's insert rate with 4
//! clients fell to 0.3–0.5 of the rate without NOTIFY (bench/RESULTS.md). A listener that polls
//! needs no NOTIFY, but polling all the time costs the database something every few
//! milliseconds for nothing on a quiet night. So listen polls only while bookings arrive
//! faster than NOTIFYs could serve them, and tells capture so through a flag.
//!
//! The protocol:
//! - **Asleep** (the start): listen follows NOTIFYs, as it always did.
//! - **Waking**: when [`WAKE_AFTER`] NOTIFYs arrive within [`WAKE_WITHIN`], listen raises the flag — the sequence `webhook_listener_awake_until`, set to
//!   [`FLAG_FOR`] ahead on the database's clock — and polls the outbox every [`POLL`] with a
//!   fresh claim prepared once. The capture functions read the flag (no lock: `setval` is not
//!   transactional, every session sees it at once) and do not NOTIFY while it is raised. Only a
//!   listener that is polling moves it on, so one that dies or blocks leaves it raised for
//!   [`FLAG_FOR`] at most; after that bookings NOTIFY again.
//! - **Falling asleep**: after [`IDLE`] without finding anything, listen lowers the flag (only
//!   if it still holds its own value), then lists the transactions running at that moment. A
//!   booking that read the raised flag, and so did not NOTIFY, has either committed — the poll
//!   that follows finds it — or is one of those transactions: listen watches them and polls
//!   again whenever some of them have ended, until all have (for [`WATCH_FOR`] at most; a
//!   booking kept open longer is left to the sweep).
//! - **Starting**: a session lowers the flag whatever it holds and watches the running
//!   transactions the same way, before its catch-up: a listener that died awake may have left
//!   the flag raised a moment ago.
//!
//! Nothing is lost either way: every booking's delivery is in the outbox, committed with it;
//! the flag decides only whether listen sends it at once or the sweep does later. Several
//! listeners share one flag; one lowering it while another polls costs NOTIFYs until the other
//! moves it on, never a delivery. A database without the flag (an older schema), or a role
//! that may not set it, leaves listen following NOTIFYs only.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;
use tokio_postgres::types::Type;

use crate::clock::Clock;
use crate::db::{query, sql};
use crate::deps::Deps;
use crate::dispatch::{DispatchReport, dispatch_fresh_claiming_on};
use crate::engine::claim::SessionClaims;
use crate::error::{Error, Result};

/// [`WAKE_AFTER`] NOTIFYs within [`WAKE_WITHIN`] wake the listener: 400 bookings a second or
/// more, or a burst — concurrent commits, where the NOTIFY lock starts to cost. Fewer leave it
/// on NOTIFYs, which reach it sooner than a poll would.
pub(crate) const WAKE_AFTER: usize = 4;
pub(crate) const WAKE_WITHIN: Duration = Duration::from_millis(10);
/// How often an awake listener polls (at once again after a full claim).
pub(crate) const POLL: Duration = Duration::from_millis(2);
/// How long an awake listener polls without finding anything before it falls asleep.
pub(crate) const IDLE: Duration = Duration::from_millis(100);
/// How far ahead the flag is set; moved on at half of it while polling.
pub(crate) const FLAG_FOR: Duration = Duration::from_secs(1);
/// How long the transactions running when the listener fell asleep are watched at most.
pub(crate) const WATCH_FOR: Duration = Duration::from_secs(60);
/// The first pause between looks at the watched transactions, doubling to [`WATCH_MAX`].
const WATCH_FIRST: Duration = Duration::from_millis(2);
const WATCH_MAX: Duration = Duration::from_secs(1);

/// Listen's side of the flag.
pub(super) struct Poller {
    /// The database has the flag and this role may set it.
    enabled: bool,
    awake: Option<Awake>,
    /// When the last [`WAKE_AFTER`] NOTIFYs arrived.
    recent: VecDeque<Instant>,
    watch: Option<Watch>,
}

/// While polling.
struct Awake {
    /// The value this listener set.
    flag: i64,
    refresh_at: Instant,
    next_poll: Instant,
    last_found: Instant,
}

/// Transactions that may hold a booking that did not NOTIFY.
struct Watch {
    running: Vec<i64>,
    next: Instant,
    step: Duration,
    until: Instant,
}

impl Poller {
    /// Reads whether the database has the flag; if it does, lowers it and watches the
    /// transactions running now (see the module documentation), before the session's catch-up.
    pub(super) async fn start(session: &SessionClaims) -> Result<Poller> {
        let rows = query(session.db(), sql::LISTENER_FLAG_EXISTS, &[]).await?;
        let enabled = match rows.first() {
            Some(row) => row.try_get(0)?,
            None => false,
        };
        let mut poller = Poller {
            enabled,
            awake: None,
            recent: VecDeque::with_capacity(WAKE_AFTER),
            watch: None,
        };
        if enabled {
            poller.lower(session, None).await?;
        } else {
            tracing::info!(
                "this database has no listener flag (migrations before V18): following NOTIFYs only"
            );
        }
        Ok(poller)
    }

    /// When [`Self::due`] has something to do: the next poll, or the next look at the watched
    /// transactions.
    pub(super) fn next_due(&self) -> Option<Instant> {
        match (&self.awake, &self.watch) {
            (Some(awake), _) => Some(awake.next_poll),
            (None, Some(watch)) => Some(watch.next),
            (None, None) => None,
        }
    }

    /// `count` ids arrived by NOTIFY (and were dispatched): wake if they came close together.
    pub(super) async fn notified(&mut self, session: &SessionClaims, count: usize) -> Result<()> {
        let now = Instant::now();
        for _ in 0..count.min(WAKE_AFTER) {
            if self.recent.len() == WAKE_AFTER {
                self.recent.pop_front();
            }
            self.recent.push_back(now);
        }
        let streaming = self.recent.len() == WAKE_AFTER
            && self
                .recent
                .front()
                .is_some_and(|first| now.duration_since(*first) < WAKE_WITHIN);
        if self.enabled
            && self.awake.is_none()
            && streaming
            && let Some(flag) = self.raise(session).await?
        {
            tracing::debug!("bookings are streaming in: polling instead of NOTIFY");
            self.awake = Some(Awake {
                flag,
                refresh_at: now + FLAG_FOR / 2,
                next_poll: now,
                last_found: now,
            });
            // The polls find whatever the watched transactions commit.
            self.watch = None;
        }
        Ok(())
    }

    /// Does what is due: polls while awake (and falls asleep after [`IDLE`] without finding
    /// anything), or looks at the watched transactions and polls when some have ended.
    pub(super) async fn due(
        &mut self,
        session: &SessionClaims,
        deps: &Deps,
        clock: Clock,
    ) -> Result<Option<DispatchReport>> {
        let now = Instant::now();
        if let Some(awake) = &self.awake {
            if now >= awake.refresh_at {
                match self.raise(session).await? {
                    Some(flag) => {
                        if let Some(awake) = &mut self.awake {
                            awake.flag = flag;
                            awake.refresh_at = now + FLAG_FOR / 2;
                        }
                    }
                    None => return Ok(None),
                }
            }
            let report = poll(session, deps, clock).await?;
            let taken = report.counts.taken();
            let Some(awake) = &mut self.awake else {
                return Ok(Some(report));
            };
            if taken > 0 {
                awake.last_found = now;
            }
            if taken >= deps.config.sweep_batch {
                awake.next_poll = now;
            } else if taken == 0 && now.duration_since(awake.last_found) >= IDLE {
                let flag = awake.flag;
                self.awake = None;
                tracing::debug!("quiet again: following NOTIFYs");
                self.lower(session, Some(flag)).await?;
                // This poll found nothing: the one after the flag came down is what counts.
                return Ok(Some(poll(session, deps, clock).await?));
            } else {
                awake.next_poll = now + POLL;
            }
            return Ok(Some(report));
        }
        let Some(watch) = &mut self.watch else {
            return Ok(None);
        };
        if now < watch.next {
            return Ok(None);
        }
        let rows = query(
            session.db(),
            sql::STILL_RUNNING,
            &[(&watch.running, Type::INT8_ARRAY)],
        )
        .await?;
        let still: Vec<i64> = match rows.first() {
            Some(row) => row.try_get(0)?,
            None => Vec::new(),
        };
        let ended = still.len() < watch.running.len();
        if still.is_empty() || now >= watch.until {
            self.watch = None;
        } else {
            watch.running = still;
            watch.step = (watch.step * 2).min(WATCH_MAX);
            watch.next = now + watch.step;
        }
        if ended {
            return Ok(Some(poll(session, deps, clock).await?));
        }
        Ok(None)
    }

    /// Lowers the flag as the listener stops (a listener that stops polling must not leave
    /// bookings without a NOTIFY for the rest of [`FLAG_FOR`]).
    pub(super) async fn stop(&mut self, session: &SessionClaims) {
        if let Some(awake) = self.awake.take()
            && let Err(err) = self.lower(session, Some(awake.flag)).await
        {
            tracing::warn!(error = %err, "could not lower the listener flag; it lapses within a second");
        }
    }

    /// Raises the flag [`FLAG_FOR`] ahead; the value set, or `None` when the flag turned out
    /// unusable (then listen follows NOTIFYs only).
    async fn raise(&mut self, session: &SessionClaims) -> Result<Option<i64>> {
        let ahead = i64::try_from(FLAG_FOR.as_millis()).unwrap_or(i64::MAX);
        let rows = query(session.db(), sql::LISTENER_AWAKE, &[(&ahead, Type::INT8)]).await;
        match rows {
            Ok(rows) => match rows.first() {
                Some(row) => Ok(Some(row.try_get(0)?)),
                None => Ok(None),
            },
            Err(err) => self.refused(err).map(|()| None),
        }
    }

    /// Lowers the flag — if it still holds `own`, or whatever it holds when `None` — and
    /// watches the transactions running from then on (a booking among them may have read it
    /// raised).
    async fn lower(&mut self, session: &SessionClaims, own: Option<i64>) -> Result<()> {
        if let Err(err) = query(session.db(), sql::LISTENER_ASLEEP, &[(&own, Type::INT8)]).await {
            return self.refused(err);
        }
        // A statement of its own: its snapshot is taken after the flag came down.
        let rows = query(session.db(), sql::RUNNING_TRANSACTIONS, &[]).await?;
        let running: Vec<i64> = match rows.first() {
            Some(row) => row.try_get(0)?,
            None => Vec::new(),
        };
        let now = Instant::now();
        self.watch = (!running.is_empty()).then(|| Watch {
            running,
            next: now + WATCH_FIRST,
            step: WATCH_FIRST,
            until: now + WATCH_FOR,
        });
        Ok(())
    }

    /// A flag statement failed: if the server refused it (no privilege on the sequence, say),
    /// listen follows NOTIFYs from now on; a broken connection is the session's error.
    fn refused(&mut self, err: Error) -> Result<()> {
        if err.is_connection() {
            return Err(err);
        }
        tracing::warn!(
            error = %err,
            "cannot use the listener flag (webhook_listener_awake_until); following NOTIFYs only"
        );
        self.enabled = false;
        self.awake = None;
        self.watch = None;
        Ok(())
    }
}

/// One poll: whatever fresh deliveries there are, a claim's worth, on the session's prepared
/// claim.
async fn poll(session: &SessionClaims, deps: &Deps, clock: Clock) -> Result<DispatchReport> {
    dispatch_fresh_claiming_on(session, deps, deps.config.sweep_batch, clock).await
}
