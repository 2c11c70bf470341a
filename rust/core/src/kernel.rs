//! State shared by every address space of one simulator: physical memory,
//! the page cache, the kernel allocators, the mm_struct reference counts and
//! the release trace. It sits behind one lock (see `sim.rs` for the order).

use crate::error::{Error, Result};
use crate::kalloc::{bug, kaddr_to_pfn, KernelAlloc, Site, VMALLOC_END, VMALLOC_START};
use crate::pagecache::PageCache;
use crate::phys::flags;
use crate::phys::{Pfn, PhysMem};
use std::collections::HashMap;
use std::sync::Arc;

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
    pub pgd: Pfn,
    /// exit_mmap has run: pages, VMAs and lower tables are gone.
    pub exited: bool,
}

pub struct Kernel {
    pub phys: PhysMem,
    pub cache: PageCache,
    pub kalloc: KernelAlloc,
    pub mm_cache: u32,
    pub vma_cache: u32,
    pub mm_structs: HashMap<u64, MmStructRef>,
    /// vm.fault_around_bytes-like knob: the window a file read fault maps (4096 turns it off).
    pub fault_around_bytes: u64,
    exe: Option<crate::pagecache::ObjectId>,
    pub swap: crate::swap::SwapSpace,
    /// Reclaim and its replacement policy; None: memory running out is OOM.
    pub reclaim: Option<crate::reclaim::Reclaim>,
    /// Every live address space, by id: what reclaim unmaps pages through.
    mms: HashMap<u32, std::sync::Weak<parking_lot::Mutex<crate::mm::Mm>>>,
    last_mm_id: u32,
    trace: Option<Vec<ReleaseEvent>>,
    last_anon_vma: u32,
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
            exe: None,
            swap: crate::swap::SwapSpace::default(),
            reclaim: None,
            mms: HashMap::new(),
            last_mm_id: 0,
            trace: None,
            last_anon_vma: 0,
        })
    }

    /// The page-cache object of the simulated executable that default-layout
    /// processes map their text and data from (made again once unmapped).
    pub fn executable(&mut self) -> crate::pagecache::ObjectId {
        match self.exe {
            Some(id)
                if self
                    .cache
                    .get(id)
                    .is_some_and(|o| matches!(o.kind, crate::pagecache::ObjectKind::File { transient: true, .. })) =>
            {
                id
            }
            _ => {
                let size = (crate::layout::TEXT_PAGES + crate::layout::DATA_PAGES) * 4096;
                let id = self.cache.create_transient_file(crate::layout::EXE_NAME, size);
                self.exe = Some(id);
                id
            }
        }
    }

    /// A user page became resident at `va` of address space `mm`.
    #[inline]
    pub fn note_mapped(&mut self, mm: u32, va: u64) {
        if let Some(r) = &mut self.reclaim {
            r.policy.mapped(crate::reclaim::key(mm, va));
        }
    }

    pub fn new_mm_id(&mut self) -> u32 {
        self.last_mm_id += 1;
        self.last_mm_id
    }

    pub fn register_mm(&mut self, id: u32, mm: std::sync::Weak<parking_lot::Mutex<crate::mm::Mm>>) {
        self.mms.insert(id, mm);
    }

    pub fn unregister_mm(&mut self, id: u32) {
        self.mms.remove(&id);
    }

    /// The registered address space `id`, if it is still alive.
    pub fn mm_handle(&self, id: u32) -> Option<Arc<parking_lot::Mutex<crate::mm::Mm>>> {
        self.mms.get(&id).and_then(std::sync::Weak::upgrade)
    }

    /// A fresh anon_vma identity (never 0).
    pub fn new_anon_vma(&mut self) -> u32 {
        self.last_anon_vma = self.last_anon_vma.wrapping_add(1).max(1);
        self.last_anon_vma
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
    /// `n` kmallocs of `size` bytes in one call; on failure the ones made are freed.
    pub fn kmalloc_many(&mut self, size: u64, n: usize, out: &mut Vec<u64>) -> Result<()> {
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
        Ok(())
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
        self.kalloc.slab.alloc(&mut self.phys, cache, Site::CacheAlloc)
    }
    pub fn kmem_cache_free(&mut self, cache: u32, addr: u64) -> Result<()> {
        if kaddr_to_pfn(addr, &self.phys).is_none() {
            return Err(bug(format!("kmem_cache_free of {addr:#x}: not a slab object")));
        }
        self.kalloc.slab.free(&mut self.phys, addr, Some(cache)).map(|_| ())
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

    // ----- the release trace ---------------------------------------------

    pub fn set_tracing(&mut self, on: bool) {
        if on {
            self.trace.get_or_insert_with(Vec::new);
        } else {
            self.trace = None;
        }
    }

    pub fn tracing(&self) -> bool {
        self.trace.is_some()
    }

    /// Record an event if tracing; the detail is only built then.
    pub fn event(&mut self, name: &'static str, detail: impl FnOnce() -> String) {
        if let Some(t) = &mut self.trace {
            t.push(ReleaseEvent { name, detail: detail() });
        }
    }

    /// Take the events recorded so far.
    pub fn take_events(&mut self) -> Vec<ReleaseEvent> {
        self.trace.as_mut().map(std::mem::take).unwrap_or_default()
    }

    // ----- the simulator's own kernel objects ------------------------------

    pub fn alloc_object(&mut self, cache: u32, site: &'static str) -> Result<u64> {
        self.kalloc.slab.alloc(&mut self.phys, cache, Site::Internal(site)).map_err(|e| match e {
            Error::OutOfMemory(what) => {
                Error::sys(crate::error::Errno::ENOMEM, format!("out of simulated memory for {what}"))
            }
            other => other,
        })
    }

    pub fn free_object(&mut self, cache: u32, addr: u64) {
        self.kalloc
            .slab
            .free(&mut self.phys, addr, Some(cache))
            .expect("the simulator frees its own objects correctly");
    }

    /// mmgrab: one more mm_count reference on the mm_struct at `mm`.
    pub fn mmgrab(&mut self, mm: u64) {
        self.mm_structs.get_mut(&mm).expect("a live mm_struct").count += 1;
    }

    /// mmdrop: one reference less; the last runs __mmdrop (the top-level
    /// table with free_pages, then the mm_struct back to its cache).
    pub fn mmdrop(&mut self, mm: u64) -> Result<()> {
        let r = self
            .mm_structs
            .get_mut(&mm)
            .ok_or_else(|| crate::kalloc::bug(format!("mmdrop of {mm:#x}: not a live mm_struct")))?;
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
