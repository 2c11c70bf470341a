//! `policy="linux"`: page reclaim as mm/vmscan.c does it with the classic
//! two-list LRU. Physical pages (folios) sit on per-lruvec lists
//! (inactive/active anon, inactive/active file, unevictable); reclaim scans
//! the inactive lists from their tails, asks the reverse map whether a page
//! was referenced, and unmaps and frees it from every address space at
//! once. `get_scan_count` balances anon against file by `swappiness` and the
//! recorded costs; kswapd runs after an allocation leaves free pages below
//! the low watermark, until they reach the high one; an allocation that
//! finds less than the min watermark reclaims directly.
//!
//! Simplifications, documented in docs/semantics.md: one node and one zone;
//! reclaim is synchronous (kswapd runs inside the allocation that woke it,
//! writeback completes at once); once a pass has reclaimed its target it
//! stops rather than scaling the other lists back proportionally.

use super::folios::{pg, FolioTable, List, Lru, LruLists};
use super::memcg::{CgId, Cgroups, Limits, ROOT};
use super::rmap::{self, Unmapped};
use super::workingset::{file_slot, swap_slot, Shadow, Shadows};
use super::{key, key_mm, key_va, PageKey};
use crate::error::Result;
use crate::kernel::Kernel;
use crate::phys::{flags, Pfn};

pub const SWAP_CLUSTER_MAX: u64 = 32;
/// A swap slot charged to no group.
const NO_OWNER: CgId = CgId::MAX;

/// What Linux reclaim knows of one swap slot.
#[derive(Debug, Clone, Copy)]
struct SwapSlot {
    owner: CgId,
    shadowed: bool,
}
pub const DEF_PRIORITY: u32 = 12;
/// vm.swappiness's default.
pub const DEFAULT_SWAPPINESS: u32 = 60;
/// vm.watermark_scale_factor's default (0.1% of memory between watermarks).
pub const DEFAULT_WATERMARK_SCALE_FACTOR: u64 = 10;

/// The zone's watermarks, in pages (__setup_per_zone_wmarks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermarks {
    pub min: u64,
    pub low: u64,
    pub high: u64,
}

impl Watermarks {
    /// vm.min_free_kbytes as the kernel sets it at boot: sqrt(lowmem_kbytes * 16),
    /// clamped to [128, 262144] (init_per_zone_wmark_min).
    pub fn default_min_free_kbytes(managed_pages: u64) -> u64 {
        ((managed_pages * 4 * 16) as f64).sqrt().floor().clamp(128.0, 262_144.0) as u64
    }

    pub fn new(managed_pages: u64, min_free_kbytes: u64, scale_factor: u64) -> Watermarks {
        let min = (min_free_kbytes / 4).min(managed_pages / 2).max(1);
        let gap = (min / 4).max(managed_pages * scale_factor / 10_000);
        Watermarks { min, low: min + gap, high: min + 2 * gap }
    }
}

/// Defines `VmscanStat` with its fields listed once, and `add` summing two.
macro_rules! vmscan_stat {
    ($($field:ident),* $(,)?) => {
        /// The vmscan and workingset events of /proc/vmstat (per lruvec, and
        /// the node's own: allocstall, pageoutrun, kswapd's watermark hits).
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct VmscanStat {
            $(pub $field: u64,)*
        }
        impl VmscanStat {
            pub fn add(&mut self, o: &VmscanStat) {
                $(self.$field += o.$field;)*
            }
        }
    };
}

vmscan_stat! {
    pgscan_kswapd, pgscan_direct, pgsteal_kswapd, pgsteal_direct,
    pgscan_anon, pgscan_file, pgsteal_anon, pgsteal_file,
    pgrefill, pgactivate, pgdeactivate,
    allocstall_normal, pageoutrun, kswapd_low_wmark_hit, kswapd_high_wmark_hit,
    workingset_refault_anon, workingset_refault_file,
    workingset_activate_anon, workingset_activate_file,
    workingset_restore_anon, workingset_restore_file,
    unevictable_pgs_culled, unevictable_pgs_mlocked, unevictable_pgs_munlocked,
}

/// The inactive list of a type is too small against its active list: the
/// target ratio grows with the square root of their size in GiB.
fn inactive_is_low(inactive: u64, active: u64) -> bool {
    let gb = (inactive + active) >> (30 - 12);
    let ratio = if gb > 0 { ((10 * gb) as f64).sqrt() as u64 } else { 1 };
    inactive * ratio < active
}

/// One lruvec: the lists of a node (or of a memory cgroup on it) and the
/// clocks reclaim keeps for them.
#[derive(Debug, Clone, Default)]
pub struct Lruvec {
    pub lists: LruLists,
    /// Evictions and activations so far: the clock refault distances use.
    pub nonresident_age: u64,
    /// What reclaiming each type has cost lately (lru_note_cost), decayed.
    pub anon_cost: u64,
    pub file_cost: u64,
    /// workingset_activate_{anon,file} in this lruvec, and their values at
    /// the end of the last reclaim (refaults since then allow deactivation).
    pub activations: [u64; 2],
    pub activations_seen: [u64; 2],
    /// The events of this lruvec (memory.stat of its group).
    pub stat: VmscanStat,
    /// The multi-gen LRU's generations (under `policy="mglru"`).
    pub gen: super::mglru::LruGen,
}

