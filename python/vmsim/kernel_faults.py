"""The same fault workloads on the host's real kernel, measured with getrusage.

Each workload maps fresh anonymous memory with Python's mmap module (THP
turned off with MADV_NOHUGEPAGE, so each 4 KiB page faults on its own) and
touches one byte per page through a strided numpy view, so the touching loop
runs in C and the time is the kernel's.
"""

from __future__ import annotations

import mmap
import os
import resource
import time
from dataclasses import dataclass

import numpy as np

PAGE = mmap.PAGESIZE


@dataclass
class KernelRun:
    faults: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.faults / self.seconds if self.seconds else float("nan")


def _fresh_mapping(nbytes: int) -> tuple[mmap.mmap, np.ndarray]:
    m = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if hasattr(mmap, "MADV_NOHUGEPAGE"):
        m.madvise(mmap.MADV_NOHUGEPAGE)
    view = np.frombuffer(m, dtype=np.uint8)[::PAGE]
    return m, view


def _min_flt() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _first_touch(npages: int, touch) -> KernelRun:
    """Faults and time of `touch(pages)` on a fresh mapping."""
    m, pages = _fresh_mapping(npages * PAGE)
    f0, t0 = _min_flt(), time.perf_counter()
    touch(pages)
    t1, f1 = time.perf_counter(), _min_flt()
    del pages
    m.close()
    return KernelRun(f1 - f0, t1 - t0)


def _write(pages) -> None:
    pages[:] = 1


def write_faults(npages: int) -> KernelRun:
    return _first_touch(npages, _write)


def read_faults(npages: int) -> KernelRun:
    return _first_touch(npages, lambda pages: int(pages.sum()))


def cow_faults_after_fork(npages: int) -> KernelRun:
    """The child writes every page its parent populated; measured in the child."""
    m, pages = _fresh_mapping(npages * PAGE)
    pages[:] = 1
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: measure, report, leave without running Python cleanup
        os.close(r)
        f0, t0 = _min_flt(), time.perf_counter()
        pages[:] = 2
        t1, f1 = time.perf_counter(), _min_flt()
        os.write(w, f"{f1 - f0} {t1 - t0}".encode())
        os._exit(0)
    os.close(w)
    data = os.read(r, 100).decode().split()
    os.close(r)
    os.waitpid(pid, 0)
    del pages
    m.close()
    return KernelRun(int(data[0]), float(data[1]))
