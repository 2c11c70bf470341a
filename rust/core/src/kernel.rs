//! State shared by every address space of one simulator: physical memory and
//! the page cache. It sits behind one lock (see `sim.rs` for the lock order).

use crate::error::Result;
use crate::pagecache::PageCache;
use crate::phys::PhysMem;

pub struct Kernel {
    pub phys: PhysMem,
    pub cache: PageCache,
}

impl Kernel {
    pub fn new(nframes: u32) -> Result<Kernel> {
        Ok(Kernel {
            phys: PhysMem::new(nframes)?,
            cache: PageCache::default(),
        })
    }
}
