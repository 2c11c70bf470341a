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
    #[inline(always)]
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

#[cfg(test)]
mod tests {
    use crate::layout::LayoutKind;
    use crate::mm::MmapRequest;
    use crate::reclaim::PolicyKind;
    use crate::sim::{Ops, SimConfig, Simulator};
    use crate::testing::XorShift;
    use crate::vma::Prot;
    use crate::{Access, Outcome};

    /// How the accesses of one run are sent.
    #[derive(Clone, Copy, Debug)]
    enum Path {
        Single,
        Traced,
        /// The whole sequence of each process as one batch.
        Batch,
        /// Every access as a batch of its own.
        BatchOfOne,
    }

    /// A parent and a forked child touching twice the resident limit, with
    /// swap: evictions, swap-ins and swap-cache hits all happen. Returns
    /// every outcome and the final counters.
    fn run(policy: PolicyKind, path: Path) -> (Vec<Outcome>, String) {
        let cfg = SimConfig {
            memory: 16 << 20,
            swap: 8 << 20,
            policy: Some(policy),
            resident_limit: Some(48),
            ..Default::default()
        };
        let sim = Simulator::new(cfg).unwrap();
        let parent = sim.spawn(LayoutKind::Default).unwrap();
        let base = sim.mmap(parent, MmapRequest::anon(64 * 4096, Prot::READ_WRITE)).unwrap();
        let mut rng = XorShift::new(policy as u64 + 1);
        let mut outcomes = Vec::new();
        let mut go = |pid: u32, n: usize, rng: &mut XorShift| {
            let addrs: Vec<u64> = (0..n).map(|_| base + rng.below(64) * 4096 + rng.below(4096)).collect();
            let codes: Vec<u8> = (0..n).map(|_| rng.below(3).min(1) as u8).collect();
            let mut out = vec![0u8; n];
            match path {
                Path::Single | Path::Traced => {
                    for (i, (&a, &c)) in addrs.iter().zip(&codes).enumerate() {
                        let op = Access::from_code(c).unwrap();
                        let outcome = if let Path::Single = path {
                            sim.access(pid, a, op).unwrap()
                        } else {
                            sim.access_traced(pid, a, op).unwrap().0
                        };
                        out[i] = outcome as u8;
                    }
                }
                Path::Batch => sim.access_batch(pid, &addrs, Ops::Each(&codes), &mut out).unwrap(),
                Path::BatchOfOne => {
                    for i in 0..n {
                        sim.access_batch(pid, &addrs[i..=i], Ops::Each(&codes[i..=i]), &mut out[i..=i]).unwrap();
                    }
                }
            }
            outcomes.extend(out.iter().map(|&c| Outcome::from_code(c).unwrap()));
        };
        go(parent, 300, &mut rng);
        let child = sim.fork(parent).unwrap();
        go(child, 300, &mut rng);
        go(parent, 300, &mut rng);
        sim.check().unwrap();
        let counters = format!(
            "{:?}\n{:?}\n{:?}",
            sim.counters(),
            sim.process_counters(parent).unwrap(),
            sim.process_counters(child).unwrap()
        );
        (outcomes, counters)
    }

    /// A traced run, a single-access run and a batch run of the same
    /// accesses agree on every outcome, counter and eviction, whatever the
    /// policy. OPT takes the running batch as its known future, so for it a
    /// whole batch differs by design: single and traced accesses agree with
    /// batches of one access.
    #[test]
    fn every_path_agrees_for_every_policy() {
        for policy in PolicyKind::ALL {
            let batch = if policy == PolicyKind::Opt { Path::BatchOfOne } else { Path::Batch };
            let reference = run(policy, batch);
            assert!(reference.0.contains(&Outcome::SwapIn), "{policy:?}: the workload must page");
            for path in [Path::Single, Path::Traced] {
                assert_eq!(run(policy, path), reference, "{policy:?}: {path:?} differs from {batch:?}");
            }
        }
    }
}