impl Lruvec {
    /// inactive_is_low: the inactive list of a type is too small against its
    /// active list (the target ratio grows with the square root of the size).
    pub fn inactive_is_low(&self, file: bool) -> bool {
        inactive_is_low(self.lists.len(Lru::of(file, false)), self.lists.len(Lru::of(file, true)))
    }

    /// lru_note_cost: `io` pages written or read, `rotated` put back unreclaimed.
    fn note_cost(&mut self, file: bool, io: u64, rotated: u64) {
        let cost = io * SWAP_CLUSTER_MAX + rotated;
        if file {
            self.file_cost += cost;
        } else {
            self.anon_cost += cost;
        }
        if self.anon_cost + self.file_cost > self.lists.evictable_pages() / 4 {
            self.anon_cost /= 2;
            self.file_cost /= 2;
        }
    }
}

/// The state of Linux reclaim: folios, lruvecs, shadows, knobs and counters.
pub struct LinuxLru {
    pub folios: FolioTable,
    /// lruvec 0 is the node's (the root memory cgroup's).
    pub lruvecs: Vec<Lruvec>,
    pub shadows: Shadows,
    pub swappiness: u32,
    pub wmark: Watermarks,
    /// Shadow nodes allowed (present pages >> 3, as count_shadow_nodes has it).
    pub max_shadow_nodes: usize,
    /// The node's own events (allocstall, pageoutrun, kswapd's hits); the
    /// lruvecs keep the rest (`stat_total` adds them up).
    pub stat: VmscanStat,
    /// The memory cgroups, one per lruvec.
    pub cgroups: Cgroups,
    /// The group new pages are charged to: that of the task allocating now
    /// (the allocation paths set it before they allocate).
    pub charge_to: CgId,
    /// Whether pages are being added inside a page fault (the multi-gen LRU
    /// starts those in the youngest generation; see `set_charging`).
    pub in_fault: bool,
    /// The multi-gen LRU (`policy="mglru"`) instead of the two lists.
    pub mglru: bool,
    /// Per swap slot: the group it is charged to, and whether it may hold
    /// a shadow (so freeing or reading back a slot without one costs no
    /// lookup: shadows are many and their tables large).
    swap_slots: Vec<SwapSlot>,
    /// Slots with an owner.
    swap_owned: u64,
}

impl LinuxLru {
    pub fn new(managed_pages: u64, swappiness: u32, wmark: Watermarks, mglru: bool) -> LinuxLru {
        LinuxLru {
            folios: FolioTable::for_frames(managed_pages),
            lruvecs: vec![Lruvec::default()],
            shadows: Shadows::default(),
            swappiness,
            wmark,
            max_shadow_nodes: (managed_pages >> 3).max(1) as usize,
            stat: VmscanStat::default(),
            cgroups: Cgroups::default(),
            charge_to: ROOT,
            in_fault: false,
            mglru,
            swap_slots: Vec::new(),
            swap_owned: 0,
        }
    }

    /// Every event: the node's and every lruvec's.
    pub fn stat_total(&self) -> VmscanStat {
        let mut s = self.stat;
        self.lruvecs.iter().for_each(|v| s.add(&v.stat));
        s
    }

    /// The events of the lruvecs of group `cg` and the groups below it.
    pub fn stat_of(&self, cg: CgId) -> VmscanStat {
        let mut s = VmscanStat::default();
        self.cgroups.subtree(cg).iter().for_each(|&g| s.add(&self.lruvecs[g as usize].stat));
        s
    }

    /// Pages on list `lru` in group `cg` and below.
    pub fn lru_of(&self, cg: CgId, lru: Lru) -> u64 {
        self.cgroups.subtree(cg).iter().map(|&g| self.lru_size(g as usize, lru)).sum()
    }

    /// A new memory cgroup, with its lruvec.
    pub fn create_cgroup(&mut self, name: &str, parent: Option<CgId>, limits: Limits) -> Result<CgId> {
        let id = self.cgroups.create(name, parent, limits)?;
        self.lruvecs.push(Lruvec::default());
        Ok(id)
    }

    /// An anonymous page of lruvec `v` went out to swap `slot`: the slot is
    /// charged to the page's group (mem_cgroup_swapout).
    /// It leaves `shadow` there.
    pub fn swapped_out(&mut self, slot: u32, v: usize, shadow: Shadow) {
        let i = slot as usize;
        if self.swap_slots.len() <= i {
            self.swap_slots.resize((i + 1).next_power_of_two(), SwapSlot { owner: NO_OWNER, shadowed: false });
        }
        let info = &mut self.swap_slots[i];
        info.shadowed = true;
        if info.owner == NO_OWNER {
            info.owner = v as CgId;
            self.swap_owned += 1;
            self.cgroups.charge_swap(v as CgId, 1);
        }
        self.shadows.insert(swap_slot(slot), shadow, self.max_shadow_nodes);
    }

