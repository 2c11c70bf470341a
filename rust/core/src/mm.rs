//! The address space (mm_struct): VMAs, page table, RSS counters, the brk and
//! stack layout, and the system calls that change them: mmap, munmap,
//! mprotect, madvise, brk. Fork's copy lives in `fork.rs`, the fault handler
//! in `fault.rs`, teardown in `AddressSpace::drop`.

use crate::addr::{is_page_aligned, page_up, PAGE_SIZE, TASK_SIZE, USER_HALF_END};
use crate::error::{Errno, Error, Result};
use crate::kernel::{Kernel, ReclaimTarget};
use crate::pagecache::{ObjectId, ObjectKind};
use crate::pagetable::{PageTable, Pte, PteFlags};
use crate::phys::flags;
use crate::vma::{Backing, Prot, VmFlags, Vma};
use crate::vma_index::{IndexKind, VmaIndex};
use parking_lot::Mutex;
use std::sync::Arc;

/// Per-address-space limits (sysctls and rlimits).
#[derive(Debug, Clone, Copy)]
pub struct MmConfig {
    /// RLIMIT_MEMLOCK in bytes (0: mlock is refused with EPERM).
    pub memlock_rlimit: u64,
    pub stack_rlimit: u64,
    pub stack_guard_gap: u64,
    pub mmap_min_addr: u64,
    pub max_map_count: usize,
    pub index: IndexKind,
}

impl Default for MmConfig {
    fn default() -> Self {
        MmConfig {
            memlock_rlimit: 8 << 20,
            stack_rlimit: 8 << 20,
            stack_guard_gap: 256 * PAGE_SIZE,
            mmap_min_addr: crate::addr::MMAP_MIN_ADDR,
            max_map_count: 65530,
            index: IndexKind::DEFAULT,
        }
    }
}

/// Where the heap and stack are; mmap_base bounds top-down placement.
#[derive(Debug, Clone, Copy, Default)]
pub struct Layout {
    pub start_brk: u64,
    pub brk: u64,
    pub start_stack: u64,
    pub mmap_base: u64,
}

/// Default mmap_base for an address space without a stack rlimit gap set up:
/// TASK_SIZE less the 128 MiB minimum gap (mmap_base() in arch/x86/mm/mmap.c).
pub const DEFAULT_MMAP_BASE: u64 = TASK_SIZE - (128 << 20);
/// Where brk starts in an address space spawned empty.
pub const DEFAULT_START_BRK: u64 = 0x0000_5555_5557_9000;

/// What mmap is asked for.
#[derive(Debug, Clone, Copy)]
pub struct MmapRequest {
    pub addr: u64,
    pub len: u64,
    pub prot: Prot,
    pub shared: bool,
    pub fixed: bool,
    pub fixed_noreplace: bool,
    pub growsdown: bool,
    /// MAP_NORESERVE: no commit charge (ignored under overcommit mode 2).
    pub noreserve: bool,
    /// MAP_POPULATE: fault the pages in before mmap returns (`gup::populate`).
    pub populate: bool,
    /// A file to map, and the byte offset in it (page aligned).
    pub file: Option<(ObjectId, u64)>,
}

impl MmapRequest {
    pub fn anon(len: u64, prot: Prot) -> Self {
        MmapRequest {
            addr: 0,
            len,
            prot,
            shared: false,
            fixed: false,
            fixed_noreplace: false,
            growsdown: false,
            noreserve: false,
            populate: false,
            file: None,
        }
    }

    /// Parse a flags string like "private|anonymous|fixed".
    pub fn with_flags(mut self, text: &str) -> Result<Self> {
        let (mut private, mut shared) = (false, false);
        for (word, bare) in flag_words(text, "map_") {
            match bare.as_str() {
                "private" => private = true,
                "shared" => shared = true,
                "anonymous" | "anon" => {}
                "fixed" => self.fixed = true,
                "fixed_noreplace" => self.fixed_noreplace = true,
                "growsdown" => self.growsdown = true,
                "noreserve" => self.noreserve = true,
                "populate" => self.populate = true,
                "stack" => {} // accepted, no effect here
                _ => {
                    return Err(Error::invalid(format!(
                    "bad mmap flag {word:?}: use private|shared, anonymous, fixed, fixed_noreplace, growsdown, noreserve, populate, stack"
                )))
                }
            }
        }
        if private == shared {
            return Err(Error::sys(Errno::EINVAL, "mmap flags need exactly one of private and shared"));
        }
        if shared && self.growsdown {
            // do_mmap: MAP_SHARED with VM_GROWSDOWN is EINVAL.
            return Err(Error::sys(Errno::EINVAL, "a shared mapping cannot grow down"));
        }
        self.shared = shared;
        Ok(self)
    }
}

/// mmap as a user calls it (the Python API): flags as text, the file and
/// offset separate. `request` applies the rules that tie them together.
#[derive(Debug, Clone, Copy, Default)]
pub struct MmapArgs<'a> {
    pub length: u64,
    pub prot: &'a str,
    /// Flag words like "private|anonymous"; None: "private" for a file, else "private|anonymous".
    pub flags: Option<&'a str>,
    pub addr: Option<u64>,
    pub fixed: bool,
    pub fixed_noreplace: bool,
    pub file: Option<ObjectId>,
    pub offset: u64,
}

impl MmapArgs<'_> {
    pub fn request(&self) -> Result<MmapRequest> {
        let flags = self.flags.unwrap_or(if self.file.is_some() { "private" } else { "private|anonymous" });
        let mut req = MmapRequest::anon(self.length, Prot::parse(self.prot)?).with_flags(flags)?;
        match self.file {
            Some(_) if flags.to_ascii_lowercase().contains("anon") => {
                return Err(Error::invalid("a file mapping cannot also be anonymous"));
            }
            Some(id) => req.file = Some((id, self.offset)),
            None if self.offset != 0 => return Err(Error::invalid("offset is for file mappings")),
            None => {}
        }
        req.addr = self.addr.unwrap_or(0);
        req.fixed |= self.fixed;
        req.fixed_noreplace |= self.fixed_noreplace;
        if (req.fixed || req.fixed_noreplace) && self.addr.is_none() {
            return Err(Error::invalid("fixed and fixed_noreplace need addr"));
        }
        Ok(req)
    }
}

/// The words of a flags string ("a|b", "a,b" or "a b"): each as written, and
/// lower-cased without `prefix` (such as "map_" or "ms_").
fn flag_words<'a>(text: &'a str, prefix: &'static str) -> impl Iterator<Item = (&'a str, String)> + 'a {
    text.split(['|', ',', ' ']).map(str::trim).filter(|w| !w.is_empty()).map(move |w| {
        let lower = w.to_ascii_lowercase();
        let bare = lower.strip_prefix(prefix).unwrap_or(&lower).to_string();
        (w, bare)
    })
}

/// mlockall(2)'s flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mlockall {
    pub current: bool,
    pub future: bool,
    pub onfault: bool,
}

impl Mlockall {
    /// "current|future|onfault" (MCL_ prefixes allowed).
    pub fn parse(text: &str) -> Result<Mlockall> {
        let mut m = Mlockall::default();
        for (word, bare) in flag_words(text, "mcl_") {
            match bare.as_str() {
                "current" => m.current = true,
                "future" => m.future = true,
                "onfault" => m.onfault = true,
                _ => return Err(Error::invalid(format!("bad mlockall flag {word:?}: use current, future, onfault"))),
            }
        }
        Ok(m)
    }
}

/// mremap(2)'s arguments (MREMAP_MAYMOVE, MREMAP_FIXED, MREMAP_DONTUNMAP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mremap {
    pub old_addr: u64,
    pub old_len: u64,
    pub new_len: u64,
    pub maymove: bool,
    pub fixed: bool,
    pub dontunmap: bool,
    pub new_addr: u64,
}

impl Mremap {
    /// Set the flags from "maymove|fixed|dontunmap" (MREMAP_ prefixes allowed).
    pub fn with_flags(mut self, text: &str) -> Result<Mremap> {
        for (word, bare) in flag_words(text, "mremap_") {
            match bare.as_str() {
                "maymove" => self.maymove = true,
                "fixed" => self.fixed = true,
                "dontunmap" => self.dontunmap = true,
                _ => return Err(Error::invalid(format!("bad mremap flag {word:?}: use maymove, fixed, dontunmap"))),
            }
        }
        Ok(self)
    }
}

/// msync(2) flags: MS_SYNC (write back now) or MS_ASYNC (nothing, as Linux
/// since 2.6.19), and MS_INVALIDATE (EBUSY on mlocked memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Msync {
    pub sync: bool,
    pub invalidate: bool,
}

impl Msync {
    pub fn parse(text: &str) -> Result<Msync> {
        let (mut sync, mut asynchronous, mut invalidate) = (false, false, false);
        for (word, bare) in flag_words(text, "ms_") {
            match bare.as_str() {
                "sync" => sync = true,
                "async" => asynchronous = true,
                "invalidate" => invalidate = true,
                _ => {
                    return Err(Error::sys(
                        Errno::EINVAL,
                        format!("bad msync flag {word:?}: use sync, async, invalidate"),
                    ))
                }
            }
        }
        if sync && asynchronous {
            return Err(Error::sys(Errno::EINVAL, "msync: MS_SYNC and MS_ASYNC together"));
        }
        Ok(Msync { sync, invalidate })
    }
}

