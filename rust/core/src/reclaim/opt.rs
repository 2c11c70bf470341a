//! Belady's OPT: evict the resident page whose next use lies furthest in the
//! future (or never comes). The future is the running batch of accesses: a
//! bound for a trace known in advance, not a realisable policy.
//!
//! `future` computes, in one backward pass, each position's next use of the
//! same page, and each page's first use; as the batch advances, a page's next
//! use is then one lookup. A max-heap of (next use, page) makes each choice
//! O(log n): when a resident page is used, an entry with its new next use is
//! pushed, and the old one, now stale, is dropped when it surfaces.

use super::{PageKey, Policy, Probe};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

const NEVER: usize = usize::MAX;

#[derive(Default)]
pub struct Opt {
    resident: HashSet<PageKey>,
    heap: BinaryHeap<(usize, Reverse<PageKey>)>,
    /// The batch's pages in order.
    keys: Vec<PageKey>,
    /// For each position, the next position using the same page (NEVER if none).
    next_after: Vec<usize>,
    /// Each page's next use from the current position on.
    next_use: HashMap<PageKey, usize>,
}

impl Opt {
    fn next_use(&self, key: PageKey) -> usize {
        self.next_use.get(&key).copied().unwrap_or(NEVER)
    }
}

impl Policy for Opt {
    fn name(&self) -> &'static str {
        "opt"
    }
    fn mapped(&mut self, key: PageKey) {
        self.resident.insert(key);
        self.heap.push((self.next_use(key), Reverse(key)));
    }
    fn unmapped(&mut self, key: PageKey) {
        // Its heap entries go stale (not resident); rebuild once they dominate.
        if self.resident.remove(&key) && self.heap.len() > 2 * self.resident.len() + 64 {
            self.heap = self.resident.iter().map(|&k| (self.next_use(k), Reverse(k))).collect();
        }
    }
    fn tracked(&self) -> usize {
        self.resident.len()
    }
    fn future(&mut self, keys: &[PageKey]) {
        self.keys = keys.to_vec();
        self.next_after = vec![NEVER; keys.len()];
        self.next_use.clear();
        for (i, &k) in keys.iter().enumerate().rev() {
            if let Some(later) = self.next_use.insert(k, i) {
                self.next_after[i] = later;
            }
        }
        self.heap = self.resident.iter().map(|&k| (self.next_use(k), Reverse(k))).collect();
    }
    fn advance(&mut self, at: usize) {
        // The page used now gets its next use after this one.
        let Some(&key) = self.keys.get(at) else { return };
        let next = self.next_after[at];
        self.next_use.insert(key, next);
        if self.resident.contains(&key) {
            self.heap.push((next, Reverse(key)));
        }
    }
    fn pick(&mut self, probe: &mut dyn FnMut(PageKey) -> Probe) -> Option<PageKey> {
        while let Some((next, Reverse(key))) = self.heap.pop() {
            if !self.resident.contains(&key) {
                continue;
            }
            if self.next_use(key) != next {
                continue; // used since: a fresher entry is in the heap
            }
            self.resident.remove(&key);
            if probe(key) != Probe::Gone {
                return Some(key);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{replay, TEXTBOOK};
    use super::super::PolicyKind;

    #[test]
    fn textbook_string() {
        assert_eq!(replay(PolicyKind::Opt, 3, &TEXTBOOK).0, 9);
    }

    #[test]
    fn evicts_the_page_used_furthest_ahead_or_never() {
        // At 4's miss: 1 is used next, then 2; 3 never again.
        assert_eq!(replay(PolicyKind::Opt, 3, &[1, 2, 3, 4, 1, 2]).1, [3]);
        // Never fewer misses than exact LRU.
        let refs: Vec<u64> = (0..300u64).map(|i| (i * 7 + i / 5) % 17).collect();
        for frames in 1..17 {
            assert!(replay(PolicyKind::Opt, frames, &refs).0 <= replay(PolicyKind::Lru, frames, &refs).0);
        }
    }
}
