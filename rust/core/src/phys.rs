//! Physical memory: the frame table (refcount, mapcount, flags per frame), the
//! buddy allocator that hands frames out, and the shared zero page.
//!
//! Frame 0 is reserved for the zero page (real machines reserve their first
//! page too); the buddy allocator manages frames 1..N. `frames_total` counts
//! the managed frames, so after every process has exited
//! `frames_free == frames_total`.

use crate::error::{Error, Result};
use rustc_hash::FxHashMap;

pub type Pfn = u32;
pub const MAX_ORDER: usize = 10;

/// Frame flag bits.
pub mod flags {
    /// An anonymous page (counted in rss_anon when mapped).
    pub const ANON: u16 = 1 << 0;
    /// Anonymous page known to be mapped by one mm only (PageAnonExclusive).
    pub const ANON_EXCLUSIVE: u16 = 1 << 1;
    /// A page-table page.
    pub const PAGETABLE: u16 = 1 << 2;
    /// The shared zero page.
    pub const ZERO: u16 = 1 << 3;
    /// A page-cache (or shmem) page.
    pub const CACHE: u16 = 1 << 4;
    /// Modified since it was last written back.
    pub const DIRTY: u16 = 1 << 5;
    /// Kernel memory from alloc_pages (and large kmalloc, vmalloc backing).
    pub const KERNEL: u16 = 1 << 6;
    /// Part of a slab; `mapcount` then holds the slab's id (kernel pages are
    /// never mapped by user PTEs, as struct page reuses its fields for slabs).
    pub const SLAB: u16 = 1 << 7;
    /// A page-cache page of a regular file (counted in rss_file; shmem pages in rss_shmem).
    pub const FILE: u16 = 1 << 8;
    /// The head of a free buddy block (PageBuddy); `mapcount` then holds its order.
    pub const BUDDY: u16 = 1 << 9;
    /// PG_readahead: a page-cache page whose fault starts the next readahead window.
    pub const READAHEAD: u16 = 1 << 10;
    /// Read by readahead and not mapped by any fault since (a read that may be wasted).
    pub const READ_AHEAD_UNUSED: u16 = 1 << 11;
    /// MADV_FREE: an anonymous page reclaim may discard (no swap) while it stays clean.
    pub const LAZYFREE: u16 = 1 << 12;
}

/// One frame's descriptor, 8 bytes (the frame table is the simulator's
/// largest per-page cost after the PTE).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Frame {
    /// References: one per PTE mapping it (the zero page excepted), one per
    /// page-cache entry holding it, one for a page-table page.
    pub refcount: u32,
    /// PTEs mapping the frame, read through `PhysMem::mapcount`: at
    /// MAPCOUNT_SPILLED the count lives in PhysMem's overflow table. While
    /// the frame heads a free buddy block (flags::BUDDY): the block's order.
    mapcount: u16,
    pub flags: u16,
}

/// A free block head already seen while `drop_stale` rebuilds its list (only then).
const LISTED: u16 = 1 << 15;

/// A mapcount field at this value means the count is kept in the overflow table.
const MAPCOUNT_SPILLED: u16 = u16::MAX;

/// What a fresh frame is for; sets its flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameUse {
    Anon,
    PageTable,
    Cache,
    /// A page-cache page of a regular file.
    FileCache,
    Kernel,
    Slab,
}

/// Physical memory: the frame table and a binary buddy allocator over frames
/// [base, end), orders 0..=MAX_ORDER. A free block's head frame is marked
/// flags::BUDDY with its order, as Linux marks PageBuddy with the order in
/// page_private. The free lists are stacks of head frames: a block taken
/// off a list by coalescing stays on its stack as a stale entry, skipped
/// when popped (the mark is gone), so the frame table needs no list links.
pub struct PhysMem {
    frames: Vec<Frame>,
    base: Pfn,
    end: Pfn,
    /// Per order, the heads of free blocks, newest last (stale entries included).
    free_lists: [Vec<Pfn>; MAX_ORDER + 1],
    /// Per order, the free blocks (the live entries of `free_lists`).
    nr_free: [u64; MAX_ORDER + 1],
    free_frames: u64,
    zero_pfn: Pfn,
    /// Mapcounts too large for the frame's field (a page shared by more
    /// than 65,534 PTEs).
    mapcount_overflow: FxHashMap<Pfn, u32>,
    /// Frames in use as page-table pages (every PGD included).
    table_frames: u64,
    /// Frames holding user pages: anonymous, page cache, shmem.
    user_frames: u64,
    /// Free order-0 frames kept off the buddy lists, as Linux's per-CPU
    /// page lists (per_cpu_pages) keep them: single-page allocations and
    /// frees touch this list, and the buddy allocator only in batches.
    pcp: Vec<Pfn>,
    /// User frames freed since Linux reclaim last looked (only while it runs:
    /// its lists hold physical pages, and a freed page must leave them).
    freed: Vec<Pfn>,
    track_freed: bool,
}

