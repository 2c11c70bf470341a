//! Physical memory: the frame table (refcount, mapcount, flags per frame), the
//! buddy allocator that hands frames out, and the shared zero page.
//!
//! Frame 0 is reserved for the zero page (real machines reserve their first
//! page too); the buddy allocator manages frames 1..N. `frames_total` counts
//! the managed frames, so after every process has exited
//! `frames_free == frames_total`.

use crate::error::{Error, Result};

pub type Pfn = u32;
pub const MAX_ORDER: usize = 10;
const NIL: u32 = u32::MAX;
const NOT_FREE: u8 = u8::MAX;

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
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Frame {
    /// References: one per PTE mapping it (the zero page excepted), one per
    /// page-cache entry holding it, one for a page-table page.
    /// While the frame heads a free buddy block: the next block on its list.
    pub refcount: u32,
    /// Number of PTEs mapping the frame.
    /// While the frame heads a free buddy block: the previous block on its list.
    pub mapcount: u32,
    pub flags: u16,
    /// The order of the free buddy block this frame heads, else NOT_FREE.
    order: u8,
}

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
/// [base, end), orders 0..=MAX_ORDER. Like Linux's struct page, whose lru
/// list head links free pages, a free block's first frame keeps the block's
/// list links in its (then unused) refcount and mapcount fields, so the
/// allocator costs no memory of its own per frame.
pub struct PhysMem {
    frames: Vec<Frame>,
    base: Pfn,
    end: Pfn,
    heads: [u32; MAX_ORDER + 1],
    nr_free: [u64; MAX_ORDER + 1],
    free_frames: u64,
    zero_pfn: Pfn,
    /// Frames in use as page-table pages (every PGD included).
    table_frames: u64,
    /// Frames holding user pages: anonymous, page cache, shmem.
    user_frames: u64,
    /// Free order-0 frames kept off the buddy lists, as Linux's per-CPU
    /// page lists (per_cpu_pages) keep them: single-page allocations and
    /// frees touch this list, and the buddy allocator only in batches.
    pcp: Vec<Pfn>,
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
            frames: vec![Frame { refcount: 0, mapcount: 0, flags: 0, order: NOT_FREE }; nframes as usize],
            base: 1,
            end: nframes,
            heads: [NIL; MAX_ORDER + 1],
            nr_free: [0; MAX_ORDER + 1],
            free_frames: 0,
            zero_pfn: 0,
            table_frames: 0,
            user_frames: 0,
            pcp: Vec::with_capacity(PCP_HIGH + 1),
        };
        m.frames[0] = Frame { refcount: 1, mapcount: 0, flags: flags::ZERO, order: NOT_FREE };
        // Hand every managed frame to the allocator in maximal aligned blocks.
        let mut pfn = m.base;
        while pfn < m.end {
            let mut order = MAX_ORDER;
            while order > 0 && (!pfn.is_multiple_of(1 << order) || pfn as u64 + (1u64 << order) > m.end as u64) {
                order -= 1;
            }
            m.push(pfn, order);
            pfn += 1 << order;
        }
        Ok(m)
    }

    // ----- the buddy allocator's free lists ------------------------------

    fn push(&mut self, pfn: Pfn, order: usize) {
        let head = self.heads[order];
        let f = &mut self.frames[pfn as usize];
        f.refcount = head; // next
        f.mapcount = NIL; // prev
        f.order = order as u8;
        if head != NIL {
            self.frames[head as usize].mapcount = pfn;
        }
        self.heads[order] = pfn;
        self.nr_free[order] += 1;
        self.free_frames += 1 << order;
    }

    fn unlink(&mut self, pfn: Pfn, order: usize) {
        let f = self.frames[pfn as usize];
        let (next, prev) = (f.refcount, f.mapcount);
        if prev != NIL {
            self.frames[prev as usize].refcount = next;
        } else {
            self.heads[order] = next;
        }
        if next != NIL {
            self.frames[next as usize].mapcount = prev;
        }
        let f = &mut self.frames[pfn as usize];
        f.order = NOT_FREE;
        f.refcount = 0;
        f.mapcount = 0;
        self.nr_free[order] -= 1;
        self.free_frames -= 1 << order;
    }

    #[inline]
    fn buddy_alloc(&mut self, order: usize) -> Option<Pfn> {
        let mut found = order;
        while found <= MAX_ORDER && self.heads[found] == NIL {
            found += 1;
        }
        if found > MAX_ORDER {
            return None;
        }
        let pfn = self.heads[found];
        self.unlink(pfn, found);
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
            if buddy < self.base || buddy >= self.end || self.frames[buddy as usize].order != order as u8 {
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

    pub fn nframes(&self) -> u32 {
        self.frames.len() as u32
    }

    /// One frame with refcount 1, or `None` when memory is exhausted.
    #[inline]
    pub fn alloc_frame(&mut self, usage: FrameUse) -> Option<Pfn> {
        if self.pcp.is_empty() {
            // rmqueue_bulk: a batch from the buddy allocator at once.
            for _ in 0..PCP_BATCH {
                let Some(pfn) = self.buddy_alloc(0) else { break };
                self.pcp.push(pfn);
            }
            self.pcp.reverse(); // hand them out in address order
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

    /// Drop one reference; the frame goes back to the buddy allocator at zero.
    #[inline]
    pub fn put_frame(&mut self, pfn: Pfn) {
        let f = &mut self.frames[pfn as usize];
        debug_assert!(f.refcount > 0 && f.order == NOT_FREE, "put_frame on free frame {pfn}");
        if f.flags & flags::ZERO != 0 {
            return;
        }
        f.refcount -= 1;
        if f.refcount == 0 {
            if f.flags & flags::PAGETABLE != 0 {
                self.table_frames -= 1;
            }
            if f.flags & (flags::ANON | flags::CACHE) != 0 {
                self.user_frames -= 1;
            }
            f.flags = 0;
            f.mapcount = 0;
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
            *f = Frame { refcount: 1, mapcount: 0, flags, order: NOT_FREE };
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

    /// Check the buddy allocator's own invariants and return, per frame,
    /// whether it is free.
    pub fn check(&self) -> std::result::Result<Vec<bool>, String> {
        let mut is_free = vec![false; self.frames.len()];
        let mut total = 0u64;
        for order in 0..=MAX_ORDER {
            let mut count = 0u64;
            let mut pfn = self.heads[order];
            let mut prev = NIL;
            while pfn != NIL {
                if pfn < self.base || pfn >= self.end || !pfn.is_multiple_of(1 << order) {
                    return Err(format!("buddy: free block {pfn} of order {order} misplaced or misaligned"));
                }
                let head = self.frames[pfn as usize];
                if head.mapcount != prev {
                    return Err(format!("buddy: list of order {order} has a broken back link at {pfn}"));
                }
                if head.order as usize != order {
                    return Err(format!("buddy: block {pfn} on list {order} not marked free at that order"));
                }
                for f in pfn..pfn + (1 << order) {
                    if f >= self.end || is_free[f as usize] {
                        return Err(format!("buddy: frame {f} is in two free blocks or past the end"));
                    }
                    is_free[f as usize] = true;
                    let frame = &self.frames[f as usize];
                    if f != pfn && (frame.refcount != 0 || frame.order != NOT_FREE) {
                        return Err(format!("frame {f} is inside a free block but in use"));
                    }
                }
                count += 1;
                prev = pfn;
                pfn = head.refcount;
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
            if pfn < self.base || pfn >= self.end || is_free[pfn as usize] || f.refcount != 0 || f.order != NOT_FREE {
                return Err(format!("per-CPU list: frame {pfn} is not a free order-0 frame"));
            }
            is_free[pfn as usize] = true;
        }
        for (pfn, f) in self.frames.iter().enumerate() {
            if !is_free[pfn] && f.refcount == 0 && pfn as u32 >= self.base {
                return Err(format!("frame {pfn} has refcount 0 but is not free: leaked"));
            }
            if !is_free[pfn] && f.order != NOT_FREE {
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
    fn zero_page_is_pinned() {
        let mut m = PhysMem::new(64).unwrap();
        let z = m.zero_pfn();
        m.put_frame(z);
        assert_eq!(m.frame(z).refcount, 1);
        m.check().unwrap();
    }
}
