//! Parallel forking of a `<Dial>` to every registered contact of an address-of-record, sans-IO.
//!
//! A [`Fork`] decides; the call core carries out. It knows branches only by index (one per
//! binding, each an INVITE over its own flow) and is told what each branch answered; it says
//! when to report ringing (once, whichever branch rings first), which 2xx wins (the first),
//! which branches to CANCEL (every other one still pending, RFC 3261 §9.1), which late 2xx to
//! ACK and BYE (§13.2.2.4), and, when every branch failed, the best final response to report
//! (§16.7 step 6, see [`best_response`]; a 6xx ends it at once, step 5). The Dial `timeout` is its deadline: passed in,
//! polled with [`Fork::poll_timeout`] and acted on in [`Fork::handle_timeout`].

use std::time::Instant;

/// A branch of a fork: its index in the order the branches were sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BranchId(pub usize);

/// What a branch has answered so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BranchState {
    /// No final response yet; `early` once it sent a 180/183.
    Pending {
        /// A provisional response above 100 arrived.
        early: bool,
    },
    /// It answered 2xx (the winner, or a late 2xx to be ACKed and BYEd).
    Answered,
    /// It ended with this final status (or the one standing for a timeout or transport error).
    Failed(u16),
}

/// What to do with a 2xx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answered {
    /// The first 2xx: this branch is the call. ACK it, key the relay leg from its answer only,
    /// and CANCEL `cancel` (every other branch still pending).
    Won {
        /// Branches to CANCEL.
        cancel: Vec<BranchId>,
    },
    /// Another branch won already, or the fork was cancelled (timeout, caller gone) before
    /// this 2xx crossed our CANCEL: ACK it and send BYE at once (RFC 3261 §13.2.2.4).
    AckAndBye,
}

/// A fork that ended without an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// The final response the dial reports (its `DialCallStatus` follows it as for one
    /// branch).
    pub best: u16,
    /// Branches still pending, to CANCEL (after a 6xx).
    pub cancel: Vec<BranchId>,
}

/// The decision logic of one forked dial.
#[derive(Debug, Clone)]
pub struct Fork {
    branches: Vec<BranchState>,
    /// A CANCEL was asked for this branch already (it is asked at most once).
    cancelled: Vec<bool>,
    winner: Option<BranchId>,
    rang: bool,
    /// Cancelled as a whole (timeout, caller gone, hang-up) before any 2xx.
    abandoned: bool,
    deadline: Instant,
}

/// A final status standing for a branch that timed out or whose flow failed (RFC 3261 §16.7:
/// a proxy treats those as 408 and 503).
pub const TRANSPORT_FAILED: u16 = 503;

impl Fork {
    /// A fork of `branches` branches, all just sent, that gives up at `deadline` (the Dial
    /// `timeout` from now).
    pub fn new(branches: usize, deadline: Instant) -> Self {
        Self {
            branches: vec![BranchState::Pending { early: false }; branches],
            cancelled: vec![false; branches],
            winner: None,
            rang: false,
            abandoned: false,
            deadline,
        }
    }

    /// How many branches.
    pub fn len(&self) -> usize {
        self.branches.len()
    }

    /// No branches at all.
    pub fn is_empty(&self) -> bool {
        self.branches.is_empty()
    }

    /// The branch that answered first.
    pub fn winner(&self) -> Option<BranchId> {
        self.winner
    }

    /// The state of a branch (`None` for an index out of range).
    pub fn state(&self, branch: BranchId) -> Option<BranchState> {
        self.branches.get(branch.0).copied()
    }

    /// No winner yet and not given up on: still ringing.
    pub fn is_open(&self) -> bool {
        self.winner.is_none() && !self.abandoned
    }

    /// A provisional response on `branch`: `true` exactly once, for the first 180/183 of any
    /// branch while the fork is open (report `ringing` then). 100 Trying says nothing.
    pub fn on_provisional(&mut self, branch: BranchId, code: u16) -> bool {
        if !(101..200).contains(&code) {
            return false;
        }
        let Some(state) = self.branches.get_mut(branch.0) else {
            return false;
        };
        if let BranchState::Pending { early } = state {
            *early = true;
        }
        if self.rang || !self.is_open() {
            return false;
        }
        self.rang = true;
        true
    }

    /// A 2xx on `branch`.
    pub fn on_success(&mut self, branch: BranchId) -> Answered {
        let Some(state) = self.branches.get_mut(branch.0) else {
            return Answered::AckAndBye;
        };
        *state = BranchState::Answered;
        if !self.is_open() {
            return Answered::AckAndBye;
        }
        self.winner = Some(branch);
        Answered::Won {
            cancel: self.cancel_pending(),
        }
    }

