//! Converting Python arguments, with one rule for each kind of value:
//! sizes and counts out of range are ValueError, addresses outside
//! 0..2**64 are OverflowError, the wrong type is TypeError. Arrays are
//! copied into Rust-owned buffers before the GIL is released, so nothing
//! Python does meanwhile (resizing, mutating) can reach the simulation.

use crate::errors::IntoPy;
use numpy::{PyArray1, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyMemoryError, PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyString};
use vmsim_core::{units, Access};

/// The most accesses (or addresses) one call takes: 2**30, 8 GiB of addresses.
pub const MAX_BATCH: usize = 1 << 30;

fn int_arg(value: &Bound<'_, PyAny>, what: &str, expected: &str) -> PyResult<i128> {
    if !value.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be {expected}, got {}",
            value.get_type().name().map(|n| n.to_string()).unwrap_or_default()
        )));
    }
    value.extract::<i128>().map_err(|_| PyValueError::new_err(format!("{what} is far outside 0..2**64-1")))
}

/// A size or a count: an int in 0..=max; out of range is ValueError.
pub fn count(value: &Bound<'_, PyAny>, what: &str, max: u64) -> PyResult<u64> {
    let n = int_arg(value, what, "an int")?;
    u64::try_from(n)
        .ok()
        .filter(|&n| n <= max)
        .ok_or_else(|| PyValueError::new_err(format!("{what} must be between 0 and {max}, got {n}")))
}

/// A size given as int bytes or a string like "64KiB"; negative or past 2**64-1 is ValueError.
pub fn size(value: &Bound<'_, PyAny>, what: &str) -> PyResult<u64> {
    if let Ok(text) = value.cast::<PyString>() {
        return units::parse_size(text.to_str()?).py();
    }
    let n = int_arg(value, what, "an int (bytes) or a size string like \"256MiB\"")?;
    u64::try_from(n).map_err(|_| PyValueError::new_err(format!("{what} must be between 0 and 2**64-1, got {n}")))
}

/// A virtual or kernel address: an int in 0..2**64; outside it is OverflowError.
pub fn address(value: &Bound<'_, PyAny>, what: &str) -> PyResult<u64> {
    let n = int_arg(value, what, "an int address")?;
    u64::try_from(n).map_err(|_| PyOverflowError::new_err(format!("{what} {n} is outside the 64-bit range 0..2**64-1")))
}

/// An access given as "r"/"w"/"x" (or read/write/exec) or a code 0, 1, 2.
pub fn access(op: &Bound<'_, PyAny>) -> PyResult<Access> {
    if let Ok(text) = op.cast::<PyString>() {
        return Access::parse(text.to_str()?).py();
    }
    let code = int_arg(op, "op", "\"r\", \"w\", \"x\" or a code 0, 1, 2")?;
    u8::try_from(code)
        .ok()
        .and_then(Access::from_code)
        .ok_or_else(|| PyValueError::new_err(format!("op code {code} is not 0 (read), 1 (write) or 2 (exec)")))
}

/// Make room for `len` elements in `v` (emptied first), refusing absurd lengths.
fn reserve<T>(v: &mut Vec<T>, len: usize, what: &str) -> PyResult<()> {
    if len > MAX_BATCH {
        return Err(PyValueError::new_err(format!(
            "{what} has {len} elements; one call takes at most {MAX_BATCH}: split it"
        )));
    }
    v.clear();
    v.try_reserve_exact(len)
        .map_err(|_| PyMemoryError::new_err(format!("no host memory to copy {what} ({len} elements)")))
}

/// A 1-D numpy array of dtype `T` (or a sequence of ints), copied into a
/// Rust-owned buffer while the GIL is held.
pub fn owned_array<'py, T>(value: &Bound<'py, PyAny>, what: &str, dtype: &str) -> PyResult<Vec<T>>
where
    T: numpy::Element + Copy,
    for<'a> Vec<T>: FromPyObject<'a, 'py>,
{
    let mut v = Vec::new();
    copy_array(value, what, dtype, &mut v)?;
    Ok(v)
}

/// `owned_array` into a buffer the caller keeps: a warm buffer spares the
/// host the page faults of fresh memory on every batch.
pub fn copy_array<'py, T>(value: &Bound<'py, PyAny>, what: &str, dtype: &str, v: &mut Vec<T>) -> PyResult<()>
where
    T: numpy::Element + Copy,
    for<'a> Vec<T>: FromPyObject<'a, 'py>,
{
    if let Ok(arr) = value.cast::<PyArray1<T>>() {
        let ro = arr.try_readonly().map_err(|e| PyValueError::new_err(format!("{what}: {e}")))?;
        reserve(v, ro.len(), what)?;
        match ro.as_slice() {
            Ok(s) => v.extend_from_slice(s),
            Err(_) => v.extend(ro.as_array().iter().copied()), // strided: gather
        }
        return Ok(());
    }
    if let Ok(arr) = value.cast::<PyUntypedArray>() {
        if arr.ndim() != 1 {
            return Err(PyValueError::new_err(format!("{what} must be a 1-D array, got {} dimensions", arr.ndim())));
        }
        return Err(PyTypeError::new_err(format!("{what} must be a numpy {dtype} array, got dtype {}", arr.dtype())));
    }
    if value.is_instance_of::<PyString>() || value.hasattr("__len__").is_ok_and(|has| !has) {
        return Err(PyTypeError::new_err(format!("{what} must be a numpy {dtype} array or a list of ints")));
    }
    if let Ok(len) = value.len() {
        reserve(v, len, what)?; // refuse absurd lengths before Python builds a list of them
    }
    let items: Vec<T> = value
        .extract()
        .map_err(|_| PyTypeError::new_err(format!("{what} must be a numpy {dtype} array or a list of ints")))?;
    reserve(v, items.len(), what)?;
    v.extend_from_slice(&items);
    Ok(())
}

/// Per-thread buffers a batch copies its inputs into, kept between calls up
/// to `KEPT` elements.
pub struct Scratch {
    pub addrs: Vec<u64>,
    pub ops: Vec<u8>,
}

const KEPT: usize = 1 << 22;

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = const {
        std::cell::RefCell::new(Scratch { addrs: Vec::new(), ops: Vec::new() })
    };
}

impl Scratch {
    /// This thread's buffers (empty ones if a call on this thread holds them already).
    pub fn take() -> Scratch {
        SCRATCH.with(|s| std::mem::replace(&mut *s.borrow_mut(), Scratch { addrs: Vec::new(), ops: Vec::new() }))
    }

    /// Hand the buffers back for the next call, unless they grew past what is kept.
    pub fn give_back(mut self) {
        if self.addrs.capacity() > KEPT {
            self.addrs = Vec::new();
        }
        if self.ops.capacity() > KEPT {
            self.ops = Vec::new();
        }
        SCRATCH.with(|s| *s.borrow_mut() = self);
    }
}
