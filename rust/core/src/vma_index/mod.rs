//! VMA index structures behind one trait, so the address space (and the
//! benchmarks) can swap them. Every index must give identical answers.

use crate::vma::Vma;

mod btree;
mod list;
mod maple;
mod rbtree;
mod sorted_vec;

pub use btree::BTreeIndex;
pub use list::ListIndex;
pub use maple::MapleIndex;
pub use rbtree::RbTreeIndex;
pub use sorted_vec::SortedVecIndex;

pub mod study;

/// What an index counted of its `find_ref` lookups, for index studies:
/// summed over its life (a study reads them before and after).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// List entries or tree nodes the lookups looked at; None where they
    /// are not counted (the maple tree: see `nodes_per_lookup`) or not
    /// shown (Rust's BTreeMap, a binary search).
    pub nodes_visited: Option<u64>,
    /// Lookups its cache answered (the list's mmap_cache, the rbtree's
    /// vmacache); None for an index without one.
    pub cache_hits: Option<u64>,
    /// Nodes every lookup visits, where that is fixed by the shape (a
    /// B-tree's height) rather than counted.
    pub nodes_per_lookup: Option<u64>,
}

/// What the address space needs from a VMA index. VMAs never overlap; the
/// caller guarantees that for `insert`.
pub trait VmaIndex: Send {
    fn name(&self) -> &'static str;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The task about to look things up (for per-thread caches).
    fn set_thread(&mut self, _tid: u32) {}
    /// find_vma: the first VMA with `end > addr`, where the index keeps it.
    /// Takes `&mut self` so that indexes with a lookup cache can fill it.
    /// (A reference comes back in a register; a VMA returned by value
    /// through a trait object went through memory, and reading it back
    /// stalled the fault path.)
    fn find_ref(&mut self, addr: u64) -> Option<&Vma>;
    /// `find_ref`, copied out.
    #[inline]
    fn find(&mut self, addr: u64) -> Option<Vma> {
        self.find_ref(addr).copied()
    }
    /// The last VMA with `end <= addr` (the `prev` of find_vma_prev).
    fn last_before(&self, addr: u64) -> Option<Vma>;
    fn insert(&mut self, vma: Vma);
    /// Remove the VMA that starts at `start`.
    fn remove(&mut self, start: u64) -> Option<Vma>;
    /// Replace the VMA starting at `old_start` by `vma` (which may start
    /// elsewhere, as when a stack grows down, but overlaps nothing else).
    fn replace(&mut self, old_start: u64, vma: Vma) {
        let old = self.remove(old_start);
        debug_assert!(old.is_some(), "replace of a VMA that is not there");
        self.insert(vma);
    }
    /// Every VMA overlapping [start, end), in address order.
    fn range(&self, start: u64, end: u64) -> Vec<Vma>;
    /// Every VMA in address order.
    fn all(&self) -> Vec<Vma> {
        self.range(0, u64::MAX)
    }
    /// Placement of `len` bytes within the free space of [low, high): the
    /// highest address that fits when `top_down`, else the lowest.
    fn find_gap(&self, len: u64, low: u64, high: u64, top_down: bool) -> Option<u64>;
    /// Structure invariants of the implementation.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
    /// What it counted of its lookups.
    fn stats(&self) -> IndexStats {
        IndexStats::default()
    }
}

/// The index implementations, selectable by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    List,
    RbTree,
    Maple,
    BTree,
    SortedVec,
}

impl IndexKind {
    pub const ALL: [IndexKind; 5] =
        [IndexKind::List, IndexKind::RbTree, IndexKind::Maple, IndexKind::BTree, IndexKind::SortedVec];
    pub const DEFAULT: IndexKind = IndexKind::Maple;

