//! The kernel's own allocators and their release calls (SEMANTICS.md, "the
//! four release calls"): alloc_pages/free_pages over the buddy allocator,
//! slab caches and kmalloc/kfree, vmalloc/vfree, and kobject reference
//! counts. Misuse (double free, the wrong release call, a wrong order, a put
//! past zero) is reported as a `KernelBug`, the way KASAN, SLUB debugging and
//! kref warnings report it, and leaves every structure as it was.

mod kobject;
mod slab;
mod vmalloc;

pub use kobject::Kobjects;
pub use slab::{SlabAllocator, SlabInfo};
pub use vmalloc::{Vmalloc, VmallocArea};

use crate::addr::{PAGE_SHIFT, PAGE_SIZE};
use crate::error::{Error, Result};
use crate::phys::{flags, FrameUse, Pfn, PhysMem, MAX_ORDER};
use std::collections::BTreeMap;

/// Base of the direct map of physical memory (x86-64 page_offset_base).
pub const PAGE_OFFSET: u64 = 0xffff_8880_0000_0000;
/// The vmalloc area.
pub const VMALLOC_START: u64 = 0xffff_c900_0000_0000;
pub const VMALLOC_END: u64 = 0xffff_e900_0000_0000;
/// What kmalloc(0) returns: not NULL, but faults on any access.
pub const ZERO_SIZE_PTR: u64 = 16;
/// Largest kmalloc served by a slab cache; above it kmalloc takes pages.
pub const KMALLOC_MAX_CACHE_SIZE: u64 = 8192;

#[inline]
pub fn pfn_to_kaddr(pfn: Pfn) -> u64 {
    PAGE_OFFSET + ((pfn as u64) << PAGE_SHIFT)
}

/// The frame behind a direct-map address, if it is one.
#[inline]
pub fn kaddr_to_pfn(addr: u64, phys: &PhysMem) -> Option<Pfn> {
    let off = addr.checked_sub(PAGE_OFFSET)?;
    let pfn = off >> PAGE_SHIFT;
    (pfn < phys.nframes() as u64).then_some(pfn as Pfn)
}

/// The call that made an allocation, for leak_check. Small and `Copy`, so
/// that recording it costs nothing on the allocation path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    AllocPages(usize),
    Kmalloc(u64),
    Kzalloc(u64),
    KmallocArray(u64, u64),
    CacheAlloc,
    Vmalloc(u64),
    Vzalloc(u64),
    /// The simulator's own objects ("mm_struct", "vm_area_struct", "kobject").
    Internal(&'static str),
}

impl std::fmt::Display for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Site::AllocPages(o) => write!(f, "alloc_pages(order {o})"),
            Site::Kmalloc(n) => write!(f, "kmalloc({n})"),
            Site::Kzalloc(n) => write!(f, "kzalloc({n})"),
            Site::KmallocArray(n, s) => write!(f, "kmalloc_array({n}, {s})"),
            Site::CacheAlloc => write!(f, "kmem_cache_alloc"),
            Site::Vmalloc(n) => write!(f, "vmalloc({n})"),
            Site::Vzalloc(n) => write!(f, "vzalloc({n})"),
            Site::Internal(what) => write!(f, "{what}"),
        }
    }
}

pub fn bug(what: impl Into<String>) -> Error {
    Error::KernelBug(what.into())
}

/// A block of pages handed out by alloc_pages or a large kmalloc.
#[derive(Debug, Clone)]
struct PageBlock {
    order: usize,
    large_kmalloc: bool,
    site: Site,
}

/// One live allocation, for leak_check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveAllocation {
    pub addr: u64,
    pub size: u64,
    pub kind: &'static str,
    pub site: String,
}

#[derive(Default)]
pub struct KernelAlloc {
    pub slab: SlabAllocator,
    pub vmalloc: Vmalloc,
    pub kobjects: Kobjects,
    pages: BTreeMap<Pfn, PageBlock>,
}

impl KernelAlloc {
    pub fn new() -> KernelAlloc {
        let mut k = KernelAlloc::default();
        k.slab.create_kmalloc_caches();
        k
    }

    // ----- alloc_pages / free_pages --------------------------------------

    pub fn alloc_pages(&mut self, phys: &mut PhysMem, order: usize, site: Site) -> Result<u64> {
        if order > MAX_ORDER {
            return Err(Error::invalid(format!("alloc_pages order {order} is above MAX_ORDER ({MAX_ORDER})")));
        }
        let pfn = phys
            .alloc_block(order, FrameUse::Kernel)
            .ok_or_else(|| Error::OutOfMemory(format!("alloc_pages(order {order})")))?;
        self.pages.insert(pfn, PageBlock { order, large_kmalloc: false, site });
        Ok(pfn_to_kaddr(pfn))
    }

