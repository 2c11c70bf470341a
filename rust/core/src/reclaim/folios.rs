//! The folio side of Linux reclaim: for every frame on an LRU list, its
//! list links, its LRU flags (PG_referenced, PG_workingset, the list it is
//! on) and the anchor reverse mapping starts from: where it was mapped
//! (anonymous pages) or which file page it is (page cache).
//!
//! The lists are intrusive and doubly linked through per-frame links, as
//! `folio->lru` is, so adding, moving and removing a folio is O(1). Frame 0
//! is the zero page, never on a list: 0 is the null link, so a zeroed table
//! is a table of folios on no list.

use crate::phys::Pfn;

/// The LRU lists, in Linux's `enum lru_list` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lru {
    InactiveAnon = 0,
    ActiveAnon = 1,
    InactiveFile = 2,
    ActiveFile = 3,
    Unevictable = 4,
}

pub const NR_LRU_LISTS: usize = 5;
/// The multi-gen LRU keeps at most this many generations per type.
pub const MAX_NR_GENS: usize = 4;
/// Every list an lruvec can hold: the classic five, then one per
/// generation and type for the multi-gen LRU.
pub const NR_LISTS: usize = NR_LRU_LISTS + 2 * MAX_NR_GENS;

/// A list of an lruvec: a classic LRU list, or a generation's list of one type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    Lru(Lru),
    Gen { gen: usize, file: bool },
}

impl List {
    fn index(self) -> usize {
        match self {
            List::Lru(l) => l as usize,
            List::Gen { gen, file } => NR_LRU_LISTS + 2 * gen + file as usize,
        }
    }
    fn from_index(i: usize) -> List {
        if i < NR_LRU_LISTS {
            List::Lru(Lru::from_index(i))
        } else {
            List::Gen { gen: (i - NR_LRU_LISTS) / 2, file: (i - NR_LRU_LISTS) % 2 == 1 }
        }
    }
    /// Every list, in index order.
    pub fn all() -> impl Iterator<Item = List> {
        (0..NR_LISTS).map(List::from_index)
    }
}

impl From<Lru> for List {
    fn from(l: Lru) -> List {
        List::Lru(l)
    }
}

impl Lru {
    pub const ALL: [Lru; NR_LRU_LISTS] =
        [Lru::InactiveAnon, Lru::ActiveAnon, Lru::InactiveFile, Lru::ActiveFile, Lru::Unevictable];

    fn from_index(i: usize) -> Lru {
        Self::ALL[i]
    }
    /// The evictable list of a type (file or anon), active or not.
    pub fn of(file: bool, active: bool) -> Lru {
        Self::from_index(2 * file as usize + active as usize)
    }
    pub fn is_active(self) -> bool {
        matches!(self, Lru::ActiveAnon | Lru::ActiveFile)
    }
    pub fn is_file(self) -> bool {
        matches!(self, Lru::InactiveFile | Lru::ActiveFile)
    }
    /// /proc/meminfo's name for the list.
    pub fn meminfo_name(self) -> &'static str {
        ["Inactive(anon)", "Active(anon)", "Inactive(file)", "Active(file)", "Unevictable"][self as usize]
    }
}

/// Per-folio flag bits (the `state` word).
pub mod pg {
    /// On a list: bits 12..16 hold its index + 1 (0: on none).
    pub const LIST_SHIFT: u16 = 12;
    pub const LIST_MASK: u16 = 0b1111 << LIST_SHIFT;
    /// PG_referenced: seen referenced once (mark_page_accessed, or a scan).
    pub const REFERENCED: u16 = 1 << 3;
    /// PG_workingset: was active (deactivated, or restored on refault).
    pub const WORKINGSET: u16 = 1 << 4;
    /// A page of a regular file (file LRU); else swap-backed (anon, shmem).
    pub const FILE: u16 = 1 << 5;
    /// The multi-gen LRU: the folio's generation (seq % MAX_NR_GENS) in
    /// bits 6..8; the aging updates it without moving the folio, which the
    /// eviction sorts onto its generation's list when it meets it.
    pub const GEN_SHIFT: u16 = 6;
    pub const GEN_MASK: u16 = 0b11 << GEN_SHIFT;
    /// The multi-gen LRU: accesses through file descriptors past the first
    /// (which PG_referenced records), in bits 9..11: its tier.
    pub const REFS_SHIFT: u16 = 9;
    pub const REFS_MASK: u16 = 0b11 << REFS_SHIFT;
    /// Charged to its lruvec's memory cgroup: set when it joins the LRU,
    /// cleared when it is freed (it may be off every list meanwhile, isolated).
    pub const CHARGED: u16 = 1 << 11;
}

