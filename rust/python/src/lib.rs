//! vmsim._core: thin PyO3 bindings over vmsim-core. Argument conversion and
//! error mapping only; every decision is made in the core.

mod errors;
mod kernel_api;

use errors::{to_py, IntoPy, InvariantError, KernelBugError, OutOfMemoryError, ProcessExitedError, VmsimError};
use kernel_api::{PyKernel, Releases};
use numpy::{PyArray1, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString};
use std::sync::Arc;
use vmsim_core::{units, Access, Advice, IndexKind, LayoutKind, MmapArgs, Ops, Outcome, Prot, SimConfig, Simulator};

/// A dict of named counters.
pub(crate) fn counters_dict<'py>(py: Python<'py>, items: &[(&str, u64)]) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (name, value) in items {
        d.set_item(*name, *value)?;
    }
    Ok(d)
}

/// A size given as int bytes or a string like "64KiB".
fn size_arg(value: &Bound<'_, PyAny>, what: &str) -> PyResult<u64> {
    if let Ok(text) = value.cast::<PyString>() {
        return units::parse_size(text.to_str()?).py();
    }
    let n: i128 = value
        .extract()
        .map_err(|_| PyTypeError::new_err(format!("{what} must be an int (bytes) or a size string like \"256MiB\"")))?;
    u64::try_from(n).map_err(|_| PyValueError::new_err(format!("{what} must be between 0 and 2**64-1, got {n}")))
}

/// The Python-side `vmsim.Outcome` enum member for a code.
fn outcome_obj(py: Python<'_>, outcome: Outcome) -> PyResult<Py<PyAny>> {
    static OUTCOME: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let cls = OUTCOME.get_or_try_init(py, || py.import("vmsim.outcome")?.getattr("Outcome").map(Bound::unbind))?;
    Ok(cls.bind(py).call1((outcome as u8,))?.unbind())
}

fn access_arg(op: &Bound<'_, PyAny>) -> PyResult<Access> {
    if let Ok(text) = op.cast::<PyString>() {
        return Access::parse(text.to_str()?).py();
    }
    let code: i64 =
        op.extract().map_err(|_| PyTypeError::new_err("op must be \"r\", \"w\", \"x\" or a code 0, 1, 2"))?;
    u8::try_from(code)
        .ok()
        .and_then(Access::from_code)
        .ok_or_else(|| PyValueError::new_err(format!("op code {code} is not 0 (read), 1 (write) or 2 (exec)")))
}

/// A 1-D array argument: borrowed from numpy when contiguous, else gathered.
enum ArrayArg<'py, T: numpy::Element> {
    Borrowed(numpy::PyReadonlyArray1<'py, T>),
    Owned(Vec<T>),
}

impl<T: numpy::Element> ArrayArg<'_, T> {
    fn as_slice(&self) -> &[T] {
        match self {
            ArrayArg::Borrowed(ro) => ro.as_slice().expect("checked contiguous"),
            ArrayArg::Owned(v) => v,
        }
    }
}

/// A 1-D numpy array of the given dtype (or a list of ints).
fn array_arg<'py, T>(value: &Bound<'py, PyAny>, what: &str, dtype: &str) -> PyResult<ArrayArg<'py, T>>
where
    T: numpy::Element + Copy,
    for<'a> Vec<T>: FromPyObject<'a, 'py>,
{
    if let Ok(arr) = value.cast::<PyArray1<T>>() {
        let ro = arr.try_readonly().map_err(|e| PyValueError::new_err(format!("{what}: {e}")))?;
        if ro.as_slice().is_ok() {
            return Ok(ArrayArg::Borrowed(ro));
        }
        return Ok(ArrayArg::Owned(ro.as_array().iter().copied().collect())); // strided: gather
    }
    if let Ok(arr) = value.cast::<PyUntypedArray>() {
        if arr.ndim() != 1 {
            return Err(PyValueError::new_err(format!("{what} must be a 1-D array, got {} dimensions", arr.ndim())));
        }
        return Err(PyTypeError::new_err(format!("{what} must be a numpy {dtype} array, got dtype {}", arr.dtype())));
    }
    value
        .extract::<Vec<T>>()
        .map(ArrayArg::Owned)
        .map_err(|_| PyTypeError::new_err(format!("{what} must be a numpy {dtype} array or a list of ints")))
}

#[pyclass(name = "Simulator", module = "vmsim._core", frozen)]
struct PySimulator {
    sim: Arc<Simulator>,
    releases: Releases,
}