    /// The shadow at swap `slot`, taken out (the page is read back in).
    pub fn take_swap_shadow(&mut self, slot: u32) -> Option<Shadow> {
        let info = self.swap_slots.get_mut(slot as usize).filter(|i| i.shadowed)?;
        info.shadowed = false;
        self.shadows.take(swap_slot(slot))
    }

    /// Swap `slot` is free: its charge goes, and nothing can refault from it.
    pub fn swap_slot_freed(&mut self, slot: u32) {
        self.take_swap_shadow(slot);
        if let Some(info) = self.swap_slots.get_mut(slot as usize).filter(|i| i.owner != NO_OWNER) {
            let cg = std::mem::replace(&mut info.owner, NO_OWNER);
            self.swap_owned -= 1;
            self.cgroups.charge_swap(cg, -1);
        }
    }

    /// Pages on a list, over every lruvec.
    pub fn total(&self, lru: Lru) -> u64 {
        (0..self.lruvecs.len()).map(|v| self.lru_size(v, lru)).sum()
    }

    /// Pages of lruvec `v` on `lru` as /proc/meminfo counts them (under the
    /// multi-gen LRU: its two youngest generations are the active list).
    pub fn lru_size(&self, v: usize, lru: Lru) -> u64 {
        if self.mglru {
            self.gen_lru_size(v, lru)
        } else {
            self.lruvecs[v].lists.len(lru)
        }
    }

    /// The folio at `pfn` leaves its list (it was freed).
    pub fn forget(&mut self, pfn: Pfn) {
        if !self.folios.has(pfn, pg::CHARGED) {
            return;
        }
        let v = self.folios.lruvec(pfn);
        self.lruvecs[v].lists.del(&mut self.folios, pfn);
        self.folios.set(pfn, pg::CHARGED, false);
        self.cgroups.uncharge_page(v as CgId);
    }

    /// folio_add_lru: a new page is charged to its lruvec's group and joins
    /// `lru` if given (unevictable), else its inactive list, or active ones
    /// if `active` (the multi-gen LRU picks a generation instead).
    pub fn add(&mut self, pfn: Pfn, file: bool, anchor: PageKey, lruvec: usize, lru: Option<Lru>, active: bool) {
        self.forget(pfn);
        self.folios.init(pfn, file, anchor, lruvec);
        self.folios.set(pfn, pg::CHARGED, true);
        self.cgroups.charge_page(lruvec as CgId);
        match lru {
            None if self.mglru => self.gen_add(pfn, file, lruvec, active),
            None => self.lruvecs[lruvec].lists.add(&mut self.folios, pfn, Lru::of(file, active)),
            Some(lru) => self.lruvecs[lruvec].lists.add(&mut self.folios, pfn, lru),
        }
    }

    /// A page became mapped at (mm, va): a new anonymous page joins the LRU;
    /// a mapping in a VM_LOCKED VMA makes it unevictable (mlock_vma_folio).
    pub fn mapped(&mut self, pfn: Pfn, mm: u32, va: u64, anon: bool, locked: bool) {
        let on = self.folios.list(pfn).map(|l| match l {
            List::Lru(l) => l,
            List::Gen { .. } => Lru::InactiveAnon, // evictable
        });
        match on {
            None if anon => {
                let v = self.charge_to as usize;
                let active = self.in_fault && self.mglru; // MGLRU: faulted in, youngest generation
                self.add(pfn, false, key(mm, va), v, if locked { Some(Lru::Unevictable) } else { None }, active);
                if locked {
                    self.lruvecs[v].stat.unevictable_pgs_mlocked += 1;
                }
            }
            None => {}
            Some(lru) => {
                // Moved (mremap) or swapped back in: the anchor follows its own address space.
                let anchor = self.folios.anchor(pfn);
                if anon && (anchor == 0 || key_mm(anchor) == mm) {
                    self.folios.set_anchor(pfn, key(mm, va));
                }
                if locked && lru != Lru::Unevictable {
                    self.set_unevictable(pfn, true);
                }
            }
        }
    }

    /// mlock/munlock of a mapped page: onto the unevictable list, or back to inactive.
    pub fn set_unevictable(&mut self, pfn: Pfn, locked: bool) {
        let Some(on) = self.folios.list(pfn) else { return };
        let lru = match on {
            List::Lru(l) => l,
            List::Gen { .. } => Lru::InactiveAnon, // any evictable list
        };
        let v = self.folios.lruvec(pfn);
        if locked && lru != Lru::Unevictable {
            self.lruvecs[v].lists.move_to(&mut self.folios, pfn, Lru::Unevictable);
            self.lruvecs[v].stat.unevictable_pgs_mlocked += 1;
        } else if !locked && lru == Lru::Unevictable {
            let file = self.folios.is_file(pfn);
            self.lruvecs[v].lists.del(&mut self.folios, pfn);
            if self.mglru {
                self.gen_add(pfn, file, v, false);
            } else {
                self.lruvecs[v].lists.add(&mut self.folios, pfn, Lru::of(file, false));
            }
            self.lruvecs[v].stat.unevictable_pgs_munlocked += 1;
        }
    }

