//! One access as every caller makes it: single, traced, batched or replayed.
//! The fault itself, the replacement policy's hooks (the known future for
//! `opt`, every access for exact LRU) and the fault accounting happen in
//! `AccessRun::step`; the outcomes are counted from the codes the run wrote
//! when it finishes, and the counts to commit come only from `finish`, so
//! no caller can leave either out.

use crate::fault::{self, Access, Account, Outcome, Trace};
use crate::kernel::Kernel;
use crate::mm::Mm;
use crate::reclaim::{key, PolicyKind, Reclaim};

/// Counts of a run of accesses, kept in locals and added to the shared
/// counters once at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Accesses per outcome, indexed by `Outcome as usize`.
    pub per_outcome: [u64; Outcome::COUNT],
    /// Accesses per `Account` (not counted, minor fault, major fault),
    /// indexed by `Account as usize`.
    pub per_account: [u64; 3],
}

impl Tally {
    pub fn minor(&self) -> u64 {
        self.per_account[Account::Minor as usize]
    }

    pub fn major(&self) -> u64 {
        self.per_account[Account::Major as usize]
    }
}

/// How many of each outcome `codes` holds, indexed by outcome code (codes
/// past the table are not counted).
pub fn count_outcomes(codes: &[u8]) -> [u64; Outcome::COUNT] {
    const ONES: u64 = 0x0101_0101_0101_0101;
    // Batches come in long runs of one outcome (hits, a sweep of faults):
    // eight equal codes are counted at once; mixed words byte by byte, into
    // four tables so that neighbouring bytes do not wait on each other.
    let mut lanes = [[0u64; 256]; 4];
    let words = codes.chunks_exact(8);
    for &c in words.remainder() {
        lanes[0][c as usize] += 1;
    }
    for word in words {
        let w = u64::from_le_bytes(word.try_into().expect("chunks of eight"));
        if w == ONES * (w & 0xff) {
            lanes[0][word[0] as usize] += 8;
        } else {
            for (i, &c) in word.iter().enumerate() {
                lanes[i % 4][c as usize] += 1;
            }
        }
    }
    std::array::from_fn(|code| lanes.iter().map(|lane| lane[code]).sum())
}

/// A run of accesses by one address space, with the mm and kernel locked.
pub struct AccessRun<'a> {
    mm: &'a mut Mm,
    k: &'a mut Kernel,
    /// Exact LRU: the policy hears of every access that is not a signal.
    every_access: bool,
    /// OPT: the policy was told the run's addresses and follows its position.
    knows_future: bool,
    /// Accesses per `Account`, indexed by `Account as usize`: a store at a
    /// computed slot, no branch. (Outcomes are counted from the codes at the end:
    /// a per-access increment of a per-outcome counter cost more.)
    per_account: [u64; 3],
}

impl<'a> AccessRun<'a> {
    /// Start a run of the accesses at `addrs` (OPT takes them as the known future).
    pub fn new(mm: &'a mut Mm, k: &'a mut Kernel, addrs: &[u64]) -> AccessRun<'a> {
        let (mut every_access, mut knows_future) = (false, false);
        if let Some(r) = k.reclaim_mut() {
            knows_future = r.kind == PolicyKind::Opt;
            if let Some(policy) = r.policy_mut() {
                every_access = policy.wants_every_access();
                if knows_future {
                    let keys: Vec<_> = addrs.iter().map(|&a| key(mm.id, a)).collect();
                    policy.future(&keys);
                }
            }
        }
        AccessRun { mm, k, every_access, knows_future, per_account: [0; 3] }
    }

    /// Access number `i` of the run: `op` at `addr`, narrated to `t`.
    #[inline(always)]
    pub fn step<T: Trace>(&mut self, i: usize, addr: u64, op: Access, t: &mut T) -> Outcome {
        if self.knows_future {
            if let Some(policy) = self.k.reclaim_mut().and_then(Reclaim::policy_mut) {
                policy.advance(i);
            }
        }
        let fault = fault::access(self.mm, self.k, addr, op, t);
        if self.every_access && !fault.outcome.is_signal() {
            if let Some(policy) = self.k.reclaim_mut().and_then(Reclaim::policy_mut) {
                policy.accessed(key(self.mm.id, addr));
            }
        }
        self.per_account[fault.account as usize] += 1;
        fault.outcome
    }

    /// The run's counts, its outcomes read from `codes` (what `step` returned, in order).
    /// Whether the OOM killer chose this run's address space (its run stops).
    #[cold]
    pub fn oom_killed(&self) -> bool {
        self.mm.oom_killed
    }

    pub fn finish(self, codes: &[u8]) -> Tally {
        Tally { per_outcome: count_outcomes(codes), per_account: self.per_account }
    }
}

#[cfg(test)]
mod tests {
    /// Runs of one code and mixed words count alike (against a plain loop).
    #[test]
    fn outcome_counts_match_a_plain_count() {
        let mut rng = XorShift::new(5);
        for len in [0, 1, 7, 8, 9, 100, 4099] {
            let codes: Vec<u8> = (0..len)
                .map(|i| if (i / 64) % 2 == 0 { 3 } else { rng.below(Outcome::COUNT as u64 + 3) as u8 })
                .collect();
            let mut want = [0u64; Outcome::COUNT];
            for &c in &codes {
                if let Some(n) = want.get_mut(c as usize) {
                    *n += 1;
                }
            }
            assert_eq!(super::count_outcomes(&codes), want, "{len} codes");
        }
    }

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
