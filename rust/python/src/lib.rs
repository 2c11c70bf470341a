//! vmsim._core: thin PyO3 bindings over vmsim-core. Argument conversion and
//! error mapping only; every decision is made in the core.

mod args;
mod cgroup_api;
mod errors;
mod kernel_api;
mod mrc_api;
mod simref;

use errors::{to_py, IntoPy, InvariantError, KernelBugError, OutOfMemoryError, ProcessExitedError, VmsimError};
use kernel_api::{PyKernel, Releases};
use numpy::{PyArray1, PyArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString};
use simref::SimRef;
use vmsim_core::reclaim::memcg::CgId;
use vmsim_core::reclaim::mglru::{GenInfo, TierStat};
use vmsim_core::{units, Access, Advice, IndexKind, LayoutKind, MmapArgs, Ops, Outcome, Prot, SimConfig, Simulator};

/// A dict of named counters.
pub(crate) fn counters_dict<'py>(py: Python<'py>, items: &[(&str, u64)]) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (name, value) in items {
        d.set_item(*name, *value)?;
    }
    Ok(d)
}

/// The Python-side `vmsim.Outcome` enum member for a code.
fn outcome_obj(py: Python<'_>, outcome: Outcome) -> PyResult<Py<PyAny>> {
    static OUTCOME: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    Ok(package_attr(py, &OUTCOME, "vmsim.outcome", "Outcome")?.call1((outcome as u8,))?.unbind())
}

/// An attribute (a class, a function) of the Python package, imported once.
fn package_attr<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyAny>>,
    module: &str,
    name: &str,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(cell.get_or_try_init(py, || py.import(module)?.getattr(name).map(Bound::unbind))?.bind(py).clone())
}

/// `obj` as an HTML table for Jupyter, drawn by `vmsim.display.html` (Python).
fn html_view(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    static HTML: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    package_attr(obj.py(), &HTML, "vmsim.display", "html")?.call1((obj,))?.extract()
}

/// Counters as `vmsim.counters.Counters`: a dict that Jupyter shows as a table.
pub(crate) fn counters_view<'py>(py: Python<'py>, counters: Bound<'py, PyDict>) -> PyResult<Bound<'py, PyAny>> {
    static COUNTERS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    package_attr(py, &COUNTERS, "vmsim.counters", "Counters")?.call1((counters,))
}

