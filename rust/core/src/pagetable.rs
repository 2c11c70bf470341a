//! A 4-level x86-64 page table: PGD -> PUD -> PMD -> PTE, 512 entries each.
//!
//! Every table page is a real frame from the buddy allocator (so table pages
//! are counted and can run out). The host copy of the tables lives in one
//! arena per address space; a non-leaf entry's address field holds the arena
//! slot of the next table, and the arena remembers which frame that table
//! occupies. Leaf entries hold the mapped frame number, as on hardware.

use crate::phys::{FrameUse, Pfn, PhysMem};
use std::cell::Cell;

pub const ENTRIES: usize = 512;
pub const LEVELS: u32 = 4;

/// The bits of a page-table entry (x86-64 layout; software bits sit in the
/// range the hardware ignores, as Linux puts them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PteFlags(u64);

impl PteFlags {
    pub const NONE: PteFlags = PteFlags(0);
    pub const PRESENT: PteFlags = PteFlags(1 << 0);
    pub const WRITE: PteFlags = PteFlags(1 << 1);
    pub const USER: PteFlags = PteFlags(1 << 2);
    pub const ACCESSED: PteFlags = PteFlags(1 << 5);
    pub const DIRTY: PteFlags = PteFlags(1 << 6);
    /// Software: PROT_NONE mapping (present cleared so the CPU faults),
    /// like Linux's _PAGE_PROTNONE.
    pub const PROTNONE: PteFlags = PteFlags(1 << 8);
    /// Software: a special mapping not refcounted (the zero page).
    pub const SPECIAL: PteFlags = PteFlags(1 << 9);
    /// Software: a swap entry (present clear); the slot sits in the address field.
    pub const SWAP: PteFlags = PteFlags(1 << 10);
    pub const NX: PteFlags = PteFlags(1 << 63);
    const ALL: u64 = 0x7ff | (1 << 63);

    #[inline]
    pub const fn union(self, other: PteFlags) -> PteFlags {
        PteFlags(self.0 | other.0)
    }

    #[inline]
    pub const fn contains(self, other: PteFlags) -> bool {
        self.0 & other.0 == other.0
    }

    #[inline]
    pub const fn intersects(self, other: PteFlags) -> bool {
        self.0 & other.0 != 0
    }
}

impl std::ops::BitOr for PteFlags {
    type Output = PteFlags;
    #[inline]
    fn bitor(self, other: PteFlags) -> PteFlags {
        self.union(other)
    }
}

impl std::ops::BitOrAssign for PteFlags {
    #[inline]
    fn bitor_assign(&mut self, other: PteFlags) {
        *self = self.union(other);
    }
}

/// One page-table entry: empty, a mapped frame with its permission and
/// status bits, or a swap entry. Only this module knows the bit layout.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
#[repr(transparent)]
pub struct Pte(u64);

const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
const ADDR_SHIFT: u32 = 12;

impl Pte {
    /// The empty entry (pte_none).
    pub const NONE: Pte = Pte(0);

    /// An entry mapping frame `pfn` (mk_pte).
    #[inline]
    pub const fn new(pfn: Pfn, flags: PteFlags) -> Pte {
        Pte(((pfn as u64) << ADDR_SHIFT) | flags.0)
    }

    /// A swap entry for `slot` (swp_entry_to_pte).
    #[inline]
    pub const fn swap(slot: u32) -> Pte {
        Pte(((slot as u64) << ADDR_SHIFT) | PteFlags::SWAP.0)
    }

    /// A link from an upper-level table to the table in arena slot `slot`.
    #[inline]
    const fn table_link(slot: usize) -> Pte {
        Pte(((slot as u64) << ADDR_SHIFT) | PteFlags::PRESENT.0 | PteFlags::WRITE.0 | PteFlags::USER.0)
    }

    #[inline]
    const fn target(self) -> u64 {
        (self.0 & ADDR_MASK) >> ADDR_SHIFT
    }

    #[inline]
    pub const fn is_none(self) -> bool {
        self.0 == 0
    }

