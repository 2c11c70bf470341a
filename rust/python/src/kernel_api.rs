//! `sim.kernel`: the kernel allocators as a kernel module would call them.
//! Thin: each method converts its arguments and calls the core.

use crate::errors::IntoPy;
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::collections::HashMap;
use std::sync::Arc;
use vmsim_core::kalloc::{LiveAllocation, Site};
use vmsim_core::kernel::ReleaseEvent;
use vmsim_core::Simulator;

/// Python release callbacks of kobjects, by kobject address.
pub type Releases = Arc<Mutex<HashMap<u64, Py<PyAny>>>>;

#[pyclass(name = "Kernel", module = "vmsim._core", frozen)]
pub struct PyKernel {
    pub sim: Arc<Simulator>,
    pub releases: Releases,
}

/// Release events as (event, detail) pairs.
pub fn events(events: Vec<ReleaseEvent>) -> Vec<(String, String)> {
    events.into_iter().map(|e| (e.name.to_string(), e.detail)).collect()
}

pub fn live_dicts<'py>(py: Python<'py>, live: Vec<LiveAllocation>) -> PyResult<Vec<Bound<'py, PyDict>>> {
    live.into_iter()
        .map(|a| {
            let d = PyDict::new(py);
            d.set_item("addr", a.addr)?;
            d.set_item("size", a.size)?;
            d.set_item("kind", a.kind)?;
            d.set_item("site", a.site)?;
            Ok(d)
        })
        .collect()
}

#[pymethods]
impl PyKernel {
    /// alloc_pages(order): 2**order contiguous frames; returns their direct-map address.
    fn alloc_pages(&self, order: usize) -> PyResult<u64> {
        self.sim.kernel(|k| k.alloc_pages(order)).py()
    }

    /// __get_free_pages(order): the same, as the address.
    fn __get_free_pages(&self, order: usize) -> PyResult<u64> {
        self.alloc_pages(order)
    }

    fn free_pages(&self, addr: u64, order: usize) -> PyResult<()> {
        self.sim.kernel(|k| k.free_pages(addr, order)).py()
    }

    /// Free blocks per order, like /proc/buddyinfo.
    fn buddyinfo(&self) -> Vec<u64> {
        self.sim.kernel(|k| k.buddyinfo())
    }

    fn kmalloc(&self, size: u64) -> PyResult<u64> {
        self.sim.kernel(|k| k.kmalloc(size, Site::Kmalloc(size))).py()
    }

    /// kzalloc: kmalloc of zeroed memory (contents are not simulated).
    fn kzalloc(&self, size: u64) -> PyResult<u64> {
        self.sim.kernel(|k| k.kmalloc(size, Site::Kzalloc(size))).py()
    }

    fn kmalloc_array(&self, n: u64, size: u64) -> PyResult<u64> {
        self.sim.kernel(|k| k.kmalloc_array(n, size)).py()
    }

    fn kfree(&self, addr: u64) -> PyResult<()> {
        self.sim.kernel(|k| k.kfree(addr)).py()
    }