/// madvise advice the simulator models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advice {
    DontFork,
    DoFork,
    DontNeed,
    PopulateRead,
    PopulateWrite,
    /// MADV_NORMAL, MADV_SEQUENTIAL, MADV_RANDOM: how file faults read ahead.
    Normal,
    Sequential,
    Random,
    /// MADV_WILLNEED: read the file pages of the range into the cache now.
    WillNeed,
    /// MADV_COLD: the pages are deactivated (their accessed bits cleared).
    Cold,
    /// MADV_FREE: private anonymous pages may be discarded until written again.
    Free,
    /// MADV_PAGEOUT: the pages mapped only here are reclaimed now.
    PageOut,
    /// MADV_REMOVE: punch a hole in the shared object behind the range.
    Remove,
}

impl Advice {
    pub fn parse(text: &str) -> Result<Advice> {
        match text.trim().to_ascii_lowercase().trim_start_matches("madv_") {
            "dontfork" => Ok(Advice::DontFork),
            "dofork" => Ok(Advice::DoFork),
            "dontneed" => Ok(Advice::DontNeed),
            "populate_read" => Ok(Advice::PopulateRead),
            "populate_write" => Ok(Advice::PopulateWrite),
            "normal" => Ok(Advice::Normal),
            "sequential" => Ok(Advice::Sequential),
            "random" => Ok(Advice::Random),
            "willneed" => Ok(Advice::WillNeed),
            "cold" => Ok(Advice::Cold),
            "free" => Ok(Advice::Free),
            "pageout" => Ok(Advice::PageOut),
            "remove" => Ok(Advice::Remove),
            _ => Err(Error::sys(
                Errno::EINVAL,
                format!(
                    "bad madvise advice {text:?}: use normal, sequential, random, willneed, dontneed, free, cold, \
                     pageout, remove, dontfork, dofork, populate_read or populate_write"
                ),
            )),
        }
    }
}

/// ENOMEM when `vmas` leave part of [start, end) unmapped: madvise and
/// msync act on the mapped parts, then report the hole.
fn holes_are_enomem(vmas: &[Vma], start: u64, end: u64, what: &str) -> Result<()> {
    let covered: u64 = vmas.iter().map(|v| v.end.min(end) - v.start.max(start)).sum();
    if covered == end - start {
        Ok(())
    } else {
        Err(Error::sys(Errno::ENOMEM, format!("{what} range has unmapped holes")))
    }
}

pub struct Mm {
    /// A small number naming this address space (reverse lookups go through it).
    pub id: u32,
    /// The mm_struct object (slab "mm_struct") that stands for this address space.
    pub mm_struct: u64,
    /// vm_area_struct objects, one per VMA after every operation; an
    /// operation preallocates what it may need first (as Linux does) so it
    /// can fail with ENOMEM before changing anything.
    vma_objs: Vec<u64>,
    pub vmas: Box<dyn VmaIndex>,
    pub pt: PageTable,
    pub rss_anon: u64,
    pub rss_file: u64,
    /// PTEs holding swap entries (VmSwap).
    pub swap_ents: u64,
    /// Pages of this address space written out to swap.
    pub swap_outs: u64,
    pub rss_shmem: u64,
    pub layout: Layout,
    pub cfg: MmConfig,
    /// mm->def_flags: VM_LOCKED (and VM_LOCKONFAULT) after mlockall(MCL_FUTURE).
    pub def_flags: VmFlags,
    /// The memory cgroup new pages are charged to (the owner task's).
    pub memcg: crate::reclaim::memcg::CgId,
    /// The kernel memory (page tables, slab objects) charged so far, by group.
    pub kernel_charge: crate::reclaim::memcg::MmCharge,
    /// /proc/pid/oom_score_adj: -1000 (never killed) to 1000.
    pub oom_score_adj: i16,
    /// The OOM killer chose it: its memory is reaped, its tasks are killed.
    pub oom_killed: bool,
}

impl Mm {
    /// An empty address space (mm_alloc + mm_alloc_pgd).
    pub fn new(k: &mut Kernel, cfg: MmConfig) -> Result<Mm> {
        let mm_struct = k.alloc_mm_struct()?;
        let Some(pt) = PageTable::new(k.phys_mut()) else {
            k.free_mm_struct(mm_struct);
            return Err(Error::sys(Errno::ENOMEM, "out of simulated memory for the page directory"));
        };
        k.register_mm_struct(mm_struct, pt.pgd_pfn());
        Ok(Mm {
            id: k.new_mm_id(),
            mm_struct,
            vma_objs: Vec::new(),
            vmas: cfg.index.build(),
            pt,
            rss_anon: 0,
            rss_file: 0,
            swap_ents: 0,
            swap_outs: 0,
            rss_shmem: 0,
            layout: Layout {
                start_brk: DEFAULT_START_BRK,
                brk: DEFAULT_START_BRK,
                start_stack: 0,
                mmap_base: DEFAULT_MMAP_BASE,
            },
            cfg,
            def_flags: VmFlags::default(),
            memcg: crate::reclaim::memcg::ROOT,
            kernel_charge: Default::default(),
            oom_score_adj: 0,
            oom_killed: false,
        })
    }

    /// Make sure `extra` more VMAs would have their vm_area_struct.
    pub(crate) fn prealloc_vmas(&mut self, k: &mut Kernel, extra: usize) -> Result<()> {
        while self.vma_objs.len() < self.vmas.len() + extra {
            let obj = k.alloc_vma_struct()?;
            self.vma_objs.push(obj);
        }
        Ok(())
    }

    /// Give back the vm_area_structs no VMA needs any more.
    pub(crate) fn sync_vmas(&mut self, k: &mut Kernel) {
        while self.vma_objs.len() > self.vmas.len() {
            let obj = self.vma_objs.pop().expect("more objects than VMAs");
            k.free_vma_struct(obj);
        }
    }

    pub fn vma_objects(&self) -> usize {
        self.vma_objs.len()
    }

    /// Run a VMA-changing operation: at most `extra` more VMAs afterwards.
    fn with_vma_objects<T>(
        &mut self,
        k: &mut Kernel,
        extra: usize,
        op: impl FnOnce(&mut Mm, &mut Kernel) -> Result<T>,
    ) -> Result<T> {
        let result = self.prealloc_vmas(k, extra).and_then(|_| op(self, k));
        self.sync_vmas(k);
        result
    }

    // ----- VMA bookkeeping ------------------------------------------------

    /// A VMA was copied (split or fork): its object gains a mapper.
    fn vma_duplicated(k: &mut Kernel, vma: &Vma) {
        if let Backing::Object { id, .. } = vma.backing {
            k.cache_mut().add_mapper(id);
        }
    }

    /// A VMA went away (unmap or merge).
    fn vma_released(k: &mut Kernel, vma: &Vma) {
        if let Backing::Object { id, .. } = vma.backing {
            k.drop_mapper(id);
        }
    }

    /// Split the VMA that strictly contains `addr` into two at `addr`.
    fn split_at(&mut self, k: &mut Kernel, addr: u64) -> Result<()> {
        let Some(vma) = self.vmas.find(addr) else {
            return Ok(());
        };
        if vma.start >= addr {
            return Ok(());
        }
        if self.vmas.len() >= self.cfg.max_map_count {
            return Err(Error::sys(Errno::ENOMEM, format!("splitting at {addr:#x} would exceed max_map_count")));
        }
        let mut head = vma;
        head.end = addr;
        let tail = vma.tail_from(addr);
        self.vmas.remove(vma.start);
        self.vmas.insert(head);
        self.vmas.insert(tail);
        Self::vma_duplicated(k, &tail);
        Ok(())
    }

    /// Merge every pair of adjacent compatible VMAs from the one before
    /// `start` to the one after `end`.
    pub(crate) fn merge_around(&mut self, k: &mut Kernel, start: u64, end: u64) {
        let lo = start.saturating_sub(1);
        let mut vmas = self.vmas.range(lo, end.saturating_add(1));
        if let Some(prev) = self.vmas.last_before(lo.max(1)) {
            if vmas.first().is_none_or(|v| v.start != prev.start) {
                vmas.insert(0, prev);
            }
        }
        let mut i = 0;
        while i + 1 < vmas.len() {
            let (a, b) = (vmas[i], vmas[i + 1]);
            if a.can_merge_with(&b) {
                let mut merged = a;
                merged.end = b.end;
                merged.anon_vma = a.anon_vma.max(b.anon_vma);
                self.vmas.remove(b.start);
                self.vmas.replace(a.start, merged);
                Self::vma_released(k, &b);
                vmas[i] = merged;
                vmas.remove(i + 1);
            } else {
                i += 1;
            }
        }
    }

    // ----- page references ------------------------------------------------

    /// Drop what one leaf entry held: a frame mapping (and its RSS count).
    #[inline(always)]
    pub(crate) fn release_entry(&mut self, k: &mut Kernel, entry: Pte) {
        if entry.is_swap() {
            return self.release_swap_entry(k, entry);
        }
        if !entry.maps_counted_frame() {
            return;
        }
        let kind = k.phys_mut().unmap_and_put(entry.pfn());
        *self.rss_counter(kind) -= 1;
    }

    #[inline(never)]
    fn release_swap_entry(&mut self, k: &mut Kernel, entry: Pte) {
        self.swap_ents -= 1;
        k.swap_put(entry.swap_slot());
    }

    /// Account a new mapping of `entry`'s frame (not the zero page).
    #[inline]
    pub(crate) fn account_mapping(&mut self, k: &Kernel, entry: Pte) {
        if entry.is_special() {
            return;
        }
        *self.rss_counter(k.phys().frame(entry.pfn()).flags) += 1;
    }

