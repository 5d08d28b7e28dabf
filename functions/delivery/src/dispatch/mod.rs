//! The `dispatch` Lambda handler: the first attempt of a notification, right after commit.
//!
//! Events ([`DispatchEvent`]):
//! - `{"deliveryId": "<uuid>"}` — deliver that one. The wake-up may arrive *before* the
//!   capturing transaction commits (on RDS, `aws_lambda.invoke` fires inside the
//!   transaction), so an id that is not visible yet is looked for again with growing pauses
//!   for up to `WEBHOOK_DISPATCH_WAIT_MS` (default 2 s), then left to the sweep and reported
//!   as `notFound`.
//! - `{}` or `{"limit": N}` — deliver up to N (default 100, at most 10 000) never-attempted
//!   deliveries, oldest first.
//! - A Lambda function-URL request whose body is one of the above and whose
//!   `Authorization: Bearer …` matches `WEBHOOK_DISPATCH_TOKEN` (the Supabase pg_net path).
//!
//! An unknown id or a delivery that is already final is not an error: it is reported. A
//! malformed event is an [`crate::Error::InvalidEvent`] naming what is wrong. A status
//! notification that a later one of its booking replaced is reported `superseded` with the id
//! of the one that replaced it, never sent; one whose turn has not come (an earlier one of its
//! booking is in flight) is reported `waiting_for_earlier` and follows that one.
//!
//! # Layout
//! - [`report`]: what a dispatch did, per category.
//! - [`now`]: sending now, due or not (`webhooks send`).

pub mod now;
pub mod report;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use uuid::Uuid;

use crate::clock::Clock;
use crate::clock::instant_of;
use crate::db::with_retry;
use crate::deps::Deps;
use crate::engine::claim::{
    Claim, SessionClaims, claim_fresh, claim_ids_async_commit, claim_ids_now,
};
use crate::engine::deliver::deliver_until;
use crate::engine::endpoint::{Gate, Hold, admit, pace};
use crate::engine::explain::{NotClaimed, Unclaimed, explain};
use crate::engine::lease::{DEADLINE_HEADROOM, lease_for, rows_that_fit};
use crate::error::Result;
pub use crate::event::DispatchEvent;
use crate::metrics;
use crate::telemetry::json;
pub use report::{DispatchCounts, DispatchReport, Replaced, Unchanged};

/// Handles one `dispatch` invocation, then writes its metrics ([`metrics`]).
/// `deadline` is the Lambda deadline (`Context::deadline()`), if any: the wait for an
/// uncommitted id and the claims of a `{"limit"}` dispatch are cut so that everything claimed
/// is sent and recorded before it.
pub async fn handle(
    event: Value,
    deps: &Deps,
    clock: Clock,
    deadline: Option<SystemTime>,
) -> Result<DispatchReport> {
    let (result, tally) = metrics::collect(run(event, deps, clock, deadline)).await;
    let result = result.map_err(|err| err.reaching(&deps.config.db));
    let invocation = metrics::Invocation {
        function: metrics::Function::Dispatch,
        skipped: result.as_ref().map_or(0, |r| r.counts.skipped as u64),
        error: result.is_err(),
        gauges: None,
        tally,
    };
    metrics::emit(&invocation, metrics::timestamp(clock));
    result
}

async fn run(
    event: Value,
    deps: &Deps,
    clock: Clock,
    deadline: Option<SystemTime>,
) -> Result<DispatchReport> {
    let report = match DispatchEvent::parse(event, deps.config.dispatch_token.as_ref())? {
        DispatchEvent::One(id) => {
            // Leave room for the attempt after the wait.
            let wait = match deadline.and_then(instant_of) {
                None => deps.config.dispatch_wait,
                Some(deadline) => deadline
                    .saturating_duration_since(Instant::now())
                    .saturating_sub(deps.config.timeout + DEADLINE_HEADROOM)
                    .min(deps.config.dispatch_wait),
            };
            dispatch_ids_until(deps, &[id], clock, wait, deadline.and_then(instant_of)).await?
        }
        DispatchEvent::Fresh { limit } => dispatch_fresh(deps, limit, clock, deadline).await?,
    };
    tracing::info!(counts = %json(&report.counts), "dispatch finished");
    Ok(report)
}

/// How often ids that look claimable but were not claimed are claimed again at once, before
/// they count as in flight elsewhere: they committed just after the claim ran, or another
/// worker's claim held their row lock that instant.
const RACE_RETRIES: usize = 3;

/// Delivers the given ids. Ids not visible yet are looked for again, with pauses growing from
/// 25 ms to 400 ms, until `wait` has passed; what is still missing then is `notFound`.
pub async fn dispatch_ids(
    deps: &Deps,
    ids: &[Uuid],
    clock: Clock,
    wait: Duration,
) -> Result<DispatchReport> {
    dispatch_ids_until(deps, ids, clock, wait, None).await
}

