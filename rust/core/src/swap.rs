//! Swap space: slots with a reference count (one per PTE holding a swap entry
//! for it) and the swap cache (a slot's page while it is still in memory:
//! written out but mapped elsewhere, or swapped in for one of several PTEs).

use crate::phys::{Pfn, PhysMem};
use rustc_hash::FxHashMap as HashMap;

#[derive(Default)]
pub struct SwapSpace {
    /// PTEs referring to each slot; 0 = free.
    refs: Vec<u32>,
    free: Vec<u32>,
    /// Slot -> the page still in memory for it (the cache holds one reference).
    cache: HashMap<u32, Pfn>,
    /// Page -> its slot, for pages in the swap cache.
    page_slot: HashMap<Pfn, u32>,
    pub swap_ins: u64,
    pub swap_outs: u64,
}

impl SwapSpace {
    pub fn new(slots: u64) -> SwapSpace {
        let n = slots.min(u32::MAX as u64) as u32;
        SwapSpace { refs: vec![0; n as usize], free: (0..n).rev().collect(), ..Default::default() }
    }

    pub fn total(&self) -> u64 {
        self.refs.len() as u64
    }

    pub fn used(&self) -> u64 {
        self.total() - self.free.len() as u64
    }

    /// The page still in memory for `slot` (the swap cache), if any.
    pub fn cached_page(&self, slot: u32) -> Option<Pfn> {
        self.cache.get(&slot).copied()
    }

    /// The slot whose swap-cache page `pfn` is, if it is one.
    pub fn slot_of(&self, pfn: Pfn) -> Option<u32> {
        self.page_slot.get(&pfn).copied()
    }

    /// (slot, page) of every page in the swap cache.
    pub fn cached(&self) -> impl Iterator<Item = (u32, Pfn)> + '_ {
        self.cache.iter().map(|(&s, &p)| (s, p))
    }

    /// A free slot with no references yet, if any.
    pub fn alloc(&mut self) -> Option<u32> {
        self.free.pop()
    }

    pub fn refs(&self, slot: u32) -> u32 {
        self.refs[slot as usize]
    }

    pub fn get(&mut self, slot: u32) {
        self.refs[slot as usize] += 1;
    }

    /// One PTE less refers to `slot`; the last frees it and drops its swap-cache page.
    pub fn put(&mut self, slot: u32, phys: &mut PhysMem) {
        let r = &mut self.refs[slot as usize];
        *r -= 1;
        if *r == 0 {
            self.free.push(slot);
            if let Some(pfn) = self.cache.remove(&slot) {
                self.page_slot.remove(&pfn);
                phys.put_frame(pfn);
            }
        }
    }

    /// Keep `pfn` in the swap cache for `slot` (taking a reference on it).
    pub fn cache_page(&mut self, slot: u32, pfn: Pfn, phys: &mut PhysMem) {
        if self.cache.insert(slot, pfn).is_none() {
            phys.get_frame(pfn);
            self.page_slot.insert(pfn, slot);
        }
    }

    /// Drop `slot`'s page from the swap cache (after it was written out).
    pub fn uncache(&mut self, slot: u32, phys: &mut PhysMem) {
        if let Some(pfn) = self.cache.remove(&slot) {
            self.page_slot.remove(&pfn);
            phys.put_frame(pfn);
        }
    }

    /// (slot, refs) of every slot in use, and the cached pages, for check().
    pub fn in_use(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.refs.iter().enumerate().filter(|(_, &r)| r > 0).map(|(s, &r)| (s as u32, r))
    }
}
