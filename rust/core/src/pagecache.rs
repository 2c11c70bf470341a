//! The page cache: objects (regular files, and shmem: the unnamed file behind
//! MAP_SHARED|MAP_ANONYMOUS) whose pages are keyed by (object, page index).
//! The cache holds one reference on every page it caches.
//!
//! An object lives while a VMA maps it, while a handle (an open file) holds
//! it, or, for a regular file, until it is unlinked: a file's cached pages
//! outlive its mappings, as in Linux; shmem goes with its last mapping.

use crate::addr::PAGE_SIZE;
use crate::phys::{Pfn, PhysMem};
use rustc_hash::FxHashMap as HashMap;

pub type ObjectId = u32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectKind {
    /// Anonymous shared memory (MAP_SHARED|MAP_ANONYMOUS): a file with no name.
    Shmem,
    /// A regular file of `size` bytes. It lives while a handle or a mapping
    /// holds it: with neither, nothing could reach it again, so it goes with
    /// its pages (unlinked or not). A `transient` one (the simulated
    /// executable) never had a handle.
    File { name: String, size: u64, unlinked: bool, transient: bool },
}

pub struct CacheObject {
    pub kind: ObjectKind,
    pub size_pages: u64,
    pages: HashMap<u64, Pfn>,
    /// VMAs (in every address space) that map this object.
    mappers: u32,
    /// Open handles (a Python File object is one).
    handles: u32,
    /// Readahead state (regular files only; shmem has none).
    pub ra: crate::readahead::RaState,
}

impl CacheObject {
    pub fn cached_pages(&self) -> usize {
        self.pages.len()
    }

    pub fn is_file(&self) -> bool {
        matches!(self.kind, ObjectKind::File { .. })
    }

    /// Whether nothing keeps the object any more.
    fn unreferenced(&self) -> bool {
        self.mappers == 0 && self.handles == 0
    }
}

/// Page-cache statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub writebacks: u64,
    /// Pages readahead read in (besides the faulting pages).
    pub readahead: u64,
    /// Of those, the pages no fault has mapped yet (freed unused: wasted reads).
    pub readahead_unused: u64,
}

pub struct PageCache {
    objects: Vec<Option<CacheObject>>,
    free_ids: Vec<ObjectId>,
    pub stats: CacheStats,
    /// The readahead window new files get, in pages (their device's read_ahead_kb).
    pub default_ra_pages: u64,
}

impl Default for PageCache {
    fn default() -> Self {
        PageCache {
            objects: Vec::new(),
            free_ids: Vec::new(),
            stats: CacheStats::default(),
            default_ra_pages: crate::readahead::DEFAULT_RA_PAGES,
        }
    }
}

impl PageCache {
    fn insert_object(&mut self, obj: CacheObject) -> ObjectId {
        match self.free_ids.pop() {
            Some(id) => {
                self.objects[id as usize] = Some(obj);
                id
            }
            None => {
                self.objects.push(Some(obj));
                (self.objects.len() - 1) as ObjectId
            }
        }
    }

    /// A new shmem object with one mapper (the VMA being created).
    pub fn create_shmem(&mut self, size_pages: u64) -> ObjectId {
        self.insert_object(CacheObject {
            kind: ObjectKind::Shmem,
            size_pages,
            pages: HashMap::default(),
            mappers: 1,
            handles: 0,
            ra: crate::readahead::RaState::new(0),
        })
    }

    /// A new regular file with one handle.
    pub fn create_file(&mut self, name: &str, size: u64) -> ObjectId {
        self.new_file(name, size, false)
    }

    /// A transient file with no handle: it lives while mapped (see `ObjectKind::File`).
    pub fn create_transient_file(&mut self, name: &str, size: u64) -> ObjectId {
        self.new_file(name, size, true)
    }

