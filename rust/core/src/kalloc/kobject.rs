//! kobjects: reference-counted objects with a name and a parent. A child
//! holds a reference on its parent; when a count reaches zero the release
//! runs (exactly once), the object's memory is kfree'd, and the reference on
//! the parent is dropped in turn. A released object is kept in a graveyard
//! until its address is reused, so late gets and puts are caught.

use super::{bug, KernelAlloc, LiveAllocation, Site};
use crate::error::Result;
use crate::phys::PhysMem;
use std::collections::HashMap;

/// sizeof(struct kobject) on x86-64, near enough.
const KOBJECT_SIZE: u64 = 64;

#[derive(Debug, Clone)]
pub struct Kobject {
    pub name: String,
    pub refcount: u32,
    pub parent: Option<u64>,
}

#[derive(Default)]
pub struct Kobjects {
    live: HashMap<u64, Kobject>,
    released: HashMap<u64, String>,
}

impl Kobjects {
    pub fn get_obj(&self, addr: u64) -> Option<&Kobject> {
        self.live.get(&addr)
    }

    fn check_live(&self, addr: u64, what: &str) -> Result<()> {
        if self.live.contains_key(&addr) {
            Ok(())
        } else if let Some(name) = self.released.get(&addr) {
            Err(bug(format!("{what} of released kobject {name:?} at {addr:#x} (use after release)")))
        } else {
            Err(bug(format!("{what} of {addr:#x}: not a kobject")))
        }
    }

    pub fn live(&self) -> Vec<LiveAllocation> {
        self.live
            .iter()
            .map(|(&addr, o)| LiveAllocation {
                addr,
                size: KOBJECT_SIZE,
                kind: "kobject",
                site: format!("kobject_create({:?}), refcount {}", o.name, o.refcount),
            })
            .collect()
    }
}

impl KernelAlloc {
    pub fn kobject_create(&mut self, phys: &mut PhysMem, name: &str, parent: Option<u64>) -> Result<u64> {
        if let Some(p) = parent {
            self.kobjects.check_live(p, "kobject_create with parent")?;
        }
        let addr = self.kmalloc(phys, KOBJECT_SIZE, Site::Internal("kobject"))?;
        if let Some(p) = parent {
            self.kobjects.live.get_mut(&p).expect("checked live").refcount += 1;
        }
        self.kobjects.released.remove(&addr);
        self.kobjects.live.insert(addr, Kobject { name: name.to_string(), refcount: 1, parent });
        Ok(addr)
    }

    pub fn kobject_get(&mut self, addr: u64) -> Result<u32> {
        self.kobjects.check_live(addr, "kobject_get")?;
        let o = self.kobjects.live.get_mut(&addr).expect("checked live");
        o.refcount += 1;
        Ok(o.refcount)
    }

    /// Drop a reference; returns the names released, in release order (an
    /// object before the parent its release let go).
    pub fn kobject_put(&mut self, phys: &mut PhysMem, addr: u64) -> Result<Vec<String>> {
        self.kobjects.check_live(addr, "kobject_put")?;
        let mut released = Vec::new();
        let mut next = Some(addr);
        while let Some(a) = next.take() {
            let o = self.kobjects.live.get_mut(&a).expect("a live parent is held");
            o.refcount -= 1;
            if o.refcount > 0 {
                break;
            }
            let o = self.kobjects.live.remove(&a).expect("present");
            self.slab.free(phys, a, None)?; // not kfree: that refuses kobjects
            self.kobjects.released.insert(a, o.name.clone());
            released.push(o.name);
            next = o.parent;
        }
        Ok(released)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn a_child_pins_its_parent_and_release_runs_child_first() {
        let mut phys = PhysMem::new(64).unwrap();
        let mut k = KernelAlloc::new();
        let parent = k.kobject_create(&mut phys, "bus", None).unwrap();
        let child = k.kobject_create(&mut phys, "dev", Some(parent)).unwrap();
        assert_eq!(k.kobjects.get_obj(parent).unwrap().refcount, 2);
        assert_eq!(k.kobject_get(child).unwrap(), 2);
        assert!(k.kobject_put(&mut phys, parent).unwrap().is_empty(), "the child still holds it");
        assert!(k.kobject_put(&mut phys, child).unwrap().is_empty());
        assert_eq!(k.kobject_put(&mut phys, child).unwrap(), ["dev", "bus"]);
        assert!(k.kobjects.live().is_empty());
        assert_eq!(phys.frames_free(), phys.frames_total());
    }

    #[test]
    fn use_after_release_is_a_kernel_bug() {
        let mut phys = PhysMem::new(64).unwrap();
        let mut k = KernelAlloc::new();
        let o = k.kobject_create(&mut phys, "x", None).unwrap();
        k.kobject_put(&mut phys, o).unwrap();
        for result in [k.kobject_get(o).map(|_| ()), k.kobject_put(&mut phys, o).map(|_| ())] {
            assert!(matches!(result, Err(Error::KernelBug(m)) if m.contains("use after release")));
        }
        assert!(matches!(k.kobject_create(&mut phys, "y", Some(12345)), Err(Error::KernelBug(_))));
        assert!(k.kobjects.live().is_empty());
    }
}
