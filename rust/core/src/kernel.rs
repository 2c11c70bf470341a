//! State shared by every address space of one simulator: physical memory,
//! the page cache, the kernel allocators, the mm_struct reference counts and
//! the release trace. It sits behind one lock (see `sim.rs` for the order).

use crate::addr::PAGE_SIZE;
use crate::error::{Errno, Error, Result};
use crate::kalloc::{bug, kaddr_to_pfn, KernelAlloc, Site, VMALLOC_END, VMALLOC_START};
use crate::pagecache::{ObjectId, PageCache};
use crate::phys::flags;
use crate::phys::{Pfn, PhysMem};
use crate::reclaim::folios::Lru;
use crate::reclaim::vmscan::LinuxLru;
use crate::reclaim::workingset::file_slot;
use crate::reclaim::{Engine, PageKey, PolicyKind, Probe, Reclaim};
use crate::swap::SwapSpace;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, Weak};

/// sizeof(struct mm_struct) and sizeof(struct vm_area_struct) on a 6.x kernel, near enough.
pub const MM_STRUCT_SIZE: u32 = 1088;
pub const VMA_STRUCT_SIZE: u32 = 184;

/// One event of the release route (do_exit ... free_mm).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseEvent {
    pub name: &'static str,
    pub detail: String,
}

/// An mm_struct's second count (mm_count): the address space holds one
/// while it has users; a lazy-TLB grab (mmgrab) holds another. The top-level
/// table and the mm_struct itself go only when it reaches zero (__mmdrop).
#[derive(Debug, Clone, Copy)]
pub struct MmStructRef {
    pub count: u32,
    /// The part of `count` held by lazy-TLB grabs from outside (`mmgrab`).
    pub grabs: u32,
    pub pgd: Pfn,
    /// exit_mmap has run: pages, VMAs and lower tables are gone.
    pub exited: bool,
}

/// What reclaim does to an address space other than the faulting one, which
/// it reaches through the kernel's registry. `Mm` implements it (in
/// `reclaim/evict.rs`); the kernel only keeps the handles.
pub trait ReclaimTarget: Send {
    /// Is a user page resident at `va`; was it accessed (the bit is then cleared)?
    fn probe_page(&mut self, k: &mut Kernel, va: u64) -> Probe;
    /// Evict the page at `va` (unmap it; free it if that was its last mapping).
    fn evict_page(&mut self, k: &mut Kernel, va: u64) -> crate::reclaim::evict::Eviction;
    /// The address space's id.
    fn id(&self) -> u32;
    /// If the PTE at `va` maps frame `pfn`: where that PTE is and its VMA.
    fn maps(&mut self, va: u64, pfn: Pfn) -> Option<crate::reclaim::rmap::Mapping>;
    /// ptep_test_and_clear_young on a PTE `maps` found.
    fn test_and_clear_young(&mut self, at: &crate::reclaim::rmap::Mapping) -> bool;
    /// Evict the page of a PTE `maps` found (as `evict_page`, without looking it up again).
    fn evict_mapping(&mut self, k: &mut Kernel, at: &crate::reclaim::rmap::Mapping) -> crate::reclaim::evict::Eviction;
    /// Where this address space's VMAs map page `index` of object `id` (appended to `out`).
    fn object_addresses(&self, id: ObjectId, index: u64, out: &mut Vec<u64>);
    /// Every address whose PTE maps `pfn` (a walk of all the page tables: the slow path).
    fn addresses_mapping(&self, pfn: Pfn, out: &mut Vec<u64>);
    /// Clear every young PTE of a user page (outside VMAs with no recency), passing each frame to `young`.
    fn clear_young(&mut self, k: &mut Kernel, young: &mut dyn FnMut(Pfn));
    /// The memory cgroup it charges.
    fn memcg(&self) -> crate::reclaim::memcg::CgId;
    /// oom_badness against `totalpages`; None if it must not be killed.
    fn oom_badness(&self, totalpages: u64) -> Option<i64>;
    /// The OOM killer chose it: free its memory now.
    fn oom_reap(&mut self, k: &mut Kernel);
}

type TargetHandle = Arc<Mutex<dyn ReclaimTarget>>;

/// vm.overcommit_memory: how mmap, brk, mprotect, stack growth and fork
/// decide whether there is memory enough to promise (mm/util.c
/// __vm_enough_memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OvercommitMode {
    /// 0, OVERCOMMIT_GUESS: refuse only a single request larger than RAM + swap.
    Guess,
    /// 1, OVERCOMMIT_ALWAYS: never refuse.
    Always,
    /// 2, OVERCOMMIT_NEVER: refuse once Committed_AS would reach the commit limit.
    Never,
}

/// vm.overcommit_memory and vm.overcommit_ratio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overcommit {
    pub mode: OvercommitMode,
    /// Percent of RAM the commit limit counts under mode 2 (plus all of swap).
    pub ratio: u64,
}

impl Default for Overcommit {
    fn default() -> Self {
        Overcommit { mode: OvercommitMode::Guess, ratio: 50 }
    }
}

