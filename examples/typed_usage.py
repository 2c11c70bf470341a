"""A typed tour of the public API: `mypy --strict` checks it in CI, so the
stubs in python/vmsim/*.pyi stay usable from typed code."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

import vmsim
from vmsim import PAGE_SIZE, Outcome


def touch_pages(p: vmsim.Process, start: int, pages: int) -> npt.NDArray[np.uint8]:
    addrs = np.arange(start, start + pages * PAGE_SIZE, PAGE_SIZE, dtype=np.uint64)
    return p.access_batch(addrs, "w")


def main() -> int:
    sim = vmsim.Simulator(memory="64MiB", vma_index=vmsim.DEFAULT_VMA_INDEX)
    p = sim.spawn(layout="default")
    a = p.mmap(16 * PAGE_SIZE, prot="rw", flags="private|anonymous")
    first: Outcome = p.access(a, "r")
    assert first is Outcome.ZERO_PAGE and first.is_fault
    outcome, steps = p.access_traced(a, "w")
    assert outcome is Outcome.COW_COPY and all(isinstance(s, str) for s in steps)
    codes = touch_pages(p, a, 16)
    assert int(codes[1]) == Outcome.ANON_ZERO_FILL
    child = p.fork()
    assert child.access(a, "w") is Outcome.COW_COPY
    f = sim.create_file("64KiB", name="/data/blob")
    b = p.mmap(4 * PAGE_SIZE, prot="r", file=f)
    assert p.access(b) is Outcome.FILE_MAJOR
    x = sim.kernel.kmalloc(64)
    sim.kernel.kfree(x)
    c = sim.counters()  # a TypedDict: each field has its type
    used: float = 1 - c["frames_free"] / c["frames_total"]
    assert 0 < used < 1 and c["faults"]["COW_COPY"] == 2
    rss: int = p.counters()["rss_anon"] + p.counters()["rss_file"]
    assert rss > 0 and sim.vmstat()["pgfault"] == c["min_flt"] + c["maj_flt"]
    assert sim.kernel.meminfo()["MemTotal"] == c["frames_total"] * PAGE_SIZE // 1024 and str(Outcome.HIT) == "HIT"
    records: vmsim.SweepResult = vmsim.sweep([{"memory": "64MiB"}], ["zipf:pages=64,count=100"], executor="threads")
    assert records[0]["accesses"] == 100
    child.exit()
    p.exit()
    sim.check()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
