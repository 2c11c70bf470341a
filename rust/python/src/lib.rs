//! vmsim._core: thin PyO3 bindings over vmsim-core. Argument conversion and
//! error mapping only; every decision is made in the core.

mod args;
mod errors;
mod kernel_api;
mod simref;

use errors::{to_py, IntoPy, InvariantError, KernelBugError, OutOfMemoryError, ProcessExitedError, VmsimError};
use kernel_api::{PyKernel, Releases};
use numpy::{PyArray1, PyArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString};
use simref::SimRef;
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
    let cls = OUTCOME.get_or_try_init(py, || py.import("vmsim.outcome")?.getattr("Outcome").map(Bound::unbind))?;
    Ok(cls.bind(py).call1((outcome as u8,))?.unbind())
}

/// Optional arguments, converted only when given.
fn opt<T>(
    value: Option<&Bound<'_, PyAny>>,
    convert: impl FnOnce(&Bound<'_, PyAny>) -> PyResult<T>,
) -> PyResult<Option<T>> {
    value.map(convert).transpose()
}

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
    #[pyo3(signature = (memory = None, *, vma_index = None, stack_rlimit = None, stack_guard_gap = None, max_map_count = None, fault_around_bytes = None, swap = None, policy = None, resident_limit = None, overcommit = None, overcommit_ratio = None))]
    #[allow(clippy::too_many_arguments, reason = "one argument per Python keyword")]
    fn new(
        py: Python<'_>,
        memory: Option<&Bound<'_, PyAny>>,
        vma_index: Option<&str>,
        stack_rlimit: Option<&Bound<'_, PyAny>>,
        stack_guard_gap: Option<&Bound<'_, PyAny>>,
        max_map_count: Option<&Bound<'_, PyAny>>,
        fault_around_bytes: Option<&Bound<'_, PyAny>>,
        swap: Option<&Bound<'_, PyAny>>,
        policy: Option<&str>,
        resident_limit: Option<&Bound<'_, PyAny>>,
        overcommit: Option<&Bound<'_, PyAny>>,
        overcommit_ratio: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let defaults = SimConfig::default();
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
        // Building the frame table of a large memory takes a while: without the GIL.
        let sim = py.detach(|| Simulator::new(cfg)).py()?;
        if let Some(f) = opt(fault_around_bytes, |f| args::size(f, "fault_around_bytes"))? {
            sim.set_fault_around_bytes(f).py()?;
        }
        Ok(PySimulator { sim: SimRef::new(sim), releases: Releases::default() })
    }

    /// A regular file of `size` bytes (int or "64KiB"), for mmap(file=...).
    #[pyo3(signature = (size, name = None))]
    fn create_file(&self, py: Python<'_>, size: &Bound<'_, PyAny>, name: Option<String>) -> PyResult<PyFile> {
        let size = args::size(size, "size")?;
        let name = name.unwrap_or_else(|| vmsim_core::sim::DEFAULT_FILE_NAME.to_string());
        let id = py.detach(|| self.sim.create_file(&name, size)).py()?;
        Ok(PyFile { sim: self.sim.clone(), id, name })
    }

    /// A new process: an empty address space, or layout="default" for a
    /// realistic ELF process (text, data, heap, mmap area, stack).
    #[pyo3(signature = (layout = None))]
    fn spawn(&self, py: Python<'_>, layout: Option<&str>) -> PyResult<PyProcess> {
        let layout = LayoutKind::parse(layout.unwrap_or("empty")).py()?;
        let pid = py.detach(|| self.sim.spawn(layout)).py()?;
        Ok(PyProcess { sim: self.sim.clone(), pid, stack: None })
    }

    fn counters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = py.detach(|| self.sim.counters());
        let d = counters_dict(py, &c.named())?;
        let faults = counters_dict(py, &c.outcomes_named())?;
        d.set_item("faults", faults)?;
        Ok(d)
    }

    /// The kernel allocators: kmalloc/kfree, vmalloc/vfree, alloc_pages/free_pages, kobjects.
    #[getter]
    fn kernel(&self) -> PyKernel {
        PyKernel { sim: self.sim.clone(), releases: self.releases.clone() }
    }

    /// Every kernel allocation still live, with the call that made it.
    fn leak_check<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let live = py.detach(|| self.sim.leak_check());
        kernel_api::live_dicts(py, live)
    }

    /// Record the release route of every teardown (drain it with release_events()).
    fn trace_release(&self, py: Python<'_>, on: bool) {
        py.detach(|| self.sim.trace_release(on))
    }

    /// The release events recorded since the last call, as (event, detail) pairs.
    fn release_events(&self, py: Python<'_>) -> Vec<(String, String)> {
        kernel_api::events(py.detach(|| self.sim.release_events()))
    }

    /// Verify every invariant; raises InvariantError naming what broke.
    fn check(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.sim.check()).py()
    }

    /// Live task ids.
    fn pids(&self, py: Python<'_>) -> Vec<u32> {
        py.detach(|| self.sim.pids())
    }

    #[getter]
    fn memory(&self) -> u64 {
        self.sim.config().memory
    }

    #[getter]
    fn vma_index(&self) -> &'static str {
        self.sim.config().mm.index.name()
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let c = py.detach(|| self.sim.counters());
        format!(
            "Simulator(memory={:?}, vma_index={:?}, processes={}, frames_used={}/{})",
            units::format_size(self.sim.config().memory),
            self.vma_index(),
            c.processes,
            c.frames_used,
            c.frames_total
        )
    }
}