/// [`dispatch_ids`] for `webhooks listen`: the ids are claimed on its own session connection
/// with the claim prepared once ([`SessionClaims`]); the rest as everywhere.
pub(crate) async fn dispatch_ids_claiming_on(
    session: &SessionClaims,
    deps: &Deps,
    ids: &[Uuid],
    clock: Clock,
) -> Result<DispatchReport> {
    dispatch_ids_via(
        deps,
        Some(session),
        ids,
        clock,
        Duration::ZERO,
        None,
        Due::Respected,
    )
    .await
}

/// [`dispatch_ids`], handing on to waiting notifications only while `deadline` leaves time.
async fn dispatch_ids_until(
    deps: &Deps,
    ids: &[Uuid],
    clock: Clock,
    wait: Duration,
    deadline: Option<Instant>,
) -> Result<DispatchReport> {
    dispatch_ids_via(deps, None, ids, clock, wait, deadline, Due::Respected).await
}

/// Whether a claim of given ids takes a retrying delivery only once its retry is due (dispatch)
/// or whenever it is scheduled (`webhooks send`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    Respected,
    Ignored,
}

/// [`dispatch_ids_until`], claiming on `session` when given, else through the pool.
async fn dispatch_ids_via(
    deps: &Deps,
    session: Option<&SessionClaims>,
    ids: &[Uuid],
    clock: Clock,
    wait: Duration,
    deadline: Option<Instant>,
    due: Due,
) -> Result<DispatchReport> {
    let mut report = DispatchReport::default();
    let mut seen = HashSet::new();
    let mut wanted: Vec<Uuid> = ids.iter().copied().filter(|id| seen.insert(*id)).collect();
    let mut pauses = Pauses::until(Instant::now() + wait);
    let mut races = 0;
    while !wanted.is_empty() {
        let round = claim_round(deps, session, &wanted, clock, due).await?;
        if round.held.is_some() {
            report.held = round.held.clone();
        }
        for (id, reason, superseded_by) in round.unchanged {
            report.add_unchanged(id, reason, superseded_by);
        }
        for outcome in deliver_until(deps, round.claimed, clock, deadline).await? {
            report.add_delivered(&outcome);
        }
        wanted = round.absent;
        if !round.racing.is_empty() && races < RACE_RETRIES {
            races += 1;
            wanted.extend(round.racing);
            continue;
        }
        for id in round.racing {
            report.add_unchanged(id, NotClaimed::InFlight, None);
        }
        if wanted.is_empty() || !pauses.pause().await {
            break;
        }
    }
    for id in wanted {
        tracing::info!(delivery_id = %id, "delivery not visible (unknown or not committed yet); left to the sweep");
        report.add_not_found(id);
    }
    Ok(report)
}

/// One claim of some ids, and what became of those it did not take.
#[derive(Default)]
struct Round {
    /// Ours now (to send, or superseded by this claim).
    claimed: Claim,
    /// Exist, and are not to be sent now (with what superseded them, if that is why).
    unchanged: Vec<(Uuid, NotClaimed, Option<Uuid>)>,
    /// Exist and look claimable: worth claiming again at once.
    racing: Vec<Uuid>,
    /// Not visible: unknown, or not committed yet.
    absent: Vec<Uuid>,
    /// The endpoint held them: nothing was claimed.
    held: Option<Hold>,
}

