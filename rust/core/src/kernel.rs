//! State shared by every address space of one simulator: physical memory and
//! the page cache. It sits behind one lock (see `sim.rs` for the lock order).

use crate::error::Result;
use crate::pagecache::PageCache;
use crate::phys::PhysMem;

pub struct Kernel {
    pub phys: PhysMem,
    pub cache: PageCache,
    last_anon_vma: u32,
}

impl Kernel {
    pub fn new(nframes: u32) -> Result<Kernel> {
        Ok(Kernel {
            phys: PhysMem::new(nframes)?,
            cache: PageCache::default(),
            last_anon_vma: 0,
        })
    }

    /// A fresh anon_vma identity (never 0).
    pub fn new_anon_vma(&mut self) -> u32 {
        self.last_anon_vma = self.last_anon_vma.wrapping_add(1).max(1);
        self.last_anon_vma
    }
}