const NIL: Pfn = 0;

#[derive(Debug, Clone, Copy, Default)]
struct Links {
    prev: Pfn,
    next: Pfn,
}

/// One list's ends and length: scans take from the tail, new and rotated
/// folios go to the head (list_add, then lru_to_folio from the tail).
#[derive(Debug, Clone, Copy, Default)]
struct ListHead {
    head: Pfn,
    tail: Pfn,
    len: u64,
}

/// The folio table: links, state and anchors per frame, grown as frames are
/// seen (zeroed memory is "on no list").
#[derive(Default)]
pub struct FolioTable {
    links: Vec<Links>,
    state: Vec<u16>,
    /// Anonymous: the reclaim key (address space, page) it was mapped at
    /// (0 while unknown); file and shmem: (object, page index), packed the same way.
    anchor: Vec<u64>,
    /// The lruvec (memory cgroup) a folio is charged to and listed in; empty
    /// until a folio goes to a lruvec other than the root's (then as long as
    /// the other columns), so a run without memory cgroups does not pay for it.
    lruvec: Vec<u16>,
    /// Frames there are (0: unknown): the table never grows past them.
    frames: usize,
}

impl FolioTable {
    /// A table for a memory of `frames` frames.
    pub fn for_frames(frames: u64) -> FolioTable {
        FolioTable { frames: frames as usize + 1, ..FolioTable::default() }
    }

    fn grow(&mut self, pfn: Pfn) {
        let need = pfn as usize + 1;
        if self.links.len() < need {
            // Whole steps, so a growing memory resizes rarely; never past the memory.
            let cap = if self.frames > 0 { self.frames.max(need) } else { usize::MAX };
            let len = need.next_power_of_two().max(4096).min(cap);
            self.links.resize(len, Links::default());
            self.state.resize(len, 0);
            self.anchor.resize(len, 0);
            if !self.lruvec.is_empty() {
                self.lruvec.resize(len, 0);
            }
        }
    }
    pub fn state(&self, pfn: Pfn) -> u16 {
        self.state.get(pfn as usize).copied().unwrap_or(0)
    }
    pub fn has(&self, pfn: Pfn, bit: u16) -> bool {
        self.state(pfn) & bit != 0
    }
    pub fn set(&mut self, pfn: Pfn, bit: u16, on: bool) {
        let s = &mut self.state[pfn as usize];
        if on {
            *s |= bit;
        } else {
            *s &= !bit;
        }
    }
    /// The list the folio is on, if any.
    pub fn list(&self, pfn: Pfn) -> Option<List> {
        match (self.state(pfn) & pg::LIST_MASK) >> pg::LIST_SHIFT {
            0 => None,
            n => Some(List::from_index(n as usize - 1)),
        }
    }
    /// The classic LRU list the folio is on, if it is on one.
    pub fn lru(&self, pfn: Pfn) -> Option<Lru> {
        match self.list(pfn)? {
            List::Lru(l) => Some(l),
            List::Gen { .. } => None,
        }
    }
    /// Whether the folio is on any list.
    pub fn listed(&self, pfn: Pfn) -> bool {
        self.state(pfn) & pg::LIST_MASK != 0
    }
    /// The multi-gen LRU generation recorded in the folio.
    pub fn gen(&self, pfn: Pfn) -> usize {
        ((self.state(pfn) & pg::GEN_MASK) >> pg::GEN_SHIFT) as usize
    }
    fn set_gen(&mut self, pfn: Pfn, gen: usize) {
        let s = &mut self.state[pfn as usize];
        *s = (*s & !pg::GEN_MASK) | ((gen as u16) << pg::GEN_SHIFT);
    }
    /// Accesses through file descriptors past the first (0..=3).
    pub fn refs(&self, pfn: Pfn) -> u16 {
        (self.state(pfn) & pg::REFS_MASK) >> pg::REFS_SHIFT
    }
    pub fn set_refs(&mut self, pfn: Pfn, refs: u16) {
        let s = &mut self.state[pfn as usize];
        *s = (*s & !pg::REFS_MASK) | (refs.min(3) << pg::REFS_SHIFT);
    }
    pub fn is_file(&self, pfn: Pfn) -> bool {
        self.has(pfn, pg::FILE)
    }
    pub fn anchor(&self, pfn: Pfn) -> u64 {
        self.anchor[pfn as usize]
    }
    pub fn set_anchor(&mut self, pfn: Pfn, anchor: u64) {
        self.anchor[pfn as usize] = anchor;
    }
    pub fn lruvec(&self, pfn: Pfn) -> usize {
        self.lruvec.get(pfn as usize).copied().unwrap_or(0) as usize
    }
    /// Make a fresh entry for a folio about to be listed: flags cleared, `file` set as given.
    pub fn init(&mut self, pfn: Pfn, file: bool, anchor: u64, lruvec: usize) {
        self.grow(pfn);
        debug_assert!(!self.listed(pfn), "frame {pfn} is on a list already");
        self.state[pfn as usize] = if file { pg::FILE } else { 0 };
        self.anchor[pfn as usize] = anchor;
        if lruvec != 0 && self.lruvec.is_empty() {
            self.lruvec.resize(self.links.len(), 0);
        }
        if let Some(v) = self.lruvec.get_mut(pfn as usize) {
            *v = lruvec as u16;
        }
    }
}

