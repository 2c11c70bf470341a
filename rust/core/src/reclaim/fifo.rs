//! FIFO: evict the page that became resident first.

use super::{PageKey, Policy, Probe, Tagged, Tags};
use std::collections::VecDeque;

#[derive(Default)]
pub struct Fifo {
    queue: VecDeque<Tagged>,
    tags: Tags,
}

impl Policy for Fifo {
    fn name(&self) -> &'static str {
        "fifo"
    }
    fn mapped(&mut self, key: PageKey) {
        let e = self.tags.tag(key);
        self.queue.push_back(e);
        self.tags.compact([&mut self.queue]);
    }
    fn unmapped(&mut self, key: PageKey) {
        self.tags.retire(key);
        self.tags.compact([&mut self.queue]);
    }
    fn tracked(&self) -> usize {
        self.tags.live()
    }
    fn pick(&mut self, probe: &mut dyn FnMut(PageKey) -> Probe) -> Option<PageKey> {
        while let Some(e) = self.queue.pop_front() {
            if !self.tags.is_current(&e) {
                self.tags.dropped_stale();
                continue;
            }
            self.tags.retire(e.0);
            if probe(e.0) != Probe::Gone {
                return Some(e.0);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{map_unreferenced, pick, replay, Memory, TEXTBOOK};
    use super::super::PolicyKind;
    use super::Fifo;

    #[test]
    fn textbook_string_and_beladys_anomaly() {
        assert_eq!(replay(PolicyKind::Fifo, 3, &TEXTBOOK).0, 15);
        let anomaly = [1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5];
        assert_eq!(replay(PolicyKind::Fifo, 3, &anomaly).0, 9);
        assert_eq!(replay(PolicyKind::Fifo, 4, &anomaly).0, 10, "more frames, more faults");
    }

    #[test]
    fn evicts_in_arrival_order_ignoring_use_and_stale_entries() {
        let (_, evicted) = replay(PolicyKind::Fifo, 2, &[1, 2, 1, 1, 3, 4]);
        assert_eq!(evicted, [1, 2], "page 1's hits do not save it");
        let mut fifo = Fifo::default();
        let mut mem = Memory::new(4);
        map_unreferenced(&mut fifo, &mut mem, &[1, 2, 1]); // page 1 mapped again: its first entry is stale
        assert_eq!(pick(&mut fifo, &mut mem), Some(2));
        mem.resident.clear();
        assert_eq!(pick(&mut fifo, &mut mem), None, "nothing resident, nothing to pick");
    }
}
