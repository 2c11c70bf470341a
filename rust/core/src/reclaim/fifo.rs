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
    }
    fn pick(&mut self, probe: &mut dyn FnMut(PageKey) -> Probe) -> Option<PageKey> {
        while let Some(e) = self.queue.pop_front() {
            if !self.tags.is_current(&e) {
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
