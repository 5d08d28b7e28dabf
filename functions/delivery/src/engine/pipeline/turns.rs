//! The claimer's turns, apart from the database: which claim comes next, when to wait for the
//! recorder, and when the drain is over. Kept pure so that every interleaving of claims and
//! recorder progress can be tried (the model test below): the claimer never waits for progress
//! while nothing is outstanding — nobody would ever wake it — and every drain ends.

use uuid::Uuid;

/// What the claimer does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Claim the notifications that waited for these just-recorded deliveries.
    HandOff(Vec<Uuid>),
    /// Claim the next due batch (sized with [`plan_due`]).
    Due,
    /// Wait for the recorder: something is outstanding, and nothing more can be claimed until
    /// it progresses.
    Wait,
    /// Nothing is left to claim, and everything claimed is recorded.
    Done,
}

/// How the next due claim goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DuePlan {
    /// Claim at most this many.
    Claim(usize),
    /// Not now: what is outstanding must be recorded first. Never when nothing is.
    Blocked,
    /// No more due claims: time (the budget or the deadline) is up. `first`: not even the
    /// first claim fitted before the deadline.
    Stop {
        /// No due claim was made at all.
        first: bool,
    },
}

/// Plans the next due claim. `batches`: due claims made so far; `over_budget`: the sweep's
/// budget has passed; `room`: rows that still fit before the deadline behind everything
/// outstanding; `unrecorded_most`: how much may be claimed and unrecorded at once.
pub(crate) fn plan_due(
    outstanding: usize,
    unrecorded_most: usize,
    batches: usize,
    over_budget: bool,
    room: usize,
) -> DuePlan {
    if batches > 0 && over_budget {
        return DuePlan::Stop { first: false };
    }
    if outstanding > unrecorded_most {
        return DuePlan::Blocked;
    }
    match room {
        // With nothing outstanding, no room now means no room ever: stop rather than wait.
        0 if outstanding == 0 => DuePlan::Stop {
            first: batches == 0,
        },
        0 => DuePlan::Blocked,
        room => DuePlan::Claim(room),
    }
}

/// The claimer's state.
#[derive(Debug, Default)]
pub(crate) struct Turns {
    /// Claimed to be sent and not recorded yet.
    outstanding: usize,
    /// Recorded deliveries whose later notification may have its turn now.
    hand_ons: Vec<Uuid>,
    /// No more due claims: nothing due is left, or time is up.
    due_done: bool,
    /// The last due claim was [`DuePlan::Blocked`], and nothing progressed since.
    due_blocked: bool,
    /// Time is up: no claim of any kind any more.
    stopped: bool,
}

impl Turns {
    /// What to do next.
    pub(crate) fn next(&mut self) -> Step {
        if !self.hand_ons.is_empty() && !self.stopped {
            return Step::HandOff(std::mem::take(&mut self.hand_ons));
        }
        if !self.due_done && !self.due_blocked {
            return Step::Due;
        }
        if self.outstanding > 0 {
            return Step::Wait;
        }
        if self.due_done {
            return Step::Done;
        }
        // Blocked by what was outstanding, and that is all recorded now: plan again.
        self.due_blocked = false;
        Step::Due
    }

    /// Claimed to be sent and not recorded yet.
    pub(crate) fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// A claim took `to_send` deliveries to send.
    pub(crate) fn claimed(&mut self, to_send: usize) {
        self.outstanding += to_send;
    }

    /// A due claim took nothing, or [`DuePlan::Stop`]: no more due claims.
    pub(crate) fn due_exhausted(&mut self) {
        self.due_done = true;
    }

    /// A due claim was [`DuePlan::Blocked`].
    pub(crate) fn due_blocked(&mut self) {
        self.due_blocked = true;
    }

    /// The recorder wrote `recorded` deliveries, `hands_on` among them.
    pub(crate) fn progressed(&mut self, recorded: usize, hands_on: Vec<Uuid>) {
        self.outstanding = self.outstanding.saturating_sub(recorded);
        self.hand_ons.extend(hands_on);
        self.due_blocked = false;
    }