/// Frames moved between the per-CPU list and the buddy allocator at once (pcp->batch).
const PCP_BATCH: usize = 63;
/// Above this many frames the list gives a batch back (pcp->high).
const PCP_HIGH: usize = 6 * PCP_BATCH;

impl PhysMem {
    /// Physical memory of `nframes` frames (frame 0 is the zero page).
    pub fn new(nframes: u32) -> Result<Self> {
        if nframes < 2 {
            return Err(Error::invalid("physical memory needs at least two frames (8KiB)"));
        }
        let mut m = PhysMem {
            frames: vec![Frame::default(); nframes as usize],
            base: 1,
            end: nframes,
            free_lists: Default::default(),
            nr_free: [0; MAX_ORDER + 1],
            free_frames: 0,
            zero_pfn: 0,
            mapcount_overflow: FxHashMap::default(),
            table_frames: 0,
            user_frames: 0,
            pcp: Vec::with_capacity(PCP_HIGH + 1),
            freed: Vec::new(),
            track_freed: false,
        };
        m.frames[0] = Frame { refcount: 1, mapcount: 0, flags: flags::ZERO };
        // Hand every managed frame to the allocator in maximal aligned blocks.
        m.free_range(m.base, m.end);
        Ok(m)
    }

    // ----- the buddy allocator's free lists ------------------------------

    fn push(&mut self, pfn: Pfn, order: usize) {
        let f = &mut self.frames[pfn as usize];
        f.flags = flags::BUDDY;
        f.mapcount = order as u16;
        self.free_lists[order].push(pfn);
        self.nr_free[order] += 1;
        self.free_frames += 1 << order;
    }

    /// Whether `pfn` heads a free block of `order` (page_is_buddy).
    #[inline]
    fn is_free_head(&self, pfn: Pfn, order: usize) -> bool {
        let f = &self.frames[pfn as usize];
        f.flags & flags::BUDDY != 0 && f.mapcount as usize == order
    }

    /// Take the free block at `pfn` off its list: its stack entry goes stale.
    fn unlink(&mut self, pfn: Pfn, order: usize) {
        let f = &mut self.frames[pfn as usize];
        f.flags = 0;
        f.mapcount = 0;
        self.nr_free[order] -= 1;
        self.free_frames -= 1 << order;
        let list = &self.free_lists[order];
        if list.len() > 2 * self.nr_free[order] as usize + 64 {
            self.drop_stale(order);
        }
    }

    /// Rebuild one stack from its live entries, newest kept when a head
    /// appears twice (freed, coalesced away and freed again), order kept.
    #[cold]
    fn drop_stale(&mut self, order: usize) {
        let mut list = std::mem::take(&mut self.free_lists[order]);
        // Newest first, marking each head kept, so an older entry of the
        // same head is dropped; then the marks go.
        list.reverse();
        list.retain(|&pfn| {
            let keep = self.is_free_head(pfn, order) && self.frames[pfn as usize].flags & LISTED == 0;
            if keep {
                self.frames[pfn as usize].flags |= LISTED;
            }
            keep
        });
        for &pfn in &list {
            self.frames[pfn as usize].flags &= !LISTED;
        }
        list.reverse();
        self.free_lists[order] = list;
    }

    /// The newest free block of `order`, off its list.
    #[inline]
    fn pop_free(&mut self, order: usize) -> Option<Pfn> {
        if self.nr_free[order] == 0 {
            return None;
        }
        // A live entry exists: the newest entry of a head still marked free
        // is that head's own (a later free pushes a later entry).
        while let Some(pfn) = self.free_lists[order].pop() {
            if self.is_free_head(pfn, order) {
                self.unlink(pfn, order);
                return Some(pfn);
            }
        }
        unreachable!("nr_free[{order}] counts a block its list does not hold")
    }

