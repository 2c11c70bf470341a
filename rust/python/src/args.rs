//! Converting Python arguments, with one rule for each kind of value:
//! sizes and counts out of range are ValueError, addresses outside
//! 0..2**64 are OverflowError, the wrong type is TypeError. A contiguous
//! numpy array is read in place through a read-only borrow while the GIL is
//! released (held for the call, it cannot be resized meanwhile; like numpy's
//! own GIL-free loops, writing to it from another thread during the call is
//! the caller's race); anything else is copied first.

use crate::errors::IntoPy;
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1, PyUntypedArray, PyUntypedArrayMethods};
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

/// Refuse absurd lengths.
fn check_len(len: usize, what: &str) -> PyResult<()> {
    if len > MAX_BATCH {
        return Err(PyValueError::new_err(format!(
            "{what} has {len} elements; one call takes at most {MAX_BATCH}: split it"
        )));
    }
    Ok(())
}

/// Make room for `len` elements in `v` (emptied first), refusing absurd lengths.
fn reserve<T>(v: &mut Vec<T>, len: usize, what: &str) -> PyResult<()> {
    check_len(len, what)?;
    v.clear();
    v.try_reserve_exact(len)
        .map_err(|_| PyMemoryError::new_err(format!("no host memory to copy {what} ({len} elements)")))
}

/// A 1-D array argument of dtype `T`: a contiguous numpy array's own
/// buffer, borrowed read-only, else (strided arrays, sequences of ints) a copy.
pub enum Elements<'py, T: numpy::Element> {
    Borrowed(PyReadonlyArray1<'py, T>),
    Copied(Vec<T>),
}

impl<'py, T> Elements<'py, T>
where
    T: numpy::Element + Copy,
    for<'a> Vec<T>: FromPyObject<'a, 'py>,
    for<'a> T: FromPyObject<'a, 'py>,
{
    /// `value` as elements of `dtype`; `what` names it in errors.
    pub fn from_arg(value: &Bound<'py, PyAny>, what: &str, dtype: &str) -> PyResult<Self> {
        if let Ok(arr) = value.cast::<PyArray1<T>>() {
            let ro = arr.try_readonly().map_err(|e| PyValueError::new_err(format!("{what}: {e}")))?;
            check_len(ro.len(), what)?;
            if ro.as_slice().is_ok() {
                return Ok(Elements::Borrowed(ro));
            }
            let mut v = Vec::new();
            reserve(&mut v, ro.len(), what)?;
            v.extend(ro.as_array().iter().copied()); // strided: gather
            return Ok(Elements::Copied(v));
        }
        if let Ok(arr) = value.cast::<PyUntypedArray>() {
            if arr.ndim() != 1 {
                return Err(PyValueError::new_err(format!(
                    "{what} must be a 1-D array, got {} dimensions",
                    arr.ndim()
                )));
            }
            return Err(PyTypeError::new_err(format!(
                "{what} must be a numpy {dtype} array, got dtype {}",
                arr.dtype()
            )));
        }
        if value.is_instance_of::<PyString>() || value.hasattr("__len__").is_ok_and(|has| !has) {
            return Err(PyTypeError::new_err(format!("{what} must be a numpy {dtype} array or a list of ints")));
        }
        if let Ok(len) = value.len() {
            check_len(len, what)?; // refuse absurd lengths before Python builds a list of them
        }
        let items: Vec<T> = value.extract().map_err(|_| bad_element::<T>(value, what, dtype))?;
        check_len(items.len(), what)?;
        Ok(Elements::Copied(items))
    }

    /// The elements, to read without the GIL.
    pub fn as_slice(&self) -> &[T] {
        match self {
            Elements::Borrowed(ro) => ro.as_slice().expect("only contiguous arrays are borrowed"),
            Elements::Copied(v) => v,
        }
    }
}

/// A 1-D numpy array of dtype `T` (or a sequence of ints) as an owned vector.
pub fn owned_array<'py, T>(value: &Bound<'py, PyAny>, what: &str, dtype: &str) -> PyResult<Vec<T>>
where
    T: numpy::Element + Copy,
    for<'a> Vec<T>: FromPyObject<'a, 'py>,
    for<'a> T: FromPyObject<'a, 'py>,
{
    Ok(match Elements::from_arg(value, what, dtype)? {
        Elements::Borrowed(ro) => ro.as_slice().map(<[T]>::to_vec).unwrap_or_default(),
        Elements::Copied(v) => v,
    })
}

/// Why a sequence did not convert, naming its first bad element: an int out
/// of range is an OverflowError for addresses (as a single address is) and a
/// ValueError otherwise; anything else is a TypeError.
fn bad_element<'py, T>(value: &Bound<'py, PyAny>, what: &str, dtype: &str) -> PyErr
where
    T: for<'a> FromPyObject<'a, 'py>,
{
    let generic = || PyTypeError::new_err(format!("{what} must be a numpy {dtype} array or a list of ints"));
    let Ok(iter) = value.try_iter() else { return generic() };
    for (i, item) in iter.enumerate() {
        let Ok(item) = item else { return generic() };
        if item.extract::<T>().is_ok() {
            continue;
        }
        if !item.is_instance_of::<PyInt>() {
            let kind = item.get_type().name().map_or_else(|_| "?".to_string(), |n| n.to_string());
            return PyTypeError::new_err(format!("{what}[{i}] is a {kind}, not an int"));
        }
        return if dtype == "uint64" {
            PyOverflowError::new_err(format!("{what}[{i}] = {item} is outside the 64-bit range 0..2**64-1"))
        } else {
            PyValueError::new_err(format!("{what}[{i}] = {item} is out of range for {dtype}"))
        };
    }
    generic()
}