    fn new_file(&mut self, name: &str, size: u64, transient: bool) -> ObjectId {
        let kind = ObjectKind::File { name: name.to_string(), size, unlinked: false, transient };
        let handles = u32::from(!transient);
        self.insert_object(CacheObject {
            kind,
            size_pages: size.div_ceil(PAGE_SIZE),
            pages: HashMap::default(),
            mappers: 0,
            handles,
            ra: crate::readahead::RaState::new(self.default_ra_pages),
        })
    }

    pub fn get(&self, id: ObjectId) -> Option<&CacheObject> {
        self.objects.get(id as usize).and_then(Option::as_ref)
    }

    pub fn object(&self, id: ObjectId) -> &CacheObject {
        self.get(id).expect("page cache object in use")
    }

    pub(crate) fn object_mut(&mut self, id: ObjectId) -> &mut CacheObject {
        self.objects[id as usize].as_mut().expect("page cache object in use")
    }

    pub fn add_mapper(&mut self, id: ObjectId) {
        self.object_mut(id).mappers += 1;
    }

    /// One VMA stopped mapping the object.
    pub fn drop_mapper(&mut self, id: ObjectId, phys: &mut PhysMem) {
        self.object_mut(id).mappers -= 1;
        self.release_if_unreferenced(id, phys);
    }

    /// A handle (open file) is closed.
    pub fn close(&mut self, id: ObjectId, phys: &mut PhysMem) {
        let obj = self.object_mut(id);
        obj.handles = obj.handles.saturating_sub(1);
        self.release_if_unreferenced(id, phys);
    }

    /// The file's name goes; its pages go with its last mapping and handle.
    pub fn unlink(&mut self, id: ObjectId, phys: &mut PhysMem) {
        if let ObjectKind::File { unlinked, .. } = &mut self.object_mut(id).kind {
            *unlinked = true;
        }
        self.release_if_unreferenced(id, phys);
    }

    fn release_if_unreferenced(&mut self, id: ObjectId, phys: &mut PhysMem) {
        if self.object(id).unreferenced() {
            let obj = self.objects[id as usize].take().expect("object present");
            for (_, pfn) in obj.pages {
                phys.put_frame(pfn);
            }
            self.free_ids.push(id);
        }
    }

    /// Set a file's size; cached pages past the new end are dropped (the
    /// caller has unmapped them first).
    pub fn truncate(&mut self, id: ObjectId, size: u64, phys: &mut PhysMem) {
        let obj = self.object_mut(id);
        if let ObjectKind::File { size: s, .. } = &mut obj.kind {
            *s = size;
        }
        obj.size_pages = size.div_ceil(PAGE_SIZE);
        let keep = obj.size_pages;
        let gone: Vec<u64> = obj.pages.keys().copied().filter(|&i| i >= keep).collect();
        for i in gone {
            let pfn = obj.pages.remove(&i).expect("listed");
            phys.put_frame(pfn);
        }
    }

    /// Drop one cached page (reclaim; the caller has unmapped it everywhere).
    pub fn evict(&mut self, id: ObjectId, index: u64, phys: &mut PhysMem) {
        if let Some(pfn) = self.object_mut(id).pages.remove(&index) {
            phys.put_frame(pfn);
        }
    }

    #[inline]
    pub fn lookup(&self, id: ObjectId, index: u64) -> Option<Pfn> {
        self.object(id).pages.get(&index).copied()
    }

    /// Cache `pfn` at `index`; the caller's reference becomes the cache's.
    pub fn insert(&mut self, id: ObjectId, index: u64, pfn: Pfn) {
        let old = self.object_mut(id).pages.insert(index, pfn);
        debug_assert!(old.is_none(), "page cache slot filled twice");
    }