    /// n kmallocs of `size` bytes in one call: a numpy uint64 array of addresses.
    fn kmalloc_many<'py>(&self, py: Python<'py>, size: u64, n: usize) -> PyResult<Bound<'py, numpy::PyArray1<u64>>> {
        let sim = self.sim.clone();
        let mut out = Vec::with_capacity(n);
        py.detach(|| sim.kernel(|k| k.kmalloc_many(size, n, &mut out))).py()?;
        Ok(numpy::PyArray1::from_vec(py, out))
    }

    /// kfree of every address of a numpy uint64 array (or list), in order.
    fn kfree_many(&self, py: Python<'_>, addrs: Vec<u64>) -> PyResult<()> {
        let sim = self.sim.clone();
        py.detach(|| sim.kernel(|k| k.kfree_many(&addrs))).py()
    }

    /// kmem_cache_create(name, size): returns the cache's id.
    fn kmem_cache_create(&self, name: &str, size: u32) -> PyResult<u32> {
        self.sim.kernel(|k| k.kmem_cache_create(name, size)).py()
    }

    fn kmem_cache_alloc(&self, cache: u32) -> PyResult<u64> {
        self.sim.kernel(|k| k.kmem_cache_alloc(cache)).py()
    }

    fn kmem_cache_free(&self, cache: u32, addr: u64) -> PyResult<()> {
        self.sim.kernel(|k| k.kmem_cache_free(cache, addr)).py()
    }

    fn kmem_cache_destroy(&self, cache: u32) -> PyResult<()> {
        self.sim.kernel(|k| k.kmem_cache_destroy(cache)).py()
    }

    /// Slab caches like /proc/slabinfo: name, active_objs, num_objs, objsize, objperslab, pagesperslab, num_slabs.
    fn slabinfo<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let info = self.sim.kernel(|k| k.slabinfo());
        info.into_iter()
            .map(|s| {
                let d = crate::counters_dict(
                    py,
                    &[
                        ("active_objs", s.active_objs),
                        ("num_objs", s.num_objs),
                        ("objsize", s.objsize as u64),
                        ("objperslab", s.objperslab as u64),
                        ("pagesperslab", s.pagesperslab as u64),
                        ("num_slabs", s.num_slabs),
                    ],
                )?;
                d.set_item("name", s.name)?;
                Ok(d)
            })
            .collect()
    }

    fn vmalloc(&self, size: u64) -> PyResult<u64> {
        self.sim.kernel(|k| k.vmalloc(size, Site::Vmalloc(size))).py()
    }

    fn vzalloc(&self, size: u64) -> PyResult<u64> {
        self.sim.kernel(|k| k.vmalloc(size, Site::Vzalloc(size))).py()
    }

    fn vfree(&self, addr: u64) -> PyResult<()> {
        self.sim.kernel(|k| k.vfree(addr)).py()
    }

    /// vmalloc areas like /proc/vmallocinfo: (start, end, size, pages, physical frames, caller).
    fn vmallocinfo(&self) -> Vec<(u64, u64, u64, usize, Vec<u32>, String)> {
        let areas = self.sim.kernel(|k| k.vmallocinfo());
        areas.into_iter().map(|a| (a.start, a.end, a.size, a.pages.len(), a.pages, a.caller)).collect()
    }

    /// kobject_create(name, parent=None, release=None): a kobject with count 1;
    /// `release(name)` is called when its count reaches zero.
    #[pyo3(signature = (name, parent = None, release = None))]
    fn kobject_create(&self, name: &str, parent: Option<u64>, release: Option<Py<PyAny>>) -> PyResult<u64> {
        let addr = self.sim.kernel(|k| k.kobject_create(name, parent)).py()?;
        let mut r = self.releases.lock();
        r.remove(&addr);
        if let Some(cb) = release {
            r.insert(addr, cb);
        }
        Ok(addr)
    }

    fn kobject_get(&self, addr: u64) -> PyResult<u32> {
        self.sim.kernel(|k| k.kobject_get(addr)).py()
    }

    /// kobject_put: returns the names released (the object, then any parent it let go).
    fn kobject_put(&self, py: Python<'_>, addr: u64) -> PyResult<Vec<String>> {
        // Which addresses the release walk may reach: this one and its parents.
        let chain = self.sim.kernel(|k| k.kobject_ancestry(addr));
        let released = self.sim.kernel(|k| k.kobject_put(addr)).py()?;
        for (&a, name) in chain.iter().zip(&released) {
            let cb = self.releases.lock().remove(&a);
            if let Some(cb) = cb {
                cb.call1(py, (name.as_str(),))?;
            }
        }
        Ok(released)
    }

    /// Refcount of a live kobject.
    fn kobject_refcount(&self, addr: u64) -> Option<u32> {
        self.sim.kernel(|k| k.kobject_refcount(addr))
    }

    /// Totals per allocator, in pages and kB.
    fn meminfo<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let m = self.sim.kernel(|k| k.meminfo());
        let kb = |pages: u64| pages * (vmsim_core::addr::PAGE_SIZE / 1024); // kB, as /proc/meminfo
        crate::counters_dict(
            py,
            &[
                ("MemTotal", kb(m.total)),
                ("MemFree", kb(m.free)),
                ("PageTables", kb(m.page_tables)),
                ("Slab", kb(m.slab)),
                ("VmallocUsed", kb(m.vmalloc)),
                ("AllocPages", kb(m.alloc_pages)),
                ("Committed_AS", kb(m.committed)),
                ("CommitLimit", kb(m.commit_limit)),
            ],
        )
    }

    /// mmgrab on a process's mm_struct (a lazy-TLB reference); returns its address.
    fn mmgrab(&self, process: &crate::PyProcess) -> PyResult<u64> {
        self.sim.mmgrab(process.pid).py()
    }

    /// mmdrop of a reference taken with mmgrab; returns the release events if tracing.
    fn mmdrop(&self, mm_struct: u64) -> PyResult<Vec<(String, String)>> {
        Ok(events(self.sim.mmdrop(mm_struct).py()?))
    }
}
