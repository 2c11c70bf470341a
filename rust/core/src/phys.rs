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
    pub const ANON: u8 = 1 << 0;
    /// Anonymous page known to be mapped by one mm only (PageAnonExclusive).
    pub const ANON_EXCLUSIVE: u8 = 1 << 1;
    /// A page-table page.
    pub const PAGETABLE: u8 = 1 << 2;
    /// The shared zero page.
    pub const ZERO: u8 = 1 << 3;
    /// A page-cache (or shmem) page.
    pub const CACHE: u8 = 1 << 4;
    /// Modified since it was last written back.
    pub const DIRTY: u8 = 1 << 5;
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Frame {
    /// References: one per PTE mapping it (the zero page excepted), one per
    /// page-cache entry holding it, one for a page-table page.
    pub refcount: u32,
    /// Number of PTEs mapping the frame.
    pub mapcount: u32,
    pub flags: u8,
}

/// What a fresh frame is for; sets its flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameUse {
    Anon,
    PageTable,
    Cache,
}

/// Binary buddy allocator over frames [base, end), orders 0..=MAX_ORDER.
/// Free blocks sit on intrusive doubly-linked lists (next/prev indexed by pfn)
/// so that a buddy can be unlinked in O(1) when it coalesces.
struct Buddy {
    base: Pfn,
    end: Pfn,
    heads: [u32; MAX_ORDER + 1],
    next: Vec<u32>,
    prev: Vec<u32>,
    /// For the first frame of a free block, its order; NOT_FREE otherwise.
    free_order: Vec<u8>,
    nr_free: [u64; MAX_ORDER + 1],
    free_frames: u64,
}

impl Buddy {
    fn new(nframes: u32, base: Pfn) -> Self {
        let n = nframes as usize;
        let mut b = Buddy {
            base,
            end: nframes,
            heads: [NIL; MAX_ORDER + 1],
            next: vec![NIL; n],
            prev: vec![NIL; n],
            free_order: vec![NOT_FREE; n],
            nr_free: [0; MAX_ORDER + 1],
            free_frames: 0,
        };
        // Hand every managed frame to the allocator in maximal aligned blocks.
        let mut pfn = base;
        while pfn < b.end {
            let mut order = MAX_ORDER;
            while order > 0
                && (pfn % (1 << order) != 0 || pfn as u64 + (1u64 << order) > b.end as u64)
            {
                order -= 1;
            }
            b.push(pfn, order);
            pfn += 1 << order;
        }
        b
    }

    fn push(&mut self, pfn: Pfn, order: usize) {
        let head = self.heads[order];
        self.next[pfn as usize] = head;
        self.prev[pfn as usize] = NIL;
        if head != NIL {
            self.prev[head as usize] = pfn;
        }
        self.heads[order] = pfn;
        self.free_order[pfn as usize] = order as u8;
        self.nr_free[order] += 1;
        self.free_frames += 1 << order;
    }

    fn unlink(&mut self, pfn: Pfn, order: usize) {
        let (n, p) = (self.next[pfn as usize], self.prev[pfn as usize]);
        if p != NIL {
            self.next[p as usize] = n;
        } else {
            self.heads[order] = n;
        }
        if n != NIL {
            self.prev[n as usize] = p;
        }
        self.free_order[pfn as usize] = NOT_FREE;
        self.nr_free[order] -= 1;
        self.free_frames -= 1 << order;
    }

    #[inline]
    fn alloc(&mut self, order: usize) -> Option<Pfn> {
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

    fn free(&mut self, mut pfn: Pfn, mut order: usize) {
        while order < MAX_ORDER {
            let buddy = pfn ^ (1 << order);
            if buddy < self.base
                || buddy >= self.end
                || self.free_order[buddy as usize] != order as u8
            {
                break;
            }
            self.unlink(buddy, order);
            pfn = pfn.min(buddy);
            order += 1;
        }
        self.push(pfn, order);
    }
}

pub struct PhysMem {
    frames: Vec<Frame>,
    buddy: Buddy,
    zero_pfn: Pfn,
    /// Frames in use as page-table pages (every PGD included).
    table_frames: u64,
}

impl PhysMem {
    /// Physical memory of `nframes` frames (frame 0 is the zero page).
    pub fn new(nframes: u32) -> Result<Self> {
        if nframes < 2 {
            return Err(Error::invalid(
                "physical memory needs at least two frames (8KiB)",
            ));
        }
        let mut frames = vec![Frame::default(); nframes as usize];
        frames[0] = Frame {
            refcount: 1,
            mapcount: 0,
            flags: flags::ZERO,
        };
        Ok(PhysMem {
            frames,
            buddy: Buddy::new(nframes, 1),
            zero_pfn: 0,
            table_frames: 0,
        })
    }

    #[inline]
    pub fn zero_pfn(&self) -> Pfn {
        self.zero_pfn
    }