impl Overcommit {
    pub fn new(mode: u32, ratio: u64) -> Result<Overcommit> {
        let mode = match mode {
            0 => OvercommitMode::Guess,
            1 => OvercommitMode::Always,
            2 => OvercommitMode::Never,
            other => return Err(Error::invalid(format!("overcommit must be 0, 1 or 2, got {other}"))),
        };
        if ratio > 100_000 {
            return Err(Error::invalid(format!("overcommit_ratio must be a percentage (0..=100000), got {ratio}")));
        }
        Ok(Overcommit { mode, ratio })
    }

    /// MAP_NORESERVE skips the charge except under mode 2.
    pub fn honours_noreserve(&self) -> bool {
        self.mode != OvercommitMode::Never
    }
}

/// /proc/meminfo-like totals, in pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemInfo {
    pub total: u64,
    pub free: u64,
    pub page_tables: u64,
    pub slab: u64,
    pub vmalloc: u64,
    pub alloc_pages: u64,
    /// Committed_AS: pages promised to private writable mappings and shmem.
    pub committed: u64,
    /// CommitLimit: RAM * overcommit_ratio% + swap (enforced under mode 2 only).
    pub commit_limit: u64,
    /// Pages on each LRU list (Linux reclaim; zero otherwise), in `Lru` order.
    pub lru: [u64; crate::reclaim::folios::NR_LRU_LISTS],
    /// Anonymous pages kept in the swap cache.
    pub swap_cached: u64,
    /// Page-cache pages modified and not yet written back.
    pub dirty: u64,
}

impl MemInfo {
    /// The fields under /proc/meminfo's names, in kB (`AllocPages` is vmsim's own:
    /// the pages alloc_pages handed out).
    pub fn named_kb(&self) -> Vec<(&'static str, u64)> {
        let kb = |pages: u64| pages * (PAGE_SIZE / 1024);
        let lru = |l: Lru| kb(self.lru[l as usize]);
        vec![
            ("MemTotal", kb(self.total)),
            ("MemFree", kb(self.free)),
            ("SwapCached", kb(self.swap_cached)),
            ("Active", lru(Lru::ActiveAnon) + lru(Lru::ActiveFile)),
            ("Inactive", lru(Lru::InactiveAnon) + lru(Lru::InactiveFile)),
            ("Active(anon)", lru(Lru::ActiveAnon)),
            ("Inactive(anon)", lru(Lru::InactiveAnon)),
            ("Active(file)", lru(Lru::ActiveFile)),
            ("Inactive(file)", lru(Lru::InactiveFile)),
            ("Unevictable", lru(Lru::Unevictable)),
            ("Mlocked", lru(Lru::Unevictable)),
            ("Dirty", kb(self.dirty)),
            // Writeback completes at once in the simulator.
            ("Writeback", 0),
            ("PageTables", kb(self.page_tables)),
            ("Slab", kb(self.slab)),
            ("VmallocUsed", kb(self.vmalloc)),
            ("AllocPages", kb(self.alloc_pages)),
            ("Committed_AS", kb(self.committed)),
            ("CommitLimit", kb(self.commit_limit)),
        ]
    }
}

/// One line of /proc/vmallocinfo: the area with its guard page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmallocInfo {
    pub start: u64,
    /// The end of the area including its guard page.
    pub end: u64,
    /// The size including the guard page, as /proc/vmallocinfo shows it.
    pub size: u64,
    pub pages: Vec<Pfn>,
    pub caller: String,
}

pub struct Kernel {
    phys: PhysMem,
    cache: PageCache,
    kalloc: KernelAlloc,
    mm_cache: u32,
    vma_cache: u32,
    mm_structs: HashMap<u64, MmStructRef>,
    /// vm.fault_around_bytes-like knob: the window a file read fault maps (4096 turns it off).
    fault_around_bytes: u64,
    /// The simulated executable default-layout processes map (see `layout`).
    executable: Option<ObjectId>,
    swap: SwapSpace,
    /// Reclaim and its replacement policy; None: memory running out is OOM.
    reclaim: Option<Reclaim>,
    /// Every live address space, by id: what reclaim unmaps pages through.
    mms: HashMap<u32, Weak<Mutex<dyn ReclaimTarget>>>,
    last_mm_id: u32,
    trace: Option<Vec<ReleaseEvent>>,
    last_anon_vma: u32,
    overcommit: Overcommit,
    /// Committed_AS, in pages.
    committed: u64,
    /// Shmem objects and the pages each charged to Committed_AS.
    shmem_charges: HashMap<ObjectId, u64>,
    /// Address spaces the OOM killer chose whose tasks are still to be killed.
    oom_victims: Vec<crate::reclaim::oom::OomVictim>,
    /// OOM kills so far (/proc/vmstat oom_kill).
    pub oom_kills: u64,
}