    #[inline]
    fn buddy_alloc(&mut self, order: usize) -> Option<Pfn> {
        let mut found = order;
        while found <= MAX_ORDER && self.nr_free[found] == 0 {
            found += 1;
        }
        if found > MAX_ORDER {
            return None;
        }
        let pfn = self.pop_free(found)?;
        // Split: give back the upper halves until the block is the size asked for.
        while found > order {
            found -= 1;
            self.push(pfn + (1 << found), found);
        }
        Some(pfn)
    }

    fn buddy_free(&mut self, mut pfn: Pfn, mut order: usize) {
        while order < MAX_ORDER {
            let buddy = pfn ^ (1 << order);
            if buddy < self.base || buddy >= self.end || !self.is_free_head(buddy, order) {
                break;
            }
            self.unlink(buddy, order);
            pfn = pfn.min(buddy);
            order += 1;
        }
        self.push(pfn, order);
    }

    // ----- frames ----------------------------------------------------------

    #[inline]
    pub fn zero_pfn(&self) -> Pfn {
        self.zero_pfn
    }

    /// Frames the buddy allocator manages (all but the reserved zero page).
    pub fn frames_total(&self) -> u64 {
        (self.end - self.base) as u64
    }

    /// Free frames: on the buddy lists and on the per-CPU list.
    pub fn frames_free(&self) -> u64 {
        self.free_frames + self.pcp.len() as u64
    }

    /// Give every frame of the per-CPU list back to the buddy allocator
    /// (drain_all_pages): a larger block may then form.
    pub fn drain_pcp(&mut self) {
        while let Some(pfn) = self.pcp.pop() {
            self.buddy_free(pfn, 0);
        }
    }

    pub fn table_frames(&self) -> u64 {
        self.table_frames
    }

    /// Frames holding user pages (anonymous, page cache, shmem).
    pub fn user_frames(&self) -> u64 {
        self.user_frames
    }

    /// Free blocks per order, like /proc/buddyinfo.
    pub fn buddyinfo(&self) -> [u64; MAX_ORDER + 1] {
        self.nr_free
    }

    #[inline]
    pub fn frame(&self, pfn: Pfn) -> &Frame {
        &self.frames[pfn as usize]
    }

    #[inline]
    pub fn frame_mut(&mut self, pfn: Pfn) -> &mut Frame {
        &mut self.frames[pfn as usize]
    }

    /// PTEs mapping the frame (page_mapcount); only meaningful for a frame in use.
    #[inline]
    pub fn mapcount(&self, pfn: Pfn) -> u32 {
        match self.frames[pfn as usize].mapcount {
            MAPCOUNT_SPILLED => self.mapcount_overflow[&pfn],
            n => n as u32,
        }
    }

    /// The first PTE maps a frame just allocated: a store, with no read of
    /// the descriptor the allocation has only just written.
    #[inline]
    pub fn map_first(&mut self, pfn: Pfn) {
        let f = &mut self.frames[pfn as usize];
        debug_assert_eq!(f.mapcount, 0, "map_first of a mapped frame {pfn}");
        f.mapcount = 1;
    }

    /// One more PTE maps the frame.
    #[inline]
    pub fn map_inc(&mut self, pfn: Pfn) {
        let f = &mut self.frames[pfn as usize];
        if f.mapcount < MAPCOUNT_SPILLED - 1 {
            f.mapcount += 1;
        } else {
            self.map_inc_spilled(pfn);
        }
    }

    #[cold]
    fn map_inc_spilled(&mut self, pfn: Pfn) {
        let f = &mut self.frames[pfn as usize];
        if f.mapcount == MAPCOUNT_SPILLED {
            *self.mapcount_overflow.get_mut(&pfn).expect("a spilled mapcount") += 1;
        } else {
            f.mapcount = MAPCOUNT_SPILLED;
            self.mapcount_overflow.insert(pfn, MAPCOUNT_SPILLED as u32);
        }
    }