    /// Frames the buddy allocator manages (all but the reserved zero page).
    pub fn frames_total(&self) -> u64 {
        (self.buddy.end - self.buddy.base) as u64
    }

    pub fn frames_free(&self) -> u64 {
        self.buddy.free_frames
    }

    pub fn table_frames(&self) -> u64 {
        self.table_frames
    }

    /// Free blocks per order, like /proc/buddyinfo.
    pub fn buddyinfo(&self) -> [u64; MAX_ORDER + 1] {
        self.buddy.nr_free
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
        let pfn = self.buddy.alloc(0)?;
        let f = &mut self.frames[pfn as usize];
        f.refcount = 1;
        f.mapcount = 0;
        f.flags = match usage {
            FrameUse::Anon => flags::ANON | flags::ANON_EXCLUSIVE,
            FrameUse::PageTable => {
                self.table_frames += 1;
                flags::PAGETABLE
            }
            FrameUse::Cache => flags::CACHE,
        };
        Some(pfn)
    }

    /// Drop one reference; the frame goes back to the buddy allocator at zero.
    #[inline]
    pub fn put_frame(&mut self, pfn: Pfn) {
        let f = &mut self.frames[pfn as usize];
        debug_assert!(f.refcount > 0, "put_frame on free frame {pfn}");
        if f.flags & flags::ZERO != 0 {
            return;
        }
        f.refcount -= 1;
        if f.refcount == 0 {
            if f.flags & flags::PAGETABLE != 0 {
                self.table_frames -= 1;
            }
            f.flags = 0;
            f.mapcount = 0;
            self.buddy.free(pfn, 0);
        }
    }

    #[inline]
    pub fn get_frame(&mut self, pfn: Pfn) {
        self.frames[pfn as usize].refcount += 1;
    }

    /// Whether `pfn` starts a free block, and of which order.
    fn free_block_order(&self, pfn: Pfn) -> Option<usize> {
        match self.buddy.free_order[pfn as usize] {
            NOT_FREE => None,
            o => Some(o as usize),
        }
    }

    /// Check the buddy allocator's own invariants and return, per frame,
    /// whether it is free.
    pub fn check(&self) -> std::result::Result<Vec<bool>, String> {
        let b = &self.buddy;
        let mut is_free = vec![false; self.frames.len()];
        let mut total = 0u64;
        for order in 0..=MAX_ORDER {
            let mut count = 0u64;
            let mut pfn = b.heads[order];
            let mut prev = NIL;
            while pfn != NIL {
                if pfn < b.base || pfn >= b.end || pfn % (1 << order) != 0 {
                    return Err(format!(
                        "buddy: free block {pfn} of order {order} misplaced or misaligned"
                    ));
                }
                if b.prev[pfn as usize] != prev {
                    return Err(format!(
                        "buddy: list of order {order} has a broken back link at {pfn}"
                    ));
                }
                if self.free_block_order(pfn) != Some(order) {
                    return Err(format!(
                        "buddy: block {pfn} on list {order} not marked free at that order"
                    ));
                }
                for f in pfn..pfn + (1 << order) {
                    if f >= b.end || is_free[f as usize] {
                        return Err(format!(
                            "buddy: frame {f} is in two free blocks or past the end"
                        ));
                    }
                    is_free[f as usize] = true;
                    if self.frames[f as usize].refcount != 0 {
                        return Err(format!(
                            "frame {f} is free but has refcount {}",
                            self.frames[f as usize].refcount
                        ));
                    }
                }
                count += 1;
                prev = pfn;
                pfn = b.next[pfn as usize];
            }
            if count != b.nr_free[order] {
                return Err(format!(
                    "buddy: order {order} counts {} blocks, list holds {count}",
                    b.nr_free[order]
                ));
            }
            total += count << order;
        }
        if total != b.free_frames {
            return Err(format!(
                "buddy: free_frames {} but lists hold {total}",
                b.free_frames
            ));
        }
        for (pfn, f) in self.frames.iter().enumerate() {
            if !is_free[pfn] && f.refcount == 0 && pfn as u32 >= b.base {
                return Err(format!(
                    "frame {pfn} has refcount 0 but is not free: leaked"
                ));
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
        let got: Vec<_> = (0..4095)
            .map(|_| m.alloc_frame(FrameUse::Anon).unwrap())
            .collect();
        assert_eq!(m.frames_free(), 0);
        assert!(m.alloc_frame(FrameUse::Anon).is_none());
        assert!(!got.contains(&0), "the zero page is never handed out");
        for pfn in got {
            m.put_frame(pfn);
        }
        assert_eq!(m.frames_free(), 4095);
        m.check().unwrap();
        // Coalesced back to maximal blocks: 4096 frames minus frame 0.
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

    #[test]
    fn zero_page_is_pinned() {
        let mut m = PhysMem::new(64).unwrap();
        let z = m.zero_pfn();
        m.put_frame(z);
        assert_eq!(m.frame(z).refcount, 1);
        m.check().unwrap();
    }
}