    /// folio_mark_accessed (a read or write through a file descriptor): the
    /// first marks it referenced, the second activates it.
    pub fn mark_accessed(&mut self, pfn: Pfn) {
        if self.mglru {
            if self.folios.listed(pfn) {
                self.gen_mark_accessed(pfn);
            }
            return;
        }
        let Some(lru) = self.folios.lru(pfn) else { return };
        if !self.folios.has(pfn, pg::REFERENCED) {
            self.folios.set(pfn, pg::REFERENCED, true);
        } else if lru != Lru::Unevictable && !lru.is_active() {
            let v = self.folios.lruvec(pfn);
            let file = self.folios.is_file(pfn);
            self.lruvecs[v].lists.move_to(&mut self.folios, pfn, Lru::of(file, true));
            self.folios.set(pfn, pg::REFERENCED, false);
            self.lruvecs[v].stat.pgactivate += 1;
            self.lruvecs[v].nonresident_age += 1; // workingset_activation
        }
    }

    /// workingset_eviction: the shadow an evicted folio leaves.
    fn eviction_shadow(&mut self, pfn: Pfn) -> Shadow {
        let v = self.folios.lruvec(pfn);
        self.lruvecs[v].nonresident_age += 1;
        Shadow {
            eviction: self.lruvecs[v].nonresident_age,
            lruvec: v as u16,
            workingset: self.folios.has(pfn, pg::WORKINGSET),
            tier: 0,
        }
    }

    /// workingset_refault: a page read back in where `shadow` was. Returns
    /// whether it starts active, and whether it was workingset before.
    pub fn refault(&mut self, shadow: Shadow, file: bool, swap_free: u64) -> (bool, bool) {
        let Some(v) = self.lruvecs.get_mut(shadow.lruvec as usize) else { return (false, false) };
        let s = &mut v.stat;
        *(if file { &mut s.workingset_refault_file } else { &mut s.workingset_refault_anon }) += 1;
        let distance = v.nonresident_age.wrapping_sub(shadow.eviction);
        let l = &v.lists;
        let mut workingset_size = l.len(Lru::ActiveFile);
        if !file {
            workingset_size += l.len(Lru::InactiveFile);
        }
        if swap_free > 0 {
            workingset_size += l.len(Lru::ActiveAnon);
            if file {
                workingset_size += l.len(Lru::InactiveAnon);
            }
        }
        if distance > workingset_size {
            return (false, false);
        }
        let v = &mut self.lruvecs[shadow.lruvec as usize];
        v.nonresident_age += 1;
        v.activations[file as usize] += 1;
        let s = &mut v.stat;
        *(if file { &mut s.workingset_activate_file } else { &mut s.workingset_activate_anon }) += 1;
        if shadow.workingset {
            *(if file { &mut s.workingset_restore_file } else { &mut s.workingset_restore_anon }) += 1;
            v.note_cost(file, 1, 0);
        }
        (true, shadow.workingset)
    }

    /// A page just read in (from a file, or from swap) joins the LRU: active
    /// if the shadow it found says its refault is recent.
    pub fn add_refaulted(&mut self, pfn: Pfn, file: bool, anchor: PageKey, shadow: Option<Shadow>, swap_free: u64) {
        let (active, workingset) = match shadow {
            None => (self.mglru && self.in_fault, false),
            Some(sh) if self.mglru => {
                let (_, workingset) = self.gen_refault(sh, file, self.in_fault);
                (self.in_fault, workingset)
            }
            Some(sh) => self.refault(sh, file, swap_free),
        };
        self.add(pfn, file, anchor, self.charge_to as usize, None, active);
        self.folios.set(pfn, pg::WORKINGSET, workingset);
        if self.mglru {
            self.gen_restore_refs(pfn, shadow);
        }
    }

    /// For `sim.check()`: every list is well formed and its length right,
    /// every folio on one list, the shadows within bounds.
    pub fn check(&self, is_user_page: impl Fn(Pfn) -> bool) -> std::result::Result<u64, String> {
        let mut listed = 0u64;
        for (i, v) in self.lruvecs.iter().enumerate() {
            for lru in List::all() {
                let mut n = 0u64;
                for pfn in v.lists.walk(&self.folios, lru) {
                    n += 1;
                    if self.folios.list(pfn) != Some(lru)
                        || self.folios.lruvec(pfn) != i
                        || !self.folios.has(pfn, pg::CHARGED)
                    {
                        return Err(format!("LRU: frame {pfn} is on {lru:?} of lruvec {i} but says otherwise"));
                    }
                    if !is_user_page(pfn) {
                        return Err(format!("LRU: frame {pfn} on {lru:?} is not a resident user page"));
                    }
                    if n > v.lists.len(lru) {
                        return Err(format!("LRU: {lru:?} of lruvec {i} is longer than its count"));
                    }
                }
                if n != v.lists.len(lru) {
                    return Err(format!(
                        "LRU: {lru:?} of lruvec {i} has {n} folios, its count says {}",
                        v.lists.len(lru)
                    ));
                }
                listed += n;
            }
        }
        self.shadows.check(self.max_shadow_nodes)?;
        if self.mglru {
            self.gen_check()?;
        }
        self.cgroups.check(|g| self.lruvecs[g as usize].lists.pages())?;
        let swap_charged: u64 = self.cgroups.groups.iter().map(|g| g.own_swap).sum();
        if swap_charged != self.swap_owned {
            return Err(format!("memcg: {swap_charged} swap slots charged, {} owned", self.swap_owned));
        }
        Ok(listed)
    }
}