/// One lruvec's lists (a node's, or a memory cgroup's on the node).
#[derive(Debug, Clone, Default)]
pub struct LruLists {
    lists: [ListHead; NR_LISTS],
    /// The multi-gen LRU: folios on generation lists by the generation they
    /// record (which the aging changes before the folio moves), and type.
    gen_pages: [[u64; 2]; MAX_NR_GENS],
}

impl LruLists {
    pub fn len(&self, list: impl Into<List>) -> u64 {
        self.lists[list.into().index()].len
    }
    pub fn tail(&self, list: impl Into<List>) -> Option<Pfn> {
        Some(self.lists[list.into().index()].tail).filter(|&p| p != NIL)
    }
    /// lruvec_add_folio: onto the head of `list`.
    pub fn add(&mut self, t: &mut FolioTable, pfn: Pfn, list: impl Into<List>) {
        self.insert(t, pfn, list.into().index(), false);
    }

    /// Onto the tail of `list` (list_move_tail: the end scans take first).
    pub fn add_tail(&mut self, t: &mut FolioTable, pfn: Pfn, list: impl Into<List>) {
        self.insert(t, pfn, list.into().index(), true);
    }

    fn insert(&mut self, t: &mut FolioTable, pfn: Pfn, id: usize, at_tail: bool) {
        t.grow(pfn);
        let list = &mut self.lists[id];
        let (prev, next) = if at_tail { (list.tail, NIL) } else { (NIL, list.head) };
        t.links[pfn as usize] = Links { prev, next };
        if prev != NIL {
            t.links[prev as usize].next = pfn;
        } else {
            list.head = pfn;
        }
        if next != NIL {
            t.links[next as usize].prev = pfn;
        } else {
            list.tail = pfn;
        }
        list.len += 1;
        self.listed(t, pfn, id);
    }

    fn listed(&mut self, t: &mut FolioTable, pfn: Pfn, id: usize) {
        let s = &mut t.state[pfn as usize];
        *s = (*s & !pg::LIST_MASK) | ((id as u16 + 1) << pg::LIST_SHIFT);
        if let List::Gen { file, .. } = List::from_index(id) {
            self.gen_pages[t.gen(pfn)][file as usize] += 1;
        }
    }