    #[inline]
    pub const fn flags(self) -> PteFlags {
        PteFlags(self.0 & PteFlags::ALL)
    }

    /// Whether every bit of `flags` is set.
    #[inline]
    pub const fn has(self, flags: PteFlags) -> bool {
        self.flags().contains(flags)
    }

    #[inline]
    pub const fn is_present(self) -> bool {
        self.has(PteFlags::PRESENT)
    }

    #[inline]
    pub const fn is_writable(self) -> bool {
        self.has(PteFlags::WRITE)
    }

    /// The zero page or another mapping without a page reference.
    #[inline]
    pub const fn is_special(self) -> bool {
        self.has(PteFlags::SPECIAL)
    }

    /// Whether the entry maps a frame (present, or PROT_NONE but still mapped).
    #[inline]
    pub const fn maps_frame(self) -> bool {
        self.flags().intersects(PteFlags::PRESENT.union(PteFlags::PROTNONE))
    }

    /// Whether it maps a frame that holds a page reference (not the zero page).
    #[inline]
    pub const fn maps_counted_frame(self) -> bool {
        self.maps_frame() && !self.is_special()
    }

    /// A swap entry: the page is out in swap slot `swap_slot()`.
    #[inline]
    pub const fn is_swap(self) -> bool {
        self.0 & (PteFlags::PRESENT.0 | PteFlags::PROTNONE.0 | PteFlags::SWAP.0) == PteFlags::SWAP.0
    }

    /// The mapped frame (meaningful when `maps_frame()`).
    #[inline]
    pub const fn pfn(self) -> Pfn {
        self.target() as Pfn
    }

    /// The swap slot (meaningful when `is_swap()`).
    #[inline]
    pub const fn swap_slot(self) -> u32 {
        self.target() as u32
    }

    /// The same entry with `flags` set too.
    #[inline]
    #[must_use]
    pub const fn with(self, flags: PteFlags) -> Pte {
        Pte(self.0 | flags.0)
    }

    /// The same entry with `flags` cleared.
    #[inline]
    #[must_use]
    pub const fn without(self, flags: PteFlags) -> Pte {
        Pte(self.0 & !flags.0)
    }

    /// The same frame and status bits (accessed, dirty, special) with new permission bits.
    #[inline]
    #[must_use]
    pub const fn with_permissions(self, perms: PteFlags) -> Pte {
        let kept = PteFlags::ACCESSED.0 | PteFlags::DIRTY.0 | PteFlags::SPECIAL.0;
        Pte((self.0 & (ADDR_MASK | kept)) | perms.0)
    }
}

impl std::fmt::Debug for Pte {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pte({:#x})", self.0)
    }
}

/// The span of address space one entry covers at a level (0 = PTE).
#[inline]
fn span(level: u32) -> u64 {
    1u64 << (12 + 9 * level)
}

#[inline]
fn index_at(va: u64, level: u32) -> usize {
    ((va >> (12 + 9 * level)) & 511) as usize
}

/// Table storage: one flat vector of 512-entry tables, indexed by entry
/// number `slot * ENTRIES + i`. A walk step is one load: the table index
/// `i >> 9` is checked against the length, and `i & 511` is in bounds by
/// construction. Growing moves the tables, which is safe because tables
/// are named by slot, never by address.
struct Arena {
    tables: Vec<[Pte; ENTRIES]>,
}

impl Arena {
    fn with_one_table() -> Arena {
        Arena { tables: vec![[Pte::NONE; ENTRIES]] }
    }

    /// Tables that fit without another allocation.
    fn capacity(&self) -> usize {
        self.tables.len()
    }

    fn grow(&mut self) {
        self.tables.push([Pte::NONE; ENTRIES]);
    }

    fn table(&self, slot: usize) -> &[Pte] {
        &self.tables[slot]
    }