#[pyclass(name = "Process", module = "vmsim._core", frozen)]
pub struct PyProcess {
    sim: SimRef,
    pub pid: u32,
    stack: Option<(u64, u64)>,
}

impl PyProcess {
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
    #[getter]
    fn pid(&self) -> u32 {
        self.pid
    }

    /// The thread-group id: the pid of the process this task belongs to.
    #[getter]
    fn tgid(&self, py: Python<'_>) -> PyResult<u32> {
        py.detach(|| self.sim.tgid(self.pid)).py()
    }

    #[getter]
    fn alive(&self, py: Python<'_>) -> bool {
        py.detach(|| self.sim.is_alive(self.pid))
    }

    /// (low, high) of the stack clone_thread mapped for this thread, else None.
    #[getter]
    fn thread_stack(&self) -> Option<(u64, u64)> {
        self.stack
    }

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

    /// Whether mappings cover every 2 MiB region from `first` to `last`
    /// (addresses): then `map_trace_regions` has nothing to do for addresses
    /// in that span.
    fn trace_span_mapped(&self, py: Python<'_>, first: &Bound<'_, PyAny>, last: &Bound<'_, PyAny>) -> PyResult<bool> {
        let (first, last) = (args::address(first, "first")?, args::address(last, "last")?);
        py.detach(|| self.sim.trace_span_mapped(self.pid, first, last.max(first))).py()
    }

    /// For replaying a raw address trace: map (private anonymous, rwx) each
    /// 2 MiB region the addresses touch that no mapping overlaps yet; returns
    /// how many regions were mapped.
    fn map_trace_regions(&self, py: Python<'_>, addrs: &Bound<'_, PyAny>) -> PyResult<u64> {
        let addrs = args::Elements::<u64>::from_arg(addrs, "addrs", "uint64")?;
        let addrs = addrs.as_slice();
        py.detach(|| self.sim.map_trace_regions(self.pid, addrs)).py()
    }

    /// msync: write back the dirty pages of shared file mappings in the range; returns how many.
    fn msync(&self, py: Python<'_>, addr: &Bound<'_, PyAny>, length: &Bound<'_, PyAny>) -> PyResult<u64> {
        let addr = args::address(addr, "addr")?;
        self.with_len(py, length, |sim, pid, len| sim.msync(pid, addr, len))
    }

    fn munmap(&self, py: Python<'_>, addr: &Bound<'_, PyAny>, length: &Bound<'_, PyAny>) -> PyResult<()> {
        let addr = args::address(addr, "addr")?;
        self.with_len(py, length, |sim, pid, len| sim.munmap(pid, addr, len))
    }

