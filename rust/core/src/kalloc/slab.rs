//! Slab caches: objects of one size carved out of slabs of 2^order pages
//! taken from the buddy allocator, given back when a slab empties. kmalloc's
//! size classes (8 bytes .. 8 KiB) are such caches. A slab page's frame
//! records which slab it belongs to, so kfree finds the slab in O(1).

use super::{bug, pfn_to_kaddr, LiveAllocation, Site, KMALLOC_MAX_CACHE_SIZE, PAGE_OFFSET};
use crate::error::{Error, Result};
use crate::phys::{flags, FrameUse, Pfn, PhysMem};
use rustc_hash::FxHashMap;

const NIL: u32 = u32::MAX;
const MAX_OBJS: usize = 512;

pub struct SlabCache {
    pub name: String,
    pub size: u32,
    pub order: u8,
    pub objs_per_slab: u32,
    pub active_objs: u64,
    pub num_slabs: u64,
    /// Slabs with at least one free object.
    partial: Vec<u32>,
    /// Whether a user may destroy it (kmalloc caches and the simulator's own may not).
    pub user: bool,
}

struct Slab {
    cache: u32,
    pfn: Pfn,
    /// Objects freed since the slab was made, to hand out first.
    free: Vec<u16>,
    /// Objects below this index have been handed out at least once.
    fresh_from: u16,
    used: [u64; MAX_OBJS / 64],
    inuse: u32,
    partial_pos: u32,
    sites: Vec<Option<Site>>,
}

impl Slab {
    fn free_objects(&self, objs: u32) -> usize {
        self.free.len() + (objs as usize - self.fresh_from as usize)
    }
}

/// One line of slabinfo().
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlabInfo {
    pub name: String,
    pub active_objs: u64,
    pub num_objs: u64,
    pub objsize: u32,
    pub objperslab: u32,
    pub pagesperslab: u32,
    pub num_slabs: u64,
}

#[derive(Default)]
pub struct SlabAllocator {
    caches: Vec<SlabCache>,
    slabs: Vec<Option<Slab>>,
    free_ids: Vec<u32>,
    /// The slab each slab frame belongs to (Linux finds it through the
    /// page's own descriptor; vmsim's 8-byte frames have no room for it).
    slab_of: FxHashMap<Pfn, u32>,
    /// Descriptors of freed slabs, kept so a new slab reuses their buffers.
    spare: Vec<Slab>,
    kmalloc: Vec<u32>,
}

/// Slab order for an object size: one page up to 512 bytes, then enough
/// pages for eight objects, at most 8 pages (as SLUB's defaults roughly do).
fn slab_order(size: u32) -> u8 {
    let mut order = 0u8;
    while order < 3 && ((4096u32 << order) / size) < 8 && size > 512 {
        order += 1;
    }
    order
}

impl SlabAllocator {
    pub fn create_kmalloc_caches(&mut self) {
        let mut size = 8u64;
        while size <= KMALLOC_MAX_CACHE_SIZE {
            let id = self.create(
                &format!("kmalloc-{}", if size >= 1024 { format!("{}k", size / 1024) } else { size.to_string() }),
                size as u32,
                false,
            );
            self.kmalloc.push(id.expect("valid kmalloc cache"));
            size *= 2;
        }
    }

    /// kmem_cache_create: a cache of `size`-byte objects (8 bytes .. 8 KiB).
    pub fn create(&mut self, name: &str, size: u32, user: bool) -> Result<u32> {
        if !(1..=KMALLOC_MAX_CACHE_SIZE as u32).contains(&size) {
            return Err(Error::invalid(format!(
                "kmem_cache_create({name:?}, {size}): object size must be 1..8192 bytes"
            )));
        }
        if self.caches.iter().any(|c| c.name == name) {
            return Err(Error::invalid(format!("kmem_cache_create: a cache named {name:?} exists already")));
        }
        let size = size.next_multiple_of(8);
        let order = slab_order(size);
        let objs = (((4096u32 << order) / size) as usize).min(MAX_OBJS) as u32;
        self.caches.push(SlabCache {
            name: name.to_string(),
            size,
            order,
            objs_per_slab: objs,
            active_objs: 0,
            num_slabs: 0,
            partial: Vec::new(),
            user,
        });
        Ok((self.caches.len() - 1) as u32)
    }

    /// kmem_cache_destroy: only an empty cache may go.
    pub fn destroy(&mut self, cache: u32) -> Result<()> {
        let c = self.cache(cache)?;
        if !c.user {
            return Err(Error::invalid(format!("{} belongs to the kernel and cannot be destroyed", c.name)));
        }
        if c.active_objs != 0 {
            return Err(bug(format!("kmem_cache_destroy of {}: {} objects still allocated", c.name, c.active_objs)));
        }
        self.caches[cache as usize].name = format!("(destroyed {})", c.name);
        self.caches[cache as usize].user = false;
        Ok(())
    }