    /// Record generation `gen` in the folio (the aging's promotion: it
    /// stays where it is on its list until the eviction sorts it).
    pub fn set_gen(&mut self, t: &mut FolioTable, pfn: Pfn, gen: usize) {
        if let Some(List::Gen { file, .. }) = t.list(pfn) {
            self.gen_pages[t.gen(pfn)][file as usize] -= 1;
            self.gen_pages[gen][file as usize] += 1;
        }
        t.set_gen(pfn, gen);
    }

    /// Folios recording generation `gen`, of one type.
    pub fn gen_pages(&self, gen: usize, file: bool) -> u64 {
        self.gen_pages[gen][file as usize]
    }

    /// lruvec_del_folio: off its list (none: nothing to do).
    pub fn del(&mut self, t: &mut FolioTable, pfn: Pfn) -> Option<List> {
        let on = t.list(pfn)?;
        let Links { prev, next } = t.links[pfn as usize];
        let list = &mut self.lists[on.index()];
        if prev != NIL {
            t.links[prev as usize].next = next;
        } else {
            list.head = next;
        }
        if next != NIL {
            t.links[next as usize].prev = prev;
        } else {
            list.tail = prev;
        }
        list.len -= 1;
        t.links[pfn as usize] = Links::default();
        t.state[pfn as usize] &= !pg::LIST_MASK;
        if let List::Gen { file, .. } = on {
            self.gen_pages[t.gen(pfn)][file as usize] -= 1;
        }
        Some(on)
    }

    /// Move the folio to the head of `list` (rotation, activation, deactivation).
    pub fn move_to(&mut self, t: &mut FolioTable, pfn: Pfn, list: impl Into<List>) {
        self.del(t, pfn);
        self.add(t, pfn, list);
    }

    /// The folios of `list`, head (newest) first: for checks.
    pub fn walk<'a>(&self, t: &'a FolioTable, list: impl Into<List>) -> impl Iterator<Item = Pfn> + 'a {
        let mut at = self.lists[list.into().index()].head;
        let bound = t.links.len();
        std::iter::from_fn(move || {
            if at == NIL || at as usize >= bound {
                return None;
            }
            let here = at;
            at = t.links[here as usize].next;
            Some(here)
        })
    }

    /// Pages on every list, unevictable included.
    pub fn pages(&self) -> u64 {
        self.lists.iter().map(|l| l.len).sum()
    }

    pub fn evictable_pages(&self) -> u64 {
        Lru::ALL[..4].iter().map(|&l| self.len(l)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_add_at_the_head_and_scan_from_the_tail() {
        let (mut t, mut l) = (FolioTable::default(), LruLists::default());
        for pfn in 1..=3 {
            t.init(pfn, false, 0, 0);
            l.add(&mut t, pfn, Lru::InactiveAnon);
        }
        assert_eq!(l.walk(&t, Lru::InactiveAnon).collect::<Vec<_>>(), [3, 2, 1]);
        assert_eq!(l.tail(Lru::InactiveAnon), Some(1));
        l.move_to(&mut t, 1, Lru::ActiveAnon);
        assert_eq!((l.len(Lru::InactiveAnon), l.len(Lru::ActiveAnon)), (2, 1));
        assert_eq!(l.tail(Lru::InactiveAnon), Some(2));
        assert_eq!(l.del(&mut t, 2), Some(List::Lru(Lru::InactiveAnon)));
        assert_eq!(l.del(&mut t, 2), None, "deleting twice is harmless");
        assert_eq!(l.walk(&t, Lru::InactiveAnon).collect::<Vec<_>>(), [3]);
        assert_eq!(t.lru(1), Some(Lru::ActiveAnon));
    }

    #[test]
    fn list_kinds_follow_linux_order() {
        assert_eq!(Lru::of(true, true), Lru::ActiveFile);
        assert_eq!(Lru::of(false, false), Lru::InactiveAnon);
        assert!(Lru::ActiveAnon.is_active() && !Lru::InactiveFile.is_active());
    }
}
