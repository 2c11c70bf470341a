//! Every error the core reports. The Python bindings map each variant to one
//! Python exception in one place (`rust/python/src/errors.rs`).

use std::fmt;

/// The errno a Linux system call would return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Errno {
    EPERM = 1,
    EAGAIN = 11,
    EACCES = 13,
    ENOMEM = 12,
    EFAULT = 14,
    EBUSY = 16,
    EEXIST = 17,
    EINVAL = 22,
    EFBIG = 27,
    EOVERFLOW = 75,
}

impl Errno {
    pub fn name(self) -> &'static str {
        match self {
            Errno::EPERM => "EPERM",
            Errno::EAGAIN => "EAGAIN",
            Errno::EACCES => "EACCES",
            Errno::ENOMEM => "ENOMEM",
            Errno::EFAULT => "EFAULT",
            Errno::EBUSY => "EBUSY",
            Errno::EEXIST => "EEXIST",
            Errno::EINVAL => "EINVAL",
            Errno::EFBIG => "EFBIG",
            Errno::EOVERFLOW => "EOVERFLOW",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A system call failed the way Linux fails it.
    Sys { errno: Errno, reason: String },
    /// A malformed argument (bad prot string, bad size...): not a syscall error.
    InvalidArgument(String),
    /// The task has exited (or never existed).
    NoSuchProcess { pid: u32 },
    /// The OOM killer killed the task, for `reason`.
    OomKilled { pid: u32, reason: String },
    /// `check()` found a broken invariant.
    Invariant(String),
    /// Misuse of a kernel allocator, as KASAN / SLUB debug / kref would report it.
    KernelBug(String),
    /// A kernel allocation found no free simulated memory.
    OutOfMemory(String),
}

impl Error {
    pub fn sys(errno: Errno, reason: impl Into<String>) -> Self {
        Error::Sys { errno, reason: reason.into() }
    }
    pub fn invalid(reason: impl Into<String>) -> Self {
        Error::InvalidArgument(reason.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Sys { errno, reason } => write!(f, "{}: {}", errno.name(), reason),
            Error::InvalidArgument(r) => write!(f, "{r}"),
            Error::NoSuchProcess { pid } => write!(f, "process {pid} has exited"),
            Error::OomKilled { pid, reason } => write!(f, "process {pid} was killed by the OOM killer: {reason}"),
            Error::Invariant(r) => write!(f, "invariant broken: {r}"),
            Error::KernelBug(r) => write!(f, "kernel bug: {r}"),
            Error::OutOfMemory(r) => write!(f, "out of simulated memory: {r}"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