/// Optional arguments, converted only when given.
fn opt<T>(
    value: Option<&Bound<'_, PyAny>>,
    convert: impl FnOnce(&Bound<'_, PyAny>) -> PyResult<T>,
) -> PyResult<Option<T>> {
    value.map(convert).transpose()
}

/// A simulated machine: physical memory, a kernel, and the processes it runs.
///
/// Every size argument takes an int (bytes) or a string such as ``"64KiB"``,
/// ``"256MiB"`` or ``"1GiB"``. Reclaim runs when `swap`, `policy` or
/// `resident_limit` is given; without them running out of frames is the
/// ``OOM`` outcome.
///
/// Parameters
/// ----------
/// memory : int or str, optional
///     Physical memory (default 1 GiB), managed by a buddy allocator.
/// vma_index : str, optional
///     The structure that indexes each address space's VMAs: one of
///     `vmsim.vma_indexes()` (default ``"maple"``, as Linux 6.x).
/// stack_rlimit : int or str, optional
///     RLIMIT_STACK: how far the main stack may grow (default 8 MiB).
/// stack_guard_gap : int or str, optional
///     The gap kept below a stack, as Linux's ``stack_guard_gap`` (default 1 MiB).
/// max_map_count : int, optional
///     ``vm.max_map_count``: at most this many VMAs per process (default 65530).
/// memlock_rlimit : int or str, optional
///     RLIMIT_MEMLOCK: how much a process may mlock (default 8 MiB; 0 refuses
///     mlock with EPERM). Processes are unprivileged (no CAP_IPC_LOCK).
/// fault_around_bytes : int or str, optional
///     How much a read fault on a file maps around itself from the page cache
///     (default 64 KiB; ``"4KiB"`` turns fault-around off).
/// read_ahead_kb : int, optional
///     The block device's ``read_ahead_kb``: the readahead window of file
///     faults, in KiB (default 128, Linux's default; 0 turns readahead off).
/// swap : int or str, optional
///     Swap space; anonymous pages are swapped out under memory pressure.
/// policy : str, optional
///     The replacement policy: one of `vmsim.policies()`.
/// resident_limit : int, optional
///     At most this many resident user pages (a memory-cgroup-like cap).
/// swappiness : int, optional
///     ``vm.swappiness``, 0..200 (default 60): how readily ``policy="linux"``
///     reclaims anonymous memory against the page cache.
/// min_free_kbytes : int, optional
///     ``vm.min_free_kbytes`` (default: as Linux computes it from the memory
///     size): the min watermark, below which allocations reclaim directly.
/// watermark_scale_factor : int, optional
///     ``vm.watermark_scale_factor``, 1..3000 (default 10, i.e. 0.1% of
///     memory): the gap from min to low and from low to high, where kswapd
///     wakes and where it stops.
/// overcommit : int, optional
///     ``vm.overcommit_memory``: 0 heuristic (default), 1 always, 2 strict.
/// overcommit_ratio : int, optional
///     ``vm.overcommit_ratio`` in percent for mode 2 (default 50).
///
/// Raises
/// ------
/// ValueError
///     A malformed size, an unknown index or policy, a value out of range.
///
/// Examples
/// --------
/// >>> sim = Simulator(memory="64MiB", swap="64MiB", policy="clock")
/// >>> p = sim.spawn(layout="default")
#[pyclass(name = "Simulator", module = "vmsim._core", frozen)]
struct PySimulator {
    sim: SimRef,
    releases: Releases,
}

// Every method that takes a simulator lock releases the GIL first: another
// thread's long batch may hold the lock, and Python must keep running.
#[pymethods]
impl PySimulator {
    #[new]
    #[pyo3(signature = (memory = None, *, vma_index = None, stack_rlimit = None, stack_guard_gap = None, max_map_count = None, memlock_rlimit = None, fault_around_bytes = None, read_ahead_kb = None, swap = None, policy = None, resident_limit = None, overcommit = None, overcommit_ratio = None, swappiness = None, min_free_kbytes = None, watermark_scale_factor = None))]
    #[allow(clippy::too_many_arguments, reason = "one argument per Python keyword")]
    fn new(
        py: Python<'_>,
        memory: Option<&Bound<'_, PyAny>>,
        vma_index: Option<&str>,
        stack_rlimit: Option<&Bound<'_, PyAny>>,
        stack_guard_gap: Option<&Bound<'_, PyAny>>,
        max_map_count: Option<&Bound<'_, PyAny>>,
        memlock_rlimit: Option<&Bound<'_, PyAny>>,
        fault_around_bytes: Option<&Bound<'_, PyAny>>,
        read_ahead_kb: Option<&Bound<'_, PyAny>>,
        swap: Option<&Bound<'_, PyAny>>,
        policy: Option<&str>,
        resident_limit: Option<&Bound<'_, PyAny>>,
        overcommit: Option<&Bound<'_, PyAny>>,
        overcommit_ratio: Option<&Bound<'_, PyAny>>,
        swappiness: Option<&Bound<'_, PyAny>>,
        min_free_kbytes: Option<&Bound<'_, PyAny>>,
        watermark_scale_factor: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let defaults = SimConfig::default();
        let linux = vmsim_core::reclaim::LinuxKnobs {
            swappiness: opt(swappiness, |v| args::count(v, "swappiness", 200))?
                .map_or(defaults.linux.swappiness, |v| v as u32),
            min_free_kbytes: opt(min_free_kbytes, |v| args::count(v, "min_free_kbytes", u64::MAX))?,
            watermark_scale_factor: opt(watermark_scale_factor, |v| args::count(v, "watermark_scale_factor", 3000))?
                .unwrap_or(defaults.linux.watermark_scale_factor),
        };
        let mut cfg = SimConfig {
            memory: opt(memory, |m| args::size(m, "memory"))?.unwrap_or(defaults.memory),
            swap: opt(swap, |s| args::size(s, "swap"))?.unwrap_or(0),
            policy: policy.map(vmsim_core::reclaim::PolicyKind::parse).transpose().py()?,
            resident_limit: opt(resident_limit, |r| args::count(r, "resident_limit", u64::MAX))?,
            overcommit: vmsim_core::kernel::Overcommit::new(
                opt(overcommit, |m| args::count(m, "overcommit", 2))?.unwrap_or(0) as u32,
                opt(overcommit_ratio, |r| args::count(r, "overcommit_ratio", 100_000))?.unwrap_or(50),
            )
            .py()?,
            read_ahead_kb: opt(read_ahead_kb, |r| args::count(r, "read_ahead_kb", u64::MAX))?
                .unwrap_or(defaults.read_ahead_kb),
            linux,
            ..defaults
        };
        if let Some(name) = vma_index {
            cfg.mm.index = IndexKind::parse(name).py()?;
        }
        if let Some(r) = opt(stack_rlimit, |r| args::size(r, "stack_rlimit"))? {
            cfg.mm.stack_rlimit = r;
        }
        if let Some(g) = opt(stack_guard_gap, |g| args::size(g, "stack_guard_gap"))? {
            cfg.mm.stack_guard_gap = g;
        }
        if let Some(n) = opt(max_map_count, |n| args::count(n, "max_map_count", u32::MAX as u64))? {
            cfg.mm.max_map_count = n as usize;
        }
        if let Some(r) = opt(memlock_rlimit, |r| args::size(r, "memlock_rlimit"))? {
            cfg.mm.memlock_rlimit = r;
        }
        // Building the frame table of a large memory takes a while: without the GIL.
        let sim = py.detach(|| Simulator::new(cfg)).py()?;
        if let Some(f) = opt(fault_around_bytes, |f| args::size(f, "fault_around_bytes"))? {
            sim.set_fault_around_bytes(f).py()?;
        }
        Ok(PySimulator { sim: SimRef::new(sim), releases: Releases::default() })
    }

    /// Create a regular file, for ``Process.mmap(file=...)``.
    ///
    /// Parameters
    /// ----------
    /// size : int or str
    ///     The file's size in bytes (int or a string such as ``"64KiB"``).
    /// name : str, optional
    ///     Its path, shown in ``maps()`` (default ``"/tmp/vmsim-file"``).
    /// read_ahead_kb : int, optional
    ///     The readahead window of this file's device in KiB (default: the
    ///     simulator's `read_ahead_kb`).
    ///
    /// Returns
    /// -------
    /// File
    ///     A handle; the file goes once no handle and no mapping holds it.
    #[pyo3(signature = (size, name = None, *, read_ahead_kb = None))]
    fn create_file(
        &self,
        py: Python<'_>,
        size: &Bound<'_, PyAny>,
        name: Option<String>,
        read_ahead_kb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyFile> {
        let size = args::size(size, "size")?;
        let read_ahead_kb = opt(read_ahead_kb, |r| args::count(r, "read_ahead_kb", u64::MAX))?;
        let name = name.unwrap_or_else(|| vmsim_core::sim::DEFAULT_FILE_NAME.to_string());
        let id = py.detach(|| self.sim.create_file(&name, size)).py()?;
        let file = PyFile { sim: self.sim.clone(), id, name };
        if read_ahead_kb.is_some() {
            py.detach(|| file.sim.file_read_ahead_kb(id, read_ahead_kb)).py()?;
        }
        Ok(file)
    }

    /// Start a new process.
    ///
    /// Parameters
    /// ----------
    /// layout : str, optional
    ///     ``None`` for an empty address space, or ``"default"`` for an ELF-like
    ///     process: text and data of ``/usr/bin/a.out``, a heap (brk, empty until
    ///     it grows), an mmap area below ``mmap_base`` and an 8 MiB-limited stack.
    ///
    /// cgroup : Cgroup, optional
    ///     The memory cgroup it runs in (default: the root).
    ///
    /// Returns
    /// -------
    /// Process
    ///     The new process's first task.
    #[pyo3(signature = (layout = None, *, cgroup = None))]
    fn spawn(&self, py: Python<'_>, layout: Option<&str>, cgroup: Option<&Bound<'_, PyAny>>) -> PyResult<PyProcess> {
        let layout = LayoutKind::parse(layout.unwrap_or("empty")).py()?;
        let cg = cgroup_api::cgroup_arg(&self.sim, cgroup)?;
        let pid = py.detach(|| self.sim.spawn_in(layout, cg)).py()?;
        Ok(PyProcess { sim: self.sim.clone(), pid, stack: None })
    }

    /// The multi-gen LRU's generations, as /sys/kernel/debug/lru_gen lists them.
    ///
    /// Returns
    /// -------
    /// list of dict
    ///     One per generation of every memory cgroup's lruvec, oldest first:
    ///     ``memcg`` (its path), ``seq`` (the generation number), ``anon`` and
    ///     ``file`` (pages in it), and ``tiers``: the refault feedback of
    ///     tiers 0 to 3 as ``lru_gen_full`` shows it, a dict per tier with
    ///     ``anon`` and ``file`` dicts: at the youngest generation the
    ///     controller's averages (``avg_refaulted``, ``avg_total``), at the
    ///     oldest generation of a type the counts since it became the oldest
    ///     (``refaulted``, ``evicted``, ``protected``), elsewhere empty.
    ///
    /// Raises
    /// ------
    /// ValueError
    ///     Under a policy other than ``"mglru"``.
    fn lru_gen<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let gens = py.detach(|| self.sim.lru_gen()).py()?;
        gens.into_iter().map(|(path, g)| generation_dict(py, path, &g)).collect()
    }

    /// Create a memory cgroup (cgroup v2 semantics; needs ``policy="linux"`` or ``"mglru"``).
    ///
    /// Parameters
    /// ----------
    /// name : str
    ///     Its name: one path component, unique among its siblings.
    /// max : int or str, optional
    ///     ``memory.max``: the hard limit. A charge past it reclaims the
    ///     group's own pages; if that cannot make room, the OOM killer kills
    ///     the group's largest process. None or ``"max"``: no limit.
    /// high : int or str, optional
    ///     ``memory.high``: past it the group is reclaimed back under it
    ///     (``events()["high"]``; what stays over counts in `Cgroup.throttled`).
    /// low : int or str, optional
    ///     ``memory.low``: while its usage is within it, reclaim from outside
    ///     (the machine, an ancestor at its limit) leaves it alone unless
    ///     nothing else can go (``events()["low"]``).
    /// swap_max : int or str, optional
    ///     ``memory.swap.max``: at most this much of its memory in swap.
    /// parent : Cgroup, optional
    ///     The group it is made in (default: the root).
    ///
    /// Returns
    /// -------
    /// Cgroup
    ///
    /// Raises
    /// ------
    /// ValueError
    ///     A bad name or size, or a policy other than ``"linux"``.
    /// OSError
    ///     EEXIST when a sibling has the name.
    #[pyo3(signature = (name, *, max = None, high = None, low = None, swap_max = None, parent = None))]
    #[allow(clippy::too_many_arguments, reason = "one argument per Python keyword")]
    fn cgroup(
        &self,
        py: Python<'_>,
        name: &str,
        max: Option<&Bound<'_, PyAny>>,
        high: Option<&Bound<'_, PyAny>>,
        low: Option<&Bound<'_, PyAny>>,
        swap_max: Option<&Bound<'_, PyAny>>,
        parent: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<cgroup_api::PyCgroup> {
        let limits = cgroup_api::limits(max, high, low, swap_max)?;
        let parent = match parent.filter(|p| !p.is_none()) {
            Some(p) => Some(cgroup_api::cgroup_arg(&self.sim, Some(p))?),
            None => None,
        };
        let id = py.detach(|| self.sim.cgroup_create(name, parent, limits)).py()?;
        Ok(cgroup_api::PyCgroup { sim: self.sim.clone(), id })
    }

    /// Machine-wide counters.
    ///
    /// Returns
    /// -------
    /// dict
    ///     Frames (``frames_total``, ``frames_free``, ``frames_used``), kernel pages
    ///     (``pt_pages``, ``slab_pages``, ``kernel_pages``), ``processes``, ``tasks``,
    ///     page-cache ``cache_hits``/``cache_misses``, ``writebacks``,
    ///     ``readahead_pages`` (pages readahead read besides the faulting ones)
    ///     and ``readahead_unused`` (those no fault has mapped: wasted reads while
    ///     they stay unused), swap
    ///     (``swap_total``, ``swap_used``, ``swap_ins``, ``swap_outs``), reclaim
    ///     (``reclaim_scans``, ``evictions``), ``min_flt``/``maj_flt`` of every task
    ///     that ever ran, and ``faults``: accesses per `Outcome` name.
    fn counters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let c = py.detach(|| self.sim.counters());
        let d = counters_dict(py, &c.named())?;
        let faults = counters_dict(py, &c.outcomes_named())?;
        d.set_item("faults", faults)?;
        counters_view(py, d)
    }

    /// The kernel's allocators, as a kernel module would call them.
    ///
    /// Buddy pages, kmalloc and slab caches, vmalloc and kobjects: the same
    /// allocators the simulation takes its own page tables and VMAs from.
    #[getter]
    fn kernel(&self) -> PyKernel {
        PyKernel { sim: self.sim.clone(), releases: self.releases.clone() }
    }

    /// Every kernel allocation still live.
    ///
    /// Returns
    /// -------
    /// list of dict
    ///     ``addr``, ``size``, ``kind`` (the allocator) and ``site`` (the call
    ///     that made it) per allocation.
    fn leak_check<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let live = py.detach(|| self.sim.leak_check());
        kernel_api::live_dicts(py, live)
    }

    /// Record the release route of every teardown from now on.
    ///
    /// Parameters
    /// ----------
    /// on : bool
    ///     Start (True) or stop (False) recording; drain with `release_events`.
    fn trace_release(&self, py: Python<'_>, on: bool) {
        py.detach(|| self.sim.trace_release(on))
    }

    /// The release events recorded since the last call.
    ///
    /// Returns
    /// -------
    /// list of tuple of (str, str)
    ///     ``(event, detail)`` pairs in order, e.g. ``("exit_mmap", "...")``.
    fn release_events(&self, py: Python<'_>) -> Vec<(String, String)> {
        kernel_api::events(py.detach(|| self.sim.release_events()))
    }

    /// Verify every invariant of the simulation.
    ///
    /// Frame reference and map counts against the page tables, VMA index
    /// against the VMA list, free lists, page cache, swap, policy state.
    ///
    /// Raises
    /// ------
    /// InvariantError
    ///     Naming the first invariant that does not hold.
    fn check(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.sim.check()).py()
    }

    /// Ids of the live tasks.
    ///
    /// Returns
    /// -------
    /// list of int
    fn pids(&self, py: Python<'_>) -> Vec<u32> {
        py.detach(|| self.sim.pids())
    }

    /// Physical memory in bytes.
    #[getter]
    fn memory(&self) -> u64 {
        self.sim.config().memory
    }

    /// The name of the VMA index this simulator uses.
    #[getter]
    fn vma_index(&self) -> &'static str {
        self.sim.config().mm.index.name()
    }

    /// The readahead window files get, in KiB (the device's ``read_ahead_kb``).
    #[getter]
    fn read_ahead_kb(&self) -> u64 {
        self.sim.config().read_ahead_kb
    }

    /// Drop caches, as writing to ``/proc/sys/vm/drop_caches``.
    ///
    /// Parameters
    /// ----------
    /// mode : int
    ///     1: the clean page-cache pages of files no process maps; 2: reclaimable
    ///     slab objects (the simulated kernel keeps none); 3: both. Dirty pages stay.
    ///
    /// Returns
    /// -------
    /// int
    ///     Pages dropped.
    fn drop_caches(&self, py: Python<'_>, mode: u32) -> PyResult<u64> {
        py.detach(|| self.sim.drop_caches(mode)).py()
    }

    /// Swap space in bytes (0: none).
    #[getter]
    fn swap(&self) -> u64 {
        self.sim.config().swap
    }

    /// The replacement policy's name, or None when none was given.
    #[getter]
    fn policy(&self) -> Option<&'static str> {
        self.sim.config().policy.map(|p| p.name())
    }

    /// The cap on resident user pages, or None.
    #[getter]
    fn resident_limit(&self) -> Option<u64> {
        self.sim.config().resident_limit
    }

    /// Event counters under the names ``/proc/vmstat`` gives them.
    ///
    /// Returns
    /// -------
    /// dict
    ///     ``nr_free_pages``, ``nr_page_table_pages``, ``nr_slab_unreclaimable``
    ///     (pages), ``pgfault`` (every counted fault, minor and major, as Linux
    ///     counts it), ``pgmajfault``, ``pswpin``, ``pswpout``; and Linux
    ///     reclaim's own (zero under the textbook policies, whose scans and
    ///     evictions ``counters()`` gives): the LRU list sizes
    ///     ``nr_{in,}active_{anon,file}``, ``nr_unevictable``, ``nr_mlock``,
    ///     ``pgscan_kswapd``/``_direct``, ``pgsteal_kswapd``/``_direct``,
    ///     ``pgscan_anon``/``_file``, ``pgsteal_anon``/``_file``, ``pgrefill``,
    ///     ``pgactivate``, ``pgdeactivate``, ``allocstall_normal``,
    ///     ``pageoutrun``, ``kswapd_low_wmark_hit_quickly``,
    ///     ``workingset_refault_{anon,file}``, ``workingset_activate_*``,
    ///     ``workingset_restore_*``, ``workingset_nodereclaim``,
    ///     ``unevictable_pgs_culled``, ``unevictable_pgs_mlocked``,
    ///     ``unevictable_pgs_munlocked``, ``oom_kill``.
    fn vmstat<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let c = py.detach(|| self.sim.counters());
        counters_view(py, counters_dict(py, &c.vmstat_named())?)
    }

    /// The machine's memory in kB, as ``/proc/meminfo``: the same as ``kernel.meminfo()``.
    ///
    /// Returns
    /// -------
    /// dict
    ///     ``MemTotal``, ``MemFree``, the LRU lists (``Active(anon)``,
    ///     ``Inactive(file)``, ``Unevictable``, ``Mlocked`` ...), ``SwapCached``,
    ///     ``Dirty``, ``PageTables``, ``Slab``, ``Committed_AS`` and the rest.
    fn meminfo<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let m = py.detach(|| self.sim.meminfo());
        counters_view(py, counters_dict(py, &m.named_kb())?)
    }

    fn _repr_html_(slf: &Bound<'_, Self>) -> PyResult<String> {
        html_view(slf.as_any())
    }

    /// The configuration, then what runs: swap, policy and limit only when set.
    fn __repr__(&self, py: Python<'_>) -> String {
        let (cfg, c) = (self.sim.config(), py.detach(|| self.sim.counters()));
        let mut text =
            format!("Simulator(memory={:?}, vma_index={:?}", units::format_size(cfg.memory), self.vma_index());
        if cfg.swap > 0 {
            text += &format!(", swap={:?}", units::format_size(cfg.swap));
        }
        if let Some(p) = self.policy() {
            text += &format!(", policy={p:?}");
        }
        if let Some(limit) = cfg.resident_limit {
            text += &format!(", resident_limit={limit}");
        }
        text + &format!(", processes={}, frames_used={}/{})", c.processes, c.frames_used, c.frames_total)
    }
}