    fn cache(&self, id: u32) -> Result<&SlabCache> {
        self.caches.get(id as usize).ok_or_else(|| Error::invalid(format!("no slab cache with id {id}")))
    }

    pub fn find(&self, name: &str) -> Option<u32> {
        self.caches.iter().position(|c| c.name == name).map(|i| i as u32)
    }

    pub fn kmalloc_cache_for(&self, size: u64) -> u32 {
        let class = size.max(8).next_power_of_two().trailing_zeros() - 3;
        self.kmalloc[class as usize]
    }

    pub fn alloc(&mut self, phys: &mut PhysMem, cache: u32, site: Site) -> Result<u64> {
        let c = self.cache(cache)?;
        if c.name.starts_with("(destroyed") {
            return Err(bug(format!("kmem_cache_alloc from destroyed cache {}", c.name)));
        }
        let objs = c.objs_per_slab;
        let id = match c.partial.last() {
            Some(&id) => id,
            None => self.grow(phys, cache)?,
        };
        let slab = self.slabs[id as usize].as_mut().expect("partial slab is live");
        let idx = match slab.free.pop() {
            Some(i) => i as usize,
            None => {
                slab.fresh_from += 1;
                slab.fresh_from as usize - 1
            }
        };
        slab.used[idx / 64] |= 1 << (idx % 64);
        slab.inuse += 1;
        slab.sites[idx] = Some(site);
        let (pfn, full) = (slab.pfn, slab.free_objects(objs) == 0);
        let c = &mut self.caches[cache as usize];
        c.active_objs += 1;
        if full {
            c.partial.pop();
            self.slabs[id as usize].as_mut().expect("live").partial_pos = NIL;
        }
        Ok(pfn_to_kaddr(pfn) + idx as u64 * c.size as u64)
    }

    /// A new slab for `cache`, put on its partial list.
    fn grow(&mut self, phys: &mut PhysMem, cache: u32) -> Result<u32> {
        let c = &self.caches[cache as usize];
        let order = c.order as usize;
        let objs = c.objs_per_slab as usize;
        let pfn = phys
            .alloc_block(order, FrameUse::Slab)
            .ok_or_else(|| Error::OutOfMemory(format!("a new slab for {}", c.name)))?;
        let id = self.free_ids.pop().unwrap_or(self.slabs.len() as u32);
        for f in pfn..pfn + (1 << order) {
            self.slab_of.insert(f, id);
        }
        let partial_pos = self.caches[cache as usize].partial.len() as u32;
        let mut slab = self.spare.pop().unwrap_or_else(|| Slab {
            cache,
            pfn,
            free: Vec::new(),
            fresh_from: 0,
            used: [0; MAX_OBJS / 64],
            inuse: 0,
            partial_pos,
            sites: Vec::new(),
        });
        slab.cache = cache;
        slab.pfn = pfn;
        slab.free.clear();
        slab.fresh_from = 0;
        slab.used = [0; MAX_OBJS / 64];
        slab.inuse = 0;
        slab.partial_pos = partial_pos;
        slab.sites.clear();
        slab.sites.resize(objs, None);
        if id as usize == self.slabs.len() {
            self.slabs.push(Some(slab));
        } else {
            self.slabs[id as usize] = Some(slab);
        }
        let c = &mut self.caches[cache as usize];
        c.partial.push(id);
        c.num_slabs += 1;
        Ok(id)
    }