    /// A PTE mapping the frame goes, and its reference with it (page_remove_rmap
    /// then put_page): one look at the descriptor. Returns the frame's flags
    /// as they were (for the RSS counter the mapping counted in).
    #[inline(always)]
    pub fn unmap_and_put(&mut self, pfn: Pfn) -> u16 {
        let f = &mut self.frames[pfn as usize];
        let frame_flags = f.flags;
        if f.mapcount == MAPCOUNT_SPILLED {
            self.map_dec_spilled(pfn);
            self.put_frame(pfn);
            return frame_flags;
        }
        debug_assert!(f.mapcount > 0 && f.refcount > 0, "unmap of an unmapped frame {pfn}");
        f.mapcount -= 1;
        if Self::drop_ref(f) {
            self.free_frame(pfn);
        }
        frame_flags
    }

    /// One mapping fewer of a frame whose count is in the overflow table.
    #[cold]
    fn map_dec_spilled(&mut self, pfn: Pfn) -> u32 {
        let count = self.mapcount_overflow[&pfn] - 1;
        if count < MAPCOUNT_SPILLED as u32 {
            self.mapcount_overflow.remove(&pfn);
            self.frames[pfn as usize].mapcount = count as u16;
        } else {
            self.mapcount_overflow.insert(pfn, count);
        }
        count
    }

    pub fn nframes(&self) -> u32 {
        self.frames.len() as u32
    }

    /// One frame with refcount 1, or `None` when memory is exhausted.
    #[inline(always)]
    pub fn alloc_frame(&mut self, usage: FrameUse) -> Option<Pfn> {
        if self.pcp.is_empty() {
            self.pcp_refill();
        }
        let pfn = self.pcp.pop()?;
        let flags = match usage {
            FrameUse::Anon => flags::ANON | flags::ANON_EXCLUSIVE,
            FrameUse::PageTable => {
                self.table_frames += 1;
                flags::PAGETABLE
            }
            FrameUse::Cache => flags::CACHE,
            FrameUse::FileCache => flags::CACHE | flags::FILE,
            FrameUse::Kernel => flags::KERNEL,
            FrameUse::Slab => flags::SLAB,
        };
        if flags & (flags::ANON | flags::CACHE) != 0 {
            self.user_frames += 1;
        }
        let f = &mut self.frames[pfn as usize];
        f.refcount = 1;
        f.mapcount = 0;
        f.flags = flags;
        Some(pfn)
    }

    /// rmqueue_bulk: a batch of single frames from the buddy allocator.
    /// Single allocations take the smallest free block and, splitting it,
    /// hand out its frames in address order before any other block: so the
    /// batch takes whole blocks at once and frees the unused tail of the
    /// last one as the splits would have left it.
    #[inline(never)]
    fn pcp_refill(&mut self) {
        let mut need = PCP_BATCH as Pfn;
        while need > 0 {
            let Some(order) = (0..=MAX_ORDER).find(|&o| self.nr_free[o] > 0) else { break };
            let pfn = self.pop_free(order).expect("nr_free says a block is free");
            let take = need.min(1 << order);
            self.pcp.extend(pfn..pfn + take);
            self.free_range(pfn + take, pfn + (1 << order));
            need -= take;
        }
        self.pcp.reverse(); // popped in address order
    }

    /// Put the frames [start, end) on the free lists as maximal aligned blocks.
    fn free_range(&mut self, start: Pfn, end: Pfn) {
        let mut pfn = start;
        while pfn < end {
            // As aligned as the frame number allows, as long as the rest allows.
            let aligned = pfn.trailing_zeros() as usize;
            let fits = (end - pfn).ilog2() as usize;
            let order = aligned.min(fits).min(MAX_ORDER);
            self.push(pfn, order);
            pfn += 1 << order;
        }
    }

    /// Drop one reference; the frame goes back to the buddy allocator at zero.
    #[inline(always)]
    pub fn put_frame(&mut self, pfn: Pfn) {
        let f = &mut self.frames[pfn as usize];
        debug_assert!(f.refcount > 0 && f.flags & flags::BUDDY == 0, "put_frame on free frame {pfn}");
        if Self::drop_ref(f) {
            self.free_frame(pfn);
        }
    }