#[pymethods]
impl PySimulator {
    #[new]
    #[pyo3(signature = (memory = None, *, vma_index = None, stack_rlimit = None, stack_guard_gap = None, max_map_count = None, fault_around_bytes = None, swap = None, policy = None, resident_limit = None, overcommit = 0, overcommit_ratio = 50))]
    #[allow(clippy::too_many_arguments, reason = "one argument per Python keyword")]
    fn new(
        memory: Option<&Bound<'_, PyAny>>,
        vma_index: Option<&str>,
        stack_rlimit: Option<&Bound<'_, PyAny>>,
        stack_guard_gap: Option<&Bound<'_, PyAny>>,
        max_map_count: Option<usize>,
        fault_around_bytes: Option<&Bound<'_, PyAny>>,
        swap: Option<&Bound<'_, PyAny>>,
        policy: Option<&str>,
        resident_limit: Option<u64>,
        overcommit: u32,
        overcommit_ratio: u64,
    ) -> PyResult<Self> {
        let mut cfg = SimConfig {
            overcommit: vmsim_core::kernel::Overcommit::new(overcommit, overcommit_ratio).py()?,
            ..SimConfig::default()
        };
        if let Some(s) = swap {
            cfg.swap = size_arg(s, "swap")?;
        }
        if let Some(name) = policy {
            cfg.policy = Some(vmsim_core::reclaim::PolicyKind::parse(name).py()?);
        }
        cfg.resident_limit = resident_limit;
        if let Some(m) = memory {
            cfg.memory = size_arg(m, "memory")?;
        }
        if let Some(name) = vma_index {
            cfg.mm.index = IndexKind::parse(name).py()?;
        }
        if let Some(r) = stack_rlimit {
            cfg.mm.stack_rlimit = size_arg(r, "stack_rlimit")?;
        }
        if let Some(g) = stack_guard_gap {
            cfg.mm.stack_guard_gap = size_arg(g, "stack_guard_gap")?;
        }
        if let Some(n) = max_map_count {
            cfg.mm.max_map_count = n;
        }
        let sim = Simulator::new(cfg).py()?;
        if let Some(f) = fault_around_bytes {
            sim.set_fault_around_bytes(size_arg(f, "fault_around_bytes")?).py()?;
        }
        Ok(PySimulator { sim: Arc::new(sim), releases: Releases::default() })
    }

    /// A regular file of `size` bytes (int or "64KiB"), for mmap(file=...).
    #[pyo3(signature = (size, name = None))]
    fn create_file(&self, size: &Bound<'_, PyAny>, name: Option<String>) -> PyResult<PyFile> {
        let size = size_arg(size, "size")?;
        let name = name.unwrap_or_else(|| vmsim_core::sim::DEFAULT_FILE_NAME.to_string());
        let id = self.sim.create_file(&name, size);
        Ok(PyFile { sim: self.sim.clone(), id, name })
    }

    /// A new process: an empty address space, or layout="default" for a
    /// realistic ELF process (text, data, heap, mmap area, stack).
    #[pyo3(signature = (layout = None))]
    fn spawn(&self, layout: Option<&str>) -> PyResult<PyProcess> {
        let layout = LayoutKind::parse(layout.unwrap_or("empty")).py()?;
        let pid = self.sim.spawn(layout).py()?;
        Ok(PyProcess { sim: self.sim.clone(), pid, stack: None })
    }

    fn counters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = self.sim.counters();
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
        kernel_api::live_dicts(py, self.sim.leak_check())
    }

    /// Record the release route of every teardown (drain it with release_events()).
    fn trace_release(&self, on: bool) {
        self.sim.trace_release(on)
    }

    /// The release events recorded since the last call, as (event, detail) pairs.
    fn release_events(&self) -> PyResult<Vec<(String, String)>> {
        Ok(kernel_api::events(self.sim.release_events()))
    }

    /// Verify every invariant; raises InvariantError naming what broke.
    fn check(&self, py: Python<'_>) -> PyResult<()> {
        let sim = self.sim.clone();
        py.detach(move || sim.check()).py()
    }

    /// Live task ids.
    fn pids(&self) -> Vec<u32> {
        self.sim.pids()
    }

    #[getter]
    fn memory(&self) -> u64 {
        self.sim.config().memory
    }

    #[getter]
    fn vma_index(&self) -> &'static str {
        self.sim.config().mm.index.name()
    }

    fn __repr__(&self) -> String {
        let c = self.sim.counters();
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
    sim: Arc<Simulator>,
    pub pid: u32,
    stack: Option<(u64, u64)>,
}

#[pymethods]
impl PyProcess {
    #[getter]
    fn pid(&self) -> u32 {
        self.pid
    }

    /// The thread-group id: the pid of the process this task belongs to.
    #[getter]
    fn tgid(&self) -> PyResult<u32> {
        self.sim.tgid(self.pid).py()
    }