    fn table_mut(&mut self, slot: usize) -> &mut [Pte] {
        &mut self.tables[slot]
    }
}

impl std::ops::Index<usize> for Arena {
    type Output = Pte;
    #[inline]
    fn index(&self, i: usize) -> &Pte {
        &self.tables[i / ENTRIES][i % ENTRIES]
    }
}

impl std::ops::IndexMut<usize> for Arena {
    #[inline]
    fn index_mut(&mut self, i: usize) -> &mut Pte {
        &mut self.tables[i / ENTRIES][i % ENTRIES]
    }
}

#[derive(Clone, Copy, Debug)]
struct TableMeta {
    pfn: Pfn,
    live: bool,
}

/// What `free_range` frees: tables covering part of [start, end) whose
/// whole span lies inside [floor, ceiling).
struct FreeBounds {
    start: u64,
    end: u64,
    floor: u64,
    ceiling: u64,
}

/// Out of physical memory while allocating a table page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableOom;

pub struct PageTable {
    entries: Arena,
    meta: Vec<TableMeta>,
    free_slots: Vec<u32>,
    /// Table pages below the PGD (PUD, PMD, PTE): Linux's pgtables_bytes / VmPTE.
    tables_below_pgd: u64,
    /// The last leaf table a walk reached, by the 2 MiB region it maps: the
    /// next access in the same region skips the upper levels (what a
    /// page-walk cache does). Cleared whenever a table is freed.
    last_leaf: Cell<LeafCache>,
}

#[derive(Clone, Copy)]
struct LeafCache {
    /// `va >> 21` of the region, or `NO_REGION`.
    region: u64,
    slot: usize,
}

const NO_REGION: u64 = u64::MAX;
const EMPTY_CACHE: LeafCache = LeafCache { region: NO_REGION, slot: 0 };

const PGD_SLOT: usize = 0;
/// log2 of the span one leaf (PTE) table maps: 2 MiB.
const LEAF_SPAN_SHIFT: u32 = 12 + 9;

impl PageTable {
    /// A page table with an empty PGD (mm_alloc_pgd).
    pub fn new(phys: &mut PhysMem) -> Option<Self> {
        let pfn = phys.alloc_frame(FrameUse::PageTable)?;
        Some(PageTable {
            entries: Arena::with_one_table(),
            meta: vec![TableMeta { pfn, live: true }],
            free_slots: Vec::new(),
            tables_below_pgd: 0,
            last_leaf: Cell::new(EMPTY_CACHE),
        })
    }

    /// PUD + PMD + PTE table pages (what /proc/PID/status shows as VmPTE+VmPMD).
    pub fn table_pages(&self) -> u64 {
        self.tables_below_pgd
    }

    #[inline]
    fn child_slot(entry: Pte) -> usize {
        entry.target() as usize
    }

    /// The leaf slot for `va` if the last walk reached its table.
    #[inline]
    fn cached_leaf(&self, va: u64) -> Option<usize> {
        let cached = self.last_leaf.get();
        (cached.region == va >> LEAF_SPAN_SHIFT).then(|| cached.slot * ENTRIES + index_at(va, 0))
    }

    /// Index into `entries` of the leaf PTE for `va`, if its PTE table exists.
    #[inline]
    pub fn leaf_index(&self, va: u64) -> Option<usize> {
        if let Some(index) = self.cached_leaf(va) {
            return Some(index);
        }
        let mut slot = PGD_SLOT;
        for level in (1..LEVELS).rev() {
            let e = self.entries[slot * ENTRIES + index_at(va, level)];
            if e.is_none() {
                return None;
            }
            slot = Self::child_slot(e);
        }
        self.last_leaf.set(LeafCache { region: va >> LEAF_SPAN_SHIFT, slot });
        Some(slot * ENTRIES + index_at(va, 0))
    }

    /// The leaf entry for `va`, empty when nothing is there.
    #[inline]
    pub fn lookup(&self, va: u64) -> Pte {
        self.leaf_index(va).map_or(Pte::NONE, |i| self.entries[i])
    }