    fn mprotect(&self, py: Python<'_>, addr: &Bound<'_, PyAny>, length: &Bound<'_, PyAny>, prot: &str) -> PyResult<()> {
        let (addr, prot) = (args::address(addr, "addr")?, Prot::parse(prot).py()?);
        self.with_len(py, length, |sim, pid, len| sim.mprotect(pid, addr, len, prot))
    }

    /// madvise with "dontfork", "dofork" or "dontneed".
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

    /// brk(2): set the program break and return the new one (the old one if
    /// refused); with no argument, return the current break.
    #[pyo3(signature = (new_end = None))]
    fn brk(&self, py: Python<'_>, new_end: Option<&Bound<'_, PyAny>>) -> PyResult<u64> {
        let new_end = opt(new_end, |a| args::address(a, "new_end"))?;
        py.detach(|| self.sim.brk(self.pid, new_end)).py()
    }

    /// One access; returns a vmsim.Outcome.
    #[pyo3(signature = (addr, op = None))]
    fn access(&self, py: Python<'_>, addr: &Bound<'_, PyAny>, op: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
        let (addr, op) = (args::address(addr, "addr")?, opt(op, args::access)?.unwrap_or(Access::Read));
        let outcome = py.detach(|| self.sim.access(self.pid, addr, op)).py()?;
        outcome_obj(py, outcome)
    }

    /// One access, returning (Outcome, [the kernel's steps as text]).
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

    /// Many accesses at once. addrs: numpy uint64 (or a list of ints); ops:
    /// numpy uint8 codes (0 read, 1 write, 2 exec) or "r"/"w"/"x" for all.
    /// Returns a numpy uint8 array of Outcome codes. The run goes without
    /// the GIL, reading contiguous arrays in place (others are copied first).
    #[pyo3(signature = (addrs, ops = None))]
    fn access_batch<'py>(
        &self,
        py: Python<'py>,
        addrs: &Bound<'py, PyAny>,
        ops: Option<&Bound<'py, PyAny>>,
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
        py.detach(|| {
            let ops = codes.map_or(Ops::Same(same), Ops::Each);
            self.sim.access_batch(self.pid, addrs, ops, codes_out)
        })
        .py()?;
        drop(filling);
        Ok(out)
    }

    fn fork(&self, py: Python<'_>) -> PyResult<PyProcess> {
        let pid = py.detach(|| self.sim.fork(self.pid)).py()?;
        Ok(PyProcess { sim: self.sim.clone(), pid, stack: None })
    }

    /// A thread sharing this address space. stack_size (default 8MiB) maps a
    /// pthread-style stack with a guard page; 0 maps none.
    #[pyo3(signature = (stack_size = None))]
    fn clone_thread(&self, py: Python<'_>, stack_size: Option<&Bound<'_, PyAny>>) -> PyResult<PyProcess> {
        let size = opt(stack_size, |s| args::size(s, "stack_size"))?.unwrap_or(vmsim_core::sim::DEFAULT_THREAD_STACK);
        let (tid, stack) = py.detach(|| self.sim.clone_thread(self.pid, size)).py()?;
        Ok(PyProcess { sim: self.sim.clone(), pid: tid, stack })
    }

    /// This task exits; the address space goes when its last task has exited.
    #[pyo3(signature = (trace = false))]
    fn exit(&self, py: Python<'_>, trace: bool) -> PyResult<Option<Vec<(String, String)>>> {
        let events = py.detach(|| self.sim.exit_traced(self.pid, trace)).py()?;
        Ok(if trace { Some(kernel_api::events(events)) } else { None })
    }

    /// Every thread of this process exits.
    fn exit_group(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.sim.exit_group(self.pid)).py()
    }

    /// Task ids of this process's live threads.
    fn threads(&self, py: Python<'_>) -> PyResult<Vec<u32>> {
        py.detach(|| self.sim.threads(self.pid)).py()
    }

    /// The address space in /proc/PID/maps format.
    fn maps(&self, py: Python<'_>) -> PyResult<String> {
        py.detach(|| self.sim.maps(self.pid)).py()
    }

    /// VMAs as (start, end, prot, flags) tuples, flags like "private" or "shared|growsdown".
    fn vmas(&self, py: Python<'_>) -> PyResult<Vec<(u64, u64, String, String)>> {
        let vmas = py.detach(|| self.sim.vmas(self.pid)).py()?;
        Ok(vmas.iter().map(|v| (v.start, v.end, v.prot.to_string(), v.flag_words())).collect())
    }

    /// start_brk, brk, start_stack and mmap_base.
    fn layout<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let l = py.detach(|| self.sim.layout(self.pid)).py()?;
        counters_dict(
            py,
            &[("start_brk", l.start_brk), ("brk", l.brk), ("start_stack", l.start_stack), ("mmap_base", l.mmap_base)],
        )
    }

    fn counters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = py.detach(|| self.sim.process_counters(self.pid)).py()?;
        counters_dict(py, &c.named())
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let state = if self.alive(py) { "alive" } else { "exited" };
        format!("Process(pid={}, {state})", self.pid)
    }
}