    /// The RSS counter a mapped frame counts in: MM_ANONPAGES, MM_FILEPAGES or MM_SHMEMPAGES.
    fn rss_counter(&mut self, frame_flags: u16) -> &mut u64 {
        if frame_flags & flags::ANON != 0 {
            &mut self.rss_anon
        } else if frame_flags & flags::FILE != 0 {
            &mut self.rss_file
        } else {
            &mut self.rss_shmem
        }
    }

    /// Whether VMAs cover all of [start, end) with no hole.
    pub fn covers(&self, start: u64, end: u64) -> bool {
        let mut at = start;
        for v in self.vmas.range(start, end) {
            if v.start > at {
                return false;
            }
            at = at.max(v.end);
        }
        at >= end
    }

    /// Pages mapped by every VMA (total_vm, VmSize).
    pub fn total_vm(&self) -> u64 {
        self.vmas.all().iter().map(|v| v.len() / PAGE_SIZE).sum()
    }

    /// Resident pages of every kind.
    pub fn rss(&self) -> u64 {
        self.rss_anon + self.rss_file + self.rss_shmem
    }

    /// zap_page_range: unmap every page in [start, end), keep the tables.
    pub(crate) fn zap(&mut self, k: &mut Kernel, start: u64, end: u64) {
        for (va, index, entry) in self.pt.leaves(start, end) {
            self.pt.set(index, Pte::NONE);
            if entry.maps_counted_frame() {
                k.note_unmapped(self.id, va);
            }
            self.release_entry(k, entry);
        }
    }

    /// Unmap [start, end) (already split at both ends): zap pages, free the
    /// VMAs, then free page tables no remaining VMA needs.
    fn unmap_region(&mut self, k: &mut Kernel, start: u64, end: u64) {
        let doomed = self.vmas.range(start, end);
        if doomed.is_empty() {
            return;
        }
        self.zap(k, start, end);
        for vma in &doomed {
            self.vmas.remove(vma.start);
            k.vm_unacct(vma.committed_pages());
            Self::vma_released(k, vma);
        }
        let floor = self.vmas.last_before(start).map_or(0, |v| v.end);
        let ceiling = self.vmas.find(start).map_or(USER_HALF_END, |v| v.start);
        self.pt.free_range(start, end, floor, ceiling, k.phys_mut());
    }

    /// exit_mmap then mmdrop: zap every page, free the page tables below
    /// the PGD, free every VMA to its cache; then drop the address space's
    /// mm_count reference, which (unless a lazy-TLB grab holds another) runs
    /// __mmdrop: the PGD and the mm_struct go too.
    pub fn teardown(&mut self, k: &mut Kernel) {
        k.event("exit_mmap", || format!("{} VMAs, {} resident pages", self.vmas.len(), self.rss()));
        let (mappings, free_before) = (self.rss(), k.phys().frames_free());
        self.zap(k, 0, USER_HALF_END);
        let freed = k.phys().frames_free() - free_before;
        k.event("unmap_vmas", || format!("{mappings} page mappings zapped, {freed} pages freed"));
        let tables = self.pt.destroy_below_pgd(k.phys_mut());
        k.event("free_pgtables", || format!("{tables} page-table pages freed (the PGD waits for __mmdrop)"));
        for vma in self.vmas.all() {
            k.vm_unacct(vma.committed_pages());
            Self::vma_released(k, &vma);
            k.event("vm_area_free", || {
                format!("{:#x}-{:#x} {} back to the vm_area_struct cache", vma.start, vma.end, vma.prot)
            });
        }
        self.vmas = self.cfg.index.build();
        self.sync_vmas(k);
        debug_assert_eq!(self.rss(), 0);
        k.uncharge_mm(self);
        k.mark_mm_exited(self.mm_struct);
        k.mmdrop(self.mm_struct).expect("the address space holds an mm_count reference");
    }

    /// Kernel memory this address space holds now: (page-table bytes, slab bytes).
    pub(crate) fn kernel_bytes(&self) -> (u64, u64) {
        let slab =
            crate::kernel::MM_STRUCT_SIZE as u64 + self.vma_objs.len() as u64 * crate::kernel::VMA_STRUCT_SIZE as u64;
        (self.pt.table_pages() * PAGE_SIZE, slab)
    }

    /// oom_badness: the pages the OOM killer would get back (resident,
    /// swapped, page tables), shifted by oom_score_adj as a fraction of
    /// `totalpages`; None for an address space it must not kill.
    pub(crate) fn oom_badness(&self, totalpages: u64) -> Option<i64> {
        if self.oom_score_adj == crate::reclaim::oom::OOM_SCORE_ADJ_MIN || self.oom_killed {
            return None;
        }
        let points = (self.rss() + self.swap_ents + self.pt.table_pages()) as i64;
        Some(points + self.oom_score_adj as i64 * (totalpages / 1000) as i64)
    }

    /// The OOM reaper's work (__oom_reap_task_mm), done at once: every page
    /// of the victim is unmapped and freed; its VMAs and tables go when its
    /// tasks are gone.
    pub(crate) fn oom_reap(&mut self, k: &mut Kernel) {
        self.oom_killed = true;
        self.zap(k, 0, USER_HALF_END);
    }

    // ----- system calls ---------------------------------------------------

    fn overlaps(&mut self, start: u64, end: u64) -> bool {
        self.vmas.find(start).is_some_and(|v| v.start < end)
    }

    /// get_unmapped_area for a request without MAP_FIXED.
    fn unmapped_area(&mut self, hint: u64, len: u64) -> Result<u64> {
        let min = self.cfg.mmap_min_addr.max(PAGE_SIZE);
        if hint != 0 {
            let addr = crate::addr::page_down(hint.max(min));
            if addr <= TASK_SIZE - len && !self.overlaps(addr, addr + len) && self.clear_of_stack_gap(addr, len) {
                return Ok(addr);
            }
        }
        // Top-down below mmap_base, then bottom-up from TASK_SIZE/3 (the
        // legacy fallback of arch_get_unmapped_area_topdown).
        let mut high = self.layout.mmap_base.min(TASK_SIZE);
        while let Some(addr) = self.vmas.find_gap(len, min, high, true) {
            match self.stack_below_gap(addr, len) {
                None => return Ok(addr),
                Some(limit) => high = limit,
            }
        }
        let mut low = crate::addr::page_down(TASK_SIZE / 3);
        while let Some(addr) = self.vmas.find_gap(len, low, TASK_SIZE, false) {
            match self.stack_below_gap(addr, len) {
                None => return Ok(addr),
                Some(_) => low = self.vmas.find(addr).map_or(TASK_SIZE, |v| v.end),
            }
        }
        Err(Error::sys(Errno::ENOMEM, format!("no free range of {len:#x} bytes in the address space")))
    }

    /// If [addr, addr+len) ends inside the guard gap of a stack above it,
    /// the highest end a placement may have there (vm_start_gap).
    fn stack_below_gap(&mut self, addr: u64, len: u64) -> Option<u64> {
        let next = self.vmas.find(addr)?;
        let guard_start = next.start.saturating_sub(self.cfg.stack_guard_gap);
        (next.growsdown() && addr + len > guard_start).then_some(guard_start)
    }

    fn clear_of_stack_gap(&mut self, addr: u64, len: u64) -> bool {
        self.stack_below_gap(addr, len).is_none()
    }

    pub fn mmap(&mut self, k: &mut Kernel, req: MmapRequest) -> Result<u64> {
        self.with_vma_objects(k, 2, |mm, k| mm.do_mmap(k, req))
    }

