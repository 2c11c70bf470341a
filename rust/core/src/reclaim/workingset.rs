//! Workingset detection (mm/workingset.c): an evicted page leaves a shadow
//! entry where it was (its page-cache slot, or its swap slot) recording the
//! lruvec's `nonresident_age` at eviction. On refault the distance since
//! then, compared with the workingset the lruvec holds now, says whether
//! the page would have stayed resident had it been active: then it is
//! activated at once.
//!
//! Shadows live in radix-tree nodes of 64 slots; nodes that hold only
//! shadows are reclaimed, oldest first, once there are more of them than
//! the node's memory warrants (`count_shadow_nodes`: present pages / 8),
//! each counted as `workingset_nodereclaim`.

use rustc_hash::FxHashMap;
use std::collections::VecDeque;

/// Slots per radix-tree node (XA_CHUNK_SIZE).
const NODE_SLOTS: u64 = 64;

/// Where a shadow sits: a page-cache slot of object `id`, or a swap slot.
/// Packed: object + 1 in the high bits (0 for swap), the index below.
pub fn file_slot(id: u32, index: u64) -> u64 {
    ((id as u64 + 1) << 36) | (index & ((1 << 36) - 1))
}
pub fn swap_slot(slot: u32) -> u64 {
    slot as u64
}

/// What eviction left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shadow {
    /// The lruvec's nonresident_age at eviction (classic LRU), or the
    /// generation sequence the folio was evicted from (multi-gen LRU).
    pub eviction: u64,
    /// The lruvec (memory cgroup) it was evicted from.
    pub lruvec: u16,
    /// PG_workingset at eviction.
    pub workingset: bool,
    /// The multi-gen LRU: the folio's refs (accesses through file
    /// descriptors past PG_referenced and PG_workingset); 0 otherwise.
    pub tier: u8,
}

/// Where shadows are kept: swap slots are dense and bounded by the swap
/// size, so theirs sit in a table indexed by slot (a refault's lookup is an
/// index, not a hash probe); page-cache slots in a hash map.
#[derive(Default)]
pub struct Shadows {
    files: FxHashMap<u64, Shadow>,
    swap: Vec<Option<Shadow>>,
    /// Shadows per node (slot / 64): of page-cache nodes, and of swap nodes by node number.
    file_nodes: FxHashMap<u64, u32>,
    swap_nodes: Vec<u32>,
    /// Nodes holding at least one shadow.
    live_nodes: usize,
    /// Nodes in the order they got their first shadow (stale entries skipped).
    order: VecDeque<u64>,
    /// Shadow nodes reclaimed (workingset_nodereclaim).
    pub nodereclaim: u64,
}

/// Swap slots (and so swap nodes) lie below every page-cache slot.
const FIRST_FILE_SLOT: u64 = 1 << 36;