    /// Drop one reference held in `f`; whether it was the last (the zero
    /// page's never is).
    #[inline(always)]
    fn drop_ref(f: &mut Frame) -> bool {
        if f.flags & flags::ZERO != 0 {
            return false;
        }
        f.refcount -= 1;
        f.refcount == 0
    }

    /// The last reference went: the frame goes to the per-CPU list.
    #[inline(never)]
    fn free_frame(&mut self, pfn: Pfn) {
        let f = &mut self.frames[pfn as usize];
        if f.flags & flags::PAGETABLE != 0 {
            self.table_frames -= 1;
        }
        if f.flags & (flags::ANON | flags::CACHE) != 0 {
            self.user_frames -= 1;
            if self.track_freed {
                self.freed.push(pfn);
            }
        }
        f.flags = 0;
        f.mapcount = 0; // a spilled count was given back as the last mapping went
        self.pcp.push(pfn);
        if self.pcp.len() > PCP_HIGH {
            // free_pcppages_bulk: the oldest batch goes back.
            let mut pcp = std::mem::take(&mut self.pcp);
            for pfn in pcp.drain(..PCP_BATCH) {
                self.buddy_free(pfn, 0);
            }
            self.pcp = pcp;
        }
    }

    /// 2^order contiguous frames for the kernel, each with refcount 1
    /// (alloc_pages). `None` when no block that large is free.
    pub fn alloc_block(&mut self, order: usize, usage: FrameUse) -> Option<Pfn> {
        if order > MAX_ORDER {
            return None;
        }
        let pfn = match self.buddy_alloc(order) {
            Some(pfn) => pfn,
            None => {
                // Free frames may sit on the per-CPU list: give them back and retry.
                self.drain_pcp();
                self.buddy_alloc(order)?
            }
        };
        let flags = if usage == FrameUse::Slab { flags::SLAB } else { flags::KERNEL };
        for f in &mut self.frames[pfn as usize..(pfn as usize + (1 << order))] {
            *f = Frame { refcount: 1, mapcount: 0, flags };
        }
        Some(pfn)
    }

    /// Give a block from `alloc_block` back (free_pages). The caller has
    /// checked that the block and order are right.
    pub fn free_block(&mut self, pfn: Pfn, order: usize) {
        for f in &mut self.frames[pfn as usize..(pfn as usize + (1 << order))] {
            f.refcount = 0;
            f.mapcount = 0;
            f.flags = 0;
        }
        self.buddy_free(pfn, order);
    }

    /// Drop a reference that is about to be replaced by another (the frame
    /// may sit at refcount 0 for that moment, but is not freed).
    #[inline]
    pub fn put_frame_keep(&mut self, pfn: Pfn) {
        self.frames[pfn as usize].refcount -= 1;
    }

    #[inline]
    pub fn get_frame(&mut self, pfn: Pfn) {
        self.frames[pfn as usize].refcount += 1;
    }

    /// Record every user frame freed from now on (or stop), for `drain_freed`.
    pub fn track_freed(&mut self, on: bool) {
        self.track_freed = on;
    }

    /// Hand every user frame freed since the last call to `f`, oldest first.
    pub fn drain_freed(&mut self, mut f: impl FnMut(Pfn)) {
        for pfn in self.freed.drain(..) {
            f(pfn);
        }
    }

