//! FIFO: evict the page that became resident first.

use super::{PageKey, Policy, Probe};
use rustc_hash::FxHashMap as HashMap;
use std::collections::VecDeque;

#[derive(Default)]
pub struct Fifo {
    queue: VecDeque<(PageKey, u64)>,
    /// The latest mapping of each key; older queue entries are stale.
    current: HashMap<PageKey, u64>,
    seq: u64,
}

impl Policy for Fifo {
    fn name(&self) -> &'static str {
        "fifo"
    }
    fn mapped(&mut self, key: PageKey) {
        self.seq += 1;
        self.current.insert(key, self.seq);
        self.queue.push_back((key, self.seq));
    }
    fn pick(&mut self, probe: &mut dyn FnMut(PageKey) -> Probe) -> Option<PageKey> {
        while let Some((key, seq)) = self.queue.pop_front() {
            if self.current.get(&key) != Some(&seq) {
                continue;
            }
            self.current.remove(&key);
            if probe(key) != Probe::Gone {
                return Some(key);
            }
        }
        None
    }
}