    /// Free the object at `addr`; with `expect` (kmem_cache_free), the cache
    /// it must come from. Returns the cache it came from.
    pub fn free(&mut self, phys: &mut PhysMem, addr: u64, expect: Option<u32>) -> Result<u32> {
        if let Some(want) = expect {
            self.cache(want)?;
        }
        let pfn = ((addr - PAGE_OFFSET) >> 12) as Pfn;
        if phys.frame(pfn).flags & flags::SLAB == 0 {
            return Err(bug(format!("kmem_cache_free of {addr:#x}: not a slab object")));
        }
        let id = self.slab_of[&pfn];
        let slab = self.slabs[id as usize].as_ref().expect("slab page points at a live slab");
        let c = &self.caches[slab.cache as usize];
        if let Some(want) = expect {
            if want != slab.cache {
                return Err(bug(format!(
                    "kmem_cache_free of {addr:#x} to {}, but it belongs to {}",
                    self.caches[want as usize].name, c.name
                )));
            }
        }
        let off = addr - pfn_to_kaddr(slab.pfn);
        let idx = (off / c.size as u64) as usize;
        if !off.is_multiple_of(c.size as u64) || idx >= c.objs_per_slab as usize {
            return Err(bug(format!("invalid free of {addr:#x}: not the start of a {} object", c.name)));
        }
        if slab.used[idx / 64] & (1 << (idx % 64)) == 0 {
            return Err(bug(format!("double free of {addr:#x} ({} object already free)", c.name)));
        }
        let cache = slab.cache;
        let slab = self.slabs[id as usize].as_mut().expect("live");
        slab.used[idx / 64] &= !(1 << (idx % 64));
        slab.free.push(idx as u16);
        slab.sites[idx] = None;
        slab.inuse -= 1;
        let (was_full, empty, pos) = (slab.partial_pos == NIL, slab.inuse == 0, slab.partial_pos);
        self.caches[cache as usize].active_objs -= 1;
        if empty {
            // The slab goes back to the buddy allocator.
            if !was_full {
                self.remove_partial(cache, pos);
            }
            let slab = self.slabs[id as usize].take().expect("live");
            let order = self.caches[cache as usize].order as usize;
            phys.free_block(slab.pfn, order);
            for f in slab.pfn..slab.pfn + (1 << order) {
                self.slab_of.remove(&f);
            }
            self.spare.push(slab);
            self.free_ids.push(id);
            self.caches[cache as usize].num_slabs -= 1;
        } else if was_full {
            let c = &mut self.caches[cache as usize];
            self.slabs[id as usize].as_mut().expect("live").partial_pos = c.partial.len() as u32;
            c.partial.push(id);
        }
        Ok(cache)
    }

    fn remove_partial(&mut self, cache: u32, pos: u32) {
        let c = &mut self.caches[cache as usize];
        c.partial.swap_remove(pos as usize);
        if let Some(&moved) = c.partial.get(pos as usize) {
            self.slabs[moved as usize].as_mut().expect("live").partial_pos = pos;
        }
    }

    pub fn info(&self) -> Vec<SlabInfo> {
        self.caches
            .iter()
            .filter(|c| !c.name.starts_with("(destroyed"))
            .map(|c| SlabInfo {
                name: c.name.clone(),
                active_objs: c.active_objs,
                num_objs: c.num_slabs * c.objs_per_slab as u64,
                objsize: c.size,
                objperslab: c.objs_per_slab,
                pagesperslab: 1 << c.order,
                num_slabs: c.num_slabs,
            })
            .collect()
    }

    /// The call that allocated the live object at `addr`, if it is one.
    pub fn site_of(&self, phys: &PhysMem, addr: u64) -> Option<Site> {
        let pfn = super::kaddr_to_pfn(addr, phys)?;
        if phys.frame(pfn).flags & flags::SLAB == 0 {
            return None;
        }
        let slab = self.slabs.get(*self.slab_of.get(&pfn)? as usize)?.as_ref()?;
        let size = self.caches[slab.cache as usize].size as u64;
        let off = addr - pfn_to_kaddr(slab.pfn);
        off.is_multiple_of(size).then(|| slab.sites.get((off / size) as usize).copied().flatten()).flatten()
    }

    /// Whether `cache` is one of the kernel's own (kmalloc-*, mm_struct,
    /// vm_area_struct) rather than one kmem_cache_create made for a caller.
    pub fn is_kernel_cache(&self, cache: u32) -> bool {
        self.caches.get(cache as usize).is_some_and(|c| !c.user && !c.name.starts_with("(destroyed"))
    }

    pub fn live(&self) -> Vec<LiveAllocation> {
        let mut out = Vec::new();
        for s in self.slabs.iter().flatten() {
            let c = &self.caches[s.cache as usize];
            for (i, site) in s.sites.iter().enumerate() {
                if let Some(site) = site {
                    out.push(LiveAllocation {
                        addr: pfn_to_kaddr(s.pfn) + i as u64 * c.size as u64,
                        size: c.size as u64,
                        kind: if c.name.starts_with("kmalloc-") { "kmalloc" } else { "kmem_cache_alloc" },
                        site: format!("{site} ({})", c.name),
                    });
                }
            }
        }
        out
    }

    pub fn frames(&self) -> Vec<Pfn> {
        self.slabs.iter().flatten().flat_map(|s| s.pfn..s.pfn + (1 << self.caches[s.cache as usize].order)).collect()
    }

    pub fn pages(&self) -> u64 {
        self.caches.iter().map(|c| c.num_slabs << c.order).sum()
    }