    fn do_mmap(&mut self, k: &mut Kernel, req: MmapRequest) -> Result<u64> {
        if req.len == 0 {
            return Err(Error::sys(Errno::EINVAL, "mmap of zero length"));
        }
        let len = page_up(req.len).filter(|&l| l <= TASK_SIZE).ok_or_else(|| {
            Error::sys(Errno::ENOMEM, format!("mmap length {:#x} is larger than the address space", req.len))
        })?;
        if let Some((id, offset)) = req.file {
            if offset % PAGE_SIZE != 0 {
                return Err(Error::sys(Errno::EINVAL, format!("mmap offset {offset:#x} is not page aligned")));
            }
            if (offset / PAGE_SIZE).checked_add(len / PAGE_SIZE).is_none() {
                return Err(Error::sys(Errno::EOVERFLOW, format!("mmap offset {offset:#x} + length overflows")));
            }
            if !k.cache().get(id).is_some_and(|o| o.is_file()) {
                return Err(Error::invalid(format!("file {id} is not an open file")));
            }
            if req.growsdown {
                return Err(Error::sys(Errno::EINVAL, "growsdown file mappings are not supported"));
            }
        }
        // mlock_future_ok: under mlockall(MCL_FUTURE) the new pages are locked too.
        if self.def_flags.has(VmFlags::LOCKED)
            && self.locked_vm() + len / PAGE_SIZE > self.cfg.memlock_rlimit / PAGE_SIZE
        {
            return Err(Error::sys(Errno::EAGAIN, "mlockall(MCL_FUTURE): the new mapping would pass RLIMIT_MEMLOCK"));
        }
        let fixed = req.fixed || req.fixed_noreplace;
        let addr = if fixed {
            if !is_page_aligned(req.addr) {
                return Err(Error::sys(
                    Errno::EINVAL,
                    format!("fixed mmap address {:#x} is not page aligned", req.addr),
                ));
            }
            if req.addr > TASK_SIZE - len {
                return Err(Error::sys(
                    Errno::ENOMEM,
                    format!("fixed mapping {:#x}+{len:#x} goes past user space", req.addr),
                ));
            }
            if req.addr < self.cfg.mmap_min_addr {
                return Err(Error::sys(
                    Errno::EPERM,
                    format!("fixed mapping at {:#x} is below mmap_min_addr", req.addr),
                ));
            }
            if req.fixed_noreplace && self.overlaps(req.addr, req.addr + len) {
                return Err(Error::sys(
                    Errno::EEXIST,
                    format!("fixed_noreplace mapping at {:#x} overlaps a mapping", req.addr),
                ));
            }
            req.addr
        } else {
            self.unmapped_area(req.addr, len)?
        };
        let end = addr + len;
        // Replacing may split one VMA into two around the hole, and the new
        // one may not merge: refuse before changing anything.
        let straddlers = self.vmas.range(addr, end).iter().filter(|v| v.start < addr && v.end > end).count();
        if self.vmas.len() + 1 + straddlers > self.cfg.max_map_count {
            return Err(Error::sys(Errno::ENOMEM, "too many mappings (max_map_count)"));
        }
        // accountable_mapping: private writable memory is charged to
        // Committed_AS first (mmap_region), before anything is replaced.
        // A shared anonymous (shmem) object is charged whole (shmem_acct_size).
        let noreserve = req.noreserve && k.overcommit().honours_noreserve();
        let account = !req.shared && req.prot.write() && !noreserve;
        let shmem_charged = req.shared && req.file.is_none() && !noreserve;
        let charge = if account || shmem_charged { len / PAGE_SIZE } else { 0 };
        k.vm_enough_memory(self.total_vm(), charge)?;
        if fixed {
            if let Err(e) = self.split_at(k, addr).and_then(|_| self.split_at(k, end)) {
                k.vm_unacct(charge);
                return Err(e);
            }
            self.unmap_region(k, addr, end);
        }
        let vm_flags = VmFlags::default()
            .with(VmFlags::LOCKED, self.def_flags.has(VmFlags::LOCKED))
            .with(VmFlags::LOCKONFAULT, self.def_flags.has(VmFlags::LOCKONFAULT))
            .with(VmFlags::GROWSDOWN, req.growsdown)
            .with(VmFlags::SHARED, req.shared)
            .with(VmFlags::ACCOUNT, account)
            .with(VmFlags::NORESERVE, noreserve);
        let backing = match req.file {
            Some((id, offset)) => {
                k.cache_mut().add_mapper(id);
                Backing::Object { id, pgoff: offset / PAGE_SIZE }
            }
            None if req.shared => Backing::Object { id: k.create_shmem(len / PAGE_SIZE, shmem_charged), pgoff: 0 },
            None => Backing::Anon,
        };
        let vma = Vma { start: addr, end, prot: req.prot, flags: vm_flags, backing, anon_vma: 0 };
        self.vmas.insert(vma);
        self.merge_around(k, addr, end);
        Ok(addr)
    }

    /// Check [start, start+len) for munmap/madvise: page-aligned start inside
    /// user space, returns the page-aligned end.
    fn user_range(start: u64, len: u64, what: &str) -> Result<u64> {
        if !is_page_aligned(start) {
            return Err(Error::sys(Errno::EINVAL, format!("{what} address {start:#x} is not page aligned")));
        }
        match page_up(len) {
            Some(l) if start <= TASK_SIZE && l <= TASK_SIZE - start => Ok(start + l),
            _ => Err(Error::sys(Errno::EINVAL, format!("{what} range {start:#x}+{len:#x} goes past user space"))),
        }
    }

    pub fn munmap(&mut self, k: &mut Kernel, start: u64, len: u64) -> Result<()> {
        self.with_vma_objects(k, 1, |mm, k| mm.do_munmap(k, start, len))
    }

    fn do_munmap(&mut self, k: &mut Kernel, start: u64, len: u64) -> Result<()> {
        if len == 0 {
            return Err(Error::sys(Errno::EINVAL, "munmap of zero length"));
        }
        let end = Self::user_range(start, len, "munmap")?;
        let splits_middle = self.vmas.find(start).is_some_and(|v| v.start < start && v.end > end);
        if splits_middle && self.vmas.len() >= self.cfg.max_map_count {
            return Err(Error::sys(Errno::ENOMEM, "munmap would split a VMA past max_map_count"));
        }
        self.split_at(k, start)?;
        self.split_at(k, end)?;
        self.unmap_region(k, start, end);
        Ok(())
    }

    /// Apply `change` to each VMA of [start, end) in turn, splitting at the
    /// ends, as mprotect and madvise do: a hole stops the walk with ENOMEM,
    /// after the VMAs before it were changed (Linux does the same).
    fn modify_range(
        &mut self,
        k: &mut Kernel,
        start: u64,
        end: u64,
        what: &str,
        change: &mut dyn FnMut(&mut Mm, &mut Kernel, Vma) -> Result<Vma>,
    ) -> Result<()> {
        let mut cur = start;
        let mut result = Ok(());
        while cur < end {
            match self.vmas.find(cur) {
                Some(v) if v.start <= cur => {}
                _ => {
                    result = Err(Error::sys(Errno::ENOMEM, format!("{what}: {cur:#x} is not mapped")));
                    break;
                }
            }
            // Split at `end` only in the VMA that holds it: a hole earlier
            // stops the walk and must leave the VMAs past it untouched.
            let holds_end = self.vmas.find(cur).is_some_and(|v| v.end > end);
            if let Err(e) = self.split_at(k, cur).and_then(|_| if holds_end { self.split_at(k, end) } else { Ok(()) }) {
                result = Err(e);
                break;
            }
            let vma = self.vmas.find(cur).expect("split leaves a VMA at cur");
            match change(self, k, vma) {
                Ok(changed) => self.vmas.replace(vma.start, changed),
                Err(e) => {
                    // Refused before changing this VMA (mprotect_fixup charges
                    // before it splits): the merge below puts its pieces back.
                    result = Err(e);
                    cur = vma.end;
                    break;
                }
            }
            cur = vma.end;
        }
        self.merge_around(k, start, cur.max(start));
        result
    }

    pub fn mprotect(&mut self, k: &mut Kernel, start: u64, len: u64, prot: Prot) -> Result<()> {
        self.with_vma_objects(k, 2, |mm, k| mm.do_mprotect(k, start, len, prot))
    }

    fn do_mprotect(&mut self, k: &mut Kernel, start: u64, len: u64, prot: Prot) -> Result<()> {
        if !is_page_aligned(start) {
            return Err(Error::sys(Errno::EINVAL, format!("mprotect address {start:#x} is not page aligned")));
        }
        if len == 0 {
            return Ok(());
        }
        let end = page_up(len)
            .and_then(|l| start.checked_add(l))
            .ok_or_else(|| Error::sys(Errno::ENOMEM, "mprotect range wraps around"))?;
        self.modify_range(k, start, end, "mprotect", &mut |mm, k, mut vma| {
            // mprotect_fixup: private memory made writable for the first time is charged now.
            let charge = prot.write() && !vma.shared() && !vma.flags.has(VmFlags::ACCOUNT);
            let charge = charge && !(vma.flags.has(VmFlags::NORESERVE) && k.overcommit().honours_noreserve());
            if charge {
                k.vm_enough_memory(mm.total_vm(), vma.len() / PAGE_SIZE)?;
                vma.flags = vma.flags.with(VmFlags::ACCOUNT, true);
            }
            vma.prot = prot;
            mm.reprotect_ptes(k, &vma);
            Ok(vma)
        })
    }

    /// change_protection: rewrite the PTE permissions of `vma`'s pages.
    /// A shared shmem mapping needs no write notification, so its page
    /// protection is writable and every PTE takes it; elsewhere write
    /// permission is granted now only where a write fault would grant it
    /// without copying (an exclusive anonymous page, a dirty shared page).
    fn reprotect_ptes(&mut self, k: &mut Kernel, vma: &Vma) {
        let shmem = vma.shared() && vma.object_page(vma.start).is_some_and(|(id, _)| !k.cache().object(id).is_file());
        for (_, index, entry) in self.pt.leaves(vma.start, vma.end) {
            if !entry.maps_frame() {
                continue;
            }
            let can_write = entry.is_writable()
                || shmem
                || if vma.shared() {
                    entry.has(PteFlags::DIRTY)
                } else {
                    !entry.is_special() && k.phys().frame(entry.pfn()).flags & flags::ANON_EXCLUSIVE != 0
                };
            self.pt.set(index, entry.with_permissions(vma.pte_bits(can_write)));
        }
    }

