//! CLOCK (second chance): pages in a ring; the hand gives a page whose
//! accessed bit is set another round (clearing the bit) and evicts the first
//! one whose bit is clear.

use super::{PageKey, Policy, Probe, Tagged, Tags};
use std::collections::VecDeque;

#[derive(Default)]
pub struct Clock {
    /// The ring, with the hand at the front.
    ring: VecDeque<Tagged>,
    tags: Tags,
}

impl Policy for Clock {
    fn name(&self) -> &'static str {
        "clock"
    }
    fn mapped(&mut self, key: PageKey) {
        let e = self.tags.tag(key);
        self.ring.push_back(e);
    }
    fn pick(&mut self, probe: &mut dyn FnMut(PageKey) -> Probe) -> Option<PageKey> {
        // Two full turns at most: the first clears every bit.
        let mut budget = 2 * self.ring.len() + 1;
        while let Some(e) = self.ring.pop_front() {
            if !self.tags.is_current(&e) {
                continue;
            }
            match probe(e.0) {
                Probe::Gone => self.tags.retire(e.0),
                Probe::Referenced if budget > 0 => {
                    budget -= 1;
                    self.ring.push_back(e);
                }
                _ => {
                    self.tags.retire(e.0);
                    return Some(e.0);
                }
            }
        }
        None
    }
}