    /// Index of the leaf PTE for `va`, allocating missing tables on the way
    /// (as __handle_mm_fault does with p4d/pud/pmd/pte_alloc).
    #[inline]
    pub fn leaf_index_alloc(&mut self, va: u64, phys: &mut PhysMem) -> Result<usize, TableOom> {
        if let Some(index) = self.cached_leaf(va) {
            return Ok(index);
        }
        let mut slot = PGD_SLOT;
        for level in (1..LEVELS).rev() {
            let at = slot * ENTRIES + index_at(va, level);
            let e = self.entries[at];
            slot = if e.is_none() {
                let child = self.alloc_table(phys)?;
                self.entries[at] = Pte::table_link(child);
                child
            } else {
                Self::child_slot(e)
            };
        }
        self.last_leaf.set(LeafCache { region: va >> LEAF_SPAN_SHIFT, slot });
        Ok(slot * ENTRIES + index_at(va, 0))
    }

    fn alloc_table(&mut self, phys: &mut PhysMem) -> Result<usize, TableOom> {
        let pfn = phys.alloc_frame(FrameUse::PageTable).ok_or(TableOom)?;
        self.tables_below_pgd += 1;
        let meta = TableMeta { pfn, live: true };
        let slot = if let Some(slot) = self.free_slots.pop() {
            self.meta[slot as usize] = meta;
            slot as usize
        } else {
            if self.meta.len() == self.entries.capacity() {
                self.entries.grow();
            }
            self.meta.push(meta);
            self.meta.len() - 1
        };
        Ok(slot)
    }

    fn release_table(&mut self, slot: usize, phys: &mut PhysMem) {
        debug_assert!(self.entries.table(slot).iter().all(|e| e.is_none()), "releasing a table in use");
        self.last_leaf.set(EMPTY_CACHE); // the slot may be reused for another region
        phys.put_frame(self.meta[slot].pfn);
        self.meta[slot].live = false;
        self.free_slots.push(slot as u32);
        self.tables_below_pgd -= 1;
    }

    #[inline]
    pub fn get(&self, index: usize) -> Pte {
        self.entries[index]
    }

    /// Store a leaf entry.
    #[inline]
    pub fn set(&mut self, index: usize, value: Pte) {
        self.entries[index] = value;
    }

    /// Call `f(va, entry_index, entry)` for every non-empty leaf in [start, end).
    pub fn for_each_leaf(&self, start: u64, end: u64, f: &mut impl FnMut(u64, usize, Pte)) {
        self.visit(PGD_SLOT, LEVELS - 1, 0, start, end, f);
    }

    fn visit(&self, slot: usize, level: u32, base: u64, start: u64, end: u64, f: &mut impl FnMut(u64, usize, Pte)) {
        let sz = span(level);
        let first = if start > base { ((start - base) / sz) as usize } else { 0 };
        for i in first..ENTRIES {
            let lo = base + i as u64 * sz;
            if lo >= end {
                break;
            }
            let at = slot * ENTRIES + i;
            let e = self.entries[at];
            if e.is_none() {
                continue;
            }
            if level == 0 {
                f(lo, at, e);
            } else {
                self.visit(Self::child_slot(e), level - 1, lo, start, end, f);
            }
        }
    }

    /// Indices of every non-empty leaf in [start, end), in address order.
    pub fn leaves(&self, start: u64, end: u64) -> Vec<(u64, usize, Pte)> {
        let mut out = Vec::new();
        self.for_each_leaf(start, end, &mut |va, i, e| out.push((va, i, e)));
        out
    }

    /// free_pgtables: free every table whose whole span lies in [floor, ceiling)
    /// and that covers part of [start, end). Such tables no longer serve any
    /// VMA; their leaves must already be zapped. The PGD is never freed here.
    pub fn free_range(&mut self, start: u64, end: u64, floor: u64, ceiling: u64, phys: &mut PhysMem) {
        if start < end {
            let bounds = FreeBounds { start, end, floor, ceiling };
            self.free_below(PGD_SLOT, LEVELS - 1, 0, &bounds, phys);
        }
    }