    #[getter]
    fn alive(&self) -> bool {
        self.sim.is_alive(self.pid)
    }

    /// (low, high) of the stack clone_thread mapped for this thread, else None.
    #[getter]
    fn thread_stack(&self) -> Option<(u64, u64)> {
        self.stack
    }

    #[pyo3(signature = (length, prot = "rw", flags = None, addr = None, *, fixed = false, fixed_noreplace = false, file = None, offset = 0))]
    #[allow(clippy::too_many_arguments, reason = "one argument per Python keyword")]
    fn mmap(
        &self,
        length: &Bound<'_, PyAny>,
        prot: &str,
        flags: Option<&str>,
        addr: Option<u64>,
        fixed: bool,
        fixed_noreplace: bool,
        file: Option<PyRef<'_, PyFile>>,
        offset: u64,
    ) -> PyResult<u64> {
        let args = MmapArgs {
            length: size_arg(length, "length")?,
            prot,
            flags,
            addr,
            fixed,
            fixed_noreplace,
            file: file.map(|f| f.id),
            offset,
        };
        self.sim.mmap(self.pid, args.request().py()?).py()
    }

    /// msync: write back the dirty pages of shared file mappings in the range; returns how many.
    fn msync(&self, addr: u64, length: &Bound<'_, PyAny>) -> PyResult<u64> {
        self.sim.msync(self.pid, addr, size_arg(length, "length")?).py()
    }

    fn munmap(&self, addr: u64, length: &Bound<'_, PyAny>) -> PyResult<()> {
        self.sim.munmap(self.pid, addr, size_arg(length, "length")?).py()
    }

    fn mprotect(&self, addr: u64, length: &Bound<'_, PyAny>, prot: &str) -> PyResult<()> {
        let prot = Prot::parse(prot).py()?;
        self.sim.mprotect(self.pid, addr, size_arg(length, "length")?, prot).py()
    }

    /// madvise with "dontfork", "dofork" or "dontneed".
    fn madvise(&self, addr: u64, length: &Bound<'_, PyAny>, advice: &str) -> PyResult<()> {
        let advice = Advice::parse(advice).py()?;
        self.sim.madvise(self.pid, addr, size_arg(length, "length")?, advice).py()
    }

    /// brk(2): set the program break and return the new one (the old one if
    /// refused); with no argument, return the current break.
    #[pyo3(signature = (new_end = None))]
    fn brk(&self, new_end: Option<u64>) -> PyResult<u64> {
        self.sim.brk(self.pid, new_end).py()
    }

    /// One access; returns a vmsim.Outcome.
    #[pyo3(signature = (addr, op = None))]
    fn access(&self, py: Python<'_>, addr: u64, op: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
        let op = op.map(access_arg).transpose()?.unwrap_or(Access::Read);
        let outcome = self.sim.access(self.pid, addr, op).py()?;
        outcome_obj(py, outcome)
    }