/// Who is reclaiming, and what for (struct scan_control).
pub(super) struct ScanControl {
    pub(super) nr_to_reclaim: u64,
    pub(super) nr_reclaimed: u64,
    pub(super) priority: u32,
    pub(super) kswapd: bool,
    /// The memory cgroup whose limit is reclaiming (its subtree only), or
    /// None: the node's reclaim, over every group.
    pub(super) target: Option<CgId>,
    /// The lruvec being shrunk now.
    pub(super) lruvec: usize,
    may_deactivate: [bool; 2],
    skipped_deactivate: bool,
    file_is_tiny: bool,
    cache_trim_mode: bool,
    /// Groups within their `low` protection are reclaimed too (the first
    /// pass found nothing else).
    memcg_low_reclaim: bool,
    memcg_low_skipped: bool,
}

/// A reclaimer at work: the faulting address space, the kernel, the LRU
/// state (taken out of the kernel while reclaim runs) and the page of the
/// fault in progress, which is never taken.
pub struct Reclaimer<'a> {
    pub cur: rmap::Current<'a>,
    pub k: &'a mut Kernel,
    pub lr: &'a mut LinuxLru,
    pub pinned: Option<PageKey>,
}

/// The list sizes of a group and every group below it (a target's view).
#[derive(Default)]
struct Sizes {
    lists: [u64; 5],
    activations: [u64; 2],
    activations_seen: [u64; 2],
}

impl Sizes {
    fn len(&self, lru: Lru) -> u64 {
        self.lists[lru as usize]
    }
}

