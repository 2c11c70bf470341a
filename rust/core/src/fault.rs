//! The page-fault handler: one access, decided exactly as SEMANTICS.md says
//! (arch/x86/mm/fault.c do_user_addr_fault, then mm/memory.c handle_mm_fault).
//!
//! A hit never enters the kernel: the "hardware" walks the page table, and
//! only a missing or insufficient PTE becomes a fault. Every decision can be
//! narrated through a `Trace`; the hot path uses `NoTrace`, which compiles away.

use crate::addr::{classify, page_down, AddrClass, PAGE_SIZE};
use crate::error::Error;
use crate::kernel::Kernel;
use crate::mm::Mm;
use crate::pagecache::ObjectId;
use crate::pagetable::{Pte, PteFlags};
use crate::phys::{flags, FrameUse, Pfn};
use crate::readahead;
use crate::vma::{Backing, VmFlags, Vma};

/// Declares `Outcome` from one table: variant, public code and name. The
/// codes are what `access_batch` returns and the names what Python's
/// `vmsim.Outcome` is built from (it reads them through `vmsim._core`).
macro_rules! outcomes {
    ($(#[doc = $doc:literal] $variant:ident = $code:literal => $name:literal,)*) => {
        /// What one access did.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Outcome {
            $(#[doc = $doc] $variant = $code,)*
        }

        impl Outcome {
            pub const COUNT: usize = [$($code),*].len();
            /// Every outcome, in code order (`ALL[i] as usize == i`).
            pub const ALL: [Outcome; Outcome::COUNT] = [$(Outcome::$variant),*];

            /// The public name (`vmsim.Outcome` member name).
            pub const fn name(self) -> &'static str {
                match self {
                    $(Outcome::$variant => $name,)*
                }
            }

            /// One line saying what the outcome means (its doc comment).
            pub fn description(self) -> &'static str {
                match self {
                    $(Outcome::$variant => $doc.trim(),)*
                }
            }

            /// The outcome with public code `code`.
            pub const fn from_code(code: u8) -> Option<Outcome> {
                match code {
                    $($code => Some(Outcome::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

outcomes! {
    /// The PTE allowed the access: no fault.
    Hit = 0 => "HIT",
    /// Read fault on anonymous memory: the shared zero page was mapped.
    ZeroPage = 1 => "ZERO_PAGE",
    /// Write fault on anonymous memory: a zeroed frame was mapped.
    AnonZeroFill = 2 => "ANON_ZERO_FILL",
    /// Write-protect fault: the page was copied to a new frame.
    CowCopy = 3 => "COW_COPY",
    /// Write-protect fault: the page was ours alone and made writable.
    CowReuse = 4 => "COW_REUSE",
    /// A page-cache (or shmem) page mapped without I/O.
    FileMinor = 5 => "FILE_MINOR",
    /// A page-cache miss: the page was read in (major fault).
    FileMajor = 6 => "FILE_MAJOR",
    /// The page was brought back from swap.
    SwapIn = 7 => "SWAP_IN",
    /// SIGSEGV, no mapping (or a kernel address).
    SegvMaperr = 8 => "SEGV_MAPERR",
    /// SIGSEGV, the mapping forbids the access.
    SegvAccerr = 9 => "SEGV_ACCERR",
    /// #GP on a non-canonical address: SIGSEGV with si_code SI_KERNEL.
    SegvNoncanonical = 10 => "SEGV_NONCANONICAL",
    /// An access beyond the end of a mapped file.
    Sigbus = 11 => "SIGBUS",
    /// No frame could be had: the fault failed with VM_FAULT_OOM.
    Oom = 12 => "OOM",
}

impl Outcome {
    /// The signal the task gets, if any.
    pub fn is_signal(self) -> bool {
        matches!(self, Outcome::SegvMaperr | Outcome::SegvAccerr | Outcome::SegvNoncanonical | Outcome::Sigbus)
    }

    /// Whether the kernel handled a page fault (counted in min_flt or maj_flt).
    pub fn is_fault(self) -> bool {
        matches!(
            self,
            Outcome::ZeroPage
                | Outcome::AnonZeroFill
                | Outcome::CowCopy
                | Outcome::CowReuse
                | Outcome::FileMinor
                | Outcome::FileMajor
                | Outcome::SwapIn
        )
    }
}

/// The kind of access: read, write or instruction fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Access {
    Read = 0,
    Write = 1,
    Exec = 2,
}

impl Access {
    #[inline]
    pub fn from_code(code: u8) -> Option<Access> {
        match code {
            0 => Some(Access::Read),
            1 => Some(Access::Write),
            2 => Some(Access::Exec),
            _ => None,
        }
    }

    pub fn parse(text: &str) -> crate::error::Result<Access> {
        match text.trim().to_ascii_lowercase().as_str() {
            "r" | "read" => Ok(Access::Read),
            "w" | "write" => Ok(Access::Write),
            "x" | "exec" | "fetch" => Ok(Access::Exec),
            _ => Err(Error::invalid(format!("bad access {text:?}: use \"r\", \"w\" or \"x\""))),
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Exec => "instruction fetch",
        }
    }
}

/// How the fault is counted (mm_account_fault).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Account {
    /// A hit, a signal before handle_mm_fault, or a failed fault (OOM, SIGBUS).
    None,
    Minor,
    Major,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub outcome: Outcome,
    pub account: Account,
}

impl Fault {
    const fn uncounted(outcome: Outcome) -> Fault {
        Fault { outcome, account: Account::None }
    }
    const fn minor(outcome: Outcome) -> Fault {
        Fault { outcome, account: Account::Minor }
    }
}

/// Receives the narration of each decision.
pub trait Trace {
    fn step(&mut self, text: impl FnOnce() -> String);
}

/// The hot path's tracer: records nothing.
pub struct NoTrace;

impl Trace for NoTrace {
    #[inline(always)]
    fn step(&mut self, _: impl FnOnce() -> String) {}
}

impl Trace for Vec<String> {
    fn step(&mut self, text: impl FnOnce() -> String) {
        self.push(text());
    }
}

fn describe(v: &Vma) -> String {
    let kind = match (v.shared(), v.backing) {
        (true, _) => "shared",
        (false, Backing::Anon) => "private anonymous",
        (false, Backing::Object { .. }) => "private file",
    };
    let grows = if v.growsdown() { ", grows down" } else { "" };
    format!("{:#x}-{:#x} {} ({kind}{grows})", v.start, v.end, v.prot)
}

/// What the fault handlers work on, as Linux's `struct vm_fault`: the
/// address and access, the VMA, and the leaf PTE as the walk found it.
#[derive(Debug, Clone, Copy)]
pub struct VmFault {
    /// The faulting address.
    pub address: u64,
    /// FAULT_FLAG_WRITE / FAULT_FLAG_INSTRUCTION, as the access kind.
    pub access: Access,
    /// The VMA holding the address (after any stack growth).
    pub vma: Vma,
    /// The leaf PTE's slot, once its page table exists (vmf->pte).
    pub pte_slot: Option<usize>,
    /// The leaf entry as found (vmf->orig_pte).
    pub orig_pte: Pte,
}

impl VmFault {
    #[inline]
    pub fn is_write(&self) -> bool {
        self.access == Access::Write
    }

    /// The leaf slot; only valid once `handle_pte_fault` has made sure the table exists.
    #[inline]
    fn slot(&self) -> usize {
        self.pte_slot.expect("handle_pte_fault allocates the page table first")
    }

    /// The page-cache object and page index behind the address (vmf->pgoff).
    #[inline]
    fn object_page(&self) -> (ObjectId, u64) {
        self.vma.object_page(self.address).expect("an object-backed VMA")
    }
}

/// Whether a present entry lets the access through without a fault.
#[inline]
fn pte_permits(entry: Pte, op: Access) -> bool {
    match op {
        Access::Read => true,
        Access::Write => entry.is_writable(),
        Access::Exec => !entry.has(PteFlags::NX),
    }
}

/// One user-mode access at `addr`.
#[inline]
pub fn access<T: Trace>(mm: &mut Mm, k: &mut Kernel, addr: u64, op: Access, t: &mut T) -> Fault {
    match classify(addr) {
        AddrClass::User => {}
        AddrClass::NonCanonical => {
            t.step(|| format!("{addr:#x} is not canonical (bits 63..47 differ): the CPU raises #GP, not a page fault"));
            t.step(|| "general protection fault -> SIGSEGV with si_code SI_KERNEL and si_addr 0".into());
            return Fault::uncounted(Outcome::SegvNoncanonical);
        }
        AddrClass::Kernel => {
            t.step(|| {
                format!("{addr:#x} is canonical but not in user space (kernel half, or the unmapped page below 2^47)")
            });
            t.step(|| "a user access there: bad_area_nosemaphore -> SIGSEGV SEGV_MAPERR".into());
            return Fault::uncounted(Outcome::SegvMaperr);
        }
    }
    // The hardware walk. What it finds is handed on, so the fault path need
    // not walk again to the same entry.
    let slot = mm.pt.leaf_index(addr);
    let entry = slot.map_or(Pte::NONE, |i| mm.pt.get(i));
    if let Some(index) = slot {
        if entry.is_present() && pte_permits(entry, op) {
            // The CPU sets the accessed (and on a write, dirty) bit.
            let set = if op == Access::Write { PteFlags::ACCESSED | PteFlags::DIRTY } else { PteFlags::ACCESSED };
            if !entry.has(set) {
                mm.pt.set(index, entry.with(set));
            }
            t.step(|| {
                format!(
                    "canonical user address; page-table walk finds a present PTE that allows the {}: a hit, no fault",
                    op.verb()
                )
            });
            return Fault::uncounted(Outcome::Hit);
        }
    }
    t.step(|| {
        format!("canonical user address {addr:#x}; the page-table walk finds no usable PTE: page fault ({})", op.verb())
    });
    do_user_addr_fault(mm, k, addr, op, slot, entry, t)
}

/// find_vma, stack growth and access_error, then handle_mm_fault. `slot`
/// and `entry` are the leaf as the hardware walk found them.
#[inline]
fn do_user_addr_fault<T: Trace>(
    mm: &mut Mm,
    k: &mut Kernel,
    addr: u64,
    op: Access,
    slot: Option<usize>,
    entry: Pte,
    t: &mut T,
) -> Fault {
    let Some(found) = mm.vmas.find_ref(addr) else {
        t.step(|| "find_vma: no VMA ends above this address -> SIGSEGV SEGV_MAPERR".into());
        return Fault::uncounted(Outcome::SegvMaperr);
    };
    // Tested where the index keeps the VMA, not on the fresh copy below
    // (reading a just-copied struct back can wait on the copy).
    let below = found.start > addr;
    // The fault context is built once, around a copy of the VMA as found.
    let mut vmf = VmFault { address: addr, access: op, vma: *found, pte_slot: slot, orig_pte: entry };
    if below {
        if let Err(refused) = grow_stack_for(mm, k, &mut vmf, t) {
            return refused;
        }
    } else {
        t.step(|| format!("find_vma: inside VMA {}", describe(&vmf.vma)));
    }
    if let Err(refused) = access_error(&vmf, t) {
        return refused;
    }
    let fault = handle_mm_fault(mm, k, &mut vmf, t);
    if op == Access::Exec && !vmf.vma.prot.exec() && fault.account != Account::None {
        t.step(|| "the fetch is retried and faults on the NX bit of the new PTE -> SIGSEGV SEGV_ACCERR (the first fault stays counted)".into());
        return Fault { outcome: Outcome::SegvAccerr, account: fault.account };
    }
    fault
}

/// access_error(): x86 lets reads of write- or exec-only VMAs through, and
/// does not test VM_EXEC on a missing page.
#[inline]
fn access_error<T: Trace>(vmf: &VmFault, t: &mut T) -> Result<(), Fault> {
    let refused = Fault::uncounted(Outcome::SegvAccerr);
    match vmf.access {
        Access::Write if !vmf.vma.prot.write() => {
            t.step(|| "access_error: a write to a VMA without write permission -> SIGSEGV SEGV_ACCERR".into());
            Err(refused)
        }
        Access::Read | Access::Exec if vmf.orig_pte.is_present() => {
            t.step(|| "access_error: the PTE is present but forbids the fetch (NX) -> SIGSEGV SEGV_ACCERR".into());
            Err(refused)
        }
        _ if !vmf.vma.prot.accessible() => {
            t.step(|| "access_error: the VMA is PROT_NONE -> SIGSEGV SEGV_ACCERR".into());
            Err(refused)
        }
        _ => {
            t.step(|| "access_error: permitted; handle_mm_fault".into());
            Ok(())
        }
    }
}

/// The address lies below the VMA find_vma found: a stack that grows down
/// takes it in, anything else is SIGSEGV.
#[cold]
#[inline(never)]
fn grow_stack_for<T: Trace>(mm: &mut Mm, k: &mut Kernel, vmf: &mut VmFault, t: &mut T) -> Result<(), Fault> {
    let refused = Fault::uncounted(Outcome::SegvMaperr);
    let vma = vmf.vma;
    if !vma.growsdown() {
        t.step(|| {
            format!(
                "find_vma: the next VMA {} starts above the address and is no stack -> SIGSEGV SEGV_MAPERR",
                describe(&vma)
            )
        });
        return Err(refused);
    }
    t.step(|| format!("find_vma: the next VMA {} grows down: try to expand the stack", describe(&vma)));
    match expand_stack(mm, k, vma, vmf.address) {
        Ok(grown) => {
            t.step(|| format!("stack grown down to {:#x} ({} KiB)", grown.start, grown.len() / 1024));
            vmf.vma = grown;
            Ok(())
        }
        Err(why) => {
            t.step(|| format!("expand_stack refused: {why} -> SIGSEGV SEGV_MAPERR"));
            Err(refused)
        }
    }
}

/// expand_downwards: grow a VM_GROWSDOWN VMA to cover `addr`. Rare: kept
/// out of line so the common fault path stays small.
#[cold]
#[inline(never)]
fn expand_stack(mm: &mut Mm, k: &mut Kernel, vma: Vma, addr: u64) -> Result<Vma, String> {
    // The order of expand_downwards: mmap_min_addr, the guard gap, then the
    // rlimit (acct_stack_growth).
    let new_start = page_down(addr);
    if new_start < mm.cfg.mmap_min_addr {
        return Err(format!("{new_start:#x} is below mmap_min_addr"));
    }
    if let Some(prev) = mm.vmas.last_before(vma.start) {
        let guarded = !prev.growsdown() && prev.prot.accessible();
        let gap = if guarded { mm.cfg.stack_guard_gap } else { 0 };
        if new_start < prev.end.saturating_add(gap) {
            return Err(format!("within stack_guard_gap ({} KiB) of the VMA below, {}", gap / 1024, describe(&prev)));
        }
    }
    let size = vma.end - new_start;
    if size > mm.cfg.stack_rlimit {
        return Err(format!("{} KiB would exceed RLIMIT_STACK ({} KiB)", size / 1024, mm.cfg.stack_rlimit / 1024));
    }
    // acct_stack_growth's last test: the new pages must be committable.
    if vma.flags.has(VmFlags::ACCOUNT) {
        k.vm_enough_memory(mm.total_vm(), (vma.start - new_start) / PAGE_SIZE)
            .map_err(|_| "not enough memory to commit the growth (overcommit)".to_string())?;
    }
    let mut grown = vma;
    grown.start = new_start;
    mm.vmas.replace(vma.start, grown);
    Ok(grown)
}

/// Record that the fault's VMA now has anonymous pages of its own (anon_vma_prepare).
#[inline]
fn anon_vma_prepare(mm: &mut Mm, k: &mut Kernel, vmf: &mut VmFault) {
    if !vmf.vma.has_anon() {
        vmf.vma.anon_vma = k.new_anon_vma();
        mm.vmas.replace(vmf.vma.start, vmf.vma);
    }
}

fn oom<T: Trace>(t: &mut T, what: &str) -> Fault {
    t.step(|| format!("no free frame for {what}: VM_FAULT_OOM (not counted as a fault)"));
    Fault::uncounted(Outcome::Oom)
}

/// handle_mm_fault: with reclaim on, the faulting page is pinned against it
/// for the fault (out of line: without reclaim there is nothing to pin).
#[inline]
fn handle_mm_fault<T: Trace>(mm: &mut Mm, k: &mut Kernel, vmf: &mut VmFault, t: &mut T) -> Fault {
    if k.reclaim_enabled() {
        return handle_mm_fault_pinned(mm, k, vmf, t);
    }
    handle_pte_fault(mm, k, vmf, t)
}

#[inline(never)]
fn handle_mm_fault_pinned<T: Trace>(mm: &mut Mm, k: &mut Kernel, vmf: &mut VmFault, t: &mut T) -> Fault {
    k.pin_against_reclaim(Some(crate::reclaim::key(mm.id, vmf.address)));
    let fault = handle_pte_fault(mm, k, vmf, t);
    k.pin_against_reclaim(None);
    fault
}

/// Make sure the leaf table exists (pte_alloc), then dispatch on the entry.
#[inline]
fn handle_pte_fault<T: Trace>(mm: &mut Mm, k: &mut Kernel, vmf: &mut VmFault, t: &mut T) -> Fault {
    if vmf.pte_slot.is_none() {
        let Ok(slot) = mm.pt.leaf_index_alloc(vmf.address, k.phys_mut()) else {
            return oom(t, "a page-table page");
        };
        vmf.pte_slot = Some(slot);
        vmf.orig_pte = mm.pt.get(slot);
    }
    let entry = vmf.orig_pte;
    if entry.is_none() {
        return match vmf.vma.backing {
            Backing::Anon => do_anonymous_page(mm, k, vmf, t),
            Backing::Object { .. } => do_fault(mm, k, vmf, t),
        };
    }
    if entry.is_swap() {
        return do_swap_page(mm, k, vmf, t);
    }
    if entry.is_present() && vmf.is_write() && !entry.is_writable() {
        return do_wp_page(mm, k, vmf, t);
    }
    // Present and allowed: another access already fixed it up (spurious).
    t.step(|| "the PTE already allows the access: spurious fault, nothing to do".into());
    Fault::uncounted(Outcome::Hit)
}

/// A missing page in a private anonymous VMA: the zero page on a read, a
/// zeroed frame of its own on a write.
#[inline]
fn do_anonymous_page<T: Trace>(mm: &mut Mm, k: &mut Kernel, vmf: &mut VmFault, t: &mut T) -> Fault {
    let slot = vmf.slot();
    if !vmf.is_write() {
        let zero = Pte::new(k.phys().zero_pfn(), PteFlags::SPECIAL | PteFlags::ACCESSED | vmf.vma.pte_bits(false));
        mm.pt.set(slot, zero);
        t.step(|| "do_anonymous_page, read: map the shared zero page read-only (minor fault)".into());
        return Fault::minor(Outcome::ZeroPage);
    }
    let Some(pfn) = alloc_user(mm, k, FrameUse::Anon) else {
        return oom(t, "a new anonymous page");
    };
    k.phys_mut().map_first(pfn);
    mm.pt.set(slot, Pte::new(pfn, PteFlags::ACCESSED | PteFlags::DIRTY | vmf.vma.pte_bits(true)));
    mm.rss_anon += 1;
    k.note_mapped(mm.id, vmf.address, pfn, vmf.vma.flags.has(VmFlags::LOCKED));
    anon_vma_prepare(mm, k, vmf);
    t.step(|| format!("do_anonymous_page, write: allocate zeroed frame {pfn} and map it writable (minor fault)"));
    Fault::minor(Outcome::AnonZeroFill)
}

/// do_fault: a missing page in a VMA backed by a page-cache object (a
/// regular file or shmem): a read maps the cached page (do_read_fault), a
/// private write copies it (do_cow_fault), a shared write maps it writable
/// and dirty (do_shared_fault).
fn do_fault<T: Trace>(mm: &mut Mm, k: &mut Kernel, vmf: &mut VmFault, t: &mut T) -> Fault {
    if !vmf.is_write() {
        do_read_fault(mm, k, vmf, t)
    } else if !vmf.vma.shared() {
        do_cow_fault(mm, k, vmf, t)
    } else {
        do_shared_fault(mm, k, vmf, t)
    }
}

/// The page `__do_fault` found: its frame, and whether reading it was I/O.
struct CachePage {
    pfn: Pfn,
    major: bool,
}

impl CachePage {
    /// The fault as counted: major when the page had to be read in.
    fn counted(&self, outcome: Outcome) -> Fault {
        Fault { outcome, account: if self.major { Account::Major } else { Account::Minor } }
    }

    fn file_outcome(&self) -> Outcome {
        if self.major {
            Outcome::FileMajor
        } else {
            Outcome::FileMinor
        }
    }
}

/// __do_fault (the object's ->fault: filemap_fault or shmem_fault): find
/// the page in the page cache or bring it in. A file read is I/O (a major
/// fault); a new shmem page is just zeroed (still minor). Past the end of a
/// file: SIGBUS.
fn __do_fault<T: Trace>(mm: &mut Mm, k: &mut Kernel, vmf: &VmFault, t: &mut T) -> Result<CachePage, Fault> {
    let (id, page) = vmf.object_page();
    let (is_file, size_pages) = {
        let obj = k.cache().object(id);
        (obj.is_file(), obj.size_pages)
    };
    if is_file && page >= size_pages {
        t.step(|| {
            format!("file page {page} lies at or past the end of the file ({size_pages} pages) -> SIGBUS BUS_ADRERR")
        });
        return Err(Fault::uncounted(Outcome::Sigbus));
    }
    let pattern = vmf.vma.read_pattern();
    if let Some(pfn) = k.cache().lookup(id, page) {
        k.cache_mut().stats.hits += 1;
        if is_file {
            readahead::async_mmap_readahead(k, id, page, pfn, pattern);
        }
        note_used(k, pfn);
        return Ok(CachePage { pfn, major: false });
    }
    if is_file {
        let before = k.cache().stats.readahead;
        readahead::sync_mmap_readahead(k, id, page, pattern);
        if let Some(pfn) = k.cache().lookup(id, page) {
            // Read with its window: the faulting page itself was not read ahead.
            let stats = &mut k.cache_mut().stats;
            stats.readahead -= 1;
            stats.misses += 1;
            let ahead = stats.readahead - before;
            note_used(k, pfn);
            t.step(|| format!("page-cache miss: read file page {page} into frame {pfn} and {ahead} more pages around it (readahead; I/O: a major fault)"));
            return Ok(CachePage { pfn, major: true });
        }
    }
    let usage = if is_file { FrameUse::FileCache } else { FrameUse::Cache };
    let Some(pfn) = alloc_user(mm, k, usage) else { return Err(oom(t, "a page-cache page")) };
    k.add_to_page_cache(id, page, pfn);
    if is_file {
        k.cache_mut().stats.misses += 1;
        t.step(|| format!("page-cache miss: read file page {page} into frame {pfn} (I/O: a major fault)"));
    } else {
        t.step(|| format!("shmem: page {page} not cached yet; a zeroed frame {pfn} joins the page cache"));
    }
    Ok(CachePage { pfn, major: is_file })
}

/// A read fault, in Linux's order: fault-around first (files and shmem
/// alike: shmem's map_pages is filemap_map_pages), which maps the cached
/// pages of its window, the faulting one too if it is ready (a minor fault,
/// done); else `__do_fault` finds or reads the page and it is mapped
/// read-only (shmem, which needs no write notification, writable in a
/// shared mapping).
fn do_read_fault<T: Trace>(mm: &mut Mm, k: &mut Kernel, vmf: &mut VmFault, t: &mut T) -> Fault {
    let (id, _) = vmf.object_page();
    let writable = vmf.vma.shared() && !k.cache().object(id).is_file();
    if do_fault_around(mm, k, vmf, writable, t) {
        k.cache_mut().stats.hits += 1;
        t.step(|| "the faulting page was cached: fault-around mapped it (minor fault)".into());
        return Fault::minor(Outcome::FileMinor);
    }
    let page = match __do_fault(mm, k, vmf, t) {
        Ok(page) => page,
        Err(fault) => return fault,
    };
    let entry = Pte::new(page.pfn, PteFlags::ACCESSED | vmf.vma.pte_bits(writable));
    map_cache_page(mm, k, vmf.slot(), entry);
    k.note_mapped(mm.id, vmf.address, page.pfn, vmf.vma.flags.has(VmFlags::LOCKED));
    t.step(|| {
        format!("map page-cache frame {} {}", page.pfn, if entry.is_writable() { "writable" } else { "read-only" })
    });
    page.counted(page.file_outcome())
}

/// A page read ahead is used once a fault maps it or copies it.
fn note_used(k: &mut Kernel, pfn: Pfn) {
    let frame = k.phys_mut().frame_mut(pfn);
    if frame.flags & flags::READ_AHEAD_UNUSED != 0 {
        frame.flags &= !flags::READ_AHEAD_UNUSED;
        k.cache_mut().stats.readahead_unused -= 1;
    }
}

/// A write fault in a private object mapping: copy the cached page into a
/// new anonymous frame.
fn do_cow_fault<T: Trace>(mm: &mut Mm, k: &mut Kernel, vmf: &mut VmFault, t: &mut T) -> Fault {
    let page = match __do_fault(mm, k, vmf, t) {
        Ok(page) => page,
        Err(fault) => return fault,
    };
    let Some(pfn) = alloc_user(mm, k, FrameUse::Anon) else { return oom(t, "the private copy") };
    k.phys_mut().map_first(pfn);
    let entry = Pte::new(pfn, PteFlags::ACCESSED | PteFlags::DIRTY | vmf.vma.pte_bits(true));
    mm.pt.set(vmf.slot(), entry);
    mm.account_mapping(k, entry);
    k.note_mapped(mm.id, vmf.address, pfn, vmf.vma.flags.has(VmFlags::LOCKED));
    anon_vma_prepare(mm, k, vmf);
    t.step(|| format!("private mapping, write: copy page-cache frame {} into new anonymous frame {pfn}", page.pfn));
    page.counted(Outcome::CowCopy)
}

/// A write fault in a shared object mapping: map the cached page writable
/// and mark it dirty.
fn do_shared_fault<T: Trace>(mm: &mut Mm, k: &mut Kernel, vmf: &mut VmFault, t: &mut T) -> Fault {
    let page = match __do_fault(mm, k, vmf, t) {
        Ok(page) => page,
        Err(fault) => return fault,
    };
    let entry = Pte::new(page.pfn, PteFlags::ACCESSED | PteFlags::DIRTY | vmf.vma.pte_bits(true));
    k.phys_mut().frame_mut(page.pfn).flags |= flags::DIRTY;
    map_cache_page(mm, k, vmf.slot(), entry);
    k.note_mapped(mm.id, vmf.address, page.pfn, vmf.vma.flags.has(VmFlags::LOCKED));
    t.step(|| format!("map page-cache frame {} writable and dirty", page.pfn));
    page.counted(page.file_outcome())
}

/// Map a page-cache frame at a leaf slot: one more reference and mapping.
fn map_cache_page(mm: &mut Mm, k: &mut Kernel, slot: usize, entry: Pte) {
    let phys = k.phys_mut();
    phys.get_frame(entry.pfn());
    phys.map_inc(entry.pfn());
    mm.pt.set(slot, entry);
    mm.account_mapping(k, entry);
}

/// The pages `do_fault_around` covers for a fault at `addr`, as Linux 6.x
/// clips its window: `nr` pages from the aligned window start, moved up to
/// the VMA's start when the VMA begins inside the window (the window keeps
/// its length), and cut at the VMA's end and at the end of the page table.
fn fault_around_range(vma: &Vma, addr: u64, nr: u64) -> (u64, u64) {
    const PTRS_PER_PTE: u64 = 512;
    let pte_off = (addr >> crate::addr::PAGE_SHIFT) % PTRS_PER_PTE;
    let vma_off = (addr - vma.start) >> crate::addr::PAGE_SHIFT;
    let vma_pages = (vma.end - vma.start) >> crate::addr::PAGE_SHIFT;
    let from_pte = (pte_off & !(nr - 1)).max(pte_off - pte_off.min(vma_off));
    let to_pte = (from_pte + nr).min(PTRS_PER_PTE).min(pte_off + vma_pages - vma_off); // exclusive
    let page = page_down(addr);
    (page - (pte_off - from_pte) * PAGE_SIZE, page + (to_pte - pte_off) * PAGE_SIZE)
}

/// do_fault_around (filemap_map_pages): map the pages of the object the
/// page cache holds ready, within the window `fault_around_range` gives,
/// where the PTE is empty, with the VMA's page protection (`writable`:
/// shmem in a shared mapping). A page marked PG_readahead is not ready: its
/// fault must start the next readahead window. Each ready page counts as a
/// hit against the file's `mmap_miss`. Returns whether the faulting page
/// was mapped (then the fault is done). Off when `fault_around_bytes` is a page.
fn do_fault_around<T: Trace>(mm: &mut Mm, k: &mut Kernel, vmf: &VmFault, writable: bool, t: &mut T) -> bool {
    let window = k.fault_around_bytes().max(PAGE_SIZE);
    if window <= PAGE_SIZE {
        return false;
    }
    let (vma, addr) = (&vmf.vma, vmf.address);
    let (lo, hi) = fault_around_range(vma, addr, window / PAGE_SIZE);
    let (id, _) = vmf.object_page();
    let (mut mapped, mut ready, mut faulting_page_mapped) = (0, 0, false);
    for va in (lo..hi).step_by(PAGE_SIZE as usize) {
        let (_, page) = vma.object_page(va).expect("object-backed VMA");
        if page >= k.cache().object(id).size_pages {
            break;
        }
        let Some(pfn) = k.cache().lookup(id, page) else { continue };
        if k.phys().frame(pfn).flags & flags::READAHEAD != 0 {
            continue;
        }
        ready += 1;
        // The window lies in the faulting address's page table, which exists.
        let Some(slot) = mm.pt.leaf_index(va) else { continue };
        if !mm.pt.get(slot).is_none() {
            continue;
        }
        // Young, as on x86, whose page protections carry _PAGE_ACCESSED.
        map_cache_page(mm, k, slot, Pte::new(pfn, PteFlags::ACCESSED | vma.pte_bits(writable)));
        note_used(k, pfn);
        k.note_mapped(mm.id, va, pfn, vma.flags.has(VmFlags::LOCKED));
        if va == page_down(addr) {
            faulting_page_mapped = true;
        } else {
            mapped += 1;
        }
    }
    if k.cache().object(id).is_file() {
        readahead::fault_around_hits(k, id, ready);
    }
    if mapped > 0 {
        t.step(|| format!("fault-around: {mapped} neighbouring cached pages mapped too"));
    }
    faulting_page_mapped
}

/// do_wp_page: a write to a present, write-protected PTE in a writable VMA.
fn do_wp_page<T: Trace>(mm: &mut Mm, k: &mut Kernel, vmf: &mut VmFault, t: &mut T) -> Fault {
    let (slot, entry) = (vmf.slot(), vmf.orig_pte);
    let old_pfn = entry.pfn();
    let made_writable = entry.with(PteFlags::WRITE | PteFlags::DIRTY | PteFlags::ACCESSED);
    if vmf.vma.shared() {
        mm.pt.set(slot, made_writable);
        k.phys_mut().frame_mut(old_pfn).flags |= flags::DIRTY;
        t.step(|| "do_wp_page on a shared mapping: make the PTE writable and the page dirty (minor fault)".into());
        return Fault::minor(Outcome::FileMinor);
    }
    let is_zero = entry.is_special();
    if !is_zero {
        let frame = k.phys().frame(old_pfn);
        let anon = frame.flags & flags::ANON != 0;
        if anon && (frame.flags & flags::ANON_EXCLUSIVE != 0 || frame.refcount == 1) {
            k.phys_mut().frame_mut(old_pfn).flags |= flags::ANON_EXCLUSIVE;
            mm.pt.set(slot, made_writable);
            t.step(|| format!("do_wp_page: frame {old_pfn} is mapped here alone (refcount 1): reuse it, just set writable (minor fault)"));
            return Fault::minor(Outcome::CowReuse);
        }
    }
    let Some(pfn) = alloc_user(mm, k, FrameUse::Anon) else {
        return oom(t, "the copy-on-write copy");
    };
    k.phys_mut().map_first(pfn);
    let copy = Pte::new(pfn, PteFlags::ACCESSED | PteFlags::DIRTY | vmf.vma.pte_bits(true));
    mm.release_entry(k, entry);
    mm.pt.set(slot, copy);
    mm.rss_anon += 1; // the copy is a new anonymous page of this mm
    if is_zero {
        k.note_mapped(mm.id, vmf.address, pfn, vmf.vma.flags.has(VmFlags::LOCKED));
    // a new resident page
    } else {
        k.note_copied(mm.id, vmf.address, pfn, vmf.vma.flags.has(VmFlags::LOCKED));
        // a copy of a mapped one replaces it
    }
    anon_vma_prepare(mm, k, vmf);
    t.step(|| {
        if is_zero {
            format!("do_wp_page: the page is the zero page: copy it into new frame {pfn} (minor fault)")
        } else {
            format!("do_wp_page: frame {old_pfn} is shared: copy it into new frame {pfn} and drop one reference on the old one (minor fault)")
        }
    });
    Fault::minor(Outcome::CowCopy)
}

/// A frame for a user page; when reclaim is on, room is made first (and
/// once more if the allocation still fails).
#[inline(always)]
fn alloc_user(mm: &mut Mm, k: &mut Kernel, usage: FrameUse) -> Option<Pfn> {
    if !k.reclaim_enabled() {
        return k.phys_mut().alloc_frame(usage);
    }
    alloc_user_reclaiming(mm, k, usage)
}

#[inline(never)]
fn alloc_user_reclaiming(mm: &mut Mm, k: &mut Kernel, usage: FrameUse) -> Option<Pfn> {
    use crate::reclaim::evict;
    if k.reclaim().is_some_and(|r| r.kind.is_linux()) {
        let cg = mm.memcg;
        return evict::linux_alloc(Some(mm), k, usage, cg);
    }
    evict::make_room(mm, k, false);
    if evict::at_limit(k) {
        return None; // nothing more could be reclaimed: the limit holds (OOM)
    }
    k.phys_mut().alloc_frame(usage).or_else(|| {
        if evict::make_room(mm, k, true) > 0 {
            k.phys_mut().alloc_frame(usage)
        } else {
            None
        }
    })
}

/// do_swap_page: bring a swapped-out page back. Minor if it is still in the
/// swap cache (another mapping of it brought it in, or it was never written
/// out), else read from swap: a major fault.
fn do_swap_page<T: Trace>(mm: &mut Mm, k: &mut Kernel, vmf: &mut VmFault, t: &mut T) -> Fault {
    let slot = vmf.orig_pte.swap_slot();
    let (pfn, major) = match k.swap().cached_page(slot) {
        Some(pfn) => {
            t.step(|| format!("swap entry {slot}: the page is still in the swap cache (frame {pfn})"));
            (pfn, false)
        }
        None => {
            let Some(pfn) = alloc_user(mm, k, FrameUse::Anon) else { return oom(t, "a page to swap in") };
            k.swap_in_page(slot, pfn);
            t.step(|| format!("swap entry {slot}: read the page back from swap into frame {pfn} (I/O: a major fault)"));
            (pfn, true)
        }
    };
    // This PTE's reference on the slot goes; the last one frees the slot and
    // the swap-cache reference (the page then belongs to its mappings alone).
    let phys = k.phys_mut();
    phys.get_frame(pfn);
    phys.map_inc(pfn);
    k.swap_put(slot);
    mm.swap_ents -= 1;
    let exclusive = k.phys().frame(pfn).refcount == 1;
    if exclusive {
        k.phys_mut().frame_mut(pfn).flags |= flags::ANON_EXCLUSIVE;
    }
    let dirty = if vmf.is_write() && exclusive { PteFlags::DIRTY } else { PteFlags::NONE };
    let entry = Pte::new(pfn, PteFlags::ACCESSED | vmf.vma.pte_bits(exclusive) | dirty);
    mm.pt.set(vmf.slot(), entry);
    mm.account_mapping(k, entry);
    k.note_mapped(mm.id, vmf.address, pfn, vmf.vma.flags.has(VmFlags::LOCKED));
    let account = if major { Account::Major } else { Account::Minor };
    if vmf.is_write() && !entry.is_writable() && vmf.vma.prot.write() {
        // Still shared with other mappings: the write copies it (one fault in all).
        vmf.orig_pte = entry;
        let _ = do_wp_page(mm, k, vmf, &mut NoTrace);
        t.step(|| "the write finds the page shared: copied on write".into());
    }
    Fault { outcome: Outcome::SwapIn, account }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::{PAGE_SIZE, TASK_SIZE};
    use crate::mm::{MmConfig, MmapRequest};
    use crate::vma::Prot;

    /// The window do_fault_around maps, in the cases the host's pagemap
    /// showed (tests/test_kernel_conformance.py runs them against the kernel).
    #[test]
    fn fault_around_window_is_clipped_as_linux_clips_it() {
        let base = 0x7f00_0000_0000u64; // 2 MiB aligned
        let page = |n: u64| base + n * PAGE_SIZE;
        let vma = |first: u64, pages: u64| {
            Vma::anon(page(first), page(first + pages), Prot::new(true, false, false), VmFlags::default())
        };
        // Starts mid-window: the window moves up to the VMA and keeps 16 pages.
        assert_eq!(fault_around_range(&vma(5, 64), page(5), 16), (page(5), page(21)));
        assert_eq!(fault_around_range(&vma(5, 64), page(8), 16), (page(5), page(21)));
        // Ends mid-window, and at the end of the page table.
        assert_eq!(fault_around_range(&vma(0, 10), page(9), 16), (page(0), page(10)));
        assert_eq!(fault_around_range(&vma(509, 10), page(509), 16), (page(509), page(512)));
        // In the middle: the aligned window.
        assert_eq!(fault_around_range(&vma(0, 64), page(40), 16), (page(32), page(48)));
    }

    fn setup() -> (Mm, Kernel) {
        // 16 MiB: room to commit the 8 MiB stack the growth tests reach.
        let mut k = Kernel::new(4096).unwrap();
        let mm = Mm::new(&mut k, MmConfig::default()).unwrap();
        (mm, k)
    }

    fn map(mm: &mut Mm, k: &mut Kernel, len: u64, prot: &str, flags: &str) -> u64 {
        mm.mmap(k, MmapRequest::anon(len, Prot::parse(prot).unwrap()).with_flags(flags).unwrap()).unwrap()
    }

    fn go(mm: &mut Mm, k: &mut Kernel, addr: u64, op: Access) -> Fault {
        access(mm, k, addr, op, &mut NoTrace)
    }

    #[test]
    fn read_then_write_is_zero_page_then_copy() {
        let (mut mm, mut k) = setup();
        let a = map(&mut mm, &mut k, 4 * PAGE_SIZE, "rw", "private|anonymous");
        assert_eq!(go(&mut mm, &mut k, a, Access::Read), Fault::minor(Outcome::ZeroPage));
        assert_eq!(go(&mut mm, &mut k, a, Access::Read), Fault::uncounted(Outcome::Hit));
        assert_eq!(mm.rss_anon, 0, "the zero page is not RSS");
        assert_eq!(go(&mut mm, &mut k, a, Access::Write), Fault::minor(Outcome::CowCopy));
        assert_eq!(go(&mut mm, &mut k, a + 8, Access::Write), Fault::uncounted(Outcome::Hit));
        assert_eq!(go(&mut mm, &mut k, a + PAGE_SIZE, Access::Write), Fault::minor(Outcome::AnonZeroFill));
        assert_eq!(mm.rss_anon, 2);
        crate::check::check_all(&[&mm], &k).unwrap();
        mm.teardown(&mut k);
        assert_eq!(k.phys().frames_free(), k.phys().frames_total());
    }

    #[test]
    fn signals() {
        let (mut mm, mut k) = setup();
        let ro = map(&mut mm, &mut k, PAGE_SIZE, "r", "private|anonymous");
        let none = map(&mut mm, &mut k, PAGE_SIZE, "none", "private|anonymous");
        assert_eq!(go(&mut mm, &mut k, 0, Access::Read).outcome, Outcome::SegvMaperr);
        assert_eq!(go(&mut mm, &mut k, TASK_SIZE, Access::Read).outcome, Outcome::SegvMaperr);
        assert_eq!(go(&mut mm, &mut k, 0xffff_8000_0000_0000, Access::Read).outcome, Outcome::SegvMaperr);
        assert_eq!(go(&mut mm, &mut k, 0x8000_0000_0000, Access::Read).outcome, Outcome::SegvNoncanonical);
        assert_eq!(go(&mut mm, &mut k, ro, Access::Write), Fault::uncounted(Outcome::SegvAccerr));
        assert_eq!(go(&mut mm, &mut k, none, Access::Read), Fault::uncounted(Outcome::SegvAccerr));
        // Fetch from a non-exec page: counted read fault, then NX.
        assert_eq!(go(&mut mm, &mut k, ro, Access::Exec), Fault::minor(Outcome::SegvAccerr));
        assert_eq!(go(&mut mm, &mut k, ro, Access::Exec), Fault::uncounted(Outcome::SegvAccerr));
        let x = map(&mut mm, &mut k, PAGE_SIZE, "x", "private|anonymous");
        assert_eq!(go(&mut mm, &mut k, x, Access::Exec), Fault::minor(Outcome::ZeroPage));
        assert_eq!(go(&mut mm, &mut k, x, Access::Read), Fault::uncounted(Outcome::Hit));
        crate::check::check_all(&[&mm], &k).unwrap();
        mm.teardown(&mut k);
    }

    #[test]
    fn out_of_memory_is_an_outcome_and_recoverable() {
        let mut k = Kernel::new(16).unwrap();
        // Overcommit mode 1: the mapping is promised, the frames run out on touch.
        k.set_overcommit(crate::kernel::Overcommit::new(1, 50).unwrap());
        let mut mm = Mm::new(&mut k, MmConfig::default()).unwrap();
        let a = map(&mut mm, &mut k, 64 * PAGE_SIZE, "rw", "private|anonymous");
        let outcomes: Vec<_> = (0..64).map(|i| go(&mut mm, &mut k, a + i * PAGE_SIZE, Access::Write).outcome).collect();
        assert!(outcomes.contains(&Outcome::Oom));
        assert_eq!(*outcomes.last().unwrap(), Outcome::Oom);
        crate::check::check_all(&[&mm], &k).unwrap();
        mm.munmap(&mut k, a, 64 * PAGE_SIZE).unwrap();
        let b = map(&mut mm, &mut k, PAGE_SIZE, "rw", "private|anonymous");
        assert_eq!(go(&mut mm, &mut k, b, Access::Write).outcome, Outcome::AnonZeroFill);
        mm.teardown(&mut k);
        assert_eq!(k.phys().frames_free(), k.phys().frames_total());
    }

    #[test]
    fn stack_growth_rlimit_and_guard_gap() {
        let (mut mm, mut k) = setup();
        let top = 0x7fff_0000_0000u64;
        let mut req = MmapRequest::anon(4 * PAGE_SIZE, Prot::parse("rw").unwrap());
        req.addr = top - 4 * PAGE_SIZE;
        req.fixed = true;
        req.growsdown = true;
        mm.mmap(&mut k, req).unwrap();
        // One page below: grows.
        let below = top - 5 * PAGE_SIZE + 16;
        assert_eq!(go(&mut mm, &mut k, below, Access::Write).outcome, Outcome::AnonZeroFill);
        assert_eq!(mm.vmas.find(below).unwrap().start, top - 5 * PAGE_SIZE);
        // Past the 8 MiB rlimit: refused.
        assert_eq!(go(&mut mm, &mut k, top - (8 << 20) - PAGE_SIZE, Access::Write).outcome, Outcome::SegvMaperr);
        // Exactly 8 MiB: allowed.
        assert_eq!(go(&mut mm, &mut k, top - (8 << 20), Access::Read).outcome, Outcome::ZeroPage);
        // A mapping below the stack: growth into its guard gap is refused.
        let mut low = MmapRequest::anon(PAGE_SIZE, Prot::parse("r").unwrap());
        low.addr = top - (8 << 20) - (2 << 20);
        low.fixed = true;
        mm.mmap(&mut k, low).unwrap();
        let (mut mm2, mut k2) = setup();
        let mut s = req;
        s.addr = top - 4 * PAGE_SIZE;
        mm2.mmap(&mut k2, s).unwrap();
        let mut guard = MmapRequest::anon(PAGE_SIZE, Prot::parse("r").unwrap());
        guard.addr = top - 4 * PAGE_SIZE - (1 << 20) - 2 * PAGE_SIZE;
        guard.fixed = true;
        mm2.mmap(&mut k2, guard).unwrap();
        // 1 MiB gap above the neighbour's end must stay free.
        let neighbour_end = guard.addr + PAGE_SIZE;
        assert_eq!(
            go(&mut mm2, &mut k2, neighbour_end + (1 << 20) - PAGE_SIZE, Access::Write).outcome,
            Outcome::SegvMaperr
        );
        assert_eq!(go(&mut mm2, &mut k2, neighbour_end + (1 << 20), Access::Write).outcome, Outcome::AnonZeroFill);
        crate::check::check_all(&[&mm2], &k2).unwrap();
        mm.teardown(&mut k);
        mm2.teardown(&mut k2);
    }
}
