//! `sim.kernel`: the kernel allocators as a kernel module would call them.
//! Thin: each method converts its arguments and calls the core.

use crate::args;
use crate::errors::IntoPy;
use crate::simref::SimRef;
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::collections::HashMap;
use std::sync::Arc;
use vmsim_core::kalloc::{LiveAllocation, Site};
use vmsim_core::kernel::{Kernel, ReleaseEvent};

/// Python release callbacks of kobjects, by kobject address.
pub type Releases = Arc<Mutex<HashMap<u64, Py<PyAny>>>>;

#[pyclass(name = "Kernel", module = "vmsim._core", frozen)]
pub struct PyKernel {
    pub sim: SimRef,
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

impl PyKernel {
    /// Run `f` on the kernel with the GIL released (it may wait for a lock).
    fn call<T: Send>(&self, py: Python<'_>, f: impl FnOnce(&mut Kernel) -> T + Send) -> T {
        py.detach(|| self.sim.kernel(f))
    }
}

#[pymethods]
impl PyKernel {
    /// alloc_pages(order): 2**order contiguous frames; returns their direct-map address.
    fn alloc_pages(&self, py: Python<'_>, order: &Bound<'_, PyAny>) -> PyResult<u64> {
        let order = args::count(order, "order", 64)? as usize;
        self.call(py, |k| k.alloc_pages(order)).py()
    }

    /// __get_free_pages(order): the same, as the address.
    fn __get_free_pages(&self, py: Python<'_>, order: &Bound<'_, PyAny>) -> PyResult<u64> {
        self.alloc_pages(py, order)
    }

    fn free_pages(&self, py: Python<'_>, addr: &Bound<'_, PyAny>, order: &Bound<'_, PyAny>) -> PyResult<()> {
        let (addr, order) = (args::address(addr, "addr")?, args::count(order, "order", 64)? as usize);
        self.call(py, |k| k.free_pages(addr, order)).py()
    }

    /// Free blocks per order, like /proc/buddyinfo.
    fn buddyinfo(&self, py: Python<'_>) -> Vec<u64> {
        self.call(py, |k| k.buddyinfo())
    }

    fn kmalloc(&self, py: Python<'_>, size: &Bound<'_, PyAny>) -> PyResult<u64> {
        let size = args::size(size, "size")?;
        self.call(py, |k| k.kmalloc(size, Site::Kmalloc(size))).py()
    }

    /// kzalloc: kmalloc of zeroed memory (contents are not simulated).
    fn kzalloc(&self, py: Python<'_>, size: &Bound<'_, PyAny>) -> PyResult<u64> {
        let size = args::size(size, "size")?;
        self.call(py, |k| k.kmalloc(size, Site::Kzalloc(size))).py()
    }

    fn kmalloc_array(&self, py: Python<'_>, n: &Bound<'_, PyAny>, size: &Bound<'_, PyAny>) -> PyResult<u64> {
        let (n, size) = (args::count(n, "n", u64::MAX)?, args::size(size, "size")?);
        self.call(py, |k| k.kmalloc_array(n, size)).py()
    }

    fn kfree(&self, py: Python<'_>, addr: &Bound<'_, PyAny>) -> PyResult<()> {
        let addr = args::address(addr, "addr")?;
        self.call(py, |k| k.kfree(addr)).py()
    }

    /// n kmallocs of `size` bytes in one call: a numpy uint64 array of addresses.
    fn kmalloc_many<'py>(
        &self,
        py: Python<'py>,
        size: &Bound<'py, PyAny>,
        n: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, numpy::PyArray1<u64>>> {
        let (size, n) = (args::size(size, "size")?, args::count(n, "n", u64::MAX)?);
        let out = self.call(py, |k| k.kmalloc_many(size, n)).py()?;
        Ok(numpy::PyArray1::from_vec(py, out))
    }

    /// kfree of every address of a numpy uint64 array (or list), in order.
    fn kfree_many(&self, py: Python<'_>, addrs: &Bound<'_, PyAny>) -> PyResult<()> {
        let addrs = args::owned_array::<u64>(addrs, "addrs", "uint64")?;
        self.call(py, |k| k.kfree_many(&addrs)).py()
    }

    /// kmem_cache_create(name, size): returns the cache's id.
    fn kmem_cache_create(&self, py: Python<'_>, name: &str, size: &Bound<'_, PyAny>) -> PyResult<u32> {
        let size = args::count(size, "size", u32::MAX as u64)? as u32;
        self.call(py, |k| k.kmem_cache_create(name, size)).py()
    }

    fn kmem_cache_alloc(&self, py: Python<'_>, cache: &Bound<'_, PyAny>) -> PyResult<u64> {
        let cache = args::count(cache, "cache", u32::MAX as u64)? as u32;
        self.call(py, |k| k.kmem_cache_alloc(cache)).py()
    }

    fn kmem_cache_free(&self, py: Python<'_>, cache: &Bound<'_, PyAny>, addr: &Bound<'_, PyAny>) -> PyResult<()> {
        let (cache, addr) = (args::count(cache, "cache", u32::MAX as u64)? as u32, args::address(addr, "addr")?);
        self.call(py, |k| k.kmem_cache_free(cache, addr)).py()
    }