impl Shadows {
    /// Shadows held (counts the swap table: for checks and tests).
    pub fn len(&self) -> usize {
        self.files.len() + self.swap.iter().filter(|s| s.is_some()).count()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn nodes(&self) -> usize {
        self.live_nodes
    }

    fn node_count(&mut self, node: u64) -> &mut u32 {
        if node < FIRST_FILE_SLOT / NODE_SLOTS {
            let i = node as usize;
            if self.swap_nodes.len() <= i {
                self.swap_nodes.resize((i + 1).next_power_of_two(), 0);
            }
            &mut self.swap_nodes[i]
        } else {
            self.file_nodes.entry(node).or_insert(0)
        }
    }

    fn node_dropped(&mut self, node: u64) {
        self.live_nodes -= 1;
        if node >= FIRST_FILE_SLOT / NODE_SLOTS {
            self.file_nodes.remove(&node);
        }
    }

    fn is_live(&self, node: u64) -> bool {
        if node < FIRST_FILE_SLOT / NODE_SLOTS {
            self.swap_nodes.get(node as usize).is_some_and(|&n| n > 0)
        } else {
            self.file_nodes.contains_key(&node)
        }
    }

    /// Put `shadow` at `slot`; whether the slot held none before.
    fn put(&mut self, slot: u64, shadow: Shadow) -> bool {
        if slot >= FIRST_FILE_SLOT {
            return self.files.insert(slot, shadow).is_none();
        }
        let i = slot as usize;
        if self.swap.len() <= i {
            self.swap.resize((i + 1).next_power_of_two(), None);
        }
        self.swap[i].replace(shadow).is_none()
    }

    fn remove(&mut self, slot: u64) -> Option<Shadow> {
        if slot >= FIRST_FILE_SLOT {
            self.files.remove(&slot)
        } else {
            self.swap.get_mut(slot as usize)?.take()
        }
    }

    /// Leave `shadow` at `slot`; reclaim the oldest shadow nodes while there
    /// are more than `max_nodes`.
    pub fn insert(&mut self, slot: u64, shadow: Shadow, max_nodes: usize) {
        if self.put(slot, shadow) {
            let node = slot / NODE_SLOTS;
            let count = self.node_count(node);
            *count += 1;
            if *count == 1 {
                self.live_nodes += 1;
                self.order.push_back(node);
            }
        }
        while self.live_nodes > max_nodes.max(1) {
            let Some(node) = self.order.pop_front() else { break };
            if self.is_live(node) {
                self.reclaim_node(node);
            }
        }
        if self.order.len() > 2 * self.live_nodes + 64 {
            let order = std::mem::take(&mut self.order);
            self.order = order.into_iter().filter(|&n| self.is_live(n)).collect();
        }
    }

    fn reclaim_node(&mut self, node: u64) {
        for slot in node * NODE_SLOTS..(node + 1) * NODE_SLOTS {
            self.remove(slot);
        }
        *self.node_count(node) = 0;
        self.node_dropped(node);
        self.nodereclaim += 1;
    }

    /// The shadow at `slot`, taken out (a page is being read back in there).
    pub fn take(&mut self, slot: u64) -> Option<Shadow> {
        let shadow = self.remove(slot)?;
        let node = slot / NODE_SLOTS;
        let count = self.node_count(node);
        *count -= 1;
        if *count == 0 {
            self.node_dropped(node);
        }
        Some(shadow)
    }

    /// The slots [first, last) of object `id` are gone (truncate, hole, the file freed).
    pub fn forget_file_range(&mut self, id: u32, first: u64, last: u64) {
        let base = file_slot(id, 0);
        let (lo, hi) = (base + first.min(1 << 36), base + last.min(1 << 36));
        if hi - lo > self.files.len() as u64 {
            let doomed: Vec<u64> = self.files.keys().copied().filter(|s| (lo..hi).contains(s)).collect();
            for s in doomed {
                self.take(s);
            }
        } else {
            for s in lo..hi {
                self.take(s);
            }
        }
    }

    /// For checks: every count matches, and there are no more nodes than allowed.
    pub fn check(&self, max_nodes: usize) -> Result<(), String> {
        let mut counted: FxHashMap<u64, u32> = FxHashMap::default();
        let swap_slots = self.swap.iter().enumerate().filter(|(_, s)| s.is_some()).map(|(i, _)| i as u64);
        for slot in self.files.keys().copied().chain(swap_slots) {
            *counted.entry(slot / NODE_SLOTS).or_insert(0) += 1;
        }
        let mut kept: FxHashMap<u64, u32> = self.file_nodes.clone();
        kept.extend(self.swap_nodes.iter().enumerate().filter(|(_, &n)| n > 0).map(|(i, &n)| (i as u64, n)));
        if counted != kept || kept.len() != self.live_nodes {
            return Err("workingset: shadow node counts disagree with the shadows".into());
        }
        if self.live_nodes > max_nodes.max(1) {
            return Err(format!("workingset: {} shadow nodes, more than the {max_nodes} allowed", self.live_nodes));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shadow(eviction: u64) -> Shadow {
        Shadow { eviction, lruvec: 0, workingset: false, tier: 0 }
    }

    #[test]
    fn shadows_are_taken_once() {
        let mut s = Shadows::default();
        s.insert(file_slot(3, 10), shadow(7), 100);
        assert_eq!(s.take(file_slot(3, 10)), Some(shadow(7)));
        assert_eq!(s.take(file_slot(3, 10)), None);
        assert_eq!((s.len(), s.nodes()), (0, 0));
    }

    #[test]
    fn the_oldest_nodes_go_past_the_bound() {
        let mut s = Shadows::default();
        for node in 0..4u64 {
            s.insert(swap_slot((node * NODE_SLOTS) as u32), shadow(node), 3);
        }
        assert_eq!((s.nodes(), s.nodereclaim), (3, 1));
        assert_eq!(s.take(swap_slot(0)), None, "the oldest node went");
        assert!(s.take(swap_slot(3 * NODE_SLOTS as u32)).is_some());
        s.check(3).unwrap();
    }

    #[test]
    fn a_file_range_is_forgotten() {
        let mut s = Shadows::default();
        for i in 0..10 {
            s.insert(file_slot(1, i), shadow(i), 100);
        }
        s.insert(file_slot(2, 5), shadow(0), 100);
        s.forget_file_range(1, 5, u64::MAX);
        assert_eq!(s.len(), 6);
        assert!(s.take(file_slot(2, 5)).is_some());
        s.check(100).unwrap();
    }
}