/// A task of a simulated process (`Simulator.spawn`, `fork`, `clone_thread`).
///
/// Every method is a system call or an access made by this task; once the
/// task has exited they raise `ProcessExitedError`. Addresses are ints,
/// sizes ints or strings such as ``"64KiB"``; failed system calls raise
/// `OSError` with Linux's errno.
#[pyclass(name = "Process", module = "vmsim._core", frozen)]
pub struct PyProcess {
    sim: SimRef,
    pub pid: u32,
    stack: Option<(u64, u64)>,
}

impl PyProcess {
    /// Convert a batch's addresses and ops (arrays are borrowed, not
    /// copied), then `run(sim, pid, addrs, ops, out)` without the GIL into a
    /// fresh numpy array of outcome codes.
    fn run_batch<'py>(
        &self,
        py: Python<'py>,
        addrs: &Bound<'py, PyAny>,
        ops: Option<&Bound<'py, PyAny>>,
        run: impl FnOnce(&Simulator, u32, &[u64], Ops<'_>, &mut [u8]) -> vmsim_core::Result<()> + Send,
    ) -> PyResult<Bound<'py, PyArray1<u8>>> {
        let addrs = args::Elements::<u64>::from_arg(addrs, "addrs", "uint64")?;
        let codes = match ops {
            Some(o) if o.cast::<PyString>().is_err() && !o.is_instance_of::<pyo3::types::PyInt>() => {
                Some(args::Elements::<u8>::from_arg(o, "ops", "uint8")?)
            }
            _ => None,
        };
        let same = match ops {
            Some(o) if codes.is_none() => args::access(o)?,
            _ => Access::Read,
        };
        let (addrs, codes) = (addrs.as_slice(), codes.as_ref().map(|c| c.as_slice()));
        // The outcome array is numpy's own (zeroed lazily by the host), filled without the GIL.
        let out = PyArray1::<u8>::zeros(py, addrs.len(), false);
        let mut filling = out.readwrite();
        let codes_out = filling.as_slice_mut().map_err(|e| PyValueError::new_err(e.to_string()))?;
        py.detach(|| run(&self.sim, self.pid, addrs, codes.map_or(Ops::Same(same), Ops::Each), codes_out)).py()?;
        drop(filling);
        Ok(out)
    }

    /// `length` of `what` as a size, then `f(sim, pid, length)` without the GIL.
    fn with_len<T: Send>(
        &self,
        py: Python<'_>,
        length: &Bound<'_, PyAny>,
        f: impl FnOnce(&Simulator, u32, u64) -> vmsim_core::Result<T> + Send,
    ) -> PyResult<T> {
        let length = args::size(length, "length")?;
        py.detach(|| f(&self.sim, self.pid, length)).py()
    }
}

#[pymethods]
impl PyProcess {
    /// This task's id.
    #[getter]
    fn pid(&self) -> u32 {
        self.pid
    }

    /// The thread-group id: the pid of the process this task belongs to.
    #[getter]
    fn tgid(&self, py: Python<'_>) -> PyResult<u32> {
        py.detach(|| self.sim.tgid(self.pid)).py()
    }

    /// Whether this task is still running.
    #[getter]
    fn alive(&self, py: Python<'_>) -> bool {
        py.detach(|| self.sim.is_alive(self.pid))
    }

    /// The memory cgroup the process charges (None: the root).
    #[getter]
    fn cgroup(&self, py: Python<'_>) -> PyResult<Option<cgroup_api::PyCgroup>> {
        let id = py.detach(|| self.sim.cgroup_of(self.pid)).py()?;
        Ok((id != vmsim_core::reclaim::memcg::ROOT).then(|| cgroup_api::PyCgroup { sim: self.sim.clone(), id }))
    }

    /// Move the process (every thread of it) to a memory cgroup.
    ///
    /// As in cgroup v2, what it has charged stays with its old group; the
    /// pages, swap and kernel memory it allocates from now on go to the new one.
    ///
    /// Parameters
    /// ----------
    /// cgroup : Cgroup or None
    ///     The group (None: the root).
    fn move_to(&self, py: Python<'_>, cgroup: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let cg = cgroup_api::cgroup_arg(&self.sim, cgroup)?;
        py.detach(|| self.sim.cgroup_move(self.pid, cg)).py()
    }

