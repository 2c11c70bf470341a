//! vmalloc: virtually contiguous areas in the vmalloc range of the kernel
//! half, each page backed by its own frame from the buddy allocator (so
//! physically scattered), with an unmapped guard page after every area.

use super::{bug, LiveAllocation, Site, VMALLOC_END, VMALLOC_START};
use crate::error::{Error, Result};
use crate::phys::{FrameUse, Pfn, PhysMem};
use std::collections::BTreeMap;

use crate::addr::PAGE_SIZE as PAGE;

#[derive(Debug, Clone)]
pub struct VmallocArea {
    pub start: u64,
    /// Bytes asked for, rounded up to pages (the guard page not included).
    pub size: u64,
    pub pages: Vec<Pfn>,
    pub site: Site,
}

#[derive(Default)]
pub struct Vmalloc {
    areas: BTreeMap<u64, VmallocArea>,
}

impl Vmalloc {
    pub fn vmalloc(&mut self, phys: &mut PhysMem, size: u64, site: Site) -> Result<u64> {
        if size == 0 {
            return Err(Error::invalid("vmalloc(0)"));
        }
        let npages = size.div_ceil(PAGE);
        if npages > phys.frames_total() {
            // __vmalloc_node_range: a request larger than all of RAM fails at once.
            return Err(Error::OutOfMemory(format!("vmalloc({size}): larger than all of memory")));
        }
        let span = (npages + 1) * PAGE; // and its guard page
                                        // First fit among the gaps between areas (each followed by its guard).
        let mut start = VMALLOC_START;
        for a in self.areas.values() {
            if a.start >= start + span {
                break;
            }
            start = a.start + a.size + PAGE;
        }
        if start + span > VMALLOC_END {
            return Err(Error::OutOfMemory(format!("vmalloc({size}): the vmalloc area is full")));
        }
        let mut pages = Vec::with_capacity(npages as usize);
        for _ in 0..npages {
            match phys.alloc_block(0, FrameUse::Kernel) {
                Some(pfn) => pages.push(pfn),
                None => {
                    for pfn in pages {
                        phys.free_block(pfn, 0);
                    }
                    return Err(Error::OutOfMemory(format!("vmalloc({size})")));
                }
            }
        }
        self.areas.insert(start, VmallocArea { start, size: npages * PAGE, pages, site });
        Ok(start)
    }

    pub fn vfree(&mut self, phys: &mut PhysMem, addr: u64) -> Result<()> {
        if addr == 0 {
            return Ok(());
        }
        if !(VMALLOC_START..VMALLOC_END).contains(&addr) {
            return Err(bug(format!(
                "vfree of {addr:#x}: not a vmalloc address (kmalloc'd memory goes back with kfree)"
            )));
        }
        let area = self.areas.remove(&addr).ok_or_else(|| {
            bug(format!("vfree of {addr:#x}: no vmalloc area starts there (double free or a pointer inside one)"))
        })?;
        for pfn in area.pages {
            phys.free_block(pfn, 0);
        }
        Ok(())
    }

    pub fn areas(&self) -> impl Iterator<Item = &VmallocArea> {
        self.areas.values()
    }

    pub fn live(&self) -> Vec<LiveAllocation> {
        self.areas
            .values()
            .map(|a| LiveAllocation { addr: a.start, size: a.size, kind: "vmalloc", site: a.site.to_string() })
            .collect()
    }

    pub fn frames(&self) -> Vec<Pfn> {
        self.areas.values().flat_map(|a| a.pages.iter().copied()).collect()
    }

    pub fn pages(&self) -> u64 {
        self.areas.values().map(|a| a.pages.len() as u64).sum()
    }

    /// Areas do not overlap and each keeps its guard page free.
    pub fn check(&self) -> std::result::Result<(), String> {
        let mut end = VMALLOC_START;
        for a in self.areas.values() {
            if a.start < end || a.pages.len() as u64 * PAGE != a.size {
                return Err(format!("vmalloc area {:#x} overlaps the one before or its guard page", a.start));
            }
            end = a.start + a.size + PAGE;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_are_page_granular_with_a_guard_page_and_first_fit() {
        let mut phys = PhysMem::new(64).unwrap();
        let mut v = Vmalloc::default();
        let a = v.vmalloc(&mut phys, 3 * PAGE - 1, Site::Vmalloc(0)).unwrap();
        let b = v.vmalloc(&mut phys, 1, Site::Vmalloc(1)).unwrap();
        assert_eq!(a, VMALLOC_START);
        assert_eq!(b, a + 4 * PAGE, "three pages, then the guard page");
        assert_eq!(v.pages(), 4);
        v.check().unwrap();
        v.vfree(&mut phys, a).unwrap();
        let c = v.vmalloc(&mut phys, 2 * PAGE, Site::Vmalloc(2)).unwrap();
        assert_eq!(c, a, "the freed hole fits two pages and a guard");
        v.vfree(&mut phys, b).unwrap();
        v.vfree(&mut phys, c).unwrap();
        assert_eq!(phys.frames_free(), phys.frames_total());
    }

    #[test]
    fn bad_frees_and_exhaustion_change_nothing() {
        let mut phys = PhysMem::new(8).unwrap();
        let mut v = Vmalloc::default();
        let a = v.vmalloc(&mut phys, PAGE, Site::Vmalloc(0)).unwrap();
        assert!(matches!(v.vfree(&mut phys, a + 8), Err(Error::KernelBug(_))), "inside an area");
        assert!(matches!(v.vfree(&mut phys, 0xffff_8880_0000_1000), Err(Error::KernelBug(_))), "not vmalloc");
        assert!(v.vfree(&mut phys, 0).is_ok(), "vfree(NULL) is a no-op");
        let free = phys.frames_free();
        assert!(matches!(v.vmalloc(&mut phys, 64 * PAGE, Site::Vmalloc(0)), Err(Error::OutOfMemory(_))));
        assert_eq!(phys.frames_free(), free, "a failed vmalloc gives back what it took");
        assert!(v.vmalloc(&mut phys, 0, Site::Vmalloc(0)).is_err());
        v.vfree(&mut phys, a).unwrap();
        assert!(matches!(v.vfree(&mut phys, a), Err(Error::KernelBug(_))), "double free");
    }
}
