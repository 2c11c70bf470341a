//! `sim.cgroup(...)`: memory cgroups (v2) as Python objects. Thin: limits
//! are converted from bytes (or "max") to pages, everything else is the core's.

use crate::args;
use crate::errors::IntoPy;
use crate::simref::SimRef;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use vmsim_core::reclaim::memcg::{CgId, CgroupInfo, Limits};

const PAGE: u64 = 4096;

/// A limit: bytes (int or a size string), rounded down to pages, or None / "max" for none.
pub fn limit(value: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Option<u64>> {
    let Some(v) = value.filter(|v| !v.is_none()) else { return Ok(None) };
    if v.cast::<PyString>().is_ok_and(|s| s.to_str().is_ok_and(|s| s == "max")) {
        return Ok(None);
    }
    Ok(Some(args::size(v, what)? / PAGE))
}

/// A memory cgroup (cgroup v2's memory controller).
///
/// Made by `Simulator.cgroup`. Processes run in it when spawned with
/// ``spawn(cgroup=...)`` or moved with `Process.move_to`; their new pages
/// (anonymous, page cache, shmem), swap and kernel memory (page tables, slab
/// objects) are charged to it and to every ancestor. A group at `max` is
/// reclaimed, and OOM-kills its largest process when reclaim cannot make
/// room; over `high` it is reclaimed back under it; within `low` it is left
/// alone by reclaim from outside while anything else can go. Sizes are in
/// bytes; a limit of None means "max" (none). Needs ``policy="linux"``.
#[pyclass(name = "Cgroup", module = "vmsim._core", frozen)]
pub struct PyCgroup {
    pub sim: SimRef,
    pub id: CgId,
}

impl PyCgroup {
    fn info(&self, py: Python<'_>) -> PyResult<CgroupInfo> {
        py.detach(|| self.sim.cgroup_info(self.id)).py()
    }

    fn set(&self, py: Python<'_>, change: impl FnOnce(&mut Limits) + Send) -> PyResult<()> {
        let mut limits = self.info(py)?.limits;
        change(&mut limits);
        py.detach(|| self.sim.cgroup_set_limits(self.id, limits)).py()
    }
}

fn bytes(pages: Option<u64>) -> Option<u64> {
    pages.map(|p| p * PAGE)
}

#[pymethods]
impl PyCgroup {
    /// Its path below the root, as cgroupfs shows it (``"/batch/job1"``).
    #[getter]
    fn path(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.info(py)?.path)
    }

    /// ``memory.current``: bytes charged here and below.
    #[getter]
    fn current(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.info(py)?.current)
    }

    /// ``memory.peak``: the most `current` has been.
    #[getter]
    fn peak(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.info(py)?.peak)
    }

    /// ``memory.swap.current``: bytes of swap charged here and below.
    #[getter]
    fn swap_current(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.info(py)?.swap_current)
    }

    /// ``memory.swap.peak``.
    #[getter]
    fn swap_peak(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.info(py)?.swap_peak)
    }

    /// ``memory.max`` in bytes (None: no limit). Setting it takes effect at the group's next charge.
    #[getter]
    fn max(&self, py: Python<'_>) -> PyResult<Option<u64>> {
        Ok(bytes(self.info(py)?.limits.max))
    }
    #[setter]
    fn set_max(&self, py: Python<'_>, value: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let v = limit(value, "max")?;
        self.set(py, |l| l.max = v)
    }

    /// ``memory.high`` in bytes (None: no limit).
    #[getter]
    fn high(&self, py: Python<'_>) -> PyResult<Option<u64>> {
        Ok(bytes(self.info(py)?.limits.high))
    }
    #[setter]
    fn set_high(&self, py: Python<'_>, value: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let v = limit(value, "high")?;
        self.set(py, |l| l.high = v)
    }

    /// ``memory.low`` in bytes (0: no protection).
    #[getter]
    fn low(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.info(py)?.limits.low * PAGE)
    }
    #[setter]
    fn set_low(&self, py: Python<'_>, value: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let v = limit(value, "low")?.unwrap_or(0);
        self.set(py, |l| l.low = v)
    }

    /// ``memory.swap.max`` in bytes (None: no limit).
    #[getter]
    fn swap_max(&self, py: Python<'_>) -> PyResult<Option<u64>> {
        Ok(bytes(self.info(py)?.limits.swap_max))
    }
    #[setter]
    fn set_swap_max(&self, py: Python<'_>, value: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let v = limit(value, "swap_max")?;
        self.set(py, |l| l.swap_max = v)
    }

    /// Charges that stayed over `high` after the group's reclaim: where
    /// Linux would make the allocating task sleep (its throttling penalty).
    #[getter]
    fn throttled(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.info(py)?.throttled)
    }

    /// ``memory.stat``: this group and every group below it.
    ///
    /// Returns
    /// -------
    /// dict
    ///     Sizes in bytes (``anon``, ``file``, ``kernel``, ``pagetables``,
    ///     ``slab``, ``shmem``, ``file_dirty``, ``swapcached``, the LRU lists
    ///     ``inactive_anon`` ... ``unevictable``) and reclaim events
    ///     (``pgscan``, ``pgsteal`` and their ``_kswapd``/``_direct`` parts,
    ///     ``pgrefill``, ``pgactivate``, ``pgdeactivate``, ``workingset_*``).
    fn stat<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let info = self.info(py)?;
        crate::counters_view(py, crate::counters_dict(py, &info.stat)?)
    }

    /// ``memory.events``: this group and every group below it.
    ///
    /// Returns
    /// -------
    /// dict
    ///     ``low`` (reclaimed while protected), ``high`` (reclaimed over
    ///     high), ``max`` (a charge hit max), ``oom`` (reclaim at max failed),
    ///     ``oom_kill`` (processes killed).
    fn events<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        crate::counters_dict(py, &self.info(py)?.events.named())
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<PyCgroup>().is_ok_and(|o| o.get().id == self.id && o.get().sim.same(&self.sim))
    }

    fn __hash__(&self) -> u64 {
        self.id as u64
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        match self.info(py) {
            Ok(i) => {
                let max = bytes(i.limits.max).map_or("None".to_string(), |m| m.to_string());
                format!("Cgroup({:?}, current={}, max={max})", i.path, i.current)
            }
            Err(_) => format!("Cgroup(id={})", self.id),
        }
    }
}