    /// Time is up: nothing more is claimed; what is outstanding is still recorded.
    pub(crate) fn stop(&mut self) {
        self.stopped = true;
        self.due_done = true;
        self.hand_ons.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The world around the claimer, small enough to try every interleaving.
    #[derive(Debug, Clone)]
    struct World {
        /// Due rows left in the database.
        due: usize,
        /// Follower notifications left that a hand-off may claim.
        followers: usize,
        /// Claimed, not recorded: whether each hands on when recorded.
        in_flight: Vec<bool>,
        batches: usize,
        steps: usize,
    }

    const MOST_STEPS: usize = 60;
    const UNRECORDED_MOST: usize = 2;

    /// Explores every choice the world can make after `turns` decides; fails on a wait with
    /// nothing outstanding, on a drain that ends with work outstanding, and on one that does
    /// not end within [`MOST_STEPS`].
    fn explore(turns: &Turns, world: &World, ends: &mut usize) {
        assert!(
            world.steps < MOST_STEPS,
            "no end after {MOST_STEPS} steps: {turns:?} {world:?}"
        );
        let mut turns = clone(turns);
        let mut world = world.clone();
        world.steps += 1;
        match turns.next() {
            Step::Done => {
                assert_eq!(turns.outstanding(), 0, "done with work outstanding");
                assert!(world.in_flight.is_empty());
                *ends += 1;
            }
            Step::Wait => {
                assert!(
                    turns.outstanding() > 0,
                    "waiting while nothing is outstanding: {turns:?}"
                );
                // The recorder writes the oldest one, or all of them, in one group.
                for n in [1, world.in_flight.len()] {
                    let (mut t, mut w) = (clone(&turns), world.clone());
                    let recorded: Vec<bool> = w.in_flight.drain(..n).collect();
                    let hands_on = recorded
                        .iter()
                        .filter(|h| **h)
                        .map(|_| Uuid::new_v4())
                        .collect();
                    t.progressed(n, hands_on);
                    explore(&t, &w, ends);
                }
            }
            Step::Due => {
                for over_budget in [false, true] {
                    for room in [0, 1, 2] {
                        let (mut t, mut w) = (clone(&turns), world.clone());
                        let plan = plan_due(
                            t.outstanding(),
                            UNRECORDED_MOST,
                            w.batches,
                            over_budget,
                            room,
                        );
                        match plan {
                            DuePlan::Blocked => {
                                assert!(t.outstanding() > 0, "blocked with nothing outstanding");
                                t.due_blocked();
                            }
                            DuePlan::Stop { .. } => t.due_exhausted(),
                            DuePlan::Claim(n) => {
                                let took = n.min(w.due);
                                if took == 0 {
                                    t.due_exhausted();
                                } else {
                                    w.due -= took;
                                    w.batches += 1;
                                    t.claimed(took);
                                    // The first of them has a follower waiting, if any is left.
                                    w.in_flight.push(w.followers > 0);
                                    w.in_flight.extend(std::iter::repeat_n(false, took - 1));
                                }
                            }
                        }
                        explore(&t, &w, ends);
                    }
                }
            }
            Step::HandOff(_) => {
                // The hand-off claims the follower, or finds nothing (not due, leased by
                // another worker, its round limit, no room before the deadline).
                for claims in [false, true] {
                    let (mut t, mut w) = (clone(&turns), world.clone());
                    if claims && w.followers > 0 {
                        w.followers -= 1;
                        t.claimed(1);
                        w.in_flight.push(false);
                    }
                    explore(&t, &w, ends);
                }
            }
        }
    }

    fn clone(t: &Turns) -> Turns {
        Turns {
            outstanding: t.outstanding,
            hand_ons: t.hand_ons.clone(),
            due_done: t.due_done,
            due_blocked: t.due_blocked,
            stopped: t.stopped,
        }
    }

    #[test]
    fn every_interleaving_of_claims_and_progress_ends_and_never_waits_on_nothing() {
        for due in 0..=3 {
            for followers in 0..=2 {
                let world = World {
                    due,
                    followers,
                    in_flight: Vec::new(),
                    batches: 0,
                    steps: 0,
                };
                let mut ends = 0;
                explore(&Turns::default(), &world, &mut ends);
                assert!(ends > 0);
            }
        }
    }

    #[test]
    fn a_hand_off_that_finds_nothing_goes_on_to_the_due_claims() {
        // The reproduction of the hang: followers leased by another worker, everything sent
        // recorded. The claimer must claim due rows next (or finish), never wait.
        let mut turns = Turns::default();
        assert_eq!(turns.next(), Step::Due);
        turns.claimed(1);
        turns.progressed(1, vec![Uuid::new_v4()]);
        assert!(matches!(turns.next(), Step::HandOff(_)));
        // The hand-off found nothing: nothing is outstanding.
        assert_eq!(turns.next(), Step::Due);
        turns.due_exhausted();
        assert_eq!(turns.next(), Step::Done);
    }

    #[test]
    fn a_stop_ends_the_claims_but_waits_for_what_is_outstanding() {
        let mut turns = Turns::default();
        turns.claimed(2);
        turns.stop();
        assert_eq!(turns.next(), Step::Wait);
        turns.progressed(2, vec![Uuid::new_v4()]);
        assert_eq!(turns.next(), Step::Done, "no hand-off after the stop");
    }
}