    /// A final response of 300 or above on `branch` (or [`TRANSPORT_FAILED`] for a timeout or
    /// a dead flow). Returns how the dial ends once it is decided while the fork was open:
    /// every branch failed (the best final response), or a branch answered 6xx, which ends
    /// the fork at once and cancels the rest (RFC 3261 §16.7 step 5: the user declined
    /// everywhere). `None` while a branch is still pending, or when the fork was already
    /// decided (a winner, or cancelled: the 487s that follow our CANCELs change nothing).
    pub fn on_failure(&mut self, branch: BranchId, code: u16) -> Option<Ended> {
        let state = self.branches.get_mut(branch.0)?;
        if matches!(state, BranchState::Pending { .. }) {
            *state = BranchState::Failed(code);
        }
        if !self.is_open() {
            return None;
        }
        if code >= 600 {
            return Some(Ended {
                best: code,
                cancel: self.abandon(),
            });
        }
        let mut codes = Vec::with_capacity(self.branches.len());
        for s in &self.branches {
            match s {
                BranchState::Failed(c) => codes.push(*c),
                BranchState::Pending { .. } | BranchState::Answered => return None,
            }
        }
        // Every branch failed: the fork is over.
        self.abandoned = true;
        best_response(&codes).map(|best| Ended {
            best,
            cancel: Vec::new(),
        })
    }

    /// When [`Fork::handle_timeout`] wants to be called: the deadline while the fork is open.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.is_open().then_some(self.deadline)
    }

    /// At or after the deadline with no answer: every pending branch to CANCEL (the dial ends
    /// `no-answer`). Before the deadline, or once decided: nothing.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<BranchId> {
        if now < self.deadline || !self.is_open() {
            return Vec::new();
        }
        self.abandon()
    }

    /// Gives up on every branch (the caller hung up, the API ended the leg): the pending ones
    /// to CANCEL. A 2xx that still arrives is then ACKed and BYEd.
    pub fn abandon(&mut self) -> Vec<BranchId> {
        if self.winner.is_none() {
            self.abandoned = true;
        }
        self.cancel_pending()
    }

    fn cancel_pending(&mut self) -> Vec<BranchId> {
        let mut out = Vec::new();
        for (i, s) in self.branches.iter().enumerate() {
            if matches!(s, BranchState::Pending { .. })
                && let Some(c) = self.cancelled.get_mut(i)
                && !*c
            {
                *c = true;
                out.push(BranchId(i));
            }
        }
        out
    }
}