    /// ``/proc/pid/oom_score_adj``, -1000..1000 (default 0, inherited on fork).
    ///
    /// Added to the OOM killer's badness as a fraction (per mille) of the
    /// memory it weighs; -1000 means never killed.
    #[getter]
    fn oom_score_adj(&self, py: Python<'_>) -> PyResult<i16> {
        py.detach(|| self.sim.oom_score_adj(self.pid, None)).py()
    }
    #[setter]
    fn set_oom_score_adj(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = value.extract::<i64>().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err("oom_score_adj must be an int between -1000 and 1000")
        })?;
        py.detach(|| self.sim.oom_score_adj(self.pid, Some(v))).py().map(|_| ())
    }

    /// ``(low, high)`` of the stack `clone_thread` mapped for this thread, else None.
    #[getter]
    fn thread_stack(&self) -> Option<(u64, u64)> {
        self.stack
    }

    /// Map memory, as mmap(2).
    ///
    /// Parameters
    /// ----------
    /// length : int or str
    ///     Bytes to map (rounded up to whole pages).
    /// prot : str, default "rw"
    ///     Any of ``r``, ``w``, ``x`` (e.g. ``"rw"``), or ``"none"``.
    /// flags : str, optional
    ///     ``|``-separated words: ``private`` or ``shared``, ``anonymous``,
    ///     ``growsdown``, ``noreserve``, ``populate`` (MAP_POPULATE: the pages are
    ///     faulted in, and counted, before mmap returns: a write fault in a private
    ///     writable mapping, else a read fault); ``stack`` is accepted and changes
    ///     nothing. Default ``"private|anonymous"``, or ``"private"`` with a file.
    /// addr : int, optional
    ///     A hint (or the exact address with `fixed`).
    /// fixed : bool, default False
    ///     MAP_FIXED: map exactly at `addr`, replacing what is there.
    /// fixed_noreplace : bool, default False
    ///     MAP_FIXED_NOREPLACE: map exactly at `addr`, or fail with EEXIST.
    /// file : File, optional
    ///     Map this file (of the same simulator).
    /// offset : int, optional
    ///     Offset into `file`, a multiple of the page size.
    ///
    /// Returns
    /// -------
    /// int
    ///     The start address of the mapping.
    ///
    /// Raises
    /// ------
    /// OSError
    ///     ENOMEM, EINVAL, EEXIST... as Linux returns them.
    #[pyo3(signature = (length, prot = "rw", flags = None, addr = None, *, fixed = false, fixed_noreplace = false, file = None, offset = None))]
    #[allow(clippy::too_many_arguments, reason = "one argument per Python keyword")]
    fn mmap(
        &self,
        py: Python<'_>,
        length: &Bound<'_, PyAny>,
        prot: &str,
        flags: Option<&str>,
        addr: Option<&Bound<'_, PyAny>>,
        fixed: bool,
        fixed_noreplace: bool,
        file: Option<PyRef<'_, PyFile>>,
        offset: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        if let Some(f) = &file {
            if !f.sim.same(&self.sim) {
                return Err(PyValueError::new_err(format!("{} belongs to another Simulator", f.__repr__())));
            }
        }
        let args = MmapArgs {
            length: args::size(length, "length")?,
            prot,
            flags,
            addr: opt(addr, |a| args::address(a, "addr"))?,
            fixed,
            fixed_noreplace,
            file: file.map(|f| f.id),
            offset: opt(offset, |o| args::size(o, "offset"))?.unwrap_or(0),
        };
        let request = args.request().py()?;
        py.detach(|| self.sim.mmap(self.pid, request)).py()
    }

    /// Whether mappings cover every 2 MiB region from `first` to `last`.
    ///
    /// Parameters
    /// ----------
    /// first : int
    ///     The lowest address of the span.
    /// last : int
    ///     The highest address of the span.
    ///
    /// Returns
    /// -------
    /// bool
    ///     True when `map_trace_regions` has nothing to do in that span.
    fn trace_span_mapped(&self, py: Python<'_>, first: &Bound<'_, PyAny>, last: &Bound<'_, PyAny>) -> PyResult<bool> {
        let (first, last) = (args::address(first, "first")?, args::address(last, "last")?);
        py.detach(|| self.sim.trace_span_mapped(self.pid, first, last.max(first))).py()
    }

    /// Map the regions a raw address trace touches, for replaying it.
    ///
    /// Parameters
    /// ----------
    /// addrs : numpy.ndarray of uint64 or sequence of int
    ///     The trace's addresses.
    ///
    /// Returns
    /// -------
    /// int
    ///     How many 2 MiB regions were mapped (private anonymous, rwx): those
    ///     the addresses touch that no mapping overlaps yet.
    fn map_trace_regions(&self, py: Python<'_>, addrs: &Bound<'_, PyAny>) -> PyResult<u64> {
        let addrs = args::Elements::<u64>::from_arg(addrs, "addrs", "uint64")?;
        let addrs = addrs.as_slice();
        py.detach(|| self.sim.map_trace_regions(self.pid, addrs)).py()
    }

    /// Write back the dirty pages of shared file mappings in a range, as msync(2).
    ///
    /// Parameters
    /// ----------
    /// addr : int
    ///     Start of the range, page aligned.
    /// length : int or str
    ///     Bytes in the range.
    /// flags : str, default "sync"
    ///     ``"sync"`` (MS_SYNC: write back now, the pages clean and write-protected
    ///     again), ``"async"`` (MS_ASYNC: nothing, as Linux since 2.6.19), either
    ///     with ``"|invalidate"`` (EBUSY on mlocked memory).
    ///
    /// Returns
    /// -------
    /// int
    ///     How many pages were written back.
    #[pyo3(signature = (addr, length, flags = "sync"))]
    fn msync(&self, py: Python<'_>, addr: &Bound<'_, PyAny>, length: &Bound<'_, PyAny>, flags: &str) -> PyResult<u64> {
        let (addr, how) = (args::address(addr, "addr")?, vmsim_core::mm::Msync::parse(flags).py()?);
        self.with_len(py, length, |sim, pid, len| sim.msync(pid, addr, len, how))
    }

    /// Unmap a range, as munmap(2); empty page tables go as ``free_pgtables`` frees them.
    ///
    /// Parameters
    /// ----------
    /// addr : int
    ///     Start of the range, page aligned.
    /// length : int or str
    ///     Bytes in the range.
    fn munmap(&self, py: Python<'_>, addr: &Bound<'_, PyAny>, length: &Bound<'_, PyAny>) -> PyResult<()> {
        let addr = args::address(addr, "addr")?;
        self.with_len(py, length, |sim, pid, len| sim.munmap(pid, addr, len))
    }

    /// Change the protection of a range, as mprotect(2) (splitting and merging VMAs).
    ///
    /// Parameters
    /// ----------
    /// addr : int
    ///     Start of the range, page aligned.
    /// length : int or str
    ///     Bytes in the range.
    /// prot : str
    ///     Any of ``r``, ``w``, ``x``, or ``"none"``.
    fn mprotect(&self, py: Python<'_>, addr: &Bound<'_, PyAny>, length: &Bound<'_, PyAny>, prot: &str) -> PyResult<()> {
        let (addr, prot) = (args::address(addr, "addr")?, Prot::parse(prot).py()?);
        self.with_len(py, length, |sim, pid, len| sim.mprotect(pid, addr, len, prot))
    }

    /// Advise the kernel about a range, as madvise(2).
    ///
    /// Parameters
    /// ----------
    /// addr : int
    ///     Start of the range, page aligned.
    /// length : int or str
    ///     Bytes in the range.
    /// advice : str
    ///     ``"normal"``, ``"sequential"`` (file faults read ahead, not around),
    ///     ``"random"`` (file faults read only their page), ``"willneed"`` (read
    ///     the file pages of the range into the cache now),
    ///     ``"dontfork"``, ``"dofork"``, ``"dontneed"`` (drop the pages: a later
    ///     access faults again, on zeroes for anonymous memory), ``"free"``
    ///     (private anonymous pages mapped once may be discarded by reclaim, no
    ///     swap, until written again; swapped-out ones are dropped now), ``"cold"``
    ///     (their accessed bits cleared; both EINVAL on mlocked memory),
    ///     ``"pageout"`` (pages mapped only here reclaimed now: to swap, or out of
    ///     the page cache), ``"remove"`` (punch a hole in the shared object behind a
    ///     shared writable mapping: its pages there go everywhere, a later access
    ///     finds zeroes; EACCES on other mappings),
    ///     ``"populate_read"`` or ``"populate_write"`` (fault every page in now, as
    ///     a read or a write would, the faults counted; EINVAL where the mapping
    ///     does not allow the access, EFAULT where a file ends, ENOMEM at a hole).
    fn madvise(
        &self,
        py: Python<'_>,
        addr: &Bound<'_, PyAny>,
        length: &Bound<'_, PyAny>,
        advice: &str,
    ) -> PyResult<()> {
        let (addr, advice) = (args::address(addr, "addr")?, Advice::parse(advice).py()?);
        self.with_len(py, length, |sim, pid, len| sim.madvise(pid, addr, len, advice))
    }

    /// Set the program break, as brk(2).
    ///
    /// Parameters
    /// ----------
    /// new_end : int, optional
    ///     The new break; omitted, the current break is returned unchanged.
    ///
    /// Returns
    /// -------
    /// int
    ///     The new break, or the old one if the request was refused.
    #[pyo3(signature = (new_end = None))]
    fn brk(&self, py: Python<'_>, new_end: Option<&Bound<'_, PyAny>>) -> PyResult<u64> {
        let new_end = opt(new_end, |a| args::address(a, "new_end"))?;
        py.detach(|| self.sim.brk(self.pid, new_end)).py()
    }

    /// Make one memory access.
    ///
    /// Parameters
    /// ----------
    /// addr : int
    ///     The virtual address.
    /// op : {"r", "w", "x"} or int, default "r"
    ///     Read, write or instruction fetch (or 0, 1, 2).
    ///
    /// Returns
    /// -------
    /// Outcome
    ///     What happened: a hit, which fault, or which signal.
    #[pyo3(signature = (addr, op = None))]
    fn access(&self, py: Python<'_>, addr: &Bound<'_, PyAny>, op: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
        let (addr, op) = (args::address(addr, "addr")?, opt(op, args::access)?.unwrap_or(Access::Read));
        let outcome = py.detach(|| self.sim.access(self.pid, addr, op)).py()?;
        outcome_obj(py, outcome)
    }

    /// Make one memory access and say why it went the way it did.
    ///
    /// Parameters
    /// ----------
    /// addr : int
    ///     The virtual address.
    /// op : {"r", "w", "x"} or int, default "r"
    ///     Read, write or instruction fetch (or 0, 1, 2).
    ///
    /// Returns
    /// -------
    /// tuple of (Outcome, list of str)
    ///     The outcome and the kernel's steps, one sentence each.
    #[pyo3(signature = (addr, op = None))]
    fn access_traced(
        &self,
        py: Python<'_>,
        addr: &Bound<'_, PyAny>,
        op: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(Py<PyAny>, Vec<String>)> {
        let (addr, op) = (args::address(addr, "addr")?, opt(op, args::access)?.unwrap_or(Access::Read));
        let (outcome, steps) = py.detach(|| self.sim.access_traced(self.pid, addr, op)).py()?;
        Ok((outcome_obj(py, outcome)?, steps))
    }

    /// Make many accesses in one call, without the GIL.
    ///
    /// Contiguous arrays are read in place (do not write to them from another
    /// thread during the call); strided arrays and lists are copied first.
    ///
    /// Parameters
    /// ----------
    /// addrs : numpy.ndarray of uint64 or sequence of int
    ///     The virtual addresses, in order (at most 2**30 a call).
    /// ops : numpy.ndarray of uint8, sequence of int, or {"r", "w", "x"}, default "r"
    ///     One op code per address (0 read, 1 write, 2 exec), or one op for all.
    ///
    /// Returns
    /// -------
    /// numpy.ndarray of uint8
    ///     The `Outcome` code of each access.
    #[pyo3(signature = (addrs, ops = None))]
    fn access_batch<'py>(
        &self,
        py: Python<'py>,
        addrs: &Bound<'py, PyAny>,
        ops: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyArray1<u8>>> {
        self.run_batch(py, addrs, ops, |sim, pid, addrs, ops, out| sim.access_batch(pid, addrs, ops, out))
    }

    /// `access_batch`, sampling the process as it goes: a run's timeline.
    ///
    /// A sample is taken after the first `first` accesses, every `every` accesses
    /// after that, and at the end. The batch runs in pieces between samples, which
    /// changes nothing, except under the ``opt`` policy, whose known future is the
    /// running piece: sample such a batch only at its end (``first=len(addrs)``).
    ///
    /// Parameters
    /// ----------
    /// addrs : numpy.ndarray of uint64 or sequence of int
    ///     The virtual addresses, in order.
    /// ops : numpy.ndarray of uint8, sequence of int, or {"r", "w", "x"}
    ///     One op code per address, or one op for all.
    /// first : int
    ///     Accesses before the first sample (at least 1).
    /// every : int
    ///     Accesses between samples after that (at least 1).
    ///
    /// Returns
    /// -------
    /// tuple of (numpy.ndarray of uint8, list of tuple of (int, int, int))
    ///     The outcome codes, and per sample ``(accesses of the batch so far,
    ///     resident pages of the process, counted faults of the batch so far)``.
    #[pyo3(signature = (addrs, ops, first, every))]
    fn access_batch_sampled<'py>(
        &self,
        py: Python<'py>,
        addrs: &Bound<'py, PyAny>,
        ops: Option<&Bound<'py, PyAny>>,
        first: &Bound<'py, PyAny>,
        every: &Bound<'py, PyAny>,
    ) -> PyResult<SampledBatch<'py>> {
        let steps = (
            args::count(first, "first", u32::MAX as u64)? as usize,
            args::count(every, "every", u32::MAX as u64)? as usize,
        );
        let mut samples = Vec::new();
        let out = self.run_batch(py, addrs, ops, |sim, pid, addrs, ops, out| {
            sim.access_batch_sampled(pid, addrs, ops, out, steps, &mut samples)
        })?;
        Ok((out, samples.iter().map(|s| (s.accesses, s.rss, s.faults)).collect()))
    }

    /// Resize or move a mapping, as mremap(2).
    ///
    /// Shrinking unmaps the tail. Growing extends the mapping in place when the
    /// space after it is free; else, with ``maymove``, the mapping moves to a new
    /// address with its page-table entries (pages and swap entries move, they are
    /// not copied: the moved pages take no fault). ``fixed`` moves it to
    /// `new_addr`, replacing what is there; ``dontunmap`` moves the pages and
    /// leaves the old range mapped and empty.
    ///
    /// Parameters
    /// ----------
    /// old_addr : int
    ///     Start of the range, page aligned.
    /// old_length : int or str
    ///     Bytes of the range, within one mapping.
    /// new_length : int or str
    ///     Its new length in bytes.
    /// flags : str, optional
    ///     ``|``-separated: ``maymove``, ``fixed``, ``dontunmap`` (both need
    ///     ``maymove``; ``dontunmap`` cannot resize).
    /// new_addr : int, optional
    ///     Where ``fixed`` puts the mapping.
    ///
    /// Returns
    /// -------
    /// int
    ///     The mapping's address after the call.
    ///
    /// Raises
    /// ------
    /// OSError
    ///     EINVAL for bad flags, addresses or lengths; EFAULT when the old range
    ///     is not inside one mapping; ENOMEM when it cannot grow in place without
    ///     ``maymove``; EAGAIN past RLIMIT_MEMLOCK for a locked mapping.
    #[pyo3(signature = (old_addr, old_length, new_length, flags = None, new_addr = None))]
    fn mremap(
        &self,
        py: Python<'_>,
        old_addr: &Bound<'_, PyAny>,
        old_length: &Bound<'_, PyAny>,
        new_length: &Bound<'_, PyAny>,
        flags: Option<&str>,
        new_addr: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let req = vmsim_core::mm::Mremap {
            old_addr: args::address(old_addr, "old_addr")?,
            old_len: args::size(old_length, "old_length")?,
            new_len: args::size(new_length, "new_length")?,
            new_addr: opt(new_addr, |a| args::address(a, "new_addr"))?.unwrap_or(0),
            ..Default::default()
        }
        .with_flags(flags.unwrap_or(""))
        .py()?;
        py.detach(|| self.sim.mremap(self.pid, req)).py()
    }

    /// Lock a range in memory, as mlock(2) (``onfault``: mlock2 with MLOCK_ONFAULT).
    ///
    /// The range is rounded out to whole pages, its VMAs get VM_LOCKED, and its
    /// pages are faulted in now (counted, as ``get_user_pages`` faults are: a write
    /// in a private writable mapping, else a read) unless ``onfault``. Locked pages
    /// are never reclaimed. A forked child does not inherit the lock.
    ///
    /// Parameters
    /// ----------
    /// addr : int
    ///     Start of the range (rounded down to its page).
    /// length : int or str
    ///     Bytes in the range.
    /// onfault : bool, default False
    ///     Lock only what faults in later (MLOCK_ONFAULT).
    ///
    /// Raises
    /// ------
    /// OSError
    ///     EPERM when RLIMIT_MEMLOCK is 0, ENOMEM past it or at a hole (or when a
    ///     page cannot be faulted in, as on PROT_NONE), EAGAIN out of memory.
    #[pyo3(signature = (addr, length, *, onfault = false))]
    fn mlock(&self, py: Python<'_>, addr: &Bound<'_, PyAny>, length: &Bound<'_, PyAny>, onfault: bool) -> PyResult<()> {
        let addr = args::address(addr, "addr")?;
        self.with_len(py, length, |sim, pid, len| sim.mlock(pid, addr, len, onfault))
    }

    /// Unlock a range, as munlock(2).
    ///
    /// Parameters
    /// ----------
    /// addr : int
    ///     Start of the range (rounded down to its page).
    /// length : int or str
    ///     Bytes in the range.
    fn munlock(&self, py: Python<'_>, addr: &Bound<'_, PyAny>, length: &Bound<'_, PyAny>) -> PyResult<()> {
        let addr = args::address(addr, "addr")?;
        self.with_len(py, length, |sim, pid, len| sim.munlock(pid, addr, len))
    }

    /// Lock the whole address space, as mlockall(2).
    ///
    /// Parameters
    /// ----------
    /// flags : str
    ///     ``|``-separated: ``current`` (every mapping now; ENOMEM when the
    ///     address space is larger than RLIMIT_MEMLOCK), ``future`` (every later
    ///     mapping, populated as it is made; EAGAIN from mmap past the limit),
    ///     ``onfault`` (populate nothing now).
    fn mlockall(&self, py: Python<'_>, flags: &str) -> PyResult<()> {
        let m = vmsim_core::mm::Mlockall::parse(flags).py()?;
        py.detach(|| self.sim.mlockall(self.pid, m.current, m.future, m.onfault)).py()
    }

    /// Unlock every mapping and forget ``mlockall("future")``, as munlockall(2).
    fn munlockall(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.sim.munlockall(self.pid)).py()
    }

    /// Fork this process, as fork(2).
    ///
    /// VMAs are copied (except ``dontfork`` ones), private pages are shared
    /// write-protected (copy on write), shared memory stays shared.
    ///
    /// Returns
    /// -------
    /// Process
    ///     The child.
    ///
    /// Raises
    /// ------
    /// OSError
    ///     ENOMEM when the copy cannot be charged or allocated.
    fn fork(&self, py: Python<'_>) -> PyResult<PyProcess> {
        let pid = py.detach(|| self.sim.fork(self.pid)).py()?;
        Ok(PyProcess { sim: self.sim.clone(), pid, stack: None })
    }

    /// Start a thread that shares this address space.
    ///
    /// Parameters
    /// ----------
    /// stack_size : int or str, optional
    ///     Size of the pthread-style stack mapped for it, with a guard page
    ///     (default 8 MiB); 0 maps none.
    ///
    /// Returns
    /// -------
    /// Process
    ///     The new task (its `thread_stack` is the stack mapped).
    #[pyo3(signature = (stack_size = None))]
    fn clone_thread(&self, py: Python<'_>, stack_size: Option<&Bound<'_, PyAny>>) -> PyResult<PyProcess> {
        let size = opt(stack_size, |s| args::size(s, "stack_size"))?.unwrap_or(vmsim_core::sim::DEFAULT_THREAD_STACK);
        let (tid, stack) = py.detach(|| self.sim.clone_thread(self.pid, size)).py()?;
        Ok(PyProcess { sim: self.sim.clone(), pid: tid, stack })
    }

    /// This task exits; the address space goes with its last task.
    ///
    /// Parameters
    /// ----------
    /// trace : bool, default False
    ///     Return the release route (``do_exit`` ... ``free_mm``).
    ///
    /// Returns
    /// -------
    /// list of tuple of (str, str) or None
    ///     The release events when `trace` is true.
    #[pyo3(signature = (trace = false))]
    fn exit(&self, py: Python<'_>, trace: bool) -> PyResult<Option<Vec<(String, String)>>> {
        let events = py.detach(|| self.sim.exit_traced(self.pid, trace)).py()?;
        Ok(if trace { Some(kernel_api::events(events)) } else { None })
    }

    /// Every thread of this process exits, as exit_group(2).
    fn exit_group(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.sim.exit_group(self.pid)).py()
    }

    /// Ids of this process's live threads.
    ///
    /// Returns
    /// -------
    /// list of int
    fn threads(&self, py: Python<'_>) -> PyResult<Vec<u32>> {
        py.detach(|| self.sim.threads(self.pid)).py()
    }

    /// Page-table entries of a range, as ``/proc/PID/pagemap`` gives them.
    ///
    /// One 64-bit entry per page: ``PM_PRESENT`` (bit 63) with the frame number in
    /// bits 0-54 (``PM_PFN_MASK``; Linux shows it to root only), ``PM_SWAP`` (bit 62)
    /// with the swap offset from bit 5, ``PM_FILE`` (bit 61: a file or shmem page),
    /// ``PM_MMAP_EXCLUSIVE`` (bit 56: mapped once). The zero page is present with
    /// no other bit; soft-dirty is not modelled.
    ///
    /// Parameters
    /// ----------
    /// addr : int
    ///     Start of the range (rounded down to its page).
    /// length : int or str
    ///     Bytes in the range (rounded up to whole pages).
    ///
    /// Returns
    /// -------
    /// numpy.ndarray of uint64
    ///     One entry per page; 0 where nothing is mapped.
    fn pagemap<'py>(
        &self,
        py: Python<'py>,
        addr: &Bound<'_, PyAny>,
        length: &Bound<'_, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<u64>>> {
        let addr = args::address(addr, "addr")?;
        let entries = self.with_len(py, length, |sim, pid, len| sim.pagemap(pid, addr, len))?;
        Ok(PyArray1::from_vec(py, entries))
    }

    /// What each VMA holds in memory, as ``/proc/PID/smaps`` counts it.
    ///
    /// Rss counts present pages with a page behind them (not the zero page); Pss
    /// shares each page among its mappings; a page mapped once is private, else
    /// shared; dirty when the PTE or the page is; Swap and SwapPss count swap
    /// entries. Locked, LazyFree and AnonHugePages stay 0 (not modelled yet).
    ///
    /// Returns
    /// -------
    /// list of dict
    ///     Per VMA, lowest first: ``start``, ``end``, ``prot``, ``flags``, then the
    ///     fields in kB as Linux prints them: ``Size``, ``KernelPageSize``,
    ///     ``MMUPageSize``, ``Rss``, ``Pss``, ``Pss_Dirty``, ``Shared_Clean``,
    ///     ``Shared_Dirty``, ``Private_Clean``, ``Private_Dirty``, ``Referenced``,
    ///     ``Anonymous``, ``LazyFree``, ``AnonHugePages``, ``Swap``, ``SwapPss``,
    ///     ``Locked``.
    fn smaps<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let records = py.detach(|| self.sim.smaps(self.pid)).py()?;
        records
            .iter()
            .map(|(v, m)| {
                let d = PyDict::new(py);
                d.set_item("start", v.start)?;
                d.set_item("end", v.end)?;
                d.set_item("prot", v.prot.to_string())?;
                d.set_item("flags", v.flag_words())?;
                for field in vmsim_core::smaps::FIELDS {
                    d.set_item(field, m.kb(field))?;
                }
                Ok(d)
            })
            .collect()
    }

    /// ``/proc/PID/smaps`` as text: each VMA's maps line, then its fields in kB.
    ///
    /// Returns
    /// -------
    /// str
    fn smaps_text(&self, py: Python<'_>) -> PyResult<String> {
        py.detach(|| self.sim.smaps_text(self.pid)).py()
    }

    /// ``/proc/PID/smaps_rollup``: the smaps fields summed over every VMA.
    ///
    /// Returns
    /// -------
    /// dict
    ///     ``Rss``, ``Pss``, ``Pss_Dirty``, ``Pss_Anon``, ``Pss_File``,
    ///     ``Pss_Shmem``, ``Shared_Clean``, ``Shared_Dirty``, ``Private_Clean``,
    ///     ``Private_Dirty``, ``Referenced``, ``Anonymous``, ``LazyFree``, ``Swap``,
    ///     ``SwapPss``, ``Locked``, in kB.
    fn smaps_rollup<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let m = py.detach(|| self.sim.smaps_rollup(self.pid)).py()?;
        let fields: Vec<(&str, u64)> = vmsim_core::smaps::ROLLUP_FIELDS.iter().map(|&f| (f, m.kb(f))).collect();
        counters_view(py, counters_dict(py, &fields)?)
    }

    /// The address space in ``/proc/PID/maps`` format.
    ///
    /// Returns
    /// -------
    /// str
    fn maps(&self, py: Python<'_>) -> PyResult<String> {
        py.detach(|| self.sim.maps(self.pid)).py()
    }

    /// The VMAs, lowest first.
    ///
    /// Returns
    /// -------
    /// list of tuple of (int, int, str, str)
    ///     ``(start, end, prot, flags)``, flags like ``"private"`` or
    ///     ``"shared|growsdown"``.
    fn vmas(&self, py: Python<'_>) -> PyResult<Vec<(u64, u64, String, String)>> {
        let vmas = py.detach(|| self.sim.vmas(self.pid)).py()?;
        Ok(vmas.iter().map(|v| (v.start, v.end, v.prot.to_string(), v.flag_words())).collect())
    }

    /// Where the kernel placed this process's areas.
    ///
    /// Returns
    /// -------
    /// dict
    ///     ``start_brk``, ``brk``, ``start_stack`` and ``mmap_base``.
    fn layout<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let l = py.detach(|| self.sim.layout(self.pid)).py()?;
        counters_dict(
            py,
            &[("start_brk", l.start_brk), ("brk", l.brk), ("start_stack", l.start_stack), ("mmap_base", l.mmap_base)],
        )
    }

    /// This process's counters.
    ///
    /// Returns
    /// -------
    /// dict
    ///     ``min_flt``/``maj_flt`` (its own, as getrusage(RUSAGE_SELF)),
    ///     ``cmin_flt``/``cmaj_flt`` (its reaped children's), RSS in pages
    ///     (``rss_anon``, ``rss_file``, ``rss_shmem``), ``swap`` (entries now),
    ///     ``swap_ins``, ``swap_outs``, page-cache ``cache_hits``/``cache_misses``,
    ///     ``pt_pages``, ``vma_count``, ``threads`` and ``locked_vm`` (pages of
    ///     mlocked mappings, VmLck).
    fn counters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let c = py.detach(|| self.sim.process_counters(self.pid)).py()?;
        counters_view(py, counters_dict(py, &c.named())?)
    }

    fn _repr_html_(slf: &Bound<'_, Self>) -> PyResult<String> {
        html_view(slf.as_any())
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let state = if self.alive(py) { "alive" } else { "exited" };
        format!("Process(pid={}, {state})", self.pid)
    }
}

