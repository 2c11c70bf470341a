//! Exact LRU: every access (hits included) refreshes the page's recency, so
//! the least recently used page is evicted. Costs a map update per access:
//! a reference point for the cheaper approximations (clock, lru2q).

use super::{PageKey, Policy, Probe};
use rustc_hash::FxHashMap as HashMap;
use std::collections::BTreeMap;

#[derive(Default)]
pub struct Lru {
    by_time: BTreeMap<u64, PageKey>,
    time_of: HashMap<PageKey, u64>,
    clock: u64,
}

impl Lru {
    fn touch(&mut self, key: PageKey) {
        self.clock += 1;
        if let Some(old) = self.time_of.insert(key, self.clock) {
            self.by_time.remove(&old);
        }
        self.by_time.insert(self.clock, key);
    }
}

impl Policy for Lru {
    fn name(&self) -> &'static str {
        "lru"
    }
    fn mapped(&mut self, key: PageKey) {
        self.touch(key);
    }
    fn unmapped(&mut self, key: PageKey) {
        if let Some(t) = self.time_of.remove(&key) {
            self.by_time.remove(&t);
        }
    }
    fn tracked(&self) -> usize {
        self.time_of.len()
    }
    fn wants_every_access(&self) -> bool {
        true
    }
    fn accessed(&mut self, key: PageKey) {
        if self.time_of.contains_key(&key) {
            self.touch(key);
        }
    }
    fn pick(&mut self, probe: &mut dyn FnMut(PageKey) -> Probe) -> Option<PageKey> {
        while let Some((_, key)) = self.by_time.pop_first() {
            self.time_of.remove(&key);
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
        assert_eq!(replay(PolicyKind::Lru, 3, &TEXTBOOK).0, 12);
    }

    #[test]
    fn a_hit_refreshes_recency() {
        let (_, evicted) = replay(PolicyKind::Lru, 2, &[1, 2, 1, 3, 4]);
        assert_eq!(evicted, [2, 1], "1 was used after 2");
    }

    #[test]
    fn misses_never_rise_with_memory() {
        // LRU is a stack algorithm: no Belady anomaly.
        let refs: Vec<u64> = (0..400u64).map(|i| (i * i + 3 * i) % 23).collect();
        let misses: Vec<u64> = (1..24).map(|f| replay(PolicyKind::Lru, f, &refs).0).collect();
        assert!(misses.windows(2).all(|w| w[0] >= w[1]), "{misses:?}");
    }
}