/// The final response a fork reports when every branch failed, after RFC 3261 §16.7 step 6: a
/// 6xx beats everything (the user declined or is busy everywhere); otherwise the lowest class
/// wins. Within a class, what tells the caller most about the person comes first: busy (486)
/// before not reachable now (480, 408), then the earliest received. `None` for no codes.
pub fn best_response(codes: &[u16]) -> Option<u16> {
    let rank = |code: u16| -> (u16, u8) {
        let class = match code / 100 {
            6 => 0,
            c => c,
        };
        let within = match code {
            486 => 0,
            480 | 408 => 1,
            _ => 2,
        };
        (class, within)
    };
    // `min_by_key` keeps the first of equal keys: the earliest received.
    codes.iter().copied().min_by_key(|c| rank(*c))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // an epoch for simulated time
mod tests {
    use std::time::Duration;

    use super::*;

    fn fork(n: usize) -> (Fork, Instant) {
        let t0 = Instant::now();
        (Fork::new(n, t0 + Duration::from_secs(30)), t0)
    }

    fn ended(best: u16, cancel: &[usize]) -> Ended {
        Ended {
            best,
            cancel: cancel.iter().copied().map(BranchId).collect(),
        }
    }

    #[test]
    fn the_first_2xx_wins_and_the_others_are_cancelled_once() {
        let (mut f, _) = fork(3);
        assert!(!f.on_provisional(BranchId(0), 100), "100 is not ringing");
        assert!(f.on_provisional(BranchId(1), 180), "first ringing reported");
        assert!(!f.on_provisional(BranchId(0), 183), "reported once");
        assert!(!f.on_provisional(BranchId(2), 180), "reported once");
        // Branch 2 already failed: only branch 0 is still pending to cancel.
        assert_eq!(f.on_failure(BranchId(2), 486), None);
        assert_eq!(
            f.on_success(BranchId(1)),
            Answered::Won {
                cancel: vec![BranchId(0)]
            }
        );
        assert_eq!(f.winner(), Some(BranchId(1)));
        assert!(!f.is_open());
        assert_eq!(f.poll_timeout(), None, "no deadline once answered");
        // The cancelled branch's 487 changes nothing; its 2xx (racing the CANCEL) is ACKed
        // and BYEd, and a later abandon has nothing left to cancel.
        assert_eq!(f.on_failure(BranchId(0), 487), None);
        assert_eq!(f.on_success(BranchId(0)), Answered::AckAndBye);
        assert_eq!(f.abandon(), Vec::<BranchId>::new());
        assert_eq!(f.winner(), Some(BranchId(1)), "the winner stays");
    }

    #[test]
    fn a_second_2xx_is_acked_and_byed() {
        let (mut f, _) = fork(2);
        assert_eq!(
            f.on_success(BranchId(0)),
            Answered::Won {
                cancel: vec![BranchId(1)]
            }
        );
        assert_eq!(f.on_success(BranchId(1)), Answered::AckAndBye);
        assert_eq!(f.state(BranchId(1)), Some(BranchState::Answered));
        assert_eq!(f.winner(), Some(BranchId(0)));
    }

    #[test]
    fn all_failed_reports_the_best_response_only_when_the_last_one_fails() {
        let (mut f, _) = fork(3);
        assert_eq!(f.on_failure(BranchId(0), 503), None);
        assert_eq!(f.on_failure(BranchId(1), 480), None);
        assert_eq!(f.on_failure(BranchId(2), 486), Some(ended(486, &[])));
        assert!(!f.is_open());
        // Nothing more to decide.
        assert_eq!(f.on_failure(BranchId(2), 486), None);
        assert_eq!(f.on_success(BranchId(0)), Answered::AckAndBye);

        let (mut f, _) = fork(2);
        assert_eq!(f.on_failure(BranchId(0), TRANSPORT_FAILED), None);
        assert_eq!(f.on_failure(BranchId(1), 503), Some(ended(503, &[])));

        // A 6xx ends the fork at once and cancels the branches still ringing.
        let (mut f, _) = fork(3);
        assert!(f.on_provisional(BranchId(0), 180));
        assert_eq!(f.on_failure(BranchId(1), 603), Some(ended(603, &[0, 2])));
        assert!(!f.is_open());
        assert_eq!(f.on_failure(BranchId(0), 487), None);
        assert_eq!(f.on_success(BranchId(2)), Answered::AckAndBye);
    }

    #[test]
    fn the_deadline_cancels_every_pending_branch() {
        let (mut f, t0) = fork(3);
        let deadline = t0 + Duration::from_secs(30);
        assert_eq!(f.poll_timeout(), Some(deadline));
        assert_eq!(f.on_failure(BranchId(1), 480), None);
        assert!(
            f.handle_timeout(deadline - Duration::from_millis(1))
                .is_empty()
        );
        assert!(f.is_open(), "not before the deadline");
        assert_eq!(f.handle_timeout(deadline), vec![BranchId(0), BranchId(2)]);
        assert!(!f.is_open());
        assert!(f.handle_timeout(deadline).is_empty(), "cancelled once");
        // Their 487s do not end the dial a second time; a 2xx that crossed the CANCEL is
        // ACKed and BYEd, never bridged.
        assert_eq!(f.on_failure(BranchId(0), 487), None);
        assert_eq!(f.on_success(BranchId(2)), Answered::AckAndBye);
        assert_eq!(f.winner(), None);
        assert!(
            !f.on_provisional(BranchId(2), 180),
            "no ringing after the end"
        );
    }

    #[test]
    fn abandon_before_any_answer() {
        let (mut f, _) = fork(2);
        assert!(f.on_provisional(BranchId(0), 180));
        assert_eq!(f.abandon(), vec![BranchId(0), BranchId(1)]);
        assert_eq!(f.on_success(BranchId(1)), Answered::AckAndBye);
        assert_eq!(f.winner(), None);
    }

    #[test]
    fn out_of_range_branches_are_harmless() {
        let (mut f, _) = fork(1);
        assert!(!f.on_provisional(BranchId(7), 180));
        assert_eq!(f.on_failure(BranchId(7), 486), None);
        assert_eq!(f.on_success(BranchId(7)), Answered::AckAndBye);
        assert!(f.is_open());
        assert_eq!(f.state(BranchId(7)), None);
    }

    #[test]
    fn best_response_ranking() {
        assert_eq!(best_response(&[]), None);
        // 6xx beats any other class.
        assert_eq!(best_response(&[486, 600, 503]), Some(600));
        // Lowest class otherwise; busy first within 4xx, then 480/408, then the first.
        assert_eq!(best_response(&[503, 404]), Some(404));
        assert_eq!(best_response(&[404, 480, 486]), Some(486));
        assert_eq!(best_response(&[404, 408, 480]), Some(408));
        assert_eq!(best_response(&[404, 403]), Some(404));
        assert_eq!(best_response(&[TRANSPORT_FAILED]), Some(503));
    }
}