/// A simulated regular file (`Simulator.create_file`).
///
/// Dropping the object closes its handle; the file and its cached pages go
/// once no handle and no mapping holds it.
#[pyclass(name = "File", module = "vmsim._core", frozen)]
pub struct PyFile {
    sim: SimRef,
    pub id: u32,
    name: String,
}

impl PyFile {
    /// A read or write: arguments converted, then `op` without the GIL; the bytes done.
    fn io(
        &self,
        py: Python<'_>,
        offset: &Bound<'_, PyAny>,
        length: &Bound<'_, PyAny>,
        cgroup: Option<&Bound<'_, PyAny>>,
        op: fn(&Simulator, u32, u64, u64, CgId) -> vmsim_core::Result<vmsim_core::filemap::FileIo>,
    ) -> PyResult<u64> {
        let (offset, length) = (args::size(offset, "offset")?, args::size(length, "length")?);
        let cg = cgroup_api::cgroup_arg(&self.sim, cgroup)?;
        Ok(py.detach(|| op(&self.sim, self.id, offset, length, cg)).py()?.bytes)
    }
}

#[pymethods]
impl PyFile {
    /// The file's path.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The file's size in bytes.
    #[getter]
    fn size(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(py.detach(|| self.sim.file_stat(self.id)).py()?.0)
    }