    pub fn free_pages(&mut self, phys: &mut PhysMem, addr: u64, order: usize) -> Result<()> {
        if addr == 0 {
            return Ok(()); // free_pages(0) is a no-op
        }
        let pfn = kaddr_to_pfn(addr, phys)
            .ok_or_else(|| bug(format!("free_pages of {addr:#x}: not a direct-map address")))?;
        if addr & 0xfff != 0 {
            return Err(bug(format!("free_pages of misaligned address {addr:#x}")));
        }
        match self.pages.get(&pfn) {
            None => {
                Err(bug(format!("free_pages of {addr:#x}: not an allocated block (double free or never allocated)")))
            }
            Some(b) if b.large_kmalloc => {
                Err(bug(format!("free_pages of {addr:#x}, which kmalloc allocated: use kfree")))
            }
            Some(b) if b.order != order => Err(bug(format!(
                "free_pages of {addr:#x} with order {order}, but it was allocated with order {}",
                b.order
            ))),
            Some(_) => {
                self.pages.remove(&pfn);
                phys.free_block(pfn, order);
                Ok(())
            }
        }
    }

    // ----- kmalloc / kfree -------------------------------------------------

    pub fn kmalloc(&mut self, phys: &mut PhysMem, size: u64, site: Site) -> Result<u64> {
        if size == 0 {
            return Ok(ZERO_SIZE_PTR);
        }
        if size > KMALLOC_MAX_CACHE_SIZE {
            let pages = size.div_ceil(PAGE_SIZE);
            let order = pages.next_power_of_two().trailing_zeros() as usize;
            if order > MAX_ORDER {
                return Err(Error::OutOfMemory(format!("kmalloc({size}): larger than the largest buddy block")));
            }
            let pfn = phys
                .alloc_block(order, FrameUse::Kernel)
                .ok_or_else(|| Error::OutOfMemory(format!("kmalloc({size})")))?;
            self.pages.insert(pfn, PageBlock { order, large_kmalloc: true, site });
            return Ok(pfn_to_kaddr(pfn));
        }
        let cache = self.slab.kmalloc_cache_for(size);
        self.slab.alloc(phys, cache, site)
    }

    pub fn kmalloc_array(&mut self, phys: &mut PhysMem, n: u64, size: u64) -> Result<u64> {
        let total =
            n.checked_mul(size).ok_or_else(|| Error::invalid(format!("kmalloc_array({n}, {size}) overflows")))?;
        self.kmalloc(phys, total, Site::KmallocArray(n, size))
    }

    pub fn kfree(&mut self, phys: &mut PhysMem, addr: u64) -> Result<()> {
        if addr == 0 || addr == ZERO_SIZE_PTR {
            return Ok(());
        }
        if (VMALLOC_START..VMALLOC_END).contains(&addr) {
            return Err(bug(format!("kfree of vmalloc address {addr:#x}: use vfree")));
        }
        let pfn =
            kaddr_to_pfn(addr, phys).ok_or_else(|| bug(format!("kfree of {addr:#x}: not a kernel heap address")))?;
        let f = phys.frame(pfn);
        if f.flags & flags::SLAB != 0 {
            match self.slab.site_of(phys, addr) {
                Some(Site::Internal("kobject")) => {
                    return Err(bug(format!("kfree of kobject {addr:#x}: a kobject goes with kobject_put")))
                }
                Some(Site::Internal(what)) => {
                    return Err(bug(format!("kfree of {addr:#x}: a {what} the simulator owns; it goes with its owner")))
                }
                _ => return self.slab.free(phys, addr, None).map(|_| ()),
            }
        }
        match self.pages.get(&pfn) {
            Some(b) if b.large_kmalloc && addr & 0xfff == 0 => {
                let order = b.order;
                self.pages.remove(&pfn);
                phys.free_block(pfn, order);
                Ok(())
            }
            Some(_) => Err(bug(format!("kfree of {addr:#x}, which alloc_pages allocated: use free_pages"))),
            None if f.flags & flags::KERNEL != 0 => {
                Err(bug(format!("kfree of {addr:#x}: inside an allocation, not its start")))
            }
            None => Err(bug(format!("kfree of {addr:#x}: double free or invalid free (no live object there)"))),
        }
    }

    // ----- reports -----------------------------------------------------

    /// Every allocation still live, with the call that made it.
    pub fn live(&self) -> Vec<LiveAllocation> {
        let mut out: Vec<LiveAllocation> = self
            .pages
            .iter()
            .map(|(&pfn, b)| LiveAllocation {
                addr: pfn_to_kaddr(pfn),
                size: PAGE_SIZE << b.order,
                kind: if b.large_kmalloc { "kmalloc" } else { "alloc_pages" },
                site: b.site.to_string(),
            })
            .collect();
        out.extend(self.slab.live());
        out.extend(self.vmalloc.live());
        out.extend(self.kobjects.live());
        out.sort_by_key(|a| a.addr);
        out
    }

    /// Frames held by kernel allocations, each with the references it holds.
    pub fn frames(&self) -> Vec<Pfn> {
        let mut out: Vec<Pfn> = Vec::new();
        for (&pfn, b) in &self.pages {
            out.extend(pfn..pfn + (1 << b.order));
        }
        out.extend(self.slab.frames());
        out.extend(self.vmalloc.frames());
        out
    }

    /// Pages held by each allocator: (buddy pages, slab pages, vmalloc pages).
    pub fn pages_by_allocator(&self) -> (u64, u64, u64) {
        let buddy = self.pages.values().map(|b| 1u64 << b.order).sum();
        (buddy, self.slab.pages(), self.vmalloc.pages())
    }
}
