//! Two lists like Linux's active/inactive LRU: new pages start inactive; a
//! page found referenced at the tail of the inactive list is promoted
//! (its second access); the active list is aged into the inactive one by
//! the accessed bit whenever it grows larger.

use super::{PageKey, Policy, Probe, Tagged, Tags};
use std::collections::VecDeque;

#[derive(Default)]
pub struct Lru2q {
    inactive: VecDeque<Tagged>,
    active: VecDeque<Tagged>,
    tags: Tags,
}

impl Policy for Lru2q {
    fn name(&self) -> &'static str {
        "lru2q"
    }
    fn mapped(&mut self, key: PageKey) {
        let e = self.tags.tag(key);
        self.inactive.push_back(e);
        self.tags.compact([&mut self.inactive, &mut self.active]);
    }
    fn unmapped(&mut self, key: PageKey) {
        self.tags.retire(key);
        self.tags.compact([&mut self.inactive, &mut self.active]);
    }
    fn tracked(&self) -> usize {
        self.tags.live()
    }
    fn pick(&mut self, probe: &mut dyn FnMut(PageKey) -> Probe) -> Option<PageKey> {
        // Age the active list: its oldest pages move down unless referenced.
        let mut budget = self.active.len();
        while self.active.len() > self.inactive.len() && budget > 0 {
            budget -= 1;
            let Some(e) = self.active.pop_front() else { break };
            if !self.tags.is_current(&e) {
                self.tags.dropped_stale();
                continue;
            }
            match probe(e.0) {
                Probe::Gone => self.tags.retire(e.0),
                Probe::Referenced => self.active.push_back(e),
                Probe::Unreferenced => self.inactive.push_back(e),
            }
        }
        let mut budget = 2 * (self.inactive.len() + self.active.len()) + 1;
        loop {
            let e = match self.inactive.pop_front() {
                Some(e) => e,
                None => self.active.pop_front()?, // everything active: take the oldest
            };
            if !self.tags.is_current(&e) {
                self.tags.dropped_stale();
                continue;
            }
            match probe(e.0) {
                Probe::Gone => self.tags.retire(e.0),
                Probe::Referenced if budget > 0 => {
                    budget -= 1;
                    self.active.push_back(e); // second access: promoted
                }
                _ => {
                    self.tags.retire(e.0);
                    return Some(e.0);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{map_unreferenced, pick, Memory};
    use super::Lru2q;

    #[test]
    fn a_second_access_promotes_and_the_active_list_is_aged() {
        let mut q = Lru2q::default();
        let mut mem = Memory::new(3);
        map_unreferenced(&mut q, &mut mem, &[1, 2, 3]);
        mem.resident.insert(1, true);
        assert_eq!(pick(&mut q, &mut mem), Some(2), "1 was referenced on the inactive list: promoted");
        assert_eq!((q.active.len(), q.inactive.len()), (1, 1));
        mem.resident.remove(&2);
        // 1 stays active while referenced; 3, still unreferenced, goes.
        mem.resident.insert(1, true);
        assert_eq!(pick(&mut q, &mut mem), Some(3));
        mem.resident.remove(&3);
        // Only the active page is left: it is taken once its bit is clear.
        assert_eq!(pick(&mut q, &mut mem), Some(1));
    }
}