    /// Pages of the file in the page cache.
    #[getter]
    fn cached_pages(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(py.detach(|| self.sim.file_stat(self.id)).py()?.1)
    }

    /// This file's readahead window in KiB (its device's ``read_ahead_kb``).
    #[getter]
    fn read_ahead_kb(&self, py: Python<'_>) -> PyResult<u64> {
        py.detach(|| self.sim.file_read_ahead_kb(self.id, None)).py()
    }

    /// Advise the kernel about the file's use, as posix_fadvise(2).
    ///
    /// Parameters
    /// ----------
    /// offset : int or str
    ///     Start of the range in bytes.
    /// length : int or str
    ///     Bytes in the range; 0 means to the end of the file.
    /// advice : str
    ///     ``"normal"`` (the device's readahead window), ``"sequential"`` (twice
    ///     that window), ``"random"`` (changes read(2) only: page faults follow
    ///     ``madvise(..., "random")``), ``"willneed"`` (read the range into the
    ///     cache now), ``"dontneed"`` (write back its dirty pages and drop those no
    ///     process maps), ``"noreuse"`` (no effect).
    ///
    /// Raises
    /// ------
    /// OSError
    ///     EINVAL for an unknown advice.
    #[pyo3(signature = (offset, length, advice))]
    fn fadvise(
        &self,
        py: Python<'_>,
        offset: &Bound<'_, PyAny>,
        length: &Bound<'_, PyAny>,
        advice: &str,
    ) -> PyResult<()> {
        let (offset, length) = (args::size(offset, "offset")?, args::size(length, "length")?);
        let advice = vmsim_core::readahead::Fadvise::parse(advice).py()?;
        py.detach(|| self.sim.file_fadvise(self.id, offset, length, advice)).py()
    }

