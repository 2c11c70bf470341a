//! Belady's OPT: evict the resident page whose next use lies furthest in the
//! future (or never comes). The future is the running batch of accesses: a
//! bound for a trace known in advance, not a realisable policy.

use super::{PageKey, Policy, Probe};
use std::collections::{HashMap, HashSet};

#[derive(Default)]
pub struct Opt {
    resident: HashSet<PageKey>,
    /// For each page of the batch, the positions it is used at, ascending.
    uses: HashMap<PageKey, Vec<usize>>,
    at: usize,
}

impl Opt {
    fn next_use(&self, key: PageKey) -> usize {
        self.uses.get(&key).and_then(|p| p.get(p.partition_point(|&i| i <= self.at)).copied()).unwrap_or(usize::MAX)
    }
}

impl Policy for Opt {
    fn name(&self) -> &'static str {
        "opt"
    }
    fn mapped(&mut self, key: PageKey) {
        self.resident.insert(key);
    }
    fn future(&mut self, keys: &[PageKey]) {
        self.uses.clear();
        for (i, &k) in keys.iter().enumerate() {
            self.uses.entry(k).or_default().push(i);
        }
        self.at = 0;
    }
    fn advance(&mut self, at: usize) {
        self.at = at;
    }
    fn pick(&mut self, probe: &mut dyn FnMut(PageKey) -> Probe) -> Option<PageKey> {
        let mut keys: Vec<PageKey> = self.resident.iter().copied().collect();
        keys.sort_unstable(); // ties broken the same way every run
        let mut best: Option<(usize, PageKey)> = None;
        for k in keys {
            if probe(k) == Probe::Gone {
                self.resident.remove(&k);
                continue;
            }
            let next = self.next_use(k);
            if best.is_none_or(|(b, _)| next > b) {
                best = Some((next, k));
            }
        }
        let (_, k) = best?;
        self.resident.remove(&k);
        Some(k)
    }
}
