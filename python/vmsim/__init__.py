"""vmsim: a virtual-memory and page-fault simulator with a Rust core faithful to Linux.

>>> import vmsim
>>> sim = vmsim.Simulator(memory="64MiB")
>>> p = sim.spawn()
>>> a = p.mmap(1 << 20, prot="rw")
>>> p.access(a, "w")
<Outcome.ANON_ZERO_FILL: 2>
"""

from __future__ import annotations

from typing import Final

from vmsim._core import (
    DEFAULT_VMA_INDEX,
    KERNEL_BASE,
    MMAP_MIN_ADDR,
    PAGE_SHIFT,
    PAGE_SIZE,
    PM_FILE,
    PM_MMAP_EXCLUSIVE,
    PM_PFN_MASK,
    PM_PRESENT,
    PM_SWAP,
    TASK_SIZE,
    Cgroup,
    File,
    InvariantError,
    Kernel,
    KernelBugError,
    OutOfMemoryError,
    Process,
    ProcessExitedError,
    Simulator,
    StackDistances,
    VmsimError,
    parse_size,
    policies,
    vma_indexes,
)
from vmsim.outcome import Outcome
from vmsim.sweeps import SweepResult, sweep

READ: Final = 0
"""Op code of a read, for ``access_batch`` op arrays."""
WRITE: Final = 1
"""Op code of a write."""
EXEC: Final = 2
"""Op code of an instruction fetch."""

__all__ = [
    "DEFAULT_VMA_INDEX",
    "EXEC",
    "KERNEL_BASE",
    "MMAP_MIN_ADDR",
    "PAGE_SHIFT",
    "PAGE_SIZE",
    "PM_FILE",
    "PM_MMAP_EXCLUSIVE",
    "PM_PFN_MASK",
    "PM_PRESENT",
    "PM_SWAP",
    "READ",
    "TASK_SIZE",
    "WRITE",
    "Cgroup",
    "File",
    "InvariantError",
    "Kernel",
    "KernelBugError",
    "OutOfMemoryError",
    "Outcome",
    "Process",
    "ProcessExitedError",
    "Simulator",
    "StackDistances",
    "SweepResult",
    "VmsimError",
    "parse_size",
    "policies",
    "sweep",
    "vma_indexes",
]

__version__ = "0.1.0"