    /// Read through the page cache, as read(2) (nothing is mapped, no fault taken).
    ///
    /// Missing pages are read in from the file; every page read is marked
    /// accessed (``folio_mark_accessed``) but the page the file's previous read
    /// ended in, so under ``policy="linux"`` a page read twice is activated,
    /// while one read in small pieces, or twice in a row, is not.
    ///
    /// Parameters
    /// ----------
    /// offset : int or str
    ///     Where the read starts, in bytes.
    /// length : int or str
    ///     Bytes to read.
    /// cgroup : Cgroup, optional
    ///     The memory cgroup of the reading task: the pages read in are
    ///     charged to it (default: the root).
    ///
    /// Returns
    /// -------
    /// int
    ///     Bytes read: short at the end of the file, 0 past it.
    ///
    /// Raises
    /// ------
    /// OSError
    ///     ENOMEM when no memory can be found for the page cache.
    #[pyo3(signature = (offset, length, *, cgroup = None))]
    fn read(
        &self,
        py: Python<'_>,
        offset: &Bound<'_, PyAny>,
        length: &Bound<'_, PyAny>,
        cgroup: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        self.io(py, offset, length, cgroup, Simulator::file_read)
    }

    /// Write through the page cache, as write(2).
    ///
    /// Pages written become dirty (written back when reclaim, ``msync`` or
    /// ``fadvise("dontneed")`` lets them go) but are not marked accessed (Linux's
    /// write_begin does not mark them); a page only partly overwritten is read
    /// in first; the file grows when the write ends past it.
    ///
    /// Parameters
    /// ----------
    /// offset : int or str
    ///     Where the write starts, in bytes.
    /// length : int or str
    ///     Bytes to write.
    /// cgroup : Cgroup, optional
    ///     The memory cgroup of the writing task: new pages are charged to it
    ///     (default: the root).
    ///
    /// Returns
    /// -------
    /// int
    ///     Bytes written.
    ///
    /// Raises
    /// ------
    /// OSError
    ///     ENOMEM when no memory can be found; EFBIG past the largest file (16 TiB).
    #[pyo3(signature = (offset, length, *, cgroup = None))]
    fn write(
        &self,
        py: Python<'_>,
        offset: &Bound<'_, PyAny>,
        length: &Bound<'_, PyAny>,
        cgroup: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        self.io(py, offset, length, cgroup, Simulator::file_write)
    }

    /// Change the file's size, as truncate(2).
    ///
    /// Pages past the new end are unmapped everywhere (a later access there is
    /// SIGBUS) and leave the page cache.
    ///
    /// Parameters
    /// ----------
    /// size : int or str
    ///     The new size in bytes.
    fn truncate(&self, py: Python<'_>, size: &Bound<'_, PyAny>) -> PyResult<()> {
        let size = args::size(size, "size")?;
        py.detach(|| self.sim.file_truncate(self.id, size)).py()
    }

    /// Remove the file's name, as unlink(2).
    ///
    /// Mappings keep it (``maps()`` shows ``(deleted)``); its pages go with the
    /// last mapping and handle.
    fn unlink(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.sim.file_unlink(self.id)).py()
    }

    fn __repr__(&self) -> String {
        format!("File({:?}, id={})", self.name, self.id)
    }
}

impl Drop for PyFile {
    fn drop(&mut self) {
        // Closing takes the simulator's locks: wait for them without the GIL.
        let (sim, id) = (&self.sim, self.id);
        Python::attach(|py| py.detach(|| sim.file_close(id))).ok();
    }
}

/// One generation of `sim.lru_gen()` as a dict (see its docstring).
fn generation_dict<'py>(py: Python<'py>, memcg: String, g: &GenInfo) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("memcg", memcg)?;
    d.set_item("seq", g.seq)?;
    d.set_item("anon", g.anon)?;
    d.set_item("file", g.file)?;
    let tiers = g
        .tiers
        .iter()
        .map(|[anon, file]| {
            let t = PyDict::new(py);
            t.set_item("anon", tier_stat_dict(py, anon)?)?;
            t.set_item("file", tier_stat_dict(py, file)?)?;
            Ok(t)
        })
        .collect::<PyResult<Vec<_>>>()?;
    d.set_item("tiers", tiers)?;
    Ok(d)
}

/// A tier's counters under the names lru_gen_full's columns stand for.
fn tier_stat_dict<'py>(py: Python<'py>, stat: &TierStat) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    match *stat {
        TierStat::None => {}
        TierStat::Average { refaulted, total } => {
            d.set_item("avg_refaulted", refaulted)?;
            d.set_item("avg_total", total)?;
        }
        TierStat::Current { refaulted, evicted, protected } => {
            d.set_item("refaulted", refaulted)?;
            d.set_item("evicted", evicted)?;
            d.set_item("protected", protected)?;
        }
    }
    Ok(d)
}

/// Count the accesses of each outcome in an `access_batch` result.
///
/// Parameters
/// ----------
/// codes : numpy.ndarray of uint8
///     Outcome codes.
///
/// Returns
/// -------
/// list of int
///     Accesses per outcome, indexed by code (codes past the table are not
///     counted).
#[pyfunction]
fn count_outcomes(py: Python<'_>, codes: &Bound<'_, PyAny>) -> PyResult<Vec<u64>> {
    let codes = args::Elements::<u8>::from_arg(codes, "codes", "uint8")?;
    let codes = codes.as_slice();
    Ok(py.detach(|| vmsim_core::step::count_outcomes(codes)).to_vec())
}

/// Names of the VMA index structures a `Simulator` can use.
///
/// Returns
/// -------
/// list of str
#[pyfunction]
fn vma_indexes() -> Vec<&'static str> {
    IndexKind::ALL.iter().map(|k| k.name()).collect()
}