    /// msync: write back the dirty page-cache pages of shared file mappings
    /// in [start, start+len), clean them and write-protect their PTEs again
    /// (so the next write is seen). Returns the pages written back.
    pub fn msync(&mut self, k: &mut Kernel, start: u64, len: u64, how: Msync) -> Result<u64> {
        if !is_page_aligned(start) {
            return Err(Error::sys(Errno::EINVAL, format!("msync address {start:#x} is not page aligned")));
        }
        let end = Self::user_range(start, len.max(1), "msync")?;
        let mut written = 0;
        let vmas = self.vmas.range(start, end);
        if let Some(locked) = vmas.iter().find(|v| how.invalidate && v.flags.has(VmFlags::LOCKED)) {
            return Err(Error::sys(
                Errno::EBUSY,
                format!("msync MS_INVALIDATE of mlocked memory at {:#x}", locked.start),
            ));
        }
        // MS_ASYNC starts no I/O (Linux since 2.6.19); only MS_SYNC writes back.
        let syncing = if how.sync { vmas.as_slice() } else { &[] };
        for vma in syncing.iter().filter(|v| v.shared() && matches!(v.backing, Backing::Object { .. })) {
            for (_, index, entry) in self.pt.leaves(vma.start.max(start), vma.end.min(end)) {
                let pfn = entry.pfn();
                if !entry.maps_frame() || k.phys().frame(pfn).flags & flags::FILE == 0 {
                    continue;
                }
                if k.phys().frame(pfn).flags & flags::DIRTY != 0 {
                    k.phys_mut().frame_mut(pfn).flags &= !flags::DIRTY;
                    k.cache_mut().stats.writebacks += 1;
                    written += 1;
                }
                let clean = entry.without(PteFlags::DIRTY | PteFlags::WRITE);
                if clean != entry {
                    self.pt.set(index, clean);
                }
            }
        }
        holes_are_enomem(&vmas, start, end, "msync")?;
        Ok(written)
    }

    /// Unmap the pages of object `id` at page index `from` and beyond,
    /// private copies too (truncate).
    pub fn unmap_object_from(&mut self, k: &mut Kernel, id: ObjectId, from: u64) {
        self.unmap_object_range(k, id, from, u64::MAX, true);
    }

    pub fn madvise(&mut self, k: &mut Kernel, start: u64, len: u64, advice: Advice) -> Result<()> {
        self.with_vma_objects(k, 2, |mm, k| mm.do_madvise(k, start, len, advice))
    }

    /// The range madvise(2) acts on: EINVAL for an unaligned start or a
    /// range past user space; `None` for a zero length (nothing to do).
    pub fn madvise_range(start: u64, len: u64) -> Result<Option<(u64, u64)>> {
        if !is_page_aligned(start) {
            return Err(Error::sys(Errno::EINVAL, format!("madvise address {start:#x} is not page aligned")));
        }
        if len == 0 {
            return Ok(None);
        }
        Ok(Some((start, Self::user_range(start, len, "madvise")?)))
    }

    fn do_madvise(&mut self, k: &mut Kernel, start: u64, len: u64, advice: Advice) -> Result<()> {
        let Some((start, end)) = Self::madvise_range(start, len)? else { return Ok(()) };
        if advice == Advice::DontNeed {
            // No VMA changes: just drop the pages of the mapped parts.
            for vma in self.vmas.range(start, end) {
                self.zap(k, vma.start.max(start), vma.end.min(end));
            }
            return holes_are_enomem(&self.vmas.range(start, end), start, end, "madvise");
        }
        if advice == Advice::WillNeed {
            return self.willneed(k, start, end);
        }
        if matches!(advice, Advice::Cold | Advice::Free) {
            return self.cold_or_free(k, start, end, advice == Advice::Free);
        }
        if advice == Advice::PageOut {
            return self.pageout(k, start, end);
        }
        self.modify_range(k, start, end, "madvise", &mut |_, _, mut vma| {
            vma.flags = match advice {
                Advice::DontFork | Advice::DoFork => vma.flags.with(VmFlags::DONTCOPY, advice == Advice::DontFork),
                Advice::Normal | Advice::Sequential | Advice::Random => vma
                    .flags
                    .with(VmFlags::SEQ_READ, advice == Advice::Sequential)
                    .with(VmFlags::RAND_READ, advice == Advice::Random),
                _ => unreachable!("handled above or by the caller: {advice:?}"),
            };
            Ok(vma)
        })
    }

    /// MADV_COLD (madvise_cold_or_pageout_pte_range) and MADV_FREE
    /// (madvise_free_pte_range). Both refuse mlocked VMAs (EINVAL), and FREE
    /// anything but private anonymous memory. Pages mapped more than once are
    /// left alone. COLD clears the accessed bits (the textbook policies' view
    /// of deactivation); FREE also cleans the PTEs and marks the pages lazily
    /// freeable (reclaim discards them, no swap, unless written again), and
    /// drops the range's swap entries (those pages read back as zeroes).
    fn cold_or_free(&mut self, k: &mut Kernel, start: u64, end: u64, free: bool) -> Result<()> {
        let vmas = self.vmas.range(start, end);
        for vma in &vmas {
            let private_anon = !vma.shared() && matches!(vma.backing, Backing::Anon);
            if vma.flags.has(VmFlags::LOCKED) || (free && !private_anon) {
                return Err(Error::sys(
                    Errno::EINVAL,
                    "madvise cold/free: mlocked, or (free) not private anonymous memory",
                ));
            }
        }
        for vma in &vmas {
            for (_, index, entry) in self.pt.leaves(vma.start.max(start), vma.end.min(end)) {
                if free && entry.is_swap() {
                    self.pt.set(index, Pte::NONE);
                    self.release_entry(k, entry);
                    continue;
                }
                if !entry.maps_counted_frame() || k.phys().mapcount(entry.pfn()) != 1 {
                    continue;
                }
                if free {
                    self.pt.set(index, entry.without(PteFlags::ACCESSED | PteFlags::DIRTY));
                    k.phys_mut().frame_mut(entry.pfn()).flags |= flags::LAZYFREE;
                } else {
                    self.pt.set(index, entry.without(PteFlags::ACCESSED));
                }
            }
        }
        holes_are_enomem(&vmas, start, end, "madvise")
    }

    /// MADV_PAGEOUT (madvise_pageout + reclaim_pages): every page of the
    /// range mapped only here is reclaimed now, as reclaim would: an
    /// anonymous page to swap (stays where there is no swap), a file page out
    /// of the cache (written back first if dirty). Mlocked VMAs are EINVAL.
    fn pageout(&mut self, k: &mut Kernel, start: u64, end: u64) -> Result<()> {
        let vmas = self.vmas.range(start, end);
        if vmas.iter().any(|v| v.flags.has(VmFlags::LOCKED)) {
            return Err(Error::sys(Errno::EINVAL, "madvise pageout of mlocked memory"));
        }
        for (va, _, entry) in self.pt.leaves(start, end) {
            if !entry.maps_counted_frame() || k.phys().mapcount(entry.pfn()) != 1 {
                continue;
            }
            if ReclaimTarget::evict_page(self, k, va) != crate::reclaim::evict::Eviction::Kept {
                k.note_unmapped(self.id, va);
            }
        }
        holes_are_enomem(&vmas, start, end, "madvise")
    }

    /// MADV_REMOVE (madvise_remove): the objects and page ranges whose hole
    /// the range asks for. EINVAL for mlocked or anonymous private memory,
    /// EACCES for a mapping that is not shared and writable, ENOMEM at a hole.
    pub fn remove_targets(&mut self, start: u64, len: u64) -> Result<Vec<(ObjectId, u64, u64)>> {
        let Some((start, end)) = Self::madvise_range(start, len)? else { return Ok(Vec::new()) };
        let vmas = self.vmas.range(start, end);
        let mut targets = Vec::new();
        for vma in &vmas {
            let (lo, hi) = (vma.start.max(start), vma.end.min(end));
            let Some((id, first)) = vma.object_page(lo) else {
                return Err(Error::sys(Errno::EINVAL, "madvise remove of memory with no file behind it"));
            };
            if vma.flags.has(VmFlags::LOCKED) {
                return Err(Error::sys(Errno::EINVAL, "madvise remove of mlocked memory"));
            }
            if !(vma.shared() && vma.prot.write()) {
                return Err(Error::sys(Errno::EACCES, "madvise remove needs a shared writable mapping"));
            }
            targets.push((id, first, first + (hi - lo) / PAGE_SIZE));
        }
        holes_are_enomem(&vmas, start, end, "madvise")?;
        Ok(targets)
    }

    /// unmap_mapping_range: every PTE of this address space mapping the
    /// object's pages [first, last) goes; private copy-on-write copies of them
    /// too only with `even_cows` (truncate does, a punched hole does not).
    pub fn unmap_object_range(&mut self, k: &mut Kernel, id: ObjectId, first: u64, last: u64, even_cows: bool) {
        for vma in self.vmas.all() {
            let Backing::Object { id: vid, pgoff } = vma.backing else { continue };
            let vma_last = pgoff + vma.len() / PAGE_SIZE;
            if vid != id || last <= pgoff || first >= vma_last {
                continue;
            }
            let lo = vma.start + first.saturating_sub(pgoff) * PAGE_SIZE;
            let hi = vma.start + (last.min(vma_last) - pgoff) * PAGE_SIZE;
            if even_cows {
                self.zap(k, lo, hi);
                continue;
            }
            for (va, index, entry) in self.pt.leaves(lo, hi) {
                if entry.maps_counted_frame() && k.phys().frame(entry.pfn()).flags & flags::ANON == 0 {
                    self.pt.set(index, Pte::NONE);
                    k.note_unmapped(self.id, va);
                    self.release_entry(k, entry);
                }
            }
        }
    }

    /// MADV_WILLNEED (madvise_willneed): start reading the file pages the
    /// range maps (force_page_cache_readahead); anonymous memory is left
    /// alone (swap readahead is not modelled). A hole is ENOMEM.
    fn willneed(&mut self, k: &mut Kernel, start: u64, end: u64) -> Result<()> {
        let vmas = self.vmas.range(start, end);
        for vma in &vmas {
            let (lo, hi) = (vma.start.max(start), vma.end.min(end));
            if let Some((id, first)) = vma.object_page(lo) {
                if k.cache().object(id).is_file() {
                    crate::readahead::force_readahead(k, id, first, (hi - lo) / PAGE_SIZE);
                }
            }
        }
        holes_are_enomem(&vmas, start, end, "madvise")
    }