    fn kmem_cache_destroy(&self, py: Python<'_>, cache: &Bound<'_, PyAny>) -> PyResult<()> {
        let cache = args::count(cache, "cache", u32::MAX as u64)? as u32;
        self.call(py, |k| k.kmem_cache_destroy(cache)).py()
    }

    /// Slab caches like /proc/slabinfo: name, active_objs, num_objs, objsize, objperslab, pagesperslab, num_slabs.
    fn slabinfo<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let info = self.call(py, |k| k.slabinfo());
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

    fn vmalloc(&self, py: Python<'_>, size: &Bound<'_, PyAny>) -> PyResult<u64> {
        let size = args::size(size, "size")?;
        self.call(py, |k| k.vmalloc(size, Site::Vmalloc(size))).py()
    }

    fn vzalloc(&self, py: Python<'_>, size: &Bound<'_, PyAny>) -> PyResult<u64> {
        let size = args::size(size, "size")?;
        self.call(py, |k| k.vmalloc(size, Site::Vzalloc(size))).py()
    }

    fn vfree(&self, py: Python<'_>, addr: &Bound<'_, PyAny>) -> PyResult<()> {
        let addr = args::address(addr, "addr")?;
        self.call(py, |k| k.vfree(addr)).py()
    }

    /// vmalloc areas like /proc/vmallocinfo: (start, end, size, pages, physical frames, caller).
    fn vmallocinfo(&self, py: Python<'_>) -> Vec<(u64, u64, u64, usize, Vec<u32>, String)> {
        let areas = self.call(py, |k| k.vmallocinfo());
        areas.into_iter().map(|a| (a.start, a.end, a.size, a.pages.len(), a.pages, a.caller)).collect()
    }

    /// kobject_create(name, parent=None, release=None): a kobject with count 1;
    /// `release(name)` is called when its count reaches zero.
    #[pyo3(signature = (name, parent = None, release = None))]
    fn kobject_create(
        &self,
        py: Python<'_>,
        name: &str,
        parent: Option<&Bound<'_, PyAny>>,
        release: Option<Py<PyAny>>,
    ) -> PyResult<u64> {
        let parent = parent.map(|p| args::address(p, "parent")).transpose()?;
        let addr = self.call(py, |k| k.kobject_create(name, parent)).py()?;
        // A callback left from an earlier object at this address is dropped
        // after the lock is let go: its __del__ may call back into vmsim.
        let stale = {
            let mut r = self.releases.lock();
            let stale = r.remove(&addr);
            if let Some(cb) = release {
                r.insert(addr, cb);
            }
            stale
        };
        drop(stale);
        Ok(addr)
    }

    fn kobject_get(&self, py: Python<'_>, addr: &Bound<'_, PyAny>) -> PyResult<u32> {
        let addr = args::address(addr, "addr")?;
        self.call(py, |k| k.kobject_get(addr)).py()
    }

    /// kobject_put: returns the names released (the object, then any parent it let go).
    fn kobject_put(&self, py: Python<'_>, addr: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
        let addr = args::address(addr, "addr")?;
        // Which addresses the release walk may reach: this one and its parents.
        let (chain, released) = self.call(py, |k| (k.kobject_ancestry(addr), k.kobject_put(addr)));
        let released = released.py()?;
        // Callbacks run after every simulator lock is released.
        for (&a, name) in chain.iter().zip(&released) {
            let cb = self.releases.lock().remove(&a);
            if let Some(cb) = cb {
                cb.call1(py, (name.as_str(),))?;
            }
        }
        Ok(released)
    }

    /// Refcount of a live kobject.
    fn kobject_refcount(&self, py: Python<'_>, addr: &Bound<'_, PyAny>) -> PyResult<Option<u32>> {
        let addr = args::address(addr, "addr")?;
        Ok(self.call(py, |k| k.kobject_refcount(addr)))
    }

    /// Totals per allocator and the commit charge, in kB as /proc/meminfo shows them.
    fn meminfo<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let m = self.call(py, |k| k.meminfo());
        let kb = |pages: u64| pages * (vmsim_core::addr::PAGE_SIZE / 1024);
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
    fn mmgrab(&self, py: Python<'_>, process: &crate::PyProcess) -> PyResult<u64> {
        if !process.sim.same(&self.sim) {
            return Err(pyo3::exceptions::PyValueError::new_err("the process belongs to another Simulator"));
        }
        let pid = process.pid;
        py.detach(|| self.sim.mmgrab(pid)).py()
    }

    /// mmdrop of a reference taken with mmgrab; returns its release events if tracing.
    fn mmdrop(&self, py: Python<'_>, mm_struct: &Bound<'_, PyAny>) -> PyResult<Vec<(String, String)>> {
        let mm_struct = args::address(mm_struct, "mm_struct")?;
        Ok(events(py.detach(|| self.sim.mmdrop(mm_struct)).py()?))
    }
}
