//! The one place core errors become Python exceptions.

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyOSError, PyValueError};
use pyo3::PyErr;
use vmsim_core::tracefmt::ParseError;
use vmsim_core::Error;

create_exception!(_core, VmsimError, PyException, "Base class of vmsim's own errors.");
create_exception!(_core, InvariantError, VmsimError, "sim.check() found a broken invariant; the message names it.");
create_exception!(
    _core,
    ProcessExitedError,
    VmsimError,
    "The process (task) has exited; its handle can no longer be used."
);
create_exception!(
    _core,
    KernelBugError,
    VmsimError,
    "Misuse of a kernel allocator (double free, wrong release call...), as KASAN, SLUB debug or kref would report it."
);
create_exception!(_core, OutOfMemoryError, VmsimError, "A kernel allocation found no free simulated memory.");

/// A reason as an exception shows it: never more than a few lines, however
/// long the input it quotes.
fn brief(reason: String) -> String {
    const MAX: usize = 400;
    if reason.len() <= MAX {
        return reason;
    }
    let mut cut = MAX;
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}... ({} characters in all)", &reason[..cut], reason.len())
}

pub fn to_py(err: Error) -> PyErr {
    let err = match err {
        Error::Sys { errno, reason } => Error::Sys { errno, reason: brief(reason) },
        Error::InvalidArgument(r) => Error::InvalidArgument(brief(r)),
        Error::Invariant(r) => Error::Invariant(brief(r)),
        Error::KernelBug(r) => Error::KernelBug(brief(r)),
        Error::OutOfMemory(r) => Error::OutOfMemory(brief(r)),
        other => other,
    };
    match err {
        // OSError(errno, strerror) picks the right subclass (EEXIST -> FileExistsError...).
        Error::Sys { errno, reason } => PyOSError::new_err((errno as i32, format!("{}: {reason}", errno.name()))),
        Error::InvalidArgument(reason) => PyValueError::new_err(reason),
        Error::NoSuchProcess { pid } => ProcessExitedError::new_err(format!("process {pid} has exited")),
        e @ Error::OomKilled { .. } => ProcessExitedError::new_err(e.to_string()),
        Error::Invariant(reason) => InvariantError::new_err(reason),
        Error::KernelBug(reason) => KernelBugError::new_err(format!("BUG: {reason}")),
        Error::OutOfMemory(what) => OutOfMemoryError::new_err(format!("out of simulated memory: {what}")),
    }
}

/// `?`-friendly conversion for core results.
pub trait IntoPy<T> {
    fn py(self) -> pyo3::PyResult<T>;
}

impl<T> IntoPy<T> for vmsim_core::Result<T> {
    fn py(self) -> pyo3::PyResult<T> {
        self.map_err(to_py)
    }
}

/// A malformed trace: ValueError naming the line.
pub fn parse_error(e: ParseError) -> PyErr {
    PyValueError::new_err(brief(format!("line {}: {}", e.line, e.reason)))
}

impl<T> IntoPy<T> for Result<T, ParseError> {
    fn py(self) -> pyo3::PyResult<T> {
        self.map_err(parse_error)
    }
}
