//! Swap space: slots with a reference count (one per PTE holding a swap entry
//! for it) and the swap cache (a slot's page while it is still in memory:
//! written out but mapped elsewhere, or swapped in for one of several PTEs).

use crate::phys::{Pfn, PhysMem};
use rustc_hash::FxHashMap as HashMap;

/// Host memory follows the slots in use, not the swap size declared: slot
/// counts are kept for slots handed out so far, and a swap of terabytes
/// costs nothing until it is used.
#[derive(Default)]
pub struct SwapSpace {
    /// Slots the swap space has.
    total: u32,
    /// PTEs referring to each slot handed out so far; 0 = free.
    refs: Vec<u32>,
    /// Slots handed out and freed again, for reuse before fresh ones.
    free: Vec<u32>,
    /// Slot -> the page still in memory for it (the cache holds one reference).
    cache: HashMap<u32, Pfn>,
    /// Page -> its slot, for pages in the swap cache.
    page_slot: HashMap<Pfn, u32>,
    pub swap_ins: u64,
    pub swap_outs: u64,
}

/// The most swap slots (a u32 slot number fits a swap entry's offset field here).
pub const MAX_SWAP_SLOTS: u64 = u32::MAX as u64;

impl SwapSpace {
    pub fn new(slots: u64) -> SwapSpace {
        SwapSpace { total: slots.min(MAX_SWAP_SLOTS) as u32, ..Default::default() }
    }

    pub fn total(&self) -> u64 {
        self.total as u64
    }

    pub fn used(&self) -> u64 {
        (self.refs.len() - self.free.len()) as u64
    }

    /// A free slot with no references yet, if any.
    pub fn alloc(&mut self) -> Option<u32> {
        if let Some(slot) = self.free.pop() {
            return Some(slot);
        }
        if self.refs.len() < self.total as usize {
            self.refs.push(0);
            return Some((self.refs.len() - 1) as u32);
        }
        None
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phys::FrameUse;

    #[test]
    fn slots_are_counted_and_the_last_reference_frees_them() {
        let mut phys = PhysMem::new(16).unwrap();
        let mut swap = SwapSpace::new(2);
        assert_eq!((swap.total(), swap.used()), (2, 0));
        let a = swap.alloc().unwrap();
        let b = swap.alloc().unwrap();
        assert_ne!(a, b);
        assert_eq!(swap.alloc(), None, "two slots only");
        swap.get(a);
        swap.get(a); // shared by two PTEs (fork)
        assert_eq!(swap.refs(a), 2);
        swap.put(a, &mut phys);
        assert_eq!(swap.used(), 2, "one PTE still refers to it");
        swap.put(a, &mut phys);
        assert_eq!((swap.used(), swap.in_use().count()), (1, 0));
        assert_eq!(swap.alloc(), Some(a), "freed slots are reused");
    }

    #[test]
    fn the_swap_cache_holds_a_page_reference_until_the_slot_goes() {
        let mut phys = PhysMem::new(16).unwrap();
        let free = phys.frames_free();
        let mut swap = SwapSpace::new(4);
        let pfn = phys.alloc_frame(FrameUse::Anon).unwrap();
        let slot = swap.alloc().unwrap();
        swap.get(slot);
        swap.cache_page(slot, pfn, &mut phys);
        swap.cache_page(slot, pfn, &mut phys); // already cached: no second reference
        assert_eq!(phys.frame(pfn).refcount, 2);
        assert_eq!((swap.cached_page(slot), swap.slot_of(pfn)), (Some(pfn), Some(slot)));
        phys.put_frame(pfn); // the mapping's reference goes; the cache keeps the page
        assert_eq!(phys.frame(pfn).refcount, 1);
        swap.put(slot, &mut phys); // the last swap entry: slot and cached page go
        assert_eq!((swap.cached_page(slot), swap.slot_of(pfn)), (None, None));
        assert_eq!(phys.frames_free(), free);
    }

    #[test]
    fn uncache_drops_the_page_but_keeps_the_slot() {
        let mut phys = PhysMem::new(16).unwrap();
        let mut swap = SwapSpace::new(1);
        let pfn = phys.alloc_frame(FrameUse::Anon).unwrap();
        let slot = swap.alloc().unwrap();
        swap.get(slot);
        swap.cache_page(slot, pfn, &mut phys);
        phys.put_frame(pfn);
        swap.uncache(slot, &mut phys);
        assert_eq!((swap.cached().count(), swap.refs(slot)), (0, 1));
        assert_eq!(phys.frames_free(), phys.frames_total());
    }
}