impl Kernel {
    pub fn new(nframes: u32) -> Result<Kernel> {
        let mut kalloc = KernelAlloc::new();
        let mm_cache = kalloc.slab.create("mm_struct", MM_STRUCT_SIZE, false)?;
        let vma_cache = kalloc.slab.create("vm_area_struct", VMA_STRUCT_SIZE, false)?;
        Ok(Kernel {
            phys: PhysMem::new(nframes)?,
            cache: PageCache::default(),
            kalloc,
            mm_cache,
            vma_cache,
            mm_structs: HashMap::new(),
            fault_around_bytes: 65536,
            executable: None,
            swap: SwapSpace::default(),
            reclaim: None,
            mms: HashMap::new(),
            last_mm_id: 0,
            trace: None,
            last_anon_vma: 0,
            overcommit: Overcommit::default(),
            committed: 0,
            shmem_charges: HashMap::new(),
            oom_victims: Vec::new(),
            oom_kills: 0,
        })
    }

    /// Turn reclaim on: `swap_pages` of swap, `policy` choosing victims, at
    /// most `resident_limit` resident user pages; `knobs` for Linux reclaim.
    pub(crate) fn enable_reclaim(
        &mut self,
        swap_pages: u64,
        policy: PolicyKind,
        resident_limit: Option<u64>,
        knobs: crate::reclaim::LinuxKnobs,
    ) {
        self.swap = SwapSpace::new(swap_pages);
        self.reclaim = Some(Reclaim::new(policy, resident_limit, self.phys.frames_total(), knobs));
        // Linux reclaim keeps physical pages on lists: it must hear of every free.
        self.phys.track_freed(policy.is_linux());
    }

    /// Take the pages freed since the last look off Linux reclaim's lists
    /// (before its lists are read: counters, meminfo, checks).
    pub fn drain_lru(&mut self) {
        self.linux_lru();
    }

    /// Linux reclaim's state with the frees since the last look taken off its lists.
    fn linux_lru(&mut self) -> Option<&mut LinuxLru> {
        let lr = self.reclaim.as_mut()?.linux_mut()?;
        self.phys.drain_freed(|pfn| lr.forget(pfn));
        Some(lr)
    }

    // ----- the parts, for the modules that work on them ---------------------

    pub fn phys(&self) -> &PhysMem {
        &self.phys
    }
    pub(crate) fn phys_mut(&mut self) -> &mut PhysMem {
        &mut self.phys
    }
    pub fn cache(&self) -> &PageCache {
        &self.cache
    }
    pub(crate) fn cache_mut(&mut self) -> &mut PageCache {
        &mut self.cache
    }
    pub fn swap(&self) -> &SwapSpace {
        &self.swap
    }
    pub fn kalloc(&self) -> &KernelAlloc {
        &self.kalloc
    }
    pub fn reclaim(&self) -> Option<&Reclaim> {
        self.reclaim.as_ref()
    }
    pub(crate) fn reclaim_mut(&mut self) -> Option<&mut Reclaim> {
        self.reclaim.as_mut()
    }
    pub fn reclaim_enabled(&self) -> bool {
        self.reclaim.is_some()
    }
    /// Reclaim's state, taken out while it runs (its policy calls back into the kernel).
    pub(crate) fn take_reclaim(&mut self) -> Option<Reclaim> {
        self.reclaim.take()
    }
    pub(crate) fn restore_reclaim(&mut self, r: Reclaim) {
        self.reclaim = Some(r);
    }
    pub fn fault_around_bytes(&self) -> u64 {
        self.fault_around_bytes
    }
    pub(crate) fn set_fault_around_bytes(&mut self, bytes: u64) {
        self.fault_around_bytes = bytes;
    }
    pub(crate) fn executable(&self) -> Option<ObjectId> {
        self.executable
    }
    pub(crate) fn set_executable(&mut self, id: ObjectId) {
        self.executable = Some(id);
    }

    /// The page the fault in progress is for: reclaim never picks it.
    #[inline]
    pub(crate) fn pin_against_reclaim(&mut self, key: Option<PageKey>) {
        if let Some(r) = &mut self.reclaim {
            r.pinned = key;
        }
    }

    /// A user page (frame `pfn`) became resident at `va` of address space
    /// `mm`, in a VMA that is mlocked or not.
    #[inline]
    pub(crate) fn note_mapped(&mut self, mm: u32, va: u64, pfn: Pfn, locked: bool) {
        let Some(r) = &mut self.reclaim else { return };
        match &mut r.engine {
            Engine::Textbook(policy) => policy.mapped(crate::reclaim::key(mm, va)),
            Engine::Linux(_) => {
                let anon = self.phys.frame(pfn).flags & flags::ANON != 0;
                if let Some(lr) = self.linux_lru() {
                    lr.mapped(pfn, mm, va, anon, locked);
                }
            }
        }
    }

    /// A private copy (frame `pfn`) replaced the page mapped at `va`: a new
    /// folio for Linux reclaim, the same virtual page for a textbook policy.
    #[inline]
    pub(crate) fn note_copied(&mut self, mm: u32, va: u64, pfn: Pfn, locked: bool) {
        if let Some(lr) = self.linux_lru() {
            lr.mapped(pfn, mm, va, true, locked);
        }
    }

    /// The user page at `va` of address space `mm` was unmapped: a textbook
    /// policy forgets it (Linux reclaim follows the page, not the mapping).
    #[inline]
    pub(crate) fn note_unmapped(&mut self, mm: u32, va: u64) {
        if let Some(policy) = self.reclaim.as_mut().and_then(Reclaim::policy_mut) {
            policy.unmapped(crate::reclaim::key(mm, va));
        }
    }