async fn claim_round(
    deps: &Deps,
    session: Option<&SessionClaims>,
    ids: &[Uuid],
    clock: Clock,
    due: Due,
) -> Result<Round> {
    let now = clock.sql_now();
    // The endpoint first: while it is held, nothing is claimed (no attempt spent); the sweep
    // sends these once it is back ([`crate::engine::endpoint`]).
    let (held, pace) = match admit(deps, now, false, Duration::ZERO).await? {
        Gate::Held(hold) => (Some(hold), None),
        Gate::Probe => (None, None),
        Gate::Send(pace) => (None, pace),
    };
    let lease = lease_for(ids.len(), &deps.config)
        + pace.map_or(Duration::ZERO, |pace| pace.span(ids.len()));
    let supersede = deps.config.supersede;
    let mut claimed = match (&held, session, due) {
        (Some(_), _, _) => Claim::default(),
        // No retry on a fresh connection here: the session is listen's, which reconnects.
        (None, Some(session), Due::Respected) => {
            session.claim_ids(ids, now, lease, supersede).await?
        }
        (None, _, Due::Respected) => {
            with_retry(&deps.pool, |db| async move {
                claim_ids_async_commit(&db, ids, now, lease, supersede).await
            })
            .await?
        }
        (None, _, Due::Ignored) => {
            with_retry(&deps.pool, |db| async move {
                claim_ids_now(&db, ids, now, lease, supersede).await
            })
            .await?
        }
    };
    if let Some(pace) = pace {
        pace::pace(deps, &mut claimed.to_send, pace).await?;
    }
    let taken: HashSet<Uuid> = claimed
        .to_send()
        .into_iter()
        .chain(claimed.superseded().iter().map(|s| s.id))
        .collect();
    let rest: Vec<Uuid> = ids
        .iter()
        .copied()
        .filter(|id| !taken.contains(id))
        .collect();
    let rest = rest.as_slice();
    let found: HashMap<Uuid, Unclaimed> = if rest.is_empty() {
        HashMap::new()
    } else {
        let states = with_retry(&deps.pool, |db| async move {
            explain(&db, rest, now, supersede, due == Due::Ignored).await
        })
        .await?;
        states.into_iter().map(|state| (state.id, state)).collect()
    };
    let mut round = Round {
        claimed,
        ..Round::default()
    };
    for &id in rest {
        match found.get(&id) {
            Some(Unclaimed {
                reason: Some(reason),
                superseded_by,
                ..
            }) => round.unchanged.push((id, *reason, *superseded_by)),
            // Claimable, but the endpoint holds it.
            Some(Unclaimed { reason: None, .. }) if held.is_some() => {
                round.unchanged.push((id, NotClaimed::Held, None));
            }
            Some(Unclaimed { reason: None, .. }) => round.racing.push(id),
            None => round.absent.push(id),
        }
    }
    round.held = held;
    Ok(round)
}

/// Pauses growing from 25 ms, doubling up to 400 ms, until a deadline.
struct Pauses {
    deadline: Instant,
    next: Duration,
}

impl Pauses {
    fn until(deadline: Instant) -> Self {
        Pauses {
            deadline,
            next: Duration::from_millis(25),
        }
    }

    /// Sleeps for the next pause (cut short at the deadline); false once the deadline passed.
    async fn pause(&mut self) -> bool {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        tokio::time::sleep(self.next.min(left)).await;
        self.next = (self.next * 2).min(Duration::from_millis(400));
        true
    }
}

/// Delivers up to `limit` never-attempted deliveries, oldest first, a batch at a time, each
/// claim sized to what can be sent and recorded before `deadline`.
pub async fn dispatch_fresh(
    deps: &Deps,
    limit: usize,
    clock: Clock,
    deadline: Option<SystemTime>,
) -> Result<DispatchReport> {
    dispatch_fresh_via(deps, None, limit, clock, deadline).await
}

/// [`dispatch_fresh`] for `webhooks listen` while it polls: claimed on its own session
/// connection with the claim prepared once ([`SessionClaims`]); the rest as everywhere.
pub(crate) async fn dispatch_fresh_claiming_on(
    session: &SessionClaims,
    deps: &Deps,
    limit: usize,
    clock: Clock,
) -> Result<DispatchReport> {
    dispatch_fresh_via(deps, Some(session), limit, clock, None).await
}

/// [`dispatch_fresh`], claiming on `session` when given, else through the pool.
async fn dispatch_fresh_via(
    deps: &Deps,
    session: Option<&SessionClaims>,
    limit: usize,
    clock: Clock,
    deadline: Option<SystemTime>,
) -> Result<DispatchReport> {
    let (concurrency, timeout) = (deps.config.sweep_concurrency, deps.config.timeout);
    let deadline = deadline.and_then(instant_of);
    let mut report = DispatchReport::default();
    let mut remaining = limit;
    while remaining > 0 {
        let most = remaining.min(deps.config.sweep_batch);
        let n = rows_that_fit(deadline, most, concurrency, timeout);
        if n == 0 {
            break;
        }
        let now = clock.sql_now();
        let (n, pace) = match admit(deps, now, false, Duration::ZERO).await? {
            Gate::Held(hold) => {
                report.held = Some(hold);
                break;
            }
            Gate::Probe => break,
            Gate::Send(pace) => (pace.map_or(n, |pace| pace.limit(n)), pace),
        };
        let lease = lease_for(n, &deps.config) + pace.map_or(Duration::ZERO, |pace| pace.span(n));
        let supersede = deps.config.supersede;
        let mut claimed = match session {
            Some(session) => session.claim_fresh(now, lease, n, supersede).await?,
            None => {
                with_retry(&deps.pool, |db| async move {
                    claim_fresh(&db, now, lease, n, supersede).await
                })
                .await?
            }
        };
        if claimed.is_empty() {
            break;
        }
        if let Some(pace) = pace {
            pace::pace(deps, &mut claimed.to_send, pace).await?;
        }
        remaining = remaining.saturating_sub(claimed.len());
        for outcome in deliver_until(deps, claimed, clock, deadline).await? {
            report.add_delivered(&outcome);
        }
    }
    Ok(report)
}