/// A simulated regular file. Dropping the object closes its handle; the
/// file and its cached pages go once no handle and no mapping holds it.
#[pyclass(name = "File", module = "vmsim._core", frozen)]
pub struct PyFile {
    sim: SimRef,
    pub id: u32,
    name: String,
}

#[pymethods]
impl PyFile {
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

    /// truncate(2): pages past the new end are unmapped everywhere (a later
    /// access there is SIGBUS) and leave the page cache.
    fn truncate(&self, py: Python<'_>, size: &Bound<'_, PyAny>) -> PyResult<()> {
        let size = args::size(size, "size")?;
        py.detach(|| self.sim.file_truncate(self.id, size)).py()
    }

    /// unlink(2): the name goes; the pages go with the last mapping and handle.
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

/// How many accesses of each outcome a uint8 array of codes holds: a list
/// indexed by outcome code (codes past the table are not counted).
#[pyfunction]
fn count_outcomes(py: Python<'_>, codes: &Bound<'_, PyAny>) -> PyResult<Vec<u64>> {
    let codes = args::Elements::<u8>::from_arg(codes, "codes", "uint8")?;
    let codes = codes.as_slice();
    Ok(py.detach(|| vmsim_core::step::count_outcomes(codes)).to_vec())
}

/// Names of the VMA index structures a Simulator can use.
#[pyfunction]
fn vma_indexes() -> Vec<&'static str> {
    IndexKind::ALL.iter().map(|k| k.name()).collect()
}

type Parsed<'py> = (Bound<'py, PyArray1<u64>>, Bound<'py, PyArray1<u8>>);

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

/// Parse a chunk of `valgrind --tool=lackey --trace-mem=yes` output (whole lines);
/// returns (addrs uint64, ops uint8). ValueError names the first bad line.
#[pyfunction]
#[pyo3(signature = (data, first_line = 1))]
fn parse_lackey<'py>(py: Python<'py>, data: &[u8], first_line: u64) -> PyResult<Parsed<'py>> {
    parse_chunk(py, data, first_line, vmsim_core::tracefmt::parse_lackey)
}

/// Parse a chunk of "ADDRESS OP" / CSV lines; returns (addrs uint64, ops uint8).
#[pyfunction]
#[pyo3(signature = (data, first_line = 1))]
fn parse_text<'py>(py: Python<'py>, data: &[u8], first_line: u64) -> PyResult<Parsed<'py>> {
    parse_chunk(py, data, first_line, vmsim_core::tracefmt::parse_text)
}

/// A text trace read in chunks of whole lines by the core: iterating yields
/// (addrs uint64, ops uint8) per chunk; ValueError names a bad line.
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

/// Names of the replacement policies reclaim can use.
#[pyfunction]
fn policies() -> Vec<&'static str> {
    vmsim_core::reclaim::PolicyKind::ALL.iter().map(|p| p.name()).collect()
}

/// Parse a size string ("64KiB", "1GiB", "4096") into bytes.
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
    m.add_class::<PyTraceLines>()?;
    m.add_function(wrap_pyfunction!(vma_indexes, m)?)?;
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
    Ok(())
}