/// The limits `Simulator.cgroup` takes.
pub fn limits(
    max: Option<&Bound<'_, PyAny>>,
    high: Option<&Bound<'_, PyAny>>,
    low: Option<&Bound<'_, PyAny>>,
    swap_max: Option<&Bound<'_, PyAny>>,
) -> PyResult<Limits> {
    Ok(Limits {
        max: limit(max, "max")?,
        high: limit(high, "high")?,
        low: limit(low, "low")?.unwrap_or(0),
        swap_max: limit(swap_max, "swap_max")?,
    })
}

/// A `cgroup=` argument: a Cgroup of this simulator, or None for the root.
pub fn cgroup_arg(sim: &SimRef, cg: Option<&Bound<'_, PyAny>>) -> PyResult<CgId> {
    let Some(cg) = cg.filter(|c| !c.is_none()) else { return Ok(vmsim_core::reclaim::memcg::ROOT) };
    let cg = cg.cast::<PyCgroup>().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err(format!(
            "cgroup must be a Cgroup from Simulator.cgroup, got {}",
            cg.get_type().name().map(|n| n.to_string()).unwrap_or_default()
        ))
    })?;
    if !cg.get().sim.same(sim) {
        return Err(PyValueError::new_err("that Cgroup belongs to another Simulator"));
    }
    Ok(cg.get().id)
}