    /// Check the buddy allocator's own invariants and return, per frame,
    /// whether it is free.
    pub fn check(&self) -> std::result::Result<Vec<bool>, String> {
        let mut is_free = vec![false; self.frames.len()];
        let mut total = 0u64;
        for order in 0..=MAX_ORDER {
            let mut count = 0u64;
            for &pfn in self.free_lists[order].iter().rev() {
                if pfn < self.base || pfn >= self.end || !pfn.is_multiple_of(1 << order) {
                    return Err(format!("buddy: free block {pfn} of order {order} misplaced or misaligned"));
                }
                if !self.is_free_head(pfn, order) || is_free[pfn as usize] {
                    continue; // stale, or an older entry of a head already counted
                }
                for f in pfn..pfn + (1 << order) {
                    if f >= self.end || is_free[f as usize] {
                        return Err(format!("buddy: frame {f} is in two free blocks or past the end"));
                    }
                    is_free[f as usize] = true;
                    let frame = &self.frames[f as usize];
                    if f != pfn && (frame.refcount != 0 || frame.flags != 0) {
                        return Err(format!("frame {f} is inside a free block but in use"));
                    }
                }
                count += 1;
            }
            if count != self.nr_free[order] {
                return Err(format!("buddy: order {order} counts {} blocks, list holds {count}", self.nr_free[order]));
            }
            total += count << order;
        }
        if total != self.free_frames {
            return Err(format!("buddy: free_frames {} but lists hold {total}", self.free_frames));
        }
        for &pfn in &self.pcp {
            let f = &self.frames[pfn as usize];
            if pfn < self.base || pfn >= self.end || is_free[pfn as usize] || f.refcount != 0 || f.flags != 0 {
                return Err(format!("per-CPU list: frame {pfn} is not a free order-0 frame"));
            }
            is_free[pfn as usize] = true;
        }
        for (pfn, f) in self.frames.iter().enumerate() {
            if !is_free[pfn] && f.refcount == 0 && pfn as u32 >= self.base {
                return Err(format!("frame {pfn} has refcount 0 but is not free: leaked"));
            }
            if !is_free[pfn] && f.flags & flags::BUDDY != 0 {
                return Err(format!("frame {pfn} is marked as a free block head but is on no list"));
            }
        }
        Ok(is_free)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_frames_start_free_and_return() {
        let mut m = PhysMem::new(4096).unwrap();
        assert_eq!(m.frames_total(), 4095);
        assert_eq!(m.frames_free(), 4095);
        let got: Vec<_> = (0..4095).map(|_| m.alloc_frame(FrameUse::Anon).unwrap()).collect();
        assert_eq!(m.frames_free(), 0);
        assert!(m.alloc_frame(FrameUse::Anon).is_none());
        assert!(!got.contains(&0), "the zero page is never handed out");
        for pfn in got {
            m.put_frame(pfn);
        }
        assert_eq!(m.frames_free(), 4095);
        m.check().unwrap();
        // Single frames wait on the per-CPU list; drained, they coalesce back
        // to maximal blocks: 4096 frames minus frame 0.
        m.drain_pcp();
        assert_eq!(m.buddyinfo()[MAX_ORDER], 3);
    }

    #[test]
    fn split_and_coalesce() {
        let mut m = PhysMem::new(2048).unwrap(); // frames 1..2048
        let before = m.buddyinfo();
        let a = m.alloc_frame(FrameUse::Anon).unwrap();
        assert_eq!(a, 1, "lowest order-0 block is frame 1");
        let b = m.alloc_frame(FrameUse::Anon).unwrap();
        m.check().unwrap();
        m.put_frame(a);
        m.put_frame(b);
        m.drain_pcp();
        assert_eq!(m.buddyinfo(), before);
        m.check().unwrap();
    }

    #[test]
    fn refcount_keeps_frame() {
        let mut m = PhysMem::new(64).unwrap();
        let a = m.alloc_frame(FrameUse::Anon).unwrap();
        m.get_frame(a);
        m.put_frame(a);
        assert_eq!(m.frame(a).refcount, 1);
        m.put_frame(a);
        assert_eq!(m.frames_free(), 63);
    }

    /// Random alloc_block/free_block sequences against a model of which
    /// frames are taken: no overlap, alignment kept, everything coalesces back.
    #[test]
    fn random_blocks_against_a_model() {
        let mut rng = crate::testing::XorShift::new(0x1234_5678);
        let mut rnd = |n: u64| rng.below(n);
        let mut m = PhysMem::new(4096).unwrap();
        let mut taken = vec![false; 4096];
        let mut blocks: Vec<(Pfn, usize)> = Vec::new();
        for step in 0..20_000 {
            if rnd(3) > 0 || blocks.is_empty() {
                let order = rnd(5) as usize;
                match m.alloc_block(order, FrameUse::Kernel) {
                    Some(pfn) => {
                        assert_eq!(pfn % (1 << order), 0, "misaligned block");
                        for f in pfn..pfn + (1 << order) {
                            assert!(!taken[f as usize], "frame {f} handed out twice");
                            taken[f as usize] = true;
                        }
                        blocks.push((pfn, order));
                    }
                    None => {
                        // Refused: then no free block of that order may exist.
                        assert!(m.buddyinfo()[order..].iter().all(|&n| n == 0));
                    }
                }
            } else {
                let (pfn, order) = blocks.swap_remove(rnd(blocks.len() as u64) as usize);
                for f in pfn..pfn + (1 << order) {
                    taken[f as usize] = false;
                }
                m.free_block(pfn, order);
            }
            let used: u64 = blocks.iter().map(|&(_, o)| 1u64 << o).sum();
            assert_eq!(m.frames_free(), m.frames_total() - used);
            if step % 1000 == 0 {
                m.check().unwrap();
            }
        }
        for (pfn, order) in blocks {
            m.free_block(pfn, order);
        }
        m.check().unwrap();
        assert_eq!(m.buddyinfo()[MAX_ORDER], 3, "everything coalesced back");
    }

    #[test]
    fn frame_descriptor_is_eight_bytes() {
        assert_eq!(size_of::<Frame>(), 8);
    }

    /// Past 65,534 mappings the count moves to the overflow table and back.
    #[test]
    fn mapcount_spills_and_returns() {
        let mut m = PhysMem::new(64).unwrap();
        let a = m.alloc_frame(FrameUse::Anon).unwrap();
        let n = MAPCOUNT_SPILLED as u32 + 10;
        for i in 1..=n {
            m.map_inc(a);
            m.get_frame(a); // each mapping holds a reference
            assert_eq!(m.mapcount(a), i);
        }
        assert_eq!(m.mapcount_overflow.len(), 1);
        for i in (0..n).rev() {
            assert_eq!(m.unmap_and_put(a), flags::ANON | flags::ANON_EXCLUSIVE);
            assert_eq!(m.mapcount(a), i);
            assert_eq!(m.frame(a).refcount, i + 1);
        }
        assert!(m.mapcount_overflow.is_empty());
        m.put_frame(a);
        assert_eq!(m.frames_free(), m.frames_total());
        m.check().unwrap();
    }

    /// The batch refill leaves the buddy lists as PCP_BATCH single
    /// allocations would: same frames handed out, same free blocks after,
    /// whatever blocks the lists held (here fragmented by freed blocks).
    #[test]
    fn batch_refill_equals_single_allocations() {
        let mut rng = crate::testing::XorShift::new(7);
        let mut batched = PhysMem::new(4096).unwrap();
        let mut single = PhysMem::new(4096).unwrap();
        for round in 0..40 {
            let order = rng.below(4) as usize;
            if let (Some(a), Some(b)) =
                (batched.alloc_block(order, FrameUse::Kernel), single.alloc_block(order, FrameUse::Kernel))
            {
                assert_eq!(a, b);
                if round % 3 == 0 {
                    batched.free_block(a, order);
                    single.free_block(b, order);
                }
            }
            let got: Vec<Pfn> = (0..PCP_BATCH).map_while(|_| batched.alloc_frame(FrameUse::Anon)).collect();
            let want: Vec<Pfn> = (0..got.len()).map_while(|_| single.buddy_alloc(0)).collect();
            assert_eq!(got, want, "round {round}");
            assert_eq!(batched.buddyinfo(), single.buddyinfo(), "round {round}");
            batched.check().unwrap();
        }
    }

    /// Blocks coalesced off a list and freed again leave stale and repeated
    /// stack entries: allocation still takes the newest live block, and the
    /// stacks stay bounded.
    #[test]
    fn stale_entries_are_skipped_and_bounded() {
        let mut m = PhysMem::new(2048).unwrap();
        for _ in 0..10_000 {
            let a = m.alloc_block(0, FrameUse::Kernel).unwrap();
            let b = m.alloc_block(3, FrameUse::Kernel).unwrap();
            m.free_block(a, 0);
            m.free_block(b, 3);
        }
        m.check().unwrap();
        assert!(m.free_lists.iter().map(Vec::len).sum::<usize>() < 1024);
        assert_eq!(m.buddyinfo()[MAX_ORDER], 1);
    }

    #[test]
    fn zero_page_is_pinned() {
        let mut m = PhysMem::new(64).unwrap();
        let z = m.zero_pfn();
        m.put_frame(z);
        assert_eq!(m.frame(z).refcount, 1);
        m.check().unwrap();
    }
}