    /// The mapped page `pfn` was mlocked or munlocked.
    pub(crate) fn note_mlock(&mut self, pfn: Pfn, locked: bool) {
        if let Some(lr) = self.linux_lru() {
            lr.set_unevictable(pfn, locked);
        }
    }

    /// folio_mark_accessed: the page was read or written through a file descriptor.
    pub(crate) fn mark_page_accessed(&mut self, pfn: Pfn) {
        if let Some(lr) = self.linux_lru() {
            lr.mark_accessed(pfn);
        }
    }

    /// add_to_page_cache_lru: `pfn` now holds page `index` of object `id`;
    /// Linux reclaim lists it, activated at once if its refault is recent.
    pub(crate) fn add_to_page_cache(&mut self, id: ObjectId, index: u64, pfn: Pfn) {
        self.cache.insert(id, index, pfn);
        let file = self.cache.object(id).is_file();
        let swap_free = self.swap.total() - self.swap.used();
        if let Some(lr) = self.linux_lru() {
            let shadow = if file { lr.shadows.take(file_slot(id, index)) } else { None };
            lr.add_refaulted(pfn, file, crate::reclaim::key(id, index << 12), shadow, swap_free);
        }
    }

    /// Who new pages are for from now on: the group they are charged to,
    /// and whether they come in through a page fault (the multi-gen LRU
    /// starts those in its youngest generation).
    pub(crate) fn set_charging(&mut self, cg: crate::reclaim::memcg::CgId, in_fault: bool) {
        if let Some(lr) = self.reclaim.as_mut().and_then(Reclaim::linux_mut) {
            lr.charge_to = cg;
            lr.in_fault = in_fault;
        }
    }

    /// Memory cgroups, when Linux reclaim is on.
    pub fn cgroups(&self) -> Option<&crate::reclaim::memcg::Cgroups> {
        self.reclaim.as_ref().and_then(Reclaim::linux).map(|lr| &lr.cgroups)
    }

    /// Bring the kernel-memory charge of `mm` (its page tables and slab
    /// objects) up to date, while memory cgroups are in use.
    pub(crate) fn sync_mm_charge(&mut self, mm: &mut crate::mm::Mm) {
        let Some(lr) = self.reclaim.as_mut().and_then(Reclaim::linux_mut) else { return };
        if !lr.cgroups.in_use() && mm.kernel_charge.is_empty() {
            return;
        }
        let (pagetables, slab) = mm.kernel_bytes();
        for (cg, pt, sl) in mm.kernel_charge.sync(mm.memcg, pagetables, slab) {
            lr.cgroups.charge_kernel(cg, pt, sl);
        }
    }

    /// The address space is gone: every kernel-memory charge it made goes.
    pub(crate) fn uncharge_mm(&mut self, mm: &mut crate::mm::Mm) {
        if let Some(lr) = self.reclaim.as_mut().and_then(Reclaim::linux_mut) {
            for (cg, pt, sl) in mm.kernel_charge.sync(mm.memcg, 0, 0) {
                lr.cgroups.charge_kernel(cg, pt, sl);
            }
        }
    }

    /// The OOM killer chose `victim`, an address space of group `memcg`.
    pub(crate) fn note_oom_kill(&mut self, victim: crate::reclaim::oom::OomVictim, memcg: crate::reclaim::memcg::CgId) {
        self.oom_kills += 1;
        if let Some(lr) = self.reclaim.as_mut().and_then(Reclaim::linux_mut) {
            lr.cgroups.groups[memcg as usize].own_events.oom_kill += 1;
        }
        self.oom_victims.push(victim);
    }

    /// The OOM killer's victims whose tasks are still to be killed.
    pub(crate) fn take_oom_victims(&mut self) -> Vec<crate::reclaim::oom::OomVictim> {
        std::mem::take(&mut self.oom_victims)
    }

