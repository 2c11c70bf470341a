//! The page cache: objects (shmem today; files later) whose pages are keyed
//! by (object, page index). The cache holds one reference on every page it
//! caches; an object lives while a VMA maps it.

use crate::phys::{Pfn, PhysMem};
use std::collections::HashMap;

pub type ObjectId = u32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// Anonymous shared memory (MAP_SHARED|MAP_ANONYMOUS): a file with no name.
    Shmem,
}

pub struct CacheObject {
    pub kind: ObjectKind,
    pub size_pages: u64,
    pages: HashMap<u64, Pfn>,
    /// VMAs (in every address space) that map this object.
    mappers: u32,
}

impl CacheObject {
    pub fn cached_pages(&self) -> usize {
        self.pages.len()
    }
}

#[derive(Default)]
pub struct PageCache {
    objects: Vec<Option<CacheObject>>,
    free_ids: Vec<ObjectId>,
}

impl PageCache {
    /// A new object with one mapper (the VMA being created).
    pub fn create(&mut self, kind: ObjectKind, size_pages: u64) -> ObjectId {
        let obj = CacheObject {
            kind,
            size_pages,
            pages: HashMap::new(),
            mappers: 1,
        };
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

    pub fn object(&self, id: ObjectId) -> &CacheObject {
        self.objects[id as usize]
            .as_ref()
            .expect("page cache object in use")
    }

    fn object_mut(&mut self, id: ObjectId) -> &mut CacheObject {
        self.objects[id as usize]
            .as_mut()
            .expect("page cache object in use")
    }

    pub fn add_mapper(&mut self, id: ObjectId) {
        self.object_mut(id).mappers += 1;
    }

    /// One VMA stopped mapping the object; the last one frees it and drops
    /// the cache's reference on each of its pages.
    pub fn drop_mapper(&mut self, id: ObjectId, phys: &mut PhysMem) {
        let obj = self.object_mut(id);
        obj.mappers -= 1;
        if obj.mappers == 0 {
            let obj = self.objects[id as usize].take().expect("object present");
            for (_, pfn) in obj.pages {
                phys.put_frame(pfn);
            }
            self.free_ids.push(id);
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

    /// (id, mappers, pages) of every live object, for the invariant check.
    pub fn live(&self) -> impl Iterator<Item = (ObjectId, u32, Vec<Pfn>)> + '_ {
        self.objects.iter().enumerate().filter_map(|(id, o)| {
            o.as_ref().map(|o| {
                (
                    id as ObjectId,
                    o.mappers,
                    o.pages.values().copied().collect(),
                )
            })
        })
    }
}