    pub fn name(self) -> &'static str {
        match self {
            IndexKind::List => "list",
            IndexKind::RbTree => "rbtree",
            IndexKind::Maple => "maple",
            IndexKind::BTree => "btree",
            IndexKind::SortedVec => "sorted_vec",
        }
    }

    pub fn parse(name: &str) -> crate::error::Result<IndexKind> {
        Self::ALL.into_iter().find(|k| k.name() == name).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|k| k.name()).collect();
            crate::error::Error::invalid(format!("unknown vma_index {name:?}; choose one of {}", names.join(", ")))
        })
    }

    pub fn build(self) -> Box<dyn VmaIndex> {
        match self {
            IndexKind::List => Box::new(ListIndex::default()),
            IndexKind::RbTree => Box::new(RbTreeIndex::default()),
            IndexKind::Maple => Box::new(MapleIndex::default()),
            IndexKind::BTree => Box::new(BTreeIndex::default()),
            IndexKind::SortedVec => Box::new(SortedVecIndex::default()),
        }
    }
}

/// Put `node` in a free slot of an index arena (or a new one); its slot.
pub(crate) fn arena_alloc<T>(nodes: &mut Vec<T>, free: &mut Vec<u32>, node: T) -> u32 {
    match free.pop() {
        Some(i) => {
            nodes[i as usize] = node;
            i
        }
        None => {
            nodes.push(node);
            (nodes.len() - 1) as u32
        }
    }
}

/// The placement of `len` bytes in the free range [gap_start, gap_end)
/// clipped to [low, high): highest address when `top_down`, else lowest.
#[inline]
pub(crate) fn fit_gap(gap_start: u64, gap_end: u64, len: u64, low: u64, high: u64, top_down: bool) -> Option<u64> {
    let (s, e) = (gap_start.max(low), gap_end.min(high));
    if e < s || e - s < len {
        None
    } else if top_down {
        Some(e - len)
    } else {
        Some(s)
    }
}

/// Gap search over VMAs visited from high to low addresses (only those with
/// `start < high`, as (start, end) pairs): the highest fit in [low, high).
pub(crate) fn gap_top_down(vmas: impl Iterator<Item = (u64, u64)>, len: u64, low: u64, high: u64) -> Option<u64> {
    let mut gap_end = high;
    for (start, end) in vmas {
        let gap_start = end.max(low);
        if gap_end >= gap_start && gap_end - gap_start >= len {
            return Some(gap_end - len);
        }
        gap_end = gap_end.min(start);
        if gap_end <= low {
            return None;
        }
    }
    (gap_end >= low && gap_end - low >= len).then(|| gap_end - len)
}

/// Gap search over VMAs visited from low to high addresses (only those with
/// `end > low`): the lowest fit in [low, high).
pub(crate) fn gap_bottom_up(vmas: impl Iterator<Item = (u64, u64)>, len: u64, low: u64, high: u64) -> Option<u64> {
    let mut gap_start = low;
    for (start, end) in vmas {
        let gap_end = start.min(high);
        if gap_end >= gap_start && gap_end - gap_start >= len {
            return Some(gap_start);
        }
        gap_start = gap_start.max(end);
        if gap_start >= high {
            return None;
        }
    }
    (high >= gap_start && high - gap_start >= len).then_some(gap_start)
}

#[cfg(test)]
mod conformance {
    //! Every index against a plain model, on random operation sequences.
    use super::*;
    use crate::vma::{Prot, VmFlags};

    use crate::testing::XorShift as Rng;

    fn model_find(m: &[Vma], addr: u64) -> Option<Vma> {
        m.iter().find(|v| v.end > addr).copied()
    }