    /// The tables under `slot` (a table at `level` whose span starts at `base`).
    fn free_below(&mut self, slot: usize, level: u32, base: u64, b: &FreeBounds, phys: &mut PhysMem) {
        let sz = span(level);
        let first = if b.start > base { ((b.start - base) / sz) as usize } else { 0 };
        for i in first..ENTRIES {
            let lo = base + i as u64 * sz;
            if lo >= b.end {
                break;
            }
            let at = slot * ENTRIES + i;
            let e = self.entries[at];
            if e.is_none() {
                continue;
            }
            let child = Self::child_slot(e);
            if lo >= b.floor && lo.saturating_add(sz) <= b.ceiling {
                self.free_subtree(child, level - 1, phys);
                self.entries[at] = Pte::NONE;
            } else if level > 1 {
                self.free_below(child, level - 1, lo, b, phys);
            }
        }
    }

    fn free_subtree(&mut self, slot: usize, level: u32, phys: &mut PhysMem) {
        if level > 0 {
            for i in 0..ENTRIES {
                let e = self.entries[slot * ENTRIES + i];
                if !e.is_none() {
                    self.free_subtree(Self::child_slot(e), level - 1, phys);
                    self.entries[slot * ENTRIES + i] = Pte::NONE;
                }
            }
        } else {
            debug_assert!(
                self.entries.table(slot).iter().all(|e| e.is_none()),
                "freeing a PTE table that still maps pages"
            );
            self.entries.table_mut(slot).fill(Pte::NONE);
        }
        self.release_table(slot, phys);
    }

    /// The frame of the top-level table.
    pub fn pgd_pfn(&self) -> Pfn {
        self.meta[PGD_SLOT].pfn
    }

    /// free_pgtables for the whole address space: free every table below the
    /// PGD and return how many. The PGD's frame is not freed here: the
    /// caller hands it on (to __mmdrop). Leaves must already be zapped.
    pub fn destroy_below_pgd(&mut self, phys: &mut PhysMem) -> u64 {
        let before = self.tables_below_pgd;
        for i in 0..ENTRIES {
            let e = self.entries[i];
            if !e.is_none() {
                self.free_subtree(Self::child_slot(e), LEVELS - 2, phys);
                self.entries[i] = Pte::NONE;
            }
        }
        self.meta[PGD_SLOT].live = false;
        before
    }

    /// Frames of every live table page, the PGD included.
    pub fn table_frames(&self) -> Vec<Pfn> {
        self.meta.iter().filter(|m| m.live).map(|m| m.pfn).collect()
    }

    /// Structural check: links point at live tables, and
    /// the count of table pages is right.
    pub fn check(&self) -> Result<(), String> {
        let live = self.meta.iter().filter(|m| m.live).count() as u64;
        if live != self.tables_below_pgd + 1 {
            return Err(format!("page table: {live} live tables but counter says {}", self.tables_below_pgd + 1));
        }
        let mut reached = 1u64;
        self.check_table(PGD_SLOT, LEVELS - 1, &mut reached)?;
        if reached != live {
            return Err(format!("page table: {live} live tables, {reached} reachable"));
        }
        Ok(())
    }