    /// The addresses spaces alive now, by id.
    pub(crate) fn mm_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.mms.keys().copied()
    }

    /// The shadows of object `id` at pages [first, last) are no more (truncate, a hole, the file gone).
    fn forget_shadows(&mut self, id: ObjectId, first: u64, last: u64) {
        if let Some(lr) = self.reclaim.as_mut().and_then(Reclaim::linux_mut) {
            lr.shadows.forget_file_range(id, first, last);
        }
    }

    // ----- overcommit accounting ------------------------------------------

    pub fn overcommit(&self) -> Overcommit {
        self.overcommit
    }
    pub(crate) fn set_overcommit(&mut self, overcommit: Overcommit) {
        self.overcommit = overcommit;
    }
    /// Committed_AS, in pages.
    pub fn committed(&self) -> u64 {
        self.committed
    }
    /// CommitLimit: RAM * ratio% + swap, in pages (vm_commit_limit).
    pub fn commit_limit(&self) -> u64 {
        self.phys.frames_total() * self.overcommit.ratio / 100 + self.swap.total()
    }

    /// __vm_enough_memory: charge `pages` to Committed_AS for a process
    /// mapping `total_vm` pages, or fail with ENOMEM (and charge nothing).
    /// Simulated tasks have no CAP_SYS_ADMIN: the admin reserve is kept.
    pub(crate) fn vm_enough_memory(&mut self, total_vm: u64, pages: u64) -> Result<()> {
        if pages == 0 {
            return Ok(());
        }
        let ram = self.phys.frames_total();
        let enough = match self.overcommit.mode {
            OvercommitMode::Always => true,
            OvercommitMode::Guess => pages <= ram + self.swap.total(),
            OvercommitMode::Never => {
                // admin_reserve_kbytes and user_reserve_kbytes as set at boot:
                // 3% of free memory, at most 8 MiB and 128 MiB.
                let admin_reserve = (ram / 32).min((8 << 20) / PAGE_SIZE);
                let user_reserve = (ram / 32).min((128 << 20) / PAGE_SIZE);
                let allowed =
                    self.commit_limit().saturating_sub(admin_reserve).saturating_sub((total_vm / 32).min(user_reserve));
                self.committed + pages < allowed
            }
        };
        if !enough {
            return Err(Error::sys(
                Errno::ENOMEM,
                format!(
                    "not enough memory to commit {pages} pages (overcommit mode {}; Committed_AS {} of CommitLimit {} pages)",
                    self.overcommit.mode as u8,
                    self.committed,
                    self.commit_limit()
                ),
            ));
        }
        self.committed += pages;
        Ok(())
    }

    /// vm_acct_memory: `pages` promised with no check (a charge moving from
    /// one mapping to another, the old one's given back right after).
    pub(crate) fn vm_acct(&mut self, pages: u64) {
        self.committed += pages;
    }

    /// vm_unacct_memory: `pages` no longer promised.
    pub(crate) fn vm_unacct(&mut self, pages: u64) {
        debug_assert!(pages <= self.committed);
        self.committed = self.committed.saturating_sub(pages);
    }

    /// A shmem object for a shared anonymous mapping (its charge, if `charged`,
    /// was made by the caller and goes when the object does).
    pub(crate) fn create_shmem(&mut self, pages: u64, charged: bool) -> ObjectId {
        let id = self.cache.create_shmem(pages);
        if charged {
            self.shmem_charges.insert(id, pages);
        }
        id
    }

    /// Pages charged by live shmem objects.
    pub fn shmem_committed(&self) -> u64 {
        self.shmem_charges.values().sum()
    }

    // ----- page-cache objects ----------------------------------------------

    /// A VMA stopped mapping object `id`; its pages may go with it.
    pub(crate) fn drop_mapper(&mut self, id: ObjectId) {
        self.cache.drop_mapper(id, &mut self.phys);
        self.forget_shadows_if_gone(id);
        if self.cache.get(id).is_none() {
            if let Some(pages) = self.shmem_charges.remove(&id) {
                self.vm_unacct(pages);
            }
        }
    }
    pub(crate) fn close_file(&mut self, id: ObjectId) {
        self.cache.close(id, &mut self.phys);
        self.forget_shadows_if_gone(id);
    }
    pub(crate) fn unlink_file(&mut self, id: ObjectId) {
        self.cache.unlink(id, &mut self.phys);
        self.forget_shadows_if_gone(id);
    }
    /// An object freed takes its shadows with it (its id may be used again).
    fn forget_shadows_if_gone(&mut self, id: ObjectId) {
        if self.cache.get(id).is_none() {
            self.forget_shadows(id, 0, u64::MAX);
        }
    }
    /// Set the file's size, dropping cached pages past the end (mappings are the caller's).
    pub(crate) fn truncate_file_cache(&mut self, id: ObjectId, size: u64) {
        self.cache.truncate(id, size, &mut self.phys);
        self.forget_shadows(id, size.div_ceil(PAGE_SIZE), u64::MAX);
    }
    /// A write grew the file to `size` bytes.
    pub(crate) fn extend_file(&mut self, id: ObjectId, size: u64) {
        self.cache.truncate(id, size, &mut self.phys);
    }
    /// Punch a hole in object `id`: its cached pages [first, last) go, unwritten.
    pub(crate) fn punch_hole(&mut self, id: ObjectId, first: u64, last: u64) {
        for index in first..last.min(self.cache.object(id).size_pages) {
            self.cache.evict(id, index, &mut self.phys);
        }
        self.forget_shadows(id, first, last);
    }

    /// Drop an unmapped page from the page cache (written back first if dirty).
    pub(crate) fn evict_cache_page(&mut self, id: ObjectId, page: u64, pfn: Pfn) {
        if self.phys.frame(pfn).flags & flags::DIRTY != 0 {
            self.cache.stats.writebacks += 1;
        }
        self.cache.evict(id, page, &mut self.phys);
    }

    // ----- swap --------------------------------------------------------------

    /// A free swap slot, if any (no references yet).
    pub(crate) fn swap_alloc(&mut self) -> Option<u32> {
        self.swap.alloc()
    }
    /// One more PTE refers to `slot` (swap_duplicate).
    pub(crate) fn swap_dup(&mut self, slot: u32) {
        self.swap.get(slot);
    }
    /// One PTE less refers to `slot` (swap_free); the last frees it.
    pub(crate) fn swap_put(&mut self, slot: u32) {
        self.swap.put(slot, &mut self.phys);
        if self.swap.refs(slot) == 0 {
            // The slot is free: nothing can refault from it, no group is charged for it.
            if let Some(lr) = self.reclaim.as_mut().and_then(Reclaim::linux_mut) {
                lr.swap_slot_freed(slot);
            }
        }
    }
    /// Keep `pfn` in the swap cache for `slot`.
    pub(crate) fn swap_cache_add(&mut self, slot: u32, pfn: Pfn) {
        self.swap.cache_page(slot, pfn, &mut self.phys);
    }
    /// A page written out to `slot` and mapped nowhere leaves memory.
    pub(crate) fn swap_write_out(&mut self, slot: u32) {
        self.swap.swap_outs += 1;
        self.swap.uncache(slot, &mut self.phys);
    }
    /// A page mapped here alone written out to `slot` (no swap cache needed).
    pub(crate) fn count_swap_out(&mut self) {
        self.swap.swap_outs += 1;
    }
    /// The fresh frame `pfn` now holds the page read back from `slot`; it
    /// stays in the swap cache while other PTEs still refer to the slot.
    pub(crate) fn swap_in_page(&mut self, slot: u32, pfn: Pfn) {
        self.swap.swap_ins += 1;
        let swap_free = self.swap.total() - self.swap.used();
        if let Some(lr) = self.linux_lru() {
            let shadow = lr.take_swap_shadow(slot);
            lr.add_refaulted(pfn, false, 0, shadow, swap_free);
        }
        if self.swap.refs(slot) > 1 {
            self.swap.cache_page(slot, pfn, &mut self.phys);
            self.phys.frame_mut(pfn).flags &= !flags::ANON_EXCLUSIVE;
        }
        self.phys.put_frame_keep(pfn);
    }

    // ----- address spaces ----------------------------------------------------

    pub(crate) fn new_mm_id(&mut self) -> u32 {
        self.last_mm_id += 1;
        self.last_mm_id
    }

    pub(crate) fn register_mm(&mut self, id: u32, mm: Weak<Mutex<dyn ReclaimTarget>>) {
        self.mms.insert(id, mm);
    }

    pub(crate) fn unregister_mm(&mut self, id: u32) {
        self.mms.remove(&id);
    }

    /// The registered address space `id`, if it is still alive.
    pub(crate) fn mm_handle(&self, id: u32) -> Option<TargetHandle> {
        self.mms.get(&id).and_then(Weak::upgrade)
    }

    /// A fresh anon_vma identity (never 0).
    pub(crate) fn new_anon_vma(&mut self) -> u32 {
        self.last_anon_vma = self.last_anon_vma.wrapping_add(1).max(1);
        self.last_anon_vma
    }

    /// A new mm_struct (from its slab cache) owning the PGD at `pgd`.
    pub(crate) fn register_mm_struct(&mut self, addr: u64, pgd: Pfn) {
        self.mm_structs.insert(addr, MmStructRef { count: 1, grabs: 0, pgd, exited: false });
    }

    /// exit_mmap ran for the mm_struct at `addr`.
    pub(crate) fn mark_mm_exited(&mut self, addr: u64) {
        if let Some(r) = self.mm_structs.get_mut(&addr) {
            r.exited = true;
        }
    }

    /// Every live mm_struct and its counts.
    pub fn mm_structs(&self) -> &HashMap<u64, MmStructRef> {
        &self.mm_structs
    }

    pub(crate) fn alloc_mm_struct(&mut self) -> Result<u64> {
        self.alloc_object(self.mm_cache, "mm_struct (mm_alloc)")
    }
    pub(crate) fn free_mm_struct(&mut self, addr: u64) {
        self.free_object(self.mm_cache, addr);
    }
    pub(crate) fn alloc_vma_struct(&mut self) -> Result<u64> {
        self.alloc_object(self.vma_cache, "vm_area_struct")
    }
    pub(crate) fn free_vma_struct(&mut self, addr: u64) {
        self.free_object(self.vma_cache, addr);
    }

    // ----- reports -------------------------------------------------------------

    /// Free blocks per order, like /proc/buddyinfo.
    pub fn buddyinfo(&self) -> Vec<u64> {
        self.phys.buddyinfo().to_vec()
    }

    pub fn slabinfo(&self) -> Vec<crate::kalloc::SlabInfo> {
        self.kalloc.slab.info()
    }

    /// Every vmalloc area, with the guard page after it counted as /proc/vmallocinfo does.
    pub fn vmallocinfo(&self) -> Vec<VmallocInfo> {
        self.kalloc
            .vmalloc
            .areas()
            .map(|a| VmallocInfo {
                start: a.start,
                end: a.start + a.size + PAGE_SIZE,
                size: a.size + PAGE_SIZE,
                pages: a.pages.clone(),
                caller: a.site.to_string(),
            })
            .collect()
    }

    pub fn meminfo(&self) -> MemInfo {
        let (alloc_pages, slab, vmalloc) = self.kalloc.pages_by_allocator();
        MemInfo {
            total: self.phys.frames_total(),
            free: self.phys.frames_free(),
            page_tables: self.phys.table_frames(),
            slab,
            vmalloc,
            alloc_pages,
            committed: self.committed,
            commit_limit: self.commit_limit(),
            lru: self.reclaim().and_then(Reclaim::linux).map_or([0; 5], |lr| Lru::ALL.map(|l| lr.total(l))),
            swap_cached: self.swap.cached().count() as u64,
            dirty: self
                .cache
                .files_pages()
                .filter(|&(_, _, pfn)| self.phys.frame(pfn).flags & flags::DIRTY != 0)
                .count() as u64,
        }
    }

    // ----- the allocator calls, as a kernel module would make them --------

    pub fn alloc_pages(&mut self, order: usize) -> Result<u64> {
        self.kalloc.alloc_pages(&mut self.phys, order, Site::AllocPages(order))
    }
    pub fn free_pages(&mut self, addr: u64, order: usize) -> Result<()> {
        self.kalloc.free_pages(&mut self.phys, addr, order)
    }
    pub fn kmalloc(&mut self, size: u64, site: Site) -> Result<u64> {
        self.kalloc.kmalloc(&mut self.phys, size, site)
    }
    pub fn kmalloc_array(&mut self, n: u64, size: u64) -> Result<u64> {
        self.kalloc.kmalloc_array(&mut self.phys, n, size)
    }
    pub fn kfree(&mut self, addr: u64) -> Result<()> {
        self.kalloc.kfree(&mut self.phys, addr)
    }
    /// `n` kmallocs of `size` bytes in one call; on failure the ones made are
    /// freed. More than the simulated memory could hold fails at once.
    pub fn kmalloc_many(&mut self, size: u64, n: u64) -> Result<Vec<u64>> {
        let memory = self.phys.frames_total() * PAGE_SIZE;
        if n.saturating_mul(size.max(8)) > memory {
            return Err(Error::OutOfMemory(format!("kmalloc_many({size}, {n}): more than all of memory")));
        }
        let mut out = Vec::with_capacity(n as usize);
        for _ in 0..n {
            match self.kalloc.kmalloc(&mut self.phys, size, Site::Kmalloc(size)) {
                Ok(p) => out.push(p),
                Err(e) => {
                    for p in out.drain(..) {
                        self.kfree(p).expect("just allocated");
                    }
                    return Err(e);
                }
            }
        }
        Ok(out)
    }
    /// kfree of each address in turn; stops at the first bug, reporting its index.
    pub fn kfree_many(&mut self, addrs: &[u64]) -> Result<()> {
        for (i, &a) in addrs.iter().enumerate() {
            self.kfree(a).map_err(|e| match e {
                Error::KernelBug(msg) => Error::KernelBug(format!("addrs[{i}]: {msg}")),
                other => other,
            })?;
        }
        Ok(())
    }
    pub fn kmem_cache_create(&mut self, name: &str, size: u32) -> Result<u32> {
        self.kalloc.slab.create(name, size, true)
    }
    pub fn kmem_cache_destroy(&mut self, cache: u32) -> Result<()> {
        self.kalloc.slab.destroy(cache)
    }
    pub fn kmem_cache_alloc(&mut self, cache: u32) -> Result<u64> {
        self.user_cache(cache)?;
        self.kalloc.slab.alloc(&mut self.phys, cache, Site::CacheAlloc)
    }
    pub fn kmem_cache_free(&mut self, cache: u32, addr: u64) -> Result<()> {
        self.user_cache(cache)?;
        if kaddr_to_pfn(addr, &self.phys).is_none() {
            return Err(bug(format!("kmem_cache_free of {addr:#x}: not a slab object")));
        }
        self.kalloc.slab.free(&mut self.phys, addr, Some(cache)).map(|_| ())
    }
    /// Callers use only caches they made: the kernel's own (kmalloc-*,
    /// mm_struct, vm_area_struct) are not theirs to allocate from or free to.
    fn user_cache(&self, cache: u32) -> Result<()> {
        if self.kalloc.slab.is_kernel_cache(cache) {
            return Err(bug(format!("slab cache {cache} belongs to the kernel: use a cache kmem_cache_create made")));
        }
        Ok(()) // unknown ids and destroyed caches are reported by the slab allocator
    }
    pub fn vmalloc(&mut self, size: u64, site: Site) -> Result<u64> {
        self.kalloc.vmalloc.vmalloc(&mut self.phys, size, site)
    }
    pub fn vfree(&mut self, addr: u64) -> Result<()> {
        let in_vmalloc = (VMALLOC_START..VMALLOC_END).contains(&addr);
        if addr != 0 && !in_vmalloc && self.kalloc_owns(addr) {
            return Err(bug(format!("vfree of {addr:#x}, which kmalloc or alloc_pages allocated")));
        }
        self.kalloc.vmalloc.vfree(&mut self.phys, addr)
    }
    fn kalloc_owns(&self, addr: u64) -> bool {
        kaddr_to_pfn(addr, &self.phys)
            .is_some_and(|pfn| self.phys.frame(pfn).flags & (flags::SLAB | flags::KERNEL) != 0)
    }
    pub fn kobject_create(&mut self, name: &str, parent: Option<u64>) -> Result<u64> {
        self.kalloc.kobject_create(&mut self.phys, name, parent)
    }
    pub fn kobject_get(&mut self, addr: u64) -> Result<u32> {
        self.kalloc.kobject_get(addr)
    }
    pub fn kobject_put(&mut self, addr: u64) -> Result<Vec<String>> {
        self.kalloc.kobject_put(&mut self.phys, addr)
    }
    /// The kobject at `addr` and its parents, nearest first: the objects a
    /// `kobject_put` of it may release.
    pub fn kobject_ancestry(&self, addr: u64) -> Vec<u64> {
        let mut chain = Vec::new();
        let mut at = Some(addr);
        while let Some(a) = at.filter(|a| self.kalloc.kobjects.get_obj(*a).is_some()) {
            chain.push(a);
            at = self.kalloc.kobjects.get_obj(a).and_then(|o| o.parent);
        }
        chain
    }
    /// The reference count of a live kobject.
    pub fn kobject_refcount(&self, addr: u64) -> Option<u32> {
        self.kalloc.kobjects.get_obj(addr).map(|o| o.refcount)
    }

    // ----- the release trace ---------------------------------------------

    pub(crate) fn set_tracing(&mut self, on: bool) {
        if on {
            self.trace.get_or_insert_with(Vec::new);
        } else {
            self.trace = None;
        }
    }

    pub(crate) fn tracing(&self) -> bool {
        self.trace.is_some()
    }

    /// Record an event if tracing; the detail is only built then.
    pub(crate) fn event(&mut self, name: &'static str, detail: impl FnOnce() -> String) {
        if let Some(t) = &mut self.trace {
            t.push(ReleaseEvent { name, detail: detail() });
        }
    }

    /// Take the events recorded so far.
    pub(crate) fn take_events(&mut self) -> Vec<ReleaseEvent> {
        self.trace.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Where the next event will go: mark before an operation, then `events_since`.
    pub(crate) fn event_mark(&self) -> usize {
        self.trace.as_ref().map_or(0, Vec::len)
    }

    /// The events recorded since `mark`; `keep` leaves them in the trace too.
    pub(crate) fn events_since(&mut self, mark: usize, keep: bool) -> Vec<ReleaseEvent> {
        match &mut self.trace {
            Some(t) if keep => t.get(mark..).map(<[_]>::to_vec).unwrap_or_default(),
            Some(t) => t.split_off(mark.min(t.len())),
            None => Vec::new(),
        }
    }

    // ----- the simulator's own kernel objects ------------------------------

    fn alloc_object(&mut self, cache: u32, site: &'static str) -> Result<u64> {
        self.kalloc.slab.alloc(&mut self.phys, cache, Site::Internal(site)).map_err(|e| match e {
            Error::OutOfMemory(what) => Error::sys(Errno::ENOMEM, format!("out of simulated memory for {what}")),
            other => other,
        })
    }

    fn free_object(&mut self, cache: u32, addr: u64) {
        self.kalloc
            .slab
            .free(&mut self.phys, addr, Some(cache))
            .expect("the simulator frees its own objects correctly");
    }

    /// mmgrab: one more mm_count reference on the mm_struct at `mm`.
    pub(crate) fn mmgrab(&mut self, mm: u64) {
        let r = self.mm_structs.get_mut(&mm).expect("a live mm_struct");
        r.count += 1;
        r.grabs += 1;
    }

    /// mmdrop of a reference `mmgrab` took: anything else is a bug (the
    /// address space's own reference is not for outside callers to drop).
    pub(crate) fn mmdrop_grabbed(&mut self, mm: u64) -> Result<()> {
        match self.mm_structs.get_mut(&mm) {
            Some(r) if r.grabs > 0 => r.grabs -= 1,
            Some(_) => return Err(bug(format!("mmdrop of mm_struct {mm:#x} without a matching mmgrab"))),
            None => return Err(bug(format!("mmdrop of {mm:#x}: not a live mm_struct"))),
        }
        self.mmdrop(mm)
    }

    /// mmdrop: one reference less; the last runs __mmdrop (the top-level
    /// table with free_pages, then the mm_struct back to its cache).
    pub(crate) fn mmdrop(&mut self, mm: u64) -> Result<()> {
        let r = self.mm_structs.get_mut(&mm).ok_or_else(|| bug(format!("mmdrop of {mm:#x}: not a live mm_struct")))?;
        r.count -= 1;
        let (left, pgd) = (r.count, r.pgd);
        self.event("mmdrop", || format!("mm_struct {mm:#x}: mm_count {} -> {left}", left + 1));
        if left == 0 {
            self.mm_structs.remove(&mm);
            self.event("__mmdrop", || format!("mm_struct {mm:#x}: the last reference"));
            self.phys.put_frame(pgd);
            self.event("mm_free_pgd", || format!("free_pages(pgd at frame {pgd}, order 0)"));
            let cache = self.mm_cache;
            self.free_object(cache, mm);
            self.event("free_mm", || format!("kmem_cache_free(mm_struct, {mm:#x})"));
        }
        Ok(())
    }
}
