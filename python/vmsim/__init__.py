"""vmsim: a virtual-memory and page-fault simulator with a Rust core faithful to Linux.

>>> import vmsim
>>> sim = vmsim.Simulator(memory="64MiB")
>>> p = sim.spawn()
>>> a = p.mmap(1 << 20, prot="rw")
>>> p.access(a, "w")
<Outcome.ANON_ZERO_FILL: 2>
"""

from __future__ import annotations

from vmsim._core import (
    DEFAULT_VMA_INDEX,
    KERNEL_BASE,
    MMAP_MIN_ADDR,
    PAGE_SHIFT,
    PAGE_SIZE,
    TASK_SIZE,
    File,
    InvariantError,
    Kernel,
    KernelBugError,
    OutOfMemoryError,
    Process,
    ProcessExitedError,
    Simulator,
    VmsimError,
    parse_size,
    policies,
    vma_indexes,
)
from vmsim.outcome import Outcome

READ, WRITE, EXEC = 0, 1, 2
"""Access codes for ``access_batch`` op arrays."""

__all__ = [
    "DEFAULT_VMA_INDEX",
    "EXEC",
    "KERNEL_BASE",
    "MMAP_MIN_ADDR",
    "PAGE_SHIFT",
    "PAGE_SIZE",
    "READ",
    "TASK_SIZE",
    "WRITE",
    "File",
    "InvariantError",
    "Kernel",
    "KernelBugError",
    "OutOfMemoryError",
    "Outcome",
    "Process",
    "ProcessExitedError",
    "Simulator",
    "VmsimError",
    "parse_size",
    "policies",
    "vma_indexes",
]

__version__ = "0.1.0"
