//! One access as every caller makes it: single, traced, batched or replayed.
//! The fault itself, the replacement policy's hooks (the known future for
//! `opt`, every access for exact LRU) and the counting all happen in
//! `AccessRun::step`, so no caller can leave one out.

use crate::fault::{self, Access, Account, Outcome, Trace};
use crate::kernel::Kernel;
use crate::mm::Mm;
use crate::reclaim::{key, PolicyKind};

/// Counts of a run of accesses, kept in locals and added to the shared
/// counters once at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Accesses per outcome, indexed by `Outcome as usize`.
    pub per_outcome: [u64; Outcome::COUNT],
    pub minor: u64,
    pub major: u64,
}

impl Default for Tally {
    fn default() -> Self {
        Tally { per_outcome: [0; Outcome::COUNT], minor: 0, major: 0 }
    }
}

impl Tally {
    #[inline]
    fn add(&mut self, outcome: Outcome, account: Account) {
        self.per_outcome[outcome as usize] += 1;
        match account {
            Account::None => {}
            Account::Minor => self.minor += 1,
            Account::Major => self.major += 1,
        }
    }
}

/// A run of accesses by one address space, with the mm and kernel locked.
pub struct AccessRun<'a> {
    mm: &'a mut Mm,
    k: &'a mut Kernel,
    /// Exact LRU: the policy hears of every access that is not a signal.
    every_access: bool,
    /// OPT: the policy was told the run's addresses and follows its position.
    knows_future: bool,
    pub tally: Tally,
}

impl<'a> AccessRun<'a> {
    /// Start a run of the accesses at `addrs` (OPT takes them as the known future).
    pub fn new(mm: &'a mut Mm, k: &'a mut Kernel, addrs: &[u64]) -> AccessRun<'a> {
        let (mut every_access, mut knows_future) = (false, false);
        if let Some(r) = k.reclaim_mut() {
            every_access = r.policy.wants_every_access();
            knows_future = r.kind == PolicyKind::Opt;
            if knows_future {
                let keys: Vec<_> = addrs.iter().map(|&a| key(mm.id, a)).collect();
                r.policy.future(&keys);
            }
        }
        AccessRun { mm, k, every_access, knows_future, tally: Tally::default() }
    }

    /// Access number `i` of the run: `op` at `addr`, narrated to `t`.
    #[inline]
    pub fn step<T: Trace>(&mut self, i: usize, addr: u64, op: Access, t: &mut T) -> Outcome {
        if self.knows_future {
            if let Some(r) = self.k.reclaim_mut() {
                r.policy.advance(i);
            }
        }
        let fault = fault::access(self.mm, self.k, addr, op, t);
        if self.every_access && !fault.outcome.is_signal() {
            if let Some(r) = self.k.reclaim_mut() {
                r.policy.accessed(key(self.mm.id, addr));
            }
        }
        self.tally.add(fault.outcome, fault.account);
        fault.outcome
    }
}