    fn check_table(&self, slot: usize, level: u32, reached: &mut u64) -> Result<(), String> {
        let m = self.meta[slot];
        if !m.live {
            return Err(format!("page table: link to a freed table (slot {slot})"));
        }
        let tab = self.entries.table(slot);
        if level > 0 {
            for &e in tab.iter().filter(|e| !e.is_none()) {
                *reached += 1;
                self.check_table(Self::child_slot(e), level - 1, reached)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(pfn: u32) -> Pte {
        Pte::new(pfn, PteFlags::PRESENT | PteFlags::USER)
    }

    #[test]
    fn walk_allocates_three_tables_then_reuses_them() {
        let mut phys = PhysMem::new(64).unwrap();
        let mut pt = PageTable::new(&mut phys).unwrap();
        assert_eq!(phys.frames_free(), 62);
        let i = pt.leaf_index_alloc(0x4000_0000, &mut phys).unwrap();
        assert_eq!(pt.table_pages(), 3);
        pt.set(i, leaf(7));
        assert_eq!(pt.lookup(0x4000_0000), leaf(7));
        assert!(pt.lookup(0x4000_1000).is_none());
        // Same PTE table for the next page; a new PTE table 2 MiB on.
        pt.leaf_index_alloc(0x4000_1000, &mut phys).unwrap();
        assert_eq!(pt.table_pages(), 3);
        pt.leaf_index_alloc(0x4020_0000, &mut phys).unwrap();
        assert_eq!(pt.table_pages(), 4);
        pt.check().unwrap();
        pt.set(i, Pte::NONE);
        assert_eq!(pt.destroy_below_pgd(&mut phys), 4);
        phys.put_frame(pt.pgd_pfn());
        assert_eq!(phys.frames_free(), 63);
    }

    #[test]
    fn free_range_respects_floor_and_ceiling() {
        let mut phys = PhysMem::new(64).unwrap();
        let mut pt = PageTable::new(&mut phys).unwrap();
        pt.leaf_index_alloc(0x4000_0000, &mut phys).unwrap();
        pt.leaf_index_alloc(0x4020_0000, &mut phys).unwrap();
        assert_eq!(pt.table_pages(), 4);
        // A neighbour still ends inside the first PTE table: it stays.
        pt.free_range(0x4000_0000, 0x4040_0000, 0x4000_1000, 1 << 47, &mut phys);
        assert_eq!(pt.table_pages(), 3);
        assert!(pt.leaf_index(0x4000_0000).is_some());
        assert!(pt.leaf_index(0x4020_0000).is_none());
        // Nothing left around: everything but the PGD goes.
        pt.free_range(0x4000_0000, 0x4000_1000, 0, 1 << 47, &mut phys);
        assert_eq!(pt.table_pages(), 0);
        pt.check().unwrap();
        pt.destroy_below_pgd(&mut phys);
        phys.put_frame(pt.pgd_pfn());
        assert_eq!(phys.frames_free(), 63);
    }

    /// Random sets and clears against a HashMap model; tables freed with
    /// free_range only when nothing can need them.
    #[test]
    fn random_entries_against_a_model() {
        let mut rng = crate::testing::XorShift::new(0x9876_5432);
        let mut rnd = |n: u64| rng.below(n);
        let mut phys = PhysMem::new(8192).unwrap();
        let mut pt = PageTable::new(&mut phys).unwrap();
        let mut model = std::collections::HashMap::new();
        for step in 0..20_000u64 {
            // Addresses spread over several PUD/PMD/PTE tables.
            let va = (rnd(4) << 39) | (rnd(4) << 30) | (rnd(8) << 21) | (rnd(512) << 12);
            if rnd(3) > 0 {
                let i = pt.leaf_index_alloc(va, &mut phys).unwrap();
                let e = leaf(1 + rnd(1000) as u32);
                pt.set(i, e);
                model.insert(va, e);
            } else if let Some(i) = pt.leaf_index(va) {
                pt.set(i, Pte::NONE);
                model.remove(&va);
            }
            assert_eq!(pt.lookup(va), model.get(&va).copied().unwrap_or(Pte::NONE));
            if step % 2000 == 0 {
                pt.check().unwrap();
                let mut seen = 0;
                pt.for_each_leaf(0, 1 << 47, &mut |va, _, e| {
                    assert_eq!(model.get(&va), Some(&e));
                    seen += 1;
                });
                assert_eq!(seen, model.len());
            }
        }
        for (&va, _) in model.iter() {
            let i = pt.leaf_index(va).unwrap();
            pt.set(i, Pte::NONE);
        }
        pt.free_range(0, 1 << 47, 0, 1 << 47, &mut phys);
        assert_eq!(pt.table_pages(), 0);
        pt.check().unwrap();
    }

    #[test]
    fn out_of_memory_is_reported() {
        let mut phys = PhysMem::new(3).unwrap(); // PGD + one more frame
        let mut pt = PageTable::new(&mut phys).unwrap();
        assert_eq!(pt.leaf_index_alloc(0x1000_0000, &mut phys), Err(TableOom));
        pt.check().unwrap();
    }
}