    /// mremap(2) (mm/mremap.c). Returns the mapping's address and the range
    /// an mlocked mapping needs populated (its new part), if any.
    pub fn mremap(&mut self, k: &mut Kernel, req: Mremap) -> Result<(u64, Option<(u64, u64)>)> {
        self.with_vma_objects(k, 3, |mm, k| mm.do_mremap(k, req))
    }

    fn do_mremap(&mut self, k: &mut Kernel, req: Mremap) -> Result<(u64, Option<(u64, u64)>)> {
        let einval = |why: &str| Err(Error::sys(Errno::EINVAL, format!("mremap: {why}")));
        if (req.fixed || req.dontunmap) && !req.maymove {
            return einval("MREMAP_FIXED and MREMAP_DONTUNMAP need MREMAP_MAYMOVE");
        }
        if !is_page_aligned(req.old_addr) {
            return einval("the old address is not page aligned");
        }
        let (Some(old_len), Some(new_len)) = (page_up(req.old_len), page_up(req.new_len)) else {
            return einval("a length past the address space");
        };
        if new_len == 0 || old_len == 0 {
            return einval("a zero length (duplicating a shared mapping is not modelled)");
        }
        if req.dontunmap && old_len != new_len {
            return einval("MREMAP_DONTUNMAP cannot resize");
        }
        let addr = req.old_addr;
        if req.fixed {
            let new = req.new_addr;
            if !is_page_aligned(new) || new > TASK_SIZE - new_len.min(TASK_SIZE) {
                return einval("the new address is unaligned or past user space");
            }
            if new < addr + old_len && addr < new + new_len {
                return einval("the old and new ranges overlap");
            }
            self.do_munmap(k, new, new_len)?;
            let old_len = if old_len > new_len {
                self.do_munmap(k, addr + new_len, old_len - new_len)?;
                new_len
            } else {
                old_len
            };
            let vma = self.vma_to_resize(k, addr, old_len, new_len)?;
            return self.move_vma(k, &vma, addr, old_len, new_len, new, req.dontunmap);
        }
        if new_len <= old_len && !req.dontunmap {
            if new_len < old_len {
                self.do_munmap(k, addr + new_len, old_len - new_len)?;
            }
            return Ok((addr, None));
        }
        let vma = self.vma_to_resize(k, addr, old_len, new_len)?;
        let grown_end = addr + new_len;
        let room = addr + old_len == vma.end
            && grown_end <= TASK_SIZE
            && self.vmas.range(vma.end, grown_end).is_empty()
            && !req.dontunmap;
        if room {
            // vma_expandable: the VMA grows in place.
            let mut grown = vma;
            grown.end = grown_end;
            self.vmas.replace(vma.start, grown);
            self.merge_around(k, vma.start, grown_end);
            let populate = vma.flags.has(VmFlags::LOCKED) && !vma.flags.has(VmFlags::LOCKONFAULT);
            return Ok((addr, populate.then_some((vma.end, grown_end))));
        }
        let new = if req.maymove {
            self.unmapped_area(0, new_len)
        } else {
            Err(Error::sys(Errno::ENOMEM, "mremap: no room to grow in place and MREMAP_MAYMOVE not given"))
        };
        match new {
            Ok(new) => self.move_vma(k, &vma, addr, old_len, new_len, new, req.dontunmap),
            Err(e) => {
                if vma.flags.has(VmFlags::ACCOUNT) {
                    k.vm_unacct((new_len - old_len) / PAGE_SIZE); // the growth vma_to_resize charged
                }
                Err(e)
            }
        }
    }

    /// vma_to_resize: the VMA holding the whole old range (EFAULT
    /// otherwise), with the growth charged: RLIMIT_MEMLOCK for a locked VMA
    /// (EAGAIN), the commit charge for an accounted one (ENOMEM).
    fn vma_to_resize(&mut self, k: &mut Kernel, addr: u64, old_len: u64, new_len: u64) -> Result<Vma> {
        let vma = self.vmas.find(addr).filter(|v| v.start <= addr && addr + old_len <= v.end).ok_or_else(|| {
            Error::sys(Errno::EFAULT, format!("mremap: {addr:#x}+{old_len:#x} is not inside one mapping"))
        })?;
        let delta = new_len.saturating_sub(old_len) / PAGE_SIZE;
        if vma.flags.has(VmFlags::LOCKED) && self.locked_vm() + delta > self.cfg.memlock_rlimit / PAGE_SIZE {
            return Err(Error::sys(Errno::EAGAIN, "mremap: growing a locked mapping past RLIMIT_MEMLOCK"));
        }
        if vma.flags.has(VmFlags::ACCOUNT) {
            k.vm_enough_memory(self.total_vm(), delta)?;
        }
        Ok(vma)
    }

    /// move_vma + move_page_tables: the old range's VMA part moves to `new`
    /// (`new_len` long) with its page-table entries (pages, swap entries)
    /// moved, not copied; the old range is unmapped, or with `dontunmap`
    /// left mapped and empty (its next accesses fault again).
    #[allow(clippy::too_many_arguments, reason = "mremap's own arguments")]
    fn move_vma(
        &mut self,
        k: &mut Kernel,
        vma: &Vma,
        addr: u64,
        old_len: u64,
        new_len: u64,
        new: u64,
        dontunmap: bool,
    ) -> Result<(u64, Option<(u64, u64)>)> {
        // Anything that can fail comes first, and gives the growth charge
        // (made by vma_to_resize) back: nothing has changed yet.
        let accounted = vma.flags.has(VmFlags::ACCOUNT);
        let growth = if accounted { new_len.saturating_sub(old_len) / PAGE_SIZE } else { 0 };
        if let Err(e) =
            self.move_preflight(k, new, old_len, new_len, if dontunmap && accounted { old_len / PAGE_SIZE } else { 0 })
        {
            k.vm_unacct(growth);
            return Err(e);
        }
        // The moved part's charge goes with it (unmapping the old part below
        // gives that back); with `dontunmap` it was charged again above.
        if !dontunmap && accounted {
            k.vm_acct(old_len / PAGE_SIZE);
        }
        self.split_at(k, addr)?;
        self.split_at(k, addr + old_len)?;
        let mut moved = *vma;
        moved.start = new;
        moved.end = new + new_len;
        if let Backing::Object { id, pgoff } = vma.backing {
            moved.backing = Backing::Object { id, pgoff: pgoff + (addr - vma.start) / PAGE_SIZE };
            k.cache_mut().add_mapper(id);
        }
        for (old_va, index, entry) in self.pt.leaves(addr, addr + old_len) {
            let dst = new + (old_va - addr);
            let slot = self.pt.leaf_index(dst).expect("destination tables allocated above");
            self.pt.set(index, Pte::NONE);
            self.pt.set(slot, entry);
            if entry.maps_counted_frame() {
                k.note_unmapped(self.id, old_va);
                k.note_mapped(self.id, dst, entry.pfn(), moved.flags.has(VmFlags::LOCKED));
            }
        }
        self.vmas.insert(moved);
        if dontunmap {
            // The old part stays mapped, empty, and no longer locked.
            let mut old = self.vmas.find(addr).expect("the old part stays");
            old.flags = old.flags.with(VmFlags::LOCKED, false).with(VmFlags::LOCKONFAULT, false);
            self.vmas.replace(addr, old);
        } else {
            self.unmap_region(k, addr, addr + old_len);
        }
        self.merge_around(k, new, new + new_len);
        self.merge_around(k, addr, addr + old_len);
        let populate = moved.flags.has(VmFlags::LOCKED) && !moved.flags.has(VmFlags::LOCKONFAULT) && new_len > old_len;
        Ok((new, populate.then_some((new + old_len, new + new_len))))
    }

    /// What may fail in a move, before it changes anything: max_map_count,
    /// the `recharge` pages of a kept old part (MREMAP_DONTUNMAP), and every
    /// destination page table.
    fn move_preflight(&mut self, k: &mut Kernel, new: u64, old_len: u64, new_len: u64, recharge: u64) -> Result<()> {
        if self.vmas.len() + 3 > self.cfg.max_map_count {
            return Err(Error::sys(Errno::ENOMEM, "mremap: too many mappings (max_map_count)"));
        }
        k.vm_enough_memory(self.total_vm(), recharge)?;
        let mut va = new;
        while va < new + old_len {
            if self.pt.leaf_index_alloc(va, k.phys_mut()).is_err() {
                k.vm_unacct(recharge);
                let floor = self.vmas.last_before(new).map_or(0, |v| v.end);
                let ceiling = self.vmas.find(new).map_or(USER_HALF_END, |v| v.start);
                self.pt.free_range(new, new + new_len, floor, ceiling, k.phys_mut());
                return Err(Error::sys(Errno::ENOMEM, "mremap: out of memory for page tables"));
            }
            va = (va | ((1 << 21) - 1)) + 1;
        }
        Ok(())
    }

    /// Pages of locked VMAs (VmLck; Linux keeps `locked_vm`, vmsim sums it).
    pub fn locked_vm(&self) -> u64 {
        self.vmas.all().iter().filter(|v| v.flags.has(VmFlags::LOCKED)).map(|v| v.len() / PAGE_SIZE).sum()
    }