/// Time one VMA index on its own: inserts, random lookups, gap searches and
/// removes over `vmas` one-page VMAs (a hole after each), GIL released.
///
/// Parameters
/// ----------
/// index : str
///     One of `vma_indexes()`.
/// vmas : int
///     VMAs in the index (at least 1).
/// lookups : int, optional
///     Random lookups timed (default 100000).
/// seed : int, optional
///     The random order and addresses (default 1).
///
/// Returns
/// -------
/// dict
///     ``insert_ns``, ``lookup_ns``, ``gap_ns``, ``remove_ns`` per operation;
///     ``nodes_per_lookup`` (None where the index does not show them) and
///     ``cache_hit_rate`` (None without a cache).
#[pyfunction]
#[pyo3(signature = (index, vmas, lookups = 100_000, seed = 1))]
fn vma_index_study<'py>(
    py: Python<'py>,
    index: &str,
    vmas: u64,
    lookups: u64,
    seed: u64,
) -> PyResult<Bound<'py, PyDict>> {
    let kind = IndexKind::parse(index).py()?;
    if vmas == 0 || vmas > 10_000_000 || lookups > 1_000_000_000 {
        return Err(PyValueError::new_err(format!(
            "vmas must be 1..=10000000 and lookups at most 1000000000, got vmas={vmas}, lookups={lookups}"
        )));
    }
    let s = py.detach(|| vmsim_core::vma_index::study::measure(kind, vmas, lookups, seed));
    let d = PyDict::new(py);
    d.set_item("insert_ns", s.insert_ns)?;
    d.set_item("lookup_ns", s.lookup_ns)?;
    d.set_item("gap_ns", s.gap_ns)?;
    d.set_item("remove_ns", s.remove_ns)?;
    d.set_item("nodes_per_lookup", s.nodes_per_lookup)?;
    d.set_item("cache_hit_rate", s.cache_hit_rate)?;
    Ok(d)
}

type Parsed<'py> = (Bound<'py, PyArray1<u64>>, Bound<'py, PyArray1<u8>>);

/// Outcome codes, and (accesses, rss, faults) per sample.
type SampledBatch<'py> = (Bound<'py, PyArray1<u8>>, Vec<(u64, u64, u64)>);

fn parse_chunk<'py>(
    py: Python<'py>,
    data: &[u8],
    first_line: u64,
    parser: vmsim_core::tracefmt::Parser,
) -> PyResult<Parsed<'py>> {
    let (mut addrs, mut ops) = (Vec::with_capacity(data.len() / 12), Vec::with_capacity(data.len() / 12));
    py.detach(|| parser(data, first_line, &mut addrs, &mut ops)).py()?;
    Ok((PyArray1::from_vec(py, addrs), PyArray1::from_vec(py, ops)))
}

/// Parse ``valgrind --tool=lackey --trace-mem=yes`` output.
///
/// Parameters
/// ----------
/// data : bytes
///     Whole lines of the trace.
/// first_line : int, default 1
///     The line number of the first line, for error messages.
///
/// Returns
/// -------
/// tuple of (numpy.ndarray of uint64, numpy.ndarray of uint8)
///     Addresses and op codes (a modify ``M`` is a read then a write).
///
/// Raises
/// ------
/// ValueError
///     Naming the first malformed line.
#[pyfunction]
#[pyo3(signature = (data, first_line = 1))]
fn parse_lackey<'py>(py: Python<'py>, data: &[u8], first_line: u64) -> PyResult<Parsed<'py>> {
    parse_chunk(py, data, first_line, vmsim_core::tracefmt::parse_lackey)
}

/// Parse ``ADDRESS OP`` lines (spaces, tabs or commas between).
///
/// Parameters
/// ----------
/// data : bytes
///     Whole lines of the trace.
/// first_line : int, default 1
///     The line number of the first line, for error messages.
///
/// Returns
/// -------
/// tuple of (numpy.ndarray of uint64, numpy.ndarray of uint8)
///     Addresses and op codes.
///
/// Raises
/// ------
/// ValueError
///     Naming the first malformed line.
#[pyfunction]
#[pyo3(signature = (data, first_line = 1))]
fn parse_text<'py>(py: Python<'py>, data: &[u8], first_line: u64) -> PyResult<Parsed<'py>> {
    parse_chunk(py, data, first_line, vmsim_core::tracefmt::parse_text)
}

/// A text trace read in chunks of whole lines, parsed by the core.
///
/// Iterating yields ``(addrs, ops)`` numpy arrays per chunk.
///
/// Parameters
/// ----------
/// path : str
///     The trace file.
/// kind : {"lackey", "text"}
///     Its format.
/// chunk_bytes : int, default 4194304
///     Bytes read per chunk.
///
/// Raises
/// ------
/// ValueError
///     Naming a malformed line (the iteration ends there).
#[pyclass(name = "TraceLines", module = "vmsim._core")]
struct PyTraceLines {
    reader: Option<vmsim_core::tracefmt::ChunkReader<std::fs::File>>,
}

#[pymethods]
impl PyTraceLines {
    /// Open `path` as `kind` ("lackey" or "text"), read `chunk_bytes` at a time.
    #[new]
    #[pyo3(signature = (path, kind, chunk_bytes = 4 << 20))]
    fn new(path: std::path::PathBuf, kind: &str, chunk_bytes: usize) -> PyResult<Self> {
        let parser: vmsim_core::tracefmt::Parser = match kind {
            "lackey" => vmsim_core::tracefmt::parse_lackey,
            "text" => vmsim_core::tracefmt::parse_text,
            other => return Err(PyValueError::new_err(format!("unknown trace kind {other:?}: use lackey or text"))),
        };
        let file = std::fs::File::open(&path)?;
        Ok(PyTraceLines { reader: Some(vmsim_core::tracefmt::ChunkReader::new(file, parser, chunk_bytes)) })
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Parsed<'py>>> {
        let Some(reader) = self.reader.as_mut() else { return Ok(None) };
        let (mut addrs, mut ops) = (Vec::new(), Vec::new());
        match py.detach(|| reader.next_chunk(&mut addrs, &mut ops)) {
            Ok(true) => Ok(Some((PyArray1::from_vec(py, addrs), PyArray1::from_vec(py, ops)))),
            Ok(false) => {
                self.reader = None;
                Ok(None)
            }
            Err(e) => {
                self.reader = None; // one error ends the iteration
                Err(errors::parse_error(e))
            }
        }
    }
}

/// Names of the replacement policies a `Simulator` can use.
///
/// Returns
/// -------
/// list of str
#[pyfunction]
fn policies() -> Vec<&'static str> {
    vmsim_core::reclaim::PolicyKind::ALL.iter().map(|p| p.name()).collect()
}

/// Parse a size into bytes.
///
/// Parameters
/// ----------
/// text : str
///     ``"4096"``, ``"64KiB"``, ``"256MiB"``, ``"1GiB"``...
///
/// Returns
/// -------
/// int
///
/// Raises
/// ------
/// ValueError
///     The text is not a size.
#[pyfunction]
fn parse_size(text: &str) -> PyResult<u64> {
    units::parse_size(text).map_err(to_py)
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<PySimulator>()?;
    m.add_class::<PyProcess>()?;
    m.add_class::<PyFile>()?;
    m.add_class::<cgroup_api::PyCgroup>()?;
    m.add_class::<mrc_api::PyStackDistances>()?;
    m.add_class::<PyTraceLines>()?;
    m.add_function(wrap_pyfunction!(vma_indexes, m)?)?;
    m.add_function(wrap_pyfunction!(vma_index_study, m)?)?;
    m.add_function(wrap_pyfunction!(count_outcomes, m)?)?;
    m.add_function(wrap_pyfunction!(parse_size, m)?)?;
    m.add_function(wrap_pyfunction!(policies, m)?)?;
    m.add_function(wrap_pyfunction!(parse_lackey, m)?)?;
    m.add_function(wrap_pyfunction!(parse_text, m)?)?;
    m.add("VmsimError", py.get_type::<VmsimError>())?;
    m.add("InvariantError", py.get_type::<InvariantError>())?;
    m.add("ProcessExitedError", py.get_type::<ProcessExitedError>())?;
    m.add("KernelBugError", py.get_type::<KernelBugError>())?;
    m.add("OutOfMemoryError", py.get_type::<OutOfMemoryError>())?;
    m.add_class::<PyKernel>()?;
    // The one table vmsim.Outcome is built from: (name, code, is_signal, is_fault, description).
    let outcomes: Vec<_> =
        Outcome::ALL.iter().map(|&o| (o.name(), o as u8, o.is_signal(), o.is_fault(), o.description())).collect();
    m.add("OUTCOMES", outcomes)?;
    m.add("PAGE_SHIFT", vmsim_core::addr::PAGE_SHIFT)?;
    m.add("PAGE_SIZE", vmsim_core::addr::PAGE_SIZE)?;
    m.add("TASK_SIZE", vmsim_core::addr::TASK_SIZE)?;
    m.add("KERNEL_BASE", vmsim_core::addr::KERNEL_BASE)?;
    m.add("MMAP_MIN_ADDR", vmsim_core::addr::MMAP_MIN_ADDR)?;
    m.add("MAX_LINE", vmsim_core::tracefmt::MAX_LINE)?;
    m.add("DEFAULT_VMA_INDEX", IndexKind::DEFAULT.name())?;
    m.add("PM_PRESENT", vmsim_core::mm::pagemap::PRESENT)?;
    m.add("PM_SWAP", vmsim_core::mm::pagemap::SWAP)?;
    m.add("PM_FILE", vmsim_core::mm::pagemap::FILE)?;
    m.add("PM_MMAP_EXCLUSIVE", vmsim_core::mm::pagemap::MMAP_EXCLUSIVE)?;
    m.add("PM_PFN_MASK", vmsim_core::mm::pagemap::PFN_MASK)?;
    Ok(())
}