impl Reclaimer<'_> {
    /// Swap slots the pages of lruvec `v` may take: what is free, within
    /// its groups' `swap.max`.
    pub(super) fn swap_free(&self, v: usize) -> u64 {
        (self.k.swap().total() - self.k.swap().used()).min(self.lr.cgroups.swap_room(v as CgId))
    }

    /// Take the frees that happened since the last look off the lists.
    pub fn drain_freed(&mut self) {
        let lr = &mut *self.lr;
        self.k.phys_mut().drain_freed(|pfn| lr.forget(pfn));
    }

    /// kswapd's balance_pgdat: reclaim at falling priority until free pages
    /// reach the high watermark.
    pub fn kswapd(&mut self) -> u64 {
        self.lr.stat.pageoutrun += 1;
        let high = self.lr.wmark.high;
        let mut reclaimed = 0;
        for priority in (0..=DEF_PRIORITY).rev() {
            let free = self.k.phys().frames_free();
            if free >= high {
                break;
            }
            let mut sc = self.scan_control(true, None, (high - free).max(SWAP_CLUSTER_MAX), priority);
            self.shrink_node(&mut sc);
            reclaimed += sc.nr_reclaimed;
        }
        self.snapshot_refaults(None);
        reclaimed
    }

    /// do_try_to_free_pages: direct reclaim of `nr` pages from the subtree
    /// of `target` (a group at its limit) or the whole node (None).
    pub fn direct(&mut self, nr: u64, target: Option<CgId>) -> u64 {
        if target.is_none() {
            self.lr.stat.allocstall_normal += 1;
        }
        let mut reclaimed = 0;
        let (mut force, mut low_reclaim) = (false, false);
        loop {
            let (mut skipped, mut low_skipped) = (false, false);
            for priority in (0..=DEF_PRIORITY).rev() {
                let mut sc = self.scan_control(false, target, nr - reclaimed, priority);
                if force {
                    sc.may_deactivate = [true, true];
                }
                sc.memcg_low_reclaim = low_reclaim;
                self.shrink_node(&mut sc);
                reclaimed += sc.nr_reclaimed;
                skipped |= sc.skipped_deactivate;
                low_skipped |= sc.memcg_low_skipped;
                if reclaimed >= nr {
                    break;
                }
            }
            if reclaimed > 0 {
                break;
            }
            // Nothing to be had: once more, deactivating (force_deactivate),
            // then once more into the protected groups (memcg_low_reclaim).
            if skipped && !force {
                force = true;
            } else if low_skipped && !low_reclaim {
                low_reclaim = true;
            } else {
                break;
            }
        }
        self.snapshot_refaults(target);
        reclaimed
    }

    /// Whether reclaim for `target` (None: the node's) covers group `g`;
    /// callers loop over indices, which allocates nothing on this hot path.
    fn covers(&self, target: Option<CgId>, g: CgId) -> bool {
        target.is_none_or(|t| self.lr.cgroups.is_within(g, t))
    }

    fn sizes(&self, target: Option<CgId>) -> Sizes {
        let mut s = Sizes::default();
        for g in (0..self.lr.cgroups.len() as CgId).filter(|&g| self.covers(target, g)) {
            let v = &self.lr.lruvecs[g as usize];
            for lru in Lru::ALL {
                s.lists[lru as usize] += v.lists.len(lru);
            }
            for t in 0..2 {
                s.activations[t] += v.activations[t];
                s.activations_seen[t] += v.activations_seen[t];
            }
        }
        s
    }

    fn snapshot_refaults(&mut self, target: Option<CgId>) {
        for g in 0..self.lr.cgroups.len() as CgId {
            if !self.covers(target, g) {
                continue;
            }
            let v = &mut self.lr.lruvecs[g as usize];
            v.activations_seen = v.activations;
        }
    }

    /// prepare_scan_control, over the target's lists and those below it.
    fn scan_control(&self, kswapd: bool, target: Option<CgId>, nr: u64, priority: u32) -> ScanControl {
        let s = self.sizes(target);
        let may_deactivate = [false, true].map(|file| {
            let t = file as usize;
            s.activations[t] != s.activations_seen[t]
                || inactive_is_low(s.len(Lru::of(file, false)), s.len(Lru::of(file, true)))
        });
        let file = s.len(Lru::ActiveFile) + s.len(Lru::InactiveFile);
        let file_is_tiny = target.is_none()
            && file + self.k.phys().frames_free() <= self.lr.wmark.high
            && !may_deactivate[0]
            && s.len(Lru::InactiveAnon) >> priority > 0;
        let cache_trim_mode = s.len(Lru::InactiveFile) >> priority > 0 && !may_deactivate[1];
        ScanControl {
            nr_to_reclaim: nr,
            nr_reclaimed: 0,
            priority,
            kswapd,
            target,
            lruvec: target.unwrap_or(ROOT) as usize,
            may_deactivate,
            skipped_deactivate: false,
            file_is_tiny,
            cache_trim_mode,
            memcg_low_reclaim: false,
            memcg_low_skipped: false,
        }
    }

    /// get_scan_count: how many pages of each evictable list to scan.
    fn get_scan_count(&self, sc: &ScanControl) -> [u64; 4] {
        let v = &self.lr.lruvecs[sc.lruvec];
        let swappiness = self.lr.swappiness as u64;
        enum Balance {
            Equal,
            Fract(u64, u64),
            Anon,
            File,
        }
        let balance = if self.swap_free(sc.lruvec) == 0 || (sc.target.is_some() && swappiness == 0) {
            Balance::File
        } else if sc.priority == 0 && swappiness > 0 {
            Balance::Equal
        } else if sc.file_is_tiny {
            Balance::Anon
        } else if sc.cache_trim_mode {
            Balance::File
        } else {
            let total = v.anon_cost + v.file_cost;
            let anon_cost = total + v.anon_cost;
            let file_cost = total + v.file_cost;
            let total = anon_cost + file_cost;
            let ap = swappiness * (total + 1) / (anon_cost + 1);
            let fp = (200 - swappiness) * (total + 1) / (file_cost + 1);
            Balance::Fract(ap, fp)
        };
        [Lru::InactiveAnon, Lru::ActiveAnon, Lru::InactiveFile, Lru::ActiveFile].map(|lru| {
            let scan = v.lists.len(lru) >> sc.priority;
            match balance {
                Balance::Equal => scan,
                Balance::Fract(ap, fp) => {
                    let (num, den) = (if lru.is_file() { fp } else { ap }, ap + fp);
                    (scan * num).checked_div(den).unwrap_or(0)
                }
                Balance::Anon => scan * !lru.is_file() as u64,
                Balance::File => scan * lru.is_file() as u64,
            }
        })
    }

    /// shrink_node_memcgs: shrink the lruvec of every group in the target's
    /// subtree, passing over those within their `low` protection unless
    /// this is the pass that may take from them (counted as a `low` event).
    fn shrink_node(&mut self, sc: &mut ScanControl) {
        self.drain_freed();
        for g in 0..self.lr.cgroups.len() as CgId {
            if !self.covers(sc.target, g) {
                continue;
            }
            if Some(g) != sc.target && self.lr.cgroups.below_low(g) {
                if !sc.memcg_low_reclaim {
                    sc.memcg_low_skipped = true;
                    continue;
                }
                self.lr.cgroups.groups[g as usize].own_events.low += 1;
            }
            sc.lruvec = g as usize;
            self.shrink_lruvec(sc);
            if sc.nr_reclaimed >= sc.nr_to_reclaim {
                break;
            }
        }
    }

    fn shrink_lruvec(&mut self, sc: &mut ScanControl) {
        if self.lr.mglru {
            return self.gen_shrink_lruvec(sc);
        }
        let mut nr = self.get_scan_count(sc);
        let lists = [Lru::InactiveAnon, Lru::ActiveAnon, Lru::InactiveFile, Lru::ActiveFile];
        while nr[0] > 0 || nr[2] > 0 || nr[3] > 0 {
            for (i, &lru) in lists.iter().enumerate() {
                if nr[i] > 0 {
                    let batch = nr[i].min(SWAP_CLUSTER_MAX);
                    nr[i] -= batch;
                    sc.nr_reclaimed += self.shrink_list(lru, batch, sc);
                }
            }
            if sc.nr_reclaimed >= sc.nr_to_reclaim {
                break;
            }
        }
        // Keep the anon lists balanced even when anon was not scanned.
        if self.swap_free(sc.lruvec) > 0 && self.lr.lruvecs[sc.lruvec].inactive_is_low(false) {
            self.shrink_active_list(SWAP_CLUSTER_MAX, Lru::ActiveAnon, sc);
        }
    }

    fn shrink_list(&mut self, lru: Lru, nr: u64, sc: &mut ScanControl) -> u64 {
        if lru.is_active() {
            if sc.may_deactivate[lru.is_file() as usize] {
                self.shrink_active_list(nr, lru, sc);
            } else {
                sc.skipped_deactivate = true;
            }
            return 0;
        }
        self.shrink_inactive_list(nr, lru, sc)
    }

    /// Take up to `nr` folios off the tail of `lru` (isolate_lru_folios).
    fn isolate(&mut self, lruvec: usize, lru: Lru, nr: u64) -> Vec<Pfn> {
        let lists = &mut self.lr.lruvecs[lruvec].lists;
        let mut taken = Vec::with_capacity(nr as usize);
        while (taken.len() as u64) < nr {
            let Some(pfn) = lists.tail(lru) else { break };
            lists.del(&mut self.lr.folios, pfn);
            taken.push(pfn);
        }
        taken
    }

    fn put_back(&mut self, lruvec: usize, pfn: Pfn, lru: Lru) {
        self.lr.lruvecs[lruvec].lists.add(&mut self.lr.folios, pfn, lru);
    }

    /// shrink_active_list: deactivate the folios at the active tail, except
    /// referenced executable file pages, which go round again.
    fn shrink_active_list(&mut self, nr: u64, lru: Lru, sc: &mut ScanControl) {
        let file = lru.is_file();
        let folios = self.isolate(sc.lruvec, lru, nr);
        self.lr.lruvecs[sc.lruvec].stat.pgrefill += folios.len() as u64;
        let (mut rotated, mut deactivated) = (0, 0);
        for pfn in folios {
            let r = rmap::folio_referenced(&mut self.cur, self.k, pfn, self.lr.folios.anchor(pfn));
            if r.locked {
                self.cull(sc.lruvec, pfn);
                continue;
            }
            if r.ptes > 0 && r.vm_exec && file {
                rotated += 1;
                self.put_back(sc.lruvec, pfn, lru);
                continue;
            }
            self.lr.folios.set(pfn, pg::WORKINGSET, true);
            self.put_back(sc.lruvec, pfn, Lru::of(file, false));
            deactivated += 1;
        }
        self.lr.lruvecs[sc.lruvec].stat.pgdeactivate += deactivated;
        self.lr.lruvecs[sc.lruvec].note_cost(file, 0, rotated);
    }

    /// An mlocked folio found by a scan goes to the unevictable list.
    pub(super) fn cull(&mut self, lruvec: usize, pfn: Pfn) {
        self.put_back(lruvec, pfn, Lru::Unevictable);
        self.lr.lruvecs[lruvec].stat.unevictable_pgs_culled += 1;
    }

    /// shrink_inactive_list and shrink_folio_list: reclaim what is not
    /// referenced, activate what was referenced twice, keep the rest.
    fn shrink_inactive_list(&mut self, nr: u64, lru: Lru, sc: &mut ScanControl) -> u64 {
        let file = lru.is_file();
        let folios = self.isolate(sc.lruvec, lru, nr);
        let scanned = folios.len() as u64;
        let (mut reclaimed, mut io) = (0u64, 0u64);
        for pfn in folios {
            match self.folio_check_references(pfn) {
                Verdict::Cull => self.cull(sc.lruvec, pfn),
                Verdict::Activate => {
                    self.lr.lruvecs[sc.lruvec].stat.pgactivate += 1;
                    self.put_back(sc.lruvec, pfn, Lru::of(file, true));
                }
                Verdict::Keep => self.put_back(sc.lruvec, pfn, lru),
                Verdict::Reclaim if !file && !self.may_swap(pfn, sc.lruvec) => {
                    // Its group is at swap.max (or swap is full): activate_locked.
                    self.lr.lruvecs[sc.lruvec].stat.pgactivate += 1;
                    self.put_back(sc.lruvec, pfn, Lru::of(file, true));
                }
                Verdict::Reclaim => match self.try_reclaim(pfn) {
                    Some(wrote) => {
                        reclaimed += 1;
                        io += wrote as u64;
                    }
                    None => {
                        // Could not go (no swap, shmem, a busy or pinned mapping): activate_locked.
                        self.lr.lruvecs[sc.lruvec].stat.pgactivate += 1;
                        self.put_back(sc.lruvec, pfn, Lru::of(file, true));
                    }
                },
            }
        }
        let s = &mut self.lr.lruvecs[sc.lruvec].stat;
        *(if sc.kswapd { &mut s.pgscan_kswapd } else { &mut s.pgscan_direct }) += scanned;
        *(if sc.kswapd { &mut s.pgsteal_kswapd } else { &mut s.pgsteal_direct }) += reclaimed;
        *(if file { &mut s.pgscan_file } else { &mut s.pgscan_anon }) += scanned;
        *(if file { &mut s.pgsteal_file } else { &mut s.pgsteal_anon }) += reclaimed;
        self.lr.lruvecs[sc.lruvec].note_cost(file, io, scanned - reclaimed);
        reclaimed
    }

    /// try_to_unmap and pageout: unmap the folio everywhere and free it,
    /// leaving a shadow where it was. Some(whether it was written: swap, or
    /// a dirty file page), or None if it stays.
    pub(super) fn try_reclaim(&mut self, pfn: Pfn) -> Option<bool> {
        let anchor = self.lr.folios.anchor(pfn);
        let file = self.lr.folios.is_file(pfn);
        let dirty = self.k.phys().frame(pfn).flags & flags::DIRTY != 0;
        // The folio's entry outlives the free until the next drain: the shadow reads it after.
        match rmap::reclaim_folio(&mut self.cur, self.k, pfn, anchor, self.pinned) {
            Unmapped::Kept => None,
            Unmapped::Discarded => Some(false),
            Unmapped::Freed { swap_slot: slot } => {
                let shadow =
                    if self.lr.mglru { self.lr.gen_eviction_shadow(pfn, file) } else { self.lr.eviction_shadow(pfn) };
                match slot {
                    Some(s) => self.lr.swapped_out(s, self.lr.folios.lruvec(pfn), shadow),
                    None => {
                        let at = file_slot(key_mm(anchor), key_va(anchor) >> 12);
                        self.lr.shadows.insert(at, shadow, self.lr.max_shadow_nodes);
                    }
                }
                Some(slot.is_some() || dirty)
            }
        }
    }

    /// Whether an anonymous page of lruvec `v` can go to swap: it has a
    /// slot already (the swap cache), or its groups may take one more.
    pub(super) fn may_swap(&self, pfn: Pfn, v: usize) -> bool {
        self.k.swap().slot_of(pfn).is_some() || self.lr.cgroups.swap_room(v as CgId) > 0
    }

    /// folio_check_references.
    pub(super) fn folio_check_references(&mut self, pfn: Pfn) -> Verdict {
        let r = rmap::folio_referenced(&mut self.cur, self.k, pfn, self.lr.folios.anchor(pfn));
        let referenced_folio = self.lr.folios.has(pfn, pg::REFERENCED);
        self.lr.folios.set(pfn, pg::REFERENCED, false);
        if r.locked {
            return Verdict::Cull;
        }
        if r.busy {
            return Verdict::Keep;
        }
        if r.ptes > 0 {
            self.lr.folios.set(pfn, pg::REFERENCED, true);
            if referenced_folio || r.ptes > 1 || (r.vm_exec && self.lr.folios.is_file(pfn)) {
                return Verdict::Activate;
            }
            return Verdict::Keep;
        }
        Verdict::Reclaim
    }
}

