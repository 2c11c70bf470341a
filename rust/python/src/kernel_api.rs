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

/// The kernel's own allocators (`Simulator.kernel`).
///
/// The same allocators the simulation uses: every ``mm_struct`` and
/// ``vm_area_struct`` comes from a slab cache, every page-table page from the
/// buddy allocator. Addresses are kernel virtual addresses (the direct map
/// or the vmalloc area). Misuse (a double free, the wrong order, a put past
/// zero...) raises `KernelBugError` naming the bug and changes nothing.
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
    /// Allocate 2**order contiguous frames from the buddy allocator.
    ///
    /// Parameters
    /// ----------
    /// order : int
    ///     0 to 10.
    ///
    /// Returns
    /// -------
    /// int
    ///     The block's direct-map address.
    ///
    /// Raises
    /// ------
    /// OutOfMemoryError
    ///     No free block of that order, even after draining the per-CPU lists.
    fn alloc_pages(&self, py: Python<'_>, order: &Bound<'_, PyAny>) -> PyResult<u64> {
        let order = args::count(order, "order", 64)? as usize;
        self.call(py, |k| k.alloc_pages(order)).py()
    }

    /// ``__get_free_pages``: the same as `alloc_pages`.
    ///
    /// Parameters
    /// ----------
    /// order : int
    ///     0 to 10.
    ///
    /// Returns
    /// -------
    /// int
    ///     The block's direct-map address.
    fn __get_free_pages(&self, py: Python<'_>, order: &Bound<'_, PyAny>) -> PyResult<u64> {
        self.alloc_pages(py, order)
    }

    /// Give a block back to the buddy allocator.
    ///
    /// Parameters
    /// ----------
    /// addr : int
    ///     The address `alloc_pages` returned.
    /// order : int
    ///     The order it was allocated with.
    fn free_pages(&self, py: Python<'_>, addr: &Bound<'_, PyAny>, order: &Bound<'_, PyAny>) -> PyResult<()> {
        let (addr, order) = (args::address(addr, "addr")?, args::count(order, "order", 64)? as usize);
        self.call(py, |k| k.free_pages(addr, order)).py()
    }

    /// Free blocks per order, as ``/proc/buddyinfo`` shows them.
    ///
    /// Returns
    /// -------
    /// list of int
    ///     Free blocks of order 0, 1, ... 10.
    fn buddyinfo(&self, py: Python<'_>) -> Vec<u64> {
        self.call(py, |k| k.buddyinfo())
    }

    /// Allocate from the kmalloc caches (kmalloc-8 ... kmalloc-8k), or pages above.
    ///
    /// Parameters
    /// ----------
    /// size : int
    ///     Bytes.
    ///
    /// Returns
    /// -------
    /// int
    ///     The object's address.
    fn kmalloc(&self, py: Python<'_>, size: &Bound<'_, PyAny>) -> PyResult<u64> {
        let size = args::size(size, "size")?;
        self.call(py, |k| k.kmalloc(size, Site::Kmalloc(size))).py()
    }

    /// ``kzalloc``: `kmalloc` of zeroed memory (contents are not simulated).
    ///
    /// Parameters
    /// ----------
    /// size : int
    ///     Bytes.
    ///
    /// Returns
    /// -------
    /// int
    ///     The object's address.
    fn kzalloc(&self, py: Python<'_>, size: &Bound<'_, PyAny>) -> PyResult<u64> {
        let size = args::size(size, "size")?;
        self.call(py, |k| k.kmalloc(size, Site::Kzalloc(size))).py()
    }

    /// ``kmalloc_array``: `n` elements of `size` bytes, refused on overflow.
    ///
    /// Parameters
    /// ----------
    /// n : int
    ///     Elements.
    /// size : int
    ///     Bytes per element.
    ///
    /// Returns
    /// -------
    /// int
    ///     The array's address.
    fn kmalloc_array(&self, py: Python<'_>, n: &Bound<'_, PyAny>, size: &Bound<'_, PyAny>) -> PyResult<u64> {
        let (n, size) = (args::count(n, "n", u64::MAX)?, args::size(size, "size")?);
        self.call(py, |k| k.kmalloc_array(n, size)).py()
    }

    /// Free a `kmalloc` allocation.
    ///
    /// Parameters
    /// ----------
    /// addr : int
    ///     The address `kmalloc` returned.
    fn kfree(&self, py: Python<'_>, addr: &Bound<'_, PyAny>) -> PyResult<()> {
        let addr = args::address(addr, "addr")?;
        self.call(py, |k| k.kfree(addr)).py()
    }

    /// `n` kmallocs of `size` bytes in one call.
    ///
    /// Parameters
    /// ----------
    /// size : int
    ///     Bytes per object.
    /// n : int
    ///     Objects.
    ///
    /// Returns
    /// -------
    /// numpy.ndarray of uint64
    ///     Their addresses.
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

    /// `kfree` every address in order.
    ///
    /// Parameters
    /// ----------
    /// addrs : numpy.ndarray of uint64 or sequence of int
    ///     Addresses `kmalloc` returned.
    fn kfree_many(&self, py: Python<'_>, addrs: &Bound<'_, PyAny>) -> PyResult<()> {
        let addrs = args::owned_array::<u64>(addrs, "addrs", "uint64")?;
        self.call(py, |k| k.kfree_many(&addrs)).py()
    }

    /// Create a slab cache.
    ///
    /// Parameters
    /// ----------
    /// name : str
    ///     Its name in `slabinfo`.
    /// size : int
    ///     Object size in bytes.
    ///
    /// Returns
    /// -------
    /// int
    ///     The cache's id.
    fn kmem_cache_create(&self, py: Python<'_>, name: &str, size: &Bound<'_, PyAny>) -> PyResult<u32> {
        let size = args::count(size, "size", u32::MAX as u64)? as u32;
        self.call(py, |k| k.kmem_cache_create(name, size)).py()
    }

    /// Allocate an object from a slab cache.
    ///
    /// Parameters
    /// ----------
    /// cache : int
    ///     The id `kmem_cache_create` returned.
    ///
    /// Returns
    /// -------
    /// int
    ///     The object's address.
    fn kmem_cache_alloc(&self, py: Python<'_>, cache: &Bound<'_, PyAny>) -> PyResult<u64> {
        let cache = args::count(cache, "cache", u32::MAX as u64)? as u32;
        self.call(py, |k| k.kmem_cache_alloc(cache)).py()
    }

    /// Free an object to its slab cache.
    ///
    /// Parameters
    /// ----------
    /// cache : int
    ///     The cache's id.
    /// addr : int
    ///     The object's address.
    fn kmem_cache_free(&self, py: Python<'_>, cache: &Bound<'_, PyAny>, addr: &Bound<'_, PyAny>) -> PyResult<()> {
        let (cache, addr) = (args::count(cache, "cache", u32::MAX as u64)? as u32, args::address(addr, "addr")?);
        self.call(py, |k| k.kmem_cache_free(cache, addr)).py()
    }

    /// Destroy an empty slab cache.
    ///
    /// Parameters
    /// ----------
    /// cache : int
    ///     The cache's id.
    fn kmem_cache_destroy(&self, py: Python<'_>, cache: &Bound<'_, PyAny>) -> PyResult<()> {
        let cache = args::count(cache, "cache", u32::MAX as u64)? as u32;
        self.call(py, |k| k.kmem_cache_destroy(cache)).py()
    }

    /// Slab caches, as ``/proc/slabinfo`` shows them.
    ///
    /// Returns
    /// -------
    /// list of dict
    ///     ``name``, ``active_objs``, ``num_objs``, ``objsize``, ``objperslab``,
    ///     ``pagesperslab``, ``num_slabs`` per cache.
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

    /// Allocate virtually contiguous memory from scattered frames.
    ///
    /// Parameters
    /// ----------
    /// size : int
    ///     Bytes (rounded up to pages; a guard page follows the area).
    ///
    /// Returns
    /// -------
    /// int
    ///     The area's address in the vmalloc range.
    fn vmalloc(&self, py: Python<'_>, size: &Bound<'_, PyAny>) -> PyResult<u64> {
        let size = args::size(size, "size")?;
        self.call(py, |k| k.vmalloc(size, Site::Vmalloc(size))).py()
    }

    /// ``vzalloc``: `vmalloc` of zeroed memory (contents are not simulated).
    ///
    /// Parameters
    /// ----------
    /// size : int
    ///     Bytes.
    ///
    /// Returns
    /// -------
    /// int
    ///     The area's address.
    fn vzalloc(&self, py: Python<'_>, size: &Bound<'_, PyAny>) -> PyResult<u64> {
        let size = args::size(size, "size")?;
        self.call(py, |k| k.vmalloc(size, Site::Vzalloc(size))).py()
    }

    /// Free a `vmalloc` area.
    ///
    /// Parameters
    /// ----------
    /// addr : int
    ///     The address `vmalloc` returned.
    fn vfree(&self, py: Python<'_>, addr: &Bound<'_, PyAny>) -> PyResult<()> {
        let addr = args::address(addr, "addr")?;
        self.call(py, |k| k.vfree(addr)).py()
    }

    /// The vmalloc areas, as ``/proc/vmallocinfo`` shows them.
    ///
    /// Returns
    /// -------
    /// list of tuple
    ///     ``(start, end, size, pages, frames, caller)`` per area.
    fn vmallocinfo(&self, py: Python<'_>) -> Vec<(u64, u64, u64, usize, Vec<u32>, String)> {
        let areas = self.call(py, |k| k.vmallocinfo());
        areas.into_iter().map(|a| (a.start, a.end, a.size, a.pages.len(), a.pages, a.caller)).collect()
    }

    /// Create a kobject with a reference count of 1.
    ///
    /// Parameters
    /// ----------
    /// name : str
    ///     Its name.
    /// parent : int, optional
    ///     A parent kobject; the child holds a reference on it.
    /// release : callable, optional
    ///     Called with the name when the count reaches zero.
    ///
    /// Returns
    /// -------
    /// int
    ///     The kobject's address.
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

    /// Take a reference on a kobject.
    ///
    /// Parameters
    /// ----------
    /// addr : int
    ///     The kobject's address.
    ///
    /// Returns
    /// -------
    /// int
    ///     The new reference count.
    fn kobject_get(&self, py: Python<'_>, addr: &Bound<'_, PyAny>) -> PyResult<u32> {
        let addr = args::address(addr, "addr")?;
        self.call(py, |k| k.kobject_get(addr)).py()
    }

    /// Drop a reference on a kobject.
    ///
    /// Parameters
    /// ----------
    /// addr : int
    ///     The kobject's address.
    ///
    /// Returns
    /// -------
    /// list of str
    ///     The names released: the object, then any parent it let go.
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

    /// The reference count of a kobject.
    ///
    /// Parameters
    /// ----------
    /// addr : int
    ///     The kobject's address.
    ///
    /// Returns
    /// -------
    /// int or None
    ///     None once it is released.
    fn kobject_refcount(&self, py: Python<'_>, addr: &Bound<'_, PyAny>) -> PyResult<Option<u32>> {
        let addr = args::address(addr, "addr")?;
        Ok(self.call(py, |k| k.kobject_refcount(addr)))
    }

    /// Totals per allocator, the LRU lists and the commit charge, in kB as ``/proc/meminfo``.
    ///
    /// Returns
    /// -------
    /// dict
    ///     ``MemTotal``, ``MemFree``, ``SwapCached``, ``Active``, ``Inactive``,
    ///     ``Active(anon)``, ``Inactive(anon)``, ``Active(file)``, ``Inactive(file)``,
    ///     ``Unevictable``, ``Mlocked`` (the LRU lists: filled under
    ///     ``policy="linux"``), ``Dirty``, ``Writeback``, ``PageTables``, ``Slab``,
    ///     ``VmallocUsed``, ``AllocPages``, ``Committed_AS``, ``CommitLimit``.
    fn meminfo<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let m = self.call(py, |k| {
            k.drain_lru();
            k.meminfo()
        });
        crate::counters_view(py, crate::counters_dict(py, &m.named_kb())?)
    }

    /// Take a lazy-TLB reference (``mmgrab``) on a process's ``mm_struct``.
    ///
    /// Parameters
    /// ----------
    /// process : Process
    ///     A live task of this simulator.
    ///
    /// Returns
    /// -------
    /// int
    ///     The ``mm_struct``'s address, for `mmdrop`.
    fn mmgrab(&self, py: Python<'_>, process: &crate::PyProcess) -> PyResult<u64> {
        if !process.sim.same(&self.sim) {
            return Err(pyo3::exceptions::PyValueError::new_err("the process belongs to another Simulator"));
        }
        let pid = process.pid;
        py.detach(|| self.sim.mmgrab(pid)).py()
    }

    /// Drop a reference taken with `mmgrab`.
    ///
    /// Parameters
    /// ----------
    /// mm_struct : int
    ///     The address `mmgrab` returned.
    ///
    /// Returns
    /// -------
    /// list of tuple of (str, str)
    ///     The release events when tracing, the last drop frees the ``mm_struct``.
    fn mmdrop(&self, py: Python<'_>, mm_struct: &Bound<'_, PyAny>) -> PyResult<Vec<(String, String)>> {
        let mm_struct = args::address(mm_struct, "mm_struct")?;
        Ok(events(py.detach(|| self.sim.mmdrop(mm_struct)).py()?))
    }
}
