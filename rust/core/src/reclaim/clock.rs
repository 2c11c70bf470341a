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
        self.tags.compact([&mut self.ring]);
    }
    fn unmapped(&mut self, key: PageKey) {
        self.tags.retire(key);
        self.tags.compact([&mut self.ring]);
    }
    fn tracked(&self) -> usize {
        self.tags.live()
    }
    fn pick(&mut self, probe: &mut dyn FnMut(PageKey) -> Probe) -> Option<PageKey> {
        // Two full turns at most: the first clears every bit.
        let mut budget = 2 * self.ring.len() + 1;
        while let Some(e) = self.ring.pop_front() {
            if !self.tags.is_current(&e) {
                self.tags.dropped_stale();
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

#[cfg(test)]
mod tests {
    use super::super::testkit::{map_unreferenced, pick, replay, Memory, TEXTBOOK};
    use super::super::PolicyKind;
    use super::Clock;

    #[test]
    fn a_referenced_page_gets_a_second_chance() {
        let mut clock = Clock::default();
        let mut mem = Memory::new(3);
        map_unreferenced(&mut clock, &mut mem, &[1, 2, 3]);
        mem.resident.insert(1, true);
        assert_eq!(pick(&mut clock, &mut mem), Some(2), "1 was referenced: the hand passes it, clearing the bit");
        assert!(!mem.resident[&1]);
        mem.resident.remove(&2);
        assert_eq!(pick(&mut clock, &mut mem), Some(3));
        assert_eq!(pick(&mut clock, &mut mem), Some(1), "its second chance used up");
    }

    #[test]
    fn without_reuse_it_is_fifo_and_with_reuse_never_worse() {
        // No page is used twice: every bit set at fault time is cleared by
        // the same turn, so the hand evicts in arrival order.
        let once: Vec<u64> = (0..50).collect();
        assert_eq!(replay(PolicyKind::Clock, 4, &once), replay(PolicyKind::Fifo, 4, &once));
        assert!(replay(PolicyKind::Clock, 3, &TEXTBOOK).0 <= replay(PolicyKind::Fifo, 3, &TEXTBOOK).0);
    }
}