pub(super) enum Verdict {
    Reclaim,
    Keep,
    Activate,
    Cull,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermarks_follow_min_free_kbytes_and_the_scale_factor() {
        // 1 GiB: min_free_kbytes = sqrt(4 GiB-in-KiB * 16) = 4096, min 1024 pages.
        let pages = 262_144;
        assert_eq!(Watermarks::default_min_free_kbytes(pages), 4096);
        let w = Watermarks::new(pages, 4096, 10);
        assert_eq!((w.min, w.low, w.high), (1024, 1024 + 262, 1024 + 524));
        // Small memories take the 128 KiB floor.
        assert_eq!(Watermarks::default_min_free_kbytes(256), 128);
    }

    #[test]
    fn inactive_is_low_uses_the_square_root_rule() {
        let mut v = Lruvec::default();
        let mut t = FolioTable::default();
        for pfn in 1..=3 {
            t.init(pfn, true, 0, 0);
            v.lists.add(&mut t, pfn, Lru::ActiveFile);
        }
        t.init(4, true, 0, 0);
        v.lists.add(&mut t, 4, Lru::InactiveFile);
        assert!(v.inactive_is_low(true), "1 inactive against 3 active, ratio 1");
        assert!(!v.inactive_is_low(false), "no anon at all");
    }
}