    /// Slab-internal consistency, for check().
    pub fn check(&self, phys: &PhysMem) -> std::result::Result<(), String> {
        for (ci, c) in self.caches.iter().enumerate() {
            let slabs: Vec<(u32, &Slab)> = self
                .slabs
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.as_ref().map(|s| (i as u32, s)))
                .filter(|(_, s)| s.cache == ci as u32)
                .collect();
            let active: u64 = slabs.iter().map(|(_, s)| s.inuse as u64).sum();
            if active != c.active_objs || slabs.len() as u64 != c.num_slabs {
                return Err(format!(
                    "slab cache {}: counts {} objects in {} slabs, holds {active} in {}",
                    c.name,
                    c.active_objs,
                    c.num_slabs,
                    slabs.len()
                ));
            }
            for (id, s) in slabs {
                let bits: u32 = s.used.iter().map(|w| w.count_ones()).sum();
                if bits != s.inuse
                    || s.inuse as usize + s.free_objects(c.objs_per_slab) != c.objs_per_slab as usize
                    || s.inuse == 0
                {
                    return Err(format!(
                        "slab {id} of {}: {} in use, {bits} bits set, {} free",
                        c.name,
                        s.inuse,
                        s.free_objects(c.objs_per_slab)
                    ));
                }
                let on_partial = s.partial_pos != NIL;
                if on_partial != (s.free_objects(c.objs_per_slab) > 0)
                    || (on_partial && c.partial.get(s.partial_pos as usize) != Some(&id))
                {
                    return Err(format!("slab {id} of {}: partial list out of step", c.name));
                }
                for f in s.pfn..s.pfn + (1 << c.order) {
                    if phys.frame(f).flags & flags::SLAB == 0 || self.slab_of.get(&f) != Some(&id) {
                        return Err(format!("frame {f} of slab {id} does not point back at it"));
                    }
                }
            }
        }
        if self.slab_of.len() as u64 != self.pages() {
            return Err(format!("{} frames map to slabs, slabs hold {}", self.slab_of.len(), self.pages()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (PhysMem, SlabAllocator) {
        let mut slab = SlabAllocator::default();
        slab.create_kmalloc_caches();
        (PhysMem::new(256).unwrap(), slab)
    }

    #[test]
    fn objects_fill_a_slab_then_a_new_one_and_empty_slabs_go_back() {
        let (mut phys, mut slab) = setup();
        let cache = slab.create("test_obj", 1000, true).unwrap();
        let info = |slab: &SlabAllocator| slab.info().into_iter().find(|i| i.name == "test_obj").unwrap();
        let per_slab = info(&slab).objperslab as usize;
        let objs: Vec<u64> = (0..=per_slab).map(|_| slab.alloc(&mut phys, cache, Site::CacheAlloc).unwrap()).collect();
        assert_eq!((info(&slab).num_slabs, info(&slab).active_objs), (2, per_slab as u64 + 1));
        let mut sorted = objs.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), objs.len(), "no object handed out twice");
        assert!(objs.iter().all(|a| a % 8 == 0));
        slab.check(&phys).unwrap();
        for &a in &objs {
            assert_eq!(slab.free(&mut phys, a, Some(cache)).unwrap(), cache);
        }
        assert_eq!(info(&slab).num_slabs, 0);
        assert_eq!(phys.frames_free(), phys.frames_total(), "every slab page back in the buddy allocator");
        slab.destroy(cache).unwrap();
    }

    #[test]
    fn misuse_is_a_kernel_bug_and_changes_nothing() {
        let (mut phys, mut slab) = setup();
        let a = slab.create("a", 64, true).unwrap();
        let b = slab.create("b", 64, true).unwrap();
        let x = slab.alloc(&mut phys, a, Site::CacheAlloc).unwrap();
        let y = slab.alloc(&mut phys, a, Site::CacheAlloc).unwrap();
        let is_bug = |r: Result<u32>| matches!(r, Err(Error::KernelBug(_)));
        assert!(is_bug(slab.free(&mut phys, x, Some(b))), "wrong cache");
        assert!(is_bug(slab.free(&mut phys, x + 8, None)), "inside an object");
        assert!(matches!(slab.destroy(a), Err(Error::KernelBug(_))), "objects still allocated");
        slab.free(&mut phys, x, None).unwrap();
        assert!(is_bug(slab.free(&mut phys, x, None)), "double free");
        slab.check(&phys).unwrap();
        slab.free(&mut phys, y, None).unwrap();
        assert!(slab.create("a", 64, true).is_err(), "names are unique");
        assert!(slab.create("huge", 8193, true).is_err());
        let kernel_cache = slab.find("kmalloc-64").unwrap();
        assert!(slab.destroy(kernel_cache).is_err(), "the kernel's caches stay");
        slab.destroy(a).unwrap();
        assert!(matches!(slab.alloc(&mut phys, a, Site::CacheAlloc), Err(Error::KernelBug(_))));
    }

    #[test]
    fn kmalloc_sizes_round_up_to_their_class() {
        let (_, slab) = setup();
        let class = |n: u64| slab.info()[slab.kmalloc_cache_for(n) as usize].objsize;
        assert_eq!([class(1), class(8), class(9), class(100), class(4097), class(8192)], [8, 8, 16, 128, 8192, 8192]);
    }
}