    /// mlock(2)/mlock2(2) without the population (`Simulator::mlock` does
    /// that): the range rounded out to pages, RLIMIT_MEMLOCK checked (EPERM
    /// when it is 0, ENOMEM past it, pages already locked not counted twice),
    /// VM_LOCKED (with VM_LOCKONFAULT) set on its VMAs, ENOMEM at a hole.
    /// Returns the range.
    pub fn mlock(&mut self, k: &mut Kernel, addr: u64, len: u64, onfault: bool) -> Result<(u64, u64)> {
        let start = addr & !(PAGE_SIZE - 1);
        let Some(len) = page_up(len.saturating_add(addr - start)) else {
            return Err(Error::sys(Errno::ENOMEM, "mlock length past the address space"));
        };
        if len == 0 {
            return Ok((start, start));
        }
        let end = Self::user_range(start, len, "mlock")?;
        let limit = self.cfg.memlock_rlimit / PAGE_SIZE;
        if limit == 0 {
            return Err(Error::sys(Errno::EPERM, "mlock: RLIMIT_MEMLOCK is 0"));
        }
        let already: u64 = self
            .vmas
            .range(start, end)
            .iter()
            .filter(|v| v.flags.has(VmFlags::LOCKED))
            .map(|v| (v.end.min(end) - v.start.max(start)) / PAGE_SIZE)
            .sum();
        if self.locked_vm() + len / PAGE_SIZE - already > limit {
            return Err(Error::sys(Errno::ENOMEM, "mlock: the range would pass RLIMIT_MEMLOCK"));
        }
        self.set_locked(k, start, end, Some(onfault))?;
        Ok((start, end))
    }

    /// munlock(2): the range rounded out to pages loses VM_LOCKED.
    pub fn munlock(&mut self, k: &mut Kernel, addr: u64, len: u64) -> Result<()> {
        let start = addr & !(PAGE_SIZE - 1);
        let Some(len) = page_up(len.saturating_add(addr - start)).filter(|&l| l > 0) else { return Ok(()) };
        let end = Self::user_range(start, len, "munlock")?;
        self.set_locked(k, start, end, None)
    }

    /// mlockall(2): MCL_CURRENT locks every VMA now (refused with ENOMEM
    /// when the address space is larger than RLIMIT_MEMLOCK), MCL_FUTURE
    /// every later mapping; `onfault` as MCL_ONFAULT. Returns the VMAs' ranges
    /// to populate (none with `onfault`).
    pub fn mlockall(&mut self, k: &mut Kernel, current: bool, future: bool, onfault: bool) -> Result<Vec<(u64, u64)>> {
        let limit = self.cfg.memlock_rlimit / PAGE_SIZE;
        if limit == 0 {
            return Err(Error::sys(Errno::EPERM, "mlockall: RLIMIT_MEMLOCK is 0"));
        }
        if current && self.total_vm() > limit {
            return Err(Error::sys(
                Errno::ENOMEM,
                "mlockall(MCL_CURRENT): the address space is larger than RLIMIT_MEMLOCK",
            ));
        }
        self.def_flags = if future {
            VmFlags::default().with(VmFlags::LOCKED, true).with(VmFlags::LOCKONFAULT, onfault)
        } else {
            VmFlags::default()
        };
        if !current {
            return Ok(Vec::new());
        }
        let ranges: Vec<(u64, u64)> = self.vmas.all().iter().map(|v| (v.start, v.end)).collect();
        for &(start, end) in &ranges {
            self.set_locked(k, start, end, Some(onfault))?;
        }
        Ok(if onfault { Vec::new() } else { ranges })
    }

    /// munlockall(2): every VMA unlocked, MCL_FUTURE forgotten.
    pub fn munlockall(&mut self, k: &mut Kernel) -> Result<()> {
        self.def_flags = VmFlags::default();
        let ranges: Vec<(u64, u64)> = self.vmas.all().iter().map(|v| (v.start, v.end)).collect();
        for (start, end) in ranges {
            self.set_locked(k, start, end, None)?;
        }
        Ok(())
    }

    /// mlock_fixup over [start, end): `Some(onfault)` locks, `None` unlocks.
    fn set_locked(&mut self, k: &mut Kernel, start: u64, end: u64, lock: Option<bool>) -> Result<()> {
        self.with_vma_objects(k, 2, |mm, k| {
            mm.modify_range(k, start, end, "mlock", &mut |_, _, mut vma| {
                vma.flags =
                    vma.flags.with(VmFlags::LOCKED, lock.is_some()).with(VmFlags::LOCKONFAULT, lock == Some(true));
                Ok(vma)
            })
        })?;
        // mlock_vma_pages_range: the pages mapped now leave (or rejoin) the evictable lists.
        for (_, _, entry) in self.pt.leaves(start, end) {
            if entry.maps_counted_frame() {
                k.note_mlock(entry.pfn(), lock.is_some());
            }
        }
        Ok(())
    }

    /// brk(2): move the program break; returns the new break, or the old one
    /// when the move is refused (as the system call does).
    pub fn brk(&mut self, k: &mut Kernel, new: u64) -> u64 {
        let old = self.layout.brk;
        self.with_vma_objects(k, 1, |mm, k| Ok(mm.do_brk(k, new))).unwrap_or(old)
    }

    fn do_brk(&mut self, k: &mut Kernel, new: u64) -> u64 {
        let Layout { start_brk, brk, .. } = self.layout;
        if new < start_brk {
            return brk;
        }
        let (Some(new_top), Some(old_top)) = (page_up(new), page_up(brk)) else {
            return brk;
        };
        if new_top > TASK_SIZE {
            return brk;
        }
        if new_top < old_top {
            if self.do_munmap(k, new_top, old_top - new_top).is_err() {
                return brk;
            }
        } else if new_top > old_top {
            // The new heap must leave a page and the stack guard gap free.
            let probe_end = new_top.saturating_add(PAGE_SIZE);
            if let Some(next) = self.vmas.find(old_top) {
                let gap = if next.growsdown() { self.cfg.stack_guard_gap } else { 0 };
                if next.start.saturating_sub(gap) < probe_end {
                    return brk;
                }
            }
            if self.vmas.len() >= self.cfg.max_map_count {
                return brk;
            }
            // do_brk_flags charges the new heap pages.
            if k.vm_enough_memory(self.total_vm(), (new_top - old_top) / PAGE_SIZE).is_err() {
                return brk;
            }
            let heap = Vma::anon(old_top, new_top, Prot::READ_WRITE, VmFlags::default().with(VmFlags::ACCOUNT, true));
            self.vmas.insert(heap);
            self.merge_around(k, old_top, new_top);
        }
        self.layout.brk = new;
        new
    }

    // ----- reports --------------------------------------------------------

    /// /proc/PID/pagemap entries of the pages from `start` to `end`, one u64
    /// each, as `pte_to_pagemap_entry` builds them (see `pagemap`).
    pub fn pagemap(&self, k: &Kernel, start: u64, end: u64) -> Vec<u64> {
        (start..end)
            .step_by(PAGE_SIZE as usize)
            .map(|va| {
                let pte = self.pt.lookup(va);
                if pte.is_swap() {
                    return pagemap::SWAP | (u64::from(pte.swap_slot()) << pagemap::SWAP_OFFSET_SHIFT);
                }
                if !pte.is_present() {
                    return 0;
                }
                let pfn = pte.pfn() as u64;
                if !pte.maps_counted_frame() {
                    return pagemap::PRESENT | pfn; // the zero page: no page behind it (vm_normal_page)
                }
                let frame = k.phys().frame(pte.pfn());
                let file = if frame.flags & flags::ANON == 0 { pagemap::FILE } else { 0 };
                let exclusive = if k.phys().mapcount(pte.pfn()) == 1 { pagemap::MMAP_EXCLUSIVE } else { 0 };
                pagemap::PRESENT | file | exclusive | pfn
            })
            .collect()
    }

    /// /proc/PID/maps lines.
    pub fn maps(&self, k: &Kernel) -> String {
        let mut out = String::new();
        for v in self.vmas.all() {
            let kind = if v.shared() { 's' } else { 'p' };
            let (offset, dev, inode, name) = match v.backing {
                Backing::Object { pgoff, id } => {
                    let name = match &k.cache().object(id).kind {
                        ObjectKind::File { name, unlinked: false, .. } => name.clone(),
                        ObjectKind::File { name, unlinked: true, .. } => format!("{name} (deleted)"),
                        ObjectKind::Shmem => "/dev/zero (deleted)".to_string(),
                    };
                    let dev = if k.cache().object(id).is_file() { "08:01" } else { "00:01" };
                    (pgoff * PAGE_SIZE, dev, 1000 + id as u64, name)
                }
                Backing::Anon => (0, "00:00", 0, self.special_name(&v).to_string()),
            };
            let line = format!("{:08x}-{:08x} {}{} {:08x} {dev} {}", v.start, v.end, v.prot, kind, offset, inode);
            if name.is_empty() {
                out.push_str(&line);
            } else {
                out.push_str(&format!("{line:<73}{name}"));
            }
            out.push('\n');
        }
        out
    }

    /// [heap] and [stack], decided the way show_map_vma decides them.
    fn special_name(&self, v: &Vma) -> &'static str {
        let l = &self.layout;
        if v.start <= l.brk && v.end >= l.start_brk && l.brk > l.start_brk {
            "[heap]"
        } else if v.start <= l.start_stack && v.end >= l.start_stack {
            "[stack]"
        } else {
            ""
        }
    }

    pub fn vma_count(&self) -> usize {
        self.vmas.len()
    }
}

