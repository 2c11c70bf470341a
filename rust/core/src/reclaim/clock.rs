//! CLOCK (second chance): pages in a ring; the hand gives a page whose
//! accessed bit is set another round (clearing the bit) and evicts the first
//! one whose bit is clear.

use super::{PageKey, Policy, Probe};
use rustc_hash::FxHashMap as HashMap;
use std::collections::VecDeque;

#[derive(Default)]
pub struct Clock {
    /// The ring, with the hand at the front.
    ring: VecDeque<(PageKey, u64)>,
    current: HashMap<PageKey, u64>,
    seq: u64,
}

impl Policy for Clock {
    fn name(&self) -> &'static str {
        "clock"
    }
    fn mapped(&mut self, key: PageKey) {
        self.seq += 1;
        self.current.insert(key, self.seq);
        self.ring.push_back((key, self.seq));
    }
    fn pick(&mut self, probe: &mut dyn FnMut(PageKey) -> Probe) -> Option<PageKey> {
        // Two full turns at most: the first clears every bit.
        let mut budget = 2 * self.ring.len() + 1;
        while let Some((key, seq)) = self.ring.pop_front() {
            if self.current.get(&key) != Some(&seq) {
                continue;
            }
            match probe(key) {
                Probe::Gone => {
                    self.current.remove(&key);
                }
                Probe::Referenced if budget > 0 => {
                    budget -= 1;
                    self.ring.push_back((key, seq));
                }
                _ => {
                    self.current.remove(&key);
                    return Some(key);
                }
            }
        }
        None
    }
}
