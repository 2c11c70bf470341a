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

#[derive(Default)]
pub struct Shadows {
    entries: FxHashMap<u64, Shadow>,
    /// Shadows per node (slot / 64).
    nodes: FxHashMap<u64, u32>,
    /// Nodes in the order they got their first shadow (stale entries skipped).
    order: VecDeque<u64>,
    /// Shadow nodes reclaimed (workingset_nodereclaim).
    pub nodereclaim: u64,
}

impl Shadows {
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Leave `shadow` at `slot`; reclaim the oldest shadow nodes while there
    /// are more than `max_nodes`.
    pub fn insert(&mut self, slot: u64, shadow: Shadow, max_nodes: usize) {
        if self.entries.insert(slot, shadow).is_none() {
            let count = self.nodes.entry(slot / NODE_SLOTS).or_insert(0);
            *count += 1;
            if *count == 1 {
                self.order.push_back(slot / NODE_SLOTS);
            }
        }
        while self.nodes.len() > max_nodes.max(1) {
            let Some(node) = self.order.pop_front() else { break };
            if self.nodes.contains_key(&node) {
                self.reclaim_node(node);
            }
        }
        if self.order.len() > 2 * self.nodes.len() + 64 {
            let nodes = &self.nodes;
            self.order.retain(|n| nodes.contains_key(n));
        }
    }

    fn reclaim_node(&mut self, node: u64) {
        for slot in node * NODE_SLOTS..(node + 1) * NODE_SLOTS {
            self.entries.remove(&slot);
        }
        self.nodes.remove(&node);
        self.nodereclaim += 1;
    }

    /// The shadow at `slot`, taken out (a page is being read back in there).
    pub fn take(&mut self, slot: u64) -> Option<Shadow> {
        let shadow = self.entries.remove(&slot)?;
        let node = slot / NODE_SLOTS;
        let count = self.nodes.get_mut(&node).expect("a shadow's node is counted");
        *count -= 1;
        if *count == 0 {
            self.nodes.remove(&node);
        }
        Some(shadow)
    }

    /// The slots [first, last) of object `id` are gone (truncate, hole, the file freed).
    pub fn forget_file_range(&mut self, id: u32, first: u64, last: u64) {
        let base = file_slot(id, 0);
        let (lo, hi) = (base + first.min(1 << 36), base + last.min(1 << 36));
        if hi - lo > self.entries.len() as u64 {
            let doomed: Vec<u64> = self.entries.keys().copied().filter(|s| (lo..hi).contains(s)).collect();
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
        for slot in self.entries.keys() {
            *counted.entry(slot / NODE_SLOTS).or_insert(0) += 1;
        }
        if counted != self.nodes {
            return Err("workingset: shadow node counts disagree with the shadows".into());
        }
        if self.nodes.len() > max_nodes.max(1) {
            return Err(format!("workingset: {} shadow nodes, more than the {max_nodes} allowed", self.nodes.len()));
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