    #[test]
    fn all_indexes_agree_with_model() {
        for kind in IndexKind::ALL {
            let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
            let mut idx = kind.build();
            let mut model: Vec<Vma> = Vec::new();
            let page = 4096u64;
            for step in 0..4000 {
                let op = rng.below(10);
                if op < 4 {
                    let start = rng.below(1000) * page;
                    let end = start + (1 + rng.below(8)) * page;
                    if model.iter().all(|v| v.end <= start || v.start >= end) {
                        let v = Vma::anon(start, end, Prot::parse("rw").unwrap(), VmFlags::default());
                        idx.insert(v);
                        model.push(v);
                        model.sort_by_key(|v| v.start);
                    }
                } else if op < 6 && !model.is_empty() {
                    let v = model.remove(rng.below(model.len() as u64) as usize);
                    assert_eq!(idx.remove(v.start), Some(v), "{} step {step}", kind.name());
                } else if op < 8 {
                    let a = rng.below(1100) * page + rng.below(page);
                    assert_eq!(idx.find(a), model_find(&model, a), "{} find step {step}", kind.name());
                    let prev = model.iter().rev().find(|v| v.end <= a).copied();
                    assert_eq!(idx.last_before(a), prev, "{} last_before", kind.name());
                } else {
                    let len = (1 + rng.below(20)) * page;
                    let low = rng.below(500) * page;
                    let high = low + rng.below(700) * page;
                    let spans = || model.iter().map(|v| (v.start, v.end));
                    let want_td = gap_top_down(spans().rev().filter(|s| s.0 < high), len, low, high);
                    let want_bu = gap_bottom_up(spans().filter(|s| s.1 > low), len, low, high);
                    assert_eq!(idx.find_gap(len, low, high, true), want_td, "{} gap td", kind.name());
                    assert_eq!(idx.find_gap(len, low, high, false), want_bu, "{} gap bu", kind.name());
                }
                assert_eq!(idx.len(), model.len());
                idx.check().unwrap();
            }
            assert_eq!(idx.all(), model);
            let (a, b) = (300 * page, 600 * page);
            let want: Vec<_> = model.iter().filter(|v| v.end > a && v.start < b).copied().collect();
            assert_eq!(idx.range(a, b), want);
        }
    }

    /// Grow each index to thousands of VMAs (deep trees), then shrink it back,
    /// checking structure invariants along the way.
    #[test]
    fn large_trees_stay_valid() {
        for kind in IndexKind::ALL {
            let mut rng = Rng::new(0x1234_5678_9abc_def1);
            let mut idx = kind.build();
            let mut model: std::collections::BTreeMap<u64, Vma> = Default::default();
            let page = 4096u64;
            for round in 0..2 {
                for step in 0..6000u64 {
                    let grow = if round == 0 { rng.below(10) < 8 } else { rng.below(10) < 2 };
                    if grow {
                        let slot = rng.below(50_000);
                        let (start, end) = (slot * 2 * page, slot * 2 * page + page);
                        if let std::collections::btree_map::Entry::Vacant(e) = model.entry(start) {
                            let v = Vma::anon(start, end, Prot::parse("r").unwrap(), VmFlags::default());
                            e.insert(v);
                            idx.insert(v);
                        }
                    } else if let Some(&start) = model.keys().nth(rng.below(model.len().max(1) as u64) as usize) {
                        assert_eq!(idx.remove(start), model.remove(&start));
                    }
                    if step % 500 == 0 {
                        idx.check().unwrap_or_else(|e| panic!("{}: {e}", kind.name()));
                        let a = rng.below(100_000 * page);
                        let want = model.values().find(|v| v.end > a).copied();
                        assert_eq!(idx.find(a), want, "{}", kind.name());
                        let all: Vec<_> = model.values().map(|v| (v.start, v.end)).collect();
                        let len = (1 + rng.below(4)) * page;
                        let want_gap = gap_top_down(all.iter().rev().copied(), len, 0, 1 << 40);
                        assert_eq!(idx.find_gap(len, 0, 1 << 40, true), want_gap, "{}", kind.name());
                    }
                }
            }
            idx.check().unwrap();
            assert_eq!(idx.all(), model.values().copied().collect::<Vec<_>>(), "{}", kind.name());
        }
    }

    #[test]
    fn gap_helpers() {
        // VMAs at [10,20) and [30,40); search [0, 50).
        let v = [(10u64, 20u64), (30, 40)];
        assert_eq!(gap_top_down(v.iter().rev().copied(), 10, 0, 50), Some(40));
        assert_eq!(gap_top_down(v.iter().rev().copied(), 11, 0, 50), None);
        assert_eq!(gap_top_down(v.iter().rev().copied(), 10, 0, 45), Some(20));
        assert_eq!(gap_bottom_up(v.iter().copied(), 10, 0, 50), Some(0));
        assert_eq!(gap_bottom_up(v.iter().copied(), 10, 5, 50), Some(20));
        assert_eq!(gap_bottom_up(v.iter().copied(), 10, 15, 38), Some(20));
    }
}