/// What a task holds: the address space behind its lock, and the kernel it
/// gives frames back to. Dropping the last `Arc` tears everything down.
pub struct AddressSpace {
    /// The id of the address space inside (`Mm::id`).
    pub(crate) id: u32,
    pub(crate) mm: Arc<Mutex<Mm>>,
    pub(crate) kernel: Arc<Mutex<Kernel>>,
}

impl AddressSpace {
    /// Wrap `mm` and register it with the kernel (so reclaim can reach its
    /// page tables). Takes the kernel lock: call it without holding it.
    pub fn new(mm: Mm, kernel: Arc<Mutex<Kernel>>) -> Self {
        let id = mm.id;
        let mm = Arc::new(Mutex::new(mm));
        let target: std::sync::Weak<Mutex<dyn ReclaimTarget>> = Arc::downgrade(&mm) as _;
        kernel.lock().register_mm(id, target);
        AddressSpace { id, mm, kernel }
    }
}

impl Drop for AddressSpace {
    /// The DragonOS route: the last reference gone, unmap every VMA, drop
    /// every page reference, free every table page. Lock order: nobody may
    /// hold the kernel lock while dropping an `Arc<AddressSpace>`. (Reclaim
    /// reaches other address spaces only with `try_lock`, so it never waits
    /// for this one.)
    fn drop(&mut self) {
        let mut mm = self.mm.lock();
        let mut kernel = self.kernel.lock();
        kernel.unregister_mm(mm.id);
        kernel.event("AddressSpace::drop", || {
            format!("the last Arc is gone (DragonOS): Drop tears down mm_struct {:#x}", mm.mm_struct)
        });
        kernel.event("__mmput", || "mm_users reached 0".into());
        mm.teardown(&mut kernel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::{access, Access, NoTrace, Outcome};

    fn setup() -> (Mm, Kernel) {
        let mut k = Kernel::new(4096).unwrap();
        let mm = Mm::new(&mut k, MmConfig::default()).unwrap();
        (mm, k)
    }

    fn rw() -> Prot {
        Prot::parse("rw").unwrap()
    }

    fn fixed(addr: u64, len: u64, prot: Prot) -> MmapRequest {
        MmapRequest { addr, fixed: true, ..MmapRequest::anon(len, prot) }
    }

    fn spans(mm: &Mm) -> Vec<(u64, u64, String)> {
        mm.vmas.all().iter().map(|v| (v.start, v.end, v.prot.to_string())).collect()
    }

    #[test]
    fn adjacent_mappings_merge_and_split() {
        let (mut mm, mut k) = setup();
        let a = mm.mmap(&mut k, fixed(0x10_0000, 0x2000, rw())).unwrap();
        mm.mmap(&mut k, fixed(a + 0x2000, 0x1000, rw())).unwrap();
        assert_eq!(spans(&mm), vec![(a, a + 0x3000, "rw-".into())]);
        mm.mprotect(&mut k, a + 0x1000, 0x1000, Prot::parse("r").unwrap()).unwrap();
        assert_eq!(mm.vma_count(), 3);
        mm.mprotect(&mut k, a, 0x3000, rw()).unwrap();
        assert_eq!(mm.vma_count(), 1);
        crate::check::check_all(&[&mm], &k).unwrap();
        mm.teardown(&mut k);
    }

    #[test]
    fn top_down_placement_and_exhaustion() {
        let (mut mm, mut k) = setup();
        let a = mm.mmap(&mut k, MmapRequest::anon(0x1000, rw())).unwrap();
        assert_eq!(a, DEFAULT_MMAP_BASE - 0x1000);
        // Larger than the whole address space: ENOMEM.
        let err = mm.mmap(&mut k, MmapRequest::anon(TASK_SIZE, rw())).unwrap_err();
        assert!(matches!(err, Error::Sys { errno: Errno::ENOMEM, .. }));
        // Fill everything below mmap_base: the bottom-up fallback above TASK_SIZE/3 is used.
        let low = page_up(crate::addr::MMAP_MIN_ADDR).unwrap();
        mm.mmap(&mut k, fixed(low, DEFAULT_MMAP_BASE - 0x1000 - low, Prot::parse("r").unwrap())).unwrap(); // read-only: not committed
        let b = mm.mmap(&mut k, MmapRequest::anon(0x1000, rw())).unwrap();
        assert!(b >= DEFAULT_MMAP_BASE, "fallback placed above mmap_base: {b:#x}");
        mm.teardown(&mut k);
    }

    #[test]
    fn munmap_frees_tables_only_when_no_vma_shares_them() {
        let (mut mm, mut k) = setup();
        let a = mm.mmap(&mut k, fixed(0x4000_0000, 0x2000, rw())).unwrap();
        access(&mut mm, &mut k, a, Access::Write, &mut NoTrace);
        access(&mut mm, &mut k, a + 0x1000, Access::Write, &mut NoTrace);
        assert_eq!(mm.pt.table_pages(), 3);
        mm.munmap(&mut k, a + 0x1000, 0x1000).unwrap();
        assert_eq!(mm.pt.table_pages(), 3, "the PTE table still serves [a, a+4K)");
        mm.munmap(&mut k, a, 0x1000).unwrap();
        assert_eq!(mm.pt.table_pages(), 0);
        crate::check::check_all(&[&mm], &k).unwrap();
        mm.teardown(&mut k);
        assert_eq!(k.phys().frames_free(), k.phys().frames_total());
    }

    #[test]
    fn brk_moves_the_break() {
        let (mut mm, mut k) = setup();
        let start = mm.layout.brk;
        assert_eq!(mm.brk(&mut k, start + 0x3000), start + 0x3000);
        assert_eq!(mm.vma_count(), 1);
        assert!(mm.maps(&k).contains("[heap]"));
        assert_eq!(access(&mut mm, &mut k, start + 0x2000, Access::Write, &mut NoTrace).outcome, Outcome::AnonZeroFill);
        assert_eq!(mm.brk(&mut k, start), start);
        assert_eq!(mm.vma_count(), 0);
        assert_eq!(mm.rss_anon, 0);
        assert_eq!(mm.brk(&mut k, start - 1), start, "below start_brk is refused");
        mm.teardown(&mut k);
    }

    #[test]
    fn shared_anonymous_pages_live_in_the_page_cache() {
        let (mut mm, mut k) = setup();
        let req = MmapRequest::anon(0x2000, rw()).with_flags("shared|anonymous").unwrap();
        let a = mm.mmap(&mut k, req).unwrap();
        assert_eq!(access(&mut mm, &mut k, a, Access::Read, &mut NoTrace).outcome, Outcome::FileMinor);
        assert_eq!(access(&mut mm, &mut k, a, Access::Write, &mut NoTrace).outcome, Outcome::Hit);
        assert_eq!(mm.rss_shmem, 1);
        // Splitting the VMA adds a mapper to the object; check() verifies the count.
        mm.mprotect(&mut k, a, 0x1000, Prot::parse("r").unwrap()).unwrap();
        crate::check::check_all(&[&mm], &k).unwrap();
        mm.teardown(&mut k);
        assert_eq!(k.phys().frames_free(), k.phys().frames_total(), "the shmem page goes with its last mapper");
    }

    #[test]
    fn a_refused_commit_charge_leaves_no_split_behind() {
        let (mut mm, mut k) = setup();
        k.set_overcommit(crate::kernel::Overcommit::new(2, 1).unwrap()); // a tiny commit limit
        let a = mm.mmap(&mut k, fixed(0x10_0000, 0x40_0000, Prot::parse("r").unwrap())).unwrap();
        let err = mm.mprotect(&mut k, a + 0x1000, 0x20_0000, rw()).unwrap_err();
        assert!(matches!(err, Error::Sys { errno: Errno::ENOMEM, .. }));
        assert_eq!(spans(&mm), vec![(a, a + 0x40_0000, "r--".into())], "split and merged back");
        crate::check::check_all(&[&mm], &k).unwrap();
        mm.teardown(&mut k);
    }

    #[test]
    fn flag_parsing() {
        let r = MmapRequest::anon(1, rw());
        assert!(r.with_flags("private|anonymous").is_ok());
        assert!(r.with_flags("MAP_SHARED|MAP_ANONYMOUS").unwrap().shared);
        assert!(matches!(r.with_flags("anonymous"), Err(Error::Sys { errno: Errno::EINVAL, .. })));
        assert!(matches!(r.with_flags("private|bogus"), Err(Error::InvalidArgument(_))));
        assert_eq!(Advice::parse("MADV_DONTFORK").unwrap(), Advice::DontFork);
        assert_eq!(Advice::parse("MADV_FREE").unwrap(), Advice::Free);
        assert!(matches!(Advice::parse("sometimes"), Err(Error::Sys { errno: Errno::EINVAL, .. })));
    }
}

/// The bits of a /proc/PID/pagemap entry (Documentation/admin-guide/mm/pagemap.rst).
pub mod pagemap {
    /// The page is present in RAM; bits 0-54 hold its frame number.
    pub const PRESENT: u64 = 1 << 63;
    /// The page is in swap; bits 5-54 hold the swap offset (type 0).
    pub const SWAP: u64 = 1 << 62;
    /// A file page or shared anonymous (shmem) page.
    pub const FILE: u64 = 1 << 61;
    /// The page is mapped exactly once.
    pub const MMAP_EXCLUSIVE: u64 = 1 << 56;
    /// Bits 0-54: the frame number of a present page.
    pub const PFN_MASK: u64 = (1 << 55) - 1;
    /// Where the swap offset starts (bits 0-4 are the swap type).
    pub const SWAP_OFFSET_SHIFT: u32 = 5;
}
