//! `vmsim.StackDistances`: the core's one-pass LRU stack distances (for
//! miss-ratio curves) over numpy batches. Thin: arguments in, core out.

use crate::args;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyString;
use vmsim_core::mrc::StackDistances;
use vmsim_core::Access;

/// LRU stack distances of a stream of page references (Mattson's one pass).
///
/// Feed it the accesses in order; `misses` then gives the misses of an LRU
/// memory of any number of resident pages. A miss is an access that needs a
/// frame: a page's first write, or any access to a page LRU would have
/// evicted; reads of a page never written map the zero page and need none.
/// For one address space this equals a replay under ``policy="lru"`` with
/// ``resident_limit`` set to that size.
#[pyclass(name = "StackDistances", module = "vmsim._core")]
pub struct PyStackDistances {
    inner: StackDistances,
}

#[pymethods]
impl PyStackDistances {
    #[new]
    fn new() -> Self {
        PyStackDistances { inner: StackDistances::new() }
    }

    /// Add accesses, in order, to the stream.
    ///
    /// Parameters
    /// ----------
    /// addrs : numpy.ndarray of uint64 or sequence of int
    ///     Virtual addresses (only their page counts).
    /// ops : numpy.ndarray of uint8, sequence of int, or {"r", "w", "x"}
    ///     One op code per address (1 is a write), or one op for all.
    /// space : int, optional
    ///     The address space the accesses are made in (pages of different
    ///     spaces are different pages); default 0.
    #[pyo3(signature = (addrs, ops, space = 0))]
    fn feed(&mut self, py: Python<'_>, addrs: &Bound<'_, PyAny>, ops: &Bound<'_, PyAny>, space: u32) -> PyResult<()> {
        let addrs = args::Elements::<u64>::from_arg(addrs, "addrs", "uint64")?;
        let same = if ops.cast::<PyString>().is_ok() || ops.is_instance_of::<pyo3::types::PyInt>() {
            Some(args::access(ops)? == Access::Write)
        } else {
            None
        };
        let codes = match same {
            None => Some(args::Elements::<u8>::from_arg(ops, "ops", "uint8")?),
            Some(_) => None,
        };
        let (addrs, codes) = (addrs.as_slice(), codes.as_ref().map(|c| c.as_slice()));
        if let Some(c) = codes {
            if c.len() != addrs.len() {
                return Err(PyValueError::new_err(format!(
                    "ops has {} entries but addrs has {}",
                    c.len(),
                    addrs.len()
                )));
            }
            if let Some(i) = c.iter().position(|&code| Access::from_code(code).is_none()) {
                return Err(PyValueError::new_err(format!(
                    "ops[{i}] = {} is not an access code (0 read, 1 write, 2 exec)",
                    c[i]
                )));
            }
        }
        let inner = &mut self.inner;
        py.detach(|| {
            for (i, &addr) in addrs.iter().enumerate() {
                let write =
                    same.unwrap_or_else(|| codes.is_some_and(|c| Access::from_code(c[i]) == Some(Access::Write)));
                inner.access(vmsim_core::reclaim::key(space, addr), write);
            }
        });
        Ok(())
    }

    /// Misses of an LRU memory of `pages` resident pages.
    ///
    /// Parameters
    /// ----------
    /// pages : int
    ///     Resident pages (0: every access to a written page misses).
    ///
    /// Returns
    /// -------
    /// int
    fn misses(&self, pages: u64) -> u64 {
        self.inner.misses(pages)
    }

    /// Accesses fed so far.
    #[getter]
    fn accesses(&self) -> u64 {
        self.inner.accesses()
    }

    /// Distinct pages referenced, read or written.
    #[getter]
    fn distinct_pages(&self) -> u64 {
        self.inner.distinct_pages()
    }

    /// Pages written at least once: the most frames any size needs.
    #[getter]
    fn written_pages(&self) -> u64 {
        self.inner.written_pages()
    }
}