    /// One access, returning (Outcome, [the kernel's steps as text]).
    #[pyo3(signature = (addr, op = None))]
    fn access_traced(
        &self,
        py: Python<'_>,
        addr: u64,
        op: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(Py<PyAny>, Vec<String>)> {
        let op = op.map(access_arg).transpose()?.unwrap_or(Access::Read);
        let (outcome, steps) = self.sim.access_traced(self.pid, addr, op).py()?;
        Ok((outcome_obj(py, outcome)?, steps))
    }

    /// Many accesses at once. addrs: numpy uint64 (or a list of ints); ops:
    /// numpy uint8 codes (0 read, 1 write, 2 exec) or "r"/"w"/"x" for all.
    /// Returns a numpy uint8 array of Outcome codes; the GIL is released.
    #[pyo3(signature = (addrs, ops = None))]
    fn access_batch<'py>(
        &self,
        py: Python<'py>,
        addrs: &Bound<'py, PyAny>,
        ops: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyArray1<u8>>> {
        let addrs = array_arg::<u64>(addrs, "addrs", "uint64")?;
        let codes = match ops {
            Some(o) if o.cast::<PyString>().is_err() && !o.is_instance_of::<pyo3::types::PyInt>() => {
                Some(array_arg::<u8>(o, "ops", "uint8")?)
            }
            _ => None,
        };
        let op = match (ops, &codes) {
            (_, Some(c)) => Ops::Each(c.as_slice()),
            (Some(o), None) => Ops::Same(access_arg(o)?),
            (None, None) => Ops::Same(Access::Read),
        };
        let addrs = addrs.as_slice();
        let mut out = vec![0u8; addrs.len()];
        let sim = &self.sim;
        let pid = self.pid;
        py.detach(|| sim.access_batch(pid, addrs, op, &mut out)).py()?;
        Ok(PyArray1::from_vec(py, out))
    }

    fn fork(&self) -> PyResult<PyProcess> {
        let pid = self.sim.fork(self.pid).py()?;
        Ok(PyProcess { sim: self.sim.clone(), pid, stack: None })
    }

    /// A thread sharing this address space. stack_size (default 8MiB) maps a
    /// pthread-style stack with a guard page; 0 maps none.
    #[pyo3(signature = (stack_size = None))]
    fn clone_thread(&self, stack_size: Option<&Bound<'_, PyAny>>) -> PyResult<PyProcess> {
        let size =
            stack_size.map(|s| size_arg(s, "stack_size")).transpose()?.unwrap_or(vmsim_core::sim::DEFAULT_THREAD_STACK);
        let (tid, stack) = self.sim.clone_thread(self.pid, size).py()?;
        Ok(PyProcess { sim: self.sim.clone(), pid: tid, stack })
    }

    /// This task exits; the address space goes when its last task has exited.
    #[pyo3(signature = (trace = false))]
    fn exit(&self, py: Python<'_>, trace: bool) -> PyResult<Option<Vec<(String, String)>>> {
        let sim = self.sim.clone();
        let pid = self.pid;
        let events = py.detach(move || sim.exit_traced(pid, trace)).py()?;
        Ok(if trace { Some(kernel_api::events(events)) } else { None })
    }

    /// Every thread of this process exits.
    fn exit_group(&self, py: Python<'_>) -> PyResult<()> {
        let sim = self.sim.clone();
        let pid = self.pid;
        py.detach(move || sim.exit_group(pid)).py()
    }

    /// Task ids of this process's live threads.
    fn threads(&self) -> PyResult<Vec<u32>> {
        self.sim.threads(self.pid).py()
    }

    /// The address space in /proc/PID/maps format.
    fn maps(&self) -> PyResult<String> {
        self.sim.maps(self.pid).py()
    }

    /// VMAs as (start, end, prot, flags) tuples, flags like "private" or "shared|growsdown".
    fn vmas(&self) -> PyResult<Vec<(u64, u64, String, String)>> {
        let vmas = self.sim.vmas(self.pid).py()?;
        Ok(vmas.iter().map(|v| (v.start, v.end, v.prot.to_string(), v.flag_words())).collect())
    }

    /// start_brk, brk, start_stack and mmap_base.
    fn layout<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let l = self.sim.layout(self.pid).py()?;
        let d = PyDict::new(py);
        d.set_item("start_brk", l.start_brk)?;
        d.set_item("brk", l.brk)?;
        d.set_item("start_stack", l.start_stack)?;
        d.set_item("mmap_base", l.mmap_base)?;
        Ok(d)
    }

    fn counters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = self.sim.process_counters(self.pid).py()?;
        counters_dict(py, &c.named())
    }

    fn __repr__(&self) -> String {
        let state = if self.sim.is_alive(self.pid) { "alive" } else { "exited" };
        format!("Process(pid={}, {state})", self.pid)
    }
}

/// A simulated regular file. Dropping the object closes its handle; the
/// file's pages stay cached until it is unlinked and unmapped.
#[pyclass(name = "File", module = "vmsim._core", frozen)]
pub struct PyFile {
    sim: Arc<Simulator>,
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
    fn size(&self) -> PyResult<u64> {
        Ok(self.sim.file_stat(self.id).py()?.0)
    }

    /// Pages of the file in the page cache.
    #[getter]
    fn cached_pages(&self) -> PyResult<usize> {
        Ok(self.sim.file_stat(self.id).py()?.1)
    }

    /// truncate(2): pages past the new end are unmapped everywhere (a later
    /// access there is SIGBUS) and leave the page cache.
    fn truncate(&self, size: &Bound<'_, PyAny>) -> PyResult<()> {
        self.sim.file_truncate(self.id, size_arg(size, "size")?).py()
    }

    /// unlink(2): the name goes; the pages go with the last mapping and handle.
    fn unlink(&self) -> PyResult<()> {
        self.sim.file_unlink(self.id).py()
    }

    fn __repr__(&self) -> String {
        format!("File({:?}, id={})", self.name, self.id)
    }
}

impl Drop for PyFile {
    fn drop(&mut self) {
        let _ = self.sim.file_close(self.id);
    }
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
    m.add_function(wrap_pyfunction!(vma_indexes, m)?)?;
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
    m.add("DEFAULT_VMA_INDEX", IndexKind::DEFAULT.name())?;
    Ok(())
}