    /// (object, index, frame) of every cached page of every regular file.
    pub fn files_pages(&self) -> impl Iterator<Item = (ObjectId, u64, Pfn)> + '_ {
        self.objects.iter().enumerate().flat_map(|(id, o)| {
            o.iter()
                .filter(|o| o.is_file())
                .flat_map(move |o| o.pages.iter().map(move |(&i, &p)| (id as ObjectId, i, p)))
        })
    }

    /// (id, mappers, pages) of every live object, for the invariant check.
    pub fn live(&self) -> impl Iterator<Item = (ObjectId, u32, Vec<Pfn>)> + '_ {
        self.objects
            .iter()
            .enumerate()
            .filter_map(|(id, o)| o.as_ref().map(|o| (id as ObjectId, o.mappers, o.pages.values().copied().collect())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phys::FrameUse;

    fn cache_page(cache: &mut PageCache, phys: &mut PhysMem, id: ObjectId, index: u64) -> Pfn {
        let pfn = phys.alloc_frame(FrameUse::FileCache).unwrap();
        cache.insert(id, index, pfn);
        pfn
    }

    #[test]
    fn a_file_lives_while_open_or_mapped() {
        let mut phys = PhysMem::new(32).unwrap();
        let mut cache = PageCache::default();
        let id = cache.create_file("/f", 3 * 4096 + 1);
        assert_eq!(cache.object(id).size_pages, 4);
        let pfn = cache_page(&mut cache, &mut phys, id, 2);
        assert_eq!(cache.lookup(id, 2), Some(pfn));
        assert_eq!(cache.lookup(id, 1), None);
        cache.add_mapper(id);
        cache.close(id, &mut phys);
        cache.unlink(id, &mut phys);
        assert!(cache.get(id).is_some(), "still mapped");
        assert!(matches!(cache.object(id).kind, ObjectKind::File { unlinked: true, .. }));
        cache.drop_mapper(id, &mut phys);
        assert!(cache.get(id).is_none(), "unlinked, closed and unmapped: gone");
        assert_eq!(phys.frames_free(), phys.frames_total(), "with its pages");
        assert_eq!(cache.create_shmem(1), id, "ids are reused");
        let named = cache.create_file("/g", 4096);
        cache_page(&mut cache, &mut phys, named, 0);
        cache.close(named, &mut phys);
        assert!(cache.get(named).is_none(), "closed and unmapped: unreachable, so gone though never unlinked");
    }

    #[test]
    fn truncate_and_evict_drop_pages() {
        let mut phys = PhysMem::new(32).unwrap();
        let mut cache = PageCache::default();
        let id = cache.create_file("/f", 4 * 4096);
        for i in 0..4 {
            cache_page(&mut cache, &mut phys, id, i);
        }
        cache.truncate(id, 4096 + 1, &mut phys);
        assert_eq!(cache.object(id).size_pages, 2);
        assert_eq!(cache.object(id).cached_pages(), 2);
        cache.evict(id, 0, &mut phys);
        cache.evict(id, 0, &mut phys); // not cached any more: nothing happens
        assert_eq!(cache.object(id).cached_pages(), 1);
        let live: Vec<_> = cache.live().collect();
        assert_eq!(live.len(), 1);
        assert_eq!((live[0].0, live[0].1, live[0].2.len()), (id, 0, 1));
    }

    #[test]
    fn shmem_goes_with_its_last_mapper_and_transient_files_with_their_mappings() {
        let mut phys = PhysMem::new(32).unwrap();
        let mut cache = PageCache::default();
        let shm = cache.create_shmem(2);
        cache_page(&mut cache, &mut phys, shm, 0);
        cache.add_mapper(shm); // fork or a split
        cache.drop_mapper(shm, &mut phys);
        assert!(cache.get(shm).is_some());
        cache.drop_mapper(shm, &mut phys);
        assert!(cache.get(shm).is_none());
        let exe = cache.create_transient_file("/usr/bin/a.out", 4096);
        cache.add_mapper(exe);
        cache.drop_mapper(exe, &mut phys);
        assert!(cache.get(exe).is_none(), "no handle: the last unmapping frees it");
        assert_eq!(phys.frames_free(), phys.frames_total());
    }
}
