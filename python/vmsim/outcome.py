"""What one simulated access did. Values are the codes ``access_batch`` returns."""

from __future__ import annotations

from enum import IntEnum


class Outcome(IntEnum):
    """The outcome of one access (kept in step with ``fault::Outcome`` in the Rust core)."""

    HIT = 0  #: the PTE allowed the access: no fault
    ZERO_PAGE = 1  #: read fault on anonymous memory: the shared zero page was mapped
    ANON_ZERO_FILL = 2  #: write fault on anonymous memory: a zeroed frame was mapped
    COW_COPY = 3  #: write-protect fault: the page was copied to a new frame
    COW_REUSE = 4  #: write-protect fault: the page was ours alone and made writable
    FILE_MINOR = 5  #: page-cache (or shmem) page mapped without I/O
    FILE_MAJOR = 6  #: page-cache miss: the page was read in (major fault)
    SWAP_IN = 7  #: the page was brought back from swap
    SEGV_MAPERR = 8  #: SIGSEGV, no mapping (or a kernel address)
    SEGV_ACCERR = 9  #: SIGSEGV, mapping forbids the access
    SEGV_NONCANONICAL = 10  #: #GP on a non-canonical address: SIGSEGV, si_code SI_KERNEL
    SIGBUS = 11  #: access beyond the end of a mapped file
    OOM = 12  #: no frame could be had: the fault failed with VM_FAULT_OOM

    @property
    def is_signal(self) -> bool:
        """Whether the task gets a signal (SIGSEGV or SIGBUS)."""
        return self in _SIGNALS

    @property
    def is_fault(self) -> bool:
        """Whether the access was a counted page fault (min_flt or maj_flt)."""
        return self in _COUNTED


_SIGNALS = frozenset({Outcome.SEGV_MAPERR, Outcome.SEGV_ACCERR, Outcome.SEGV_NONCANONICAL, Outcome.SIGBUS})
_COUNTED = frozenset(
    {
        Outcome.ZERO_PAGE,
        Outcome.ANON_ZERO_FILL,
        Outcome.COW_COPY,
        Outcome.COW_REUSE,
        Outcome.FILE_MINOR,
        Outcome.FILE_MAJOR,
        Outcome.SWAP_IN,
    }
)
