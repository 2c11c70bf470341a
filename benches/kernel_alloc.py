"""Kernel allocator throughput from Python batch calls, and teardown cost.

    python benches/kernel_alloc.py

The Rust-side figures come from `cargo bench -p vmsim-core --bench kalloc`.
"""

from __future__ import annotations

import sys
import time

import numpy as np

import vmsim
from vmsim import PAGE_SIZE


def best(fn, repeat=5):
    return min(fn() for _ in range(repeat))


def main() -> int:
    sim = vmsim.Simulator(memory="1GiB")
    k = sim.kernel
    n = 200_000

    def kmalloc_pairs():
        t = time.perf_counter()
        ptrs = k.kmalloc_many(64, n)
        k.kfree_many(ptrs)
        return time.perf_counter() - t

    dt = best(kmalloc_pairs)
    print(f"kmalloc_many(64, {n}) + kfree_many: {n / dt / 1e6:.1f} M pairs/s")

    def page_pairs():
        t = time.perf_counter()
        for _ in range(20_000):
            k.free_pages(k.alloc_pages(0), 0)
        return time.perf_counter() - t

    dt = best(page_pairs, 3)
    print(f"alloc_pages(0)/free_pages one call each from Python: {20_000 / dt / 1e6:.2f} M pairs/s")

    def teardown():
        s = vmsim.Simulator(memory="1100MiB")
        p = s.spawn(layout="default")
        a = p.mmap(1 << 30)
        p.access_batch(np.arange(a, a + (1 << 30), PAGE_SIZE, dtype=np.uint64), "w")
        t = time.perf_counter()
        p.exit()
        dt = time.perf_counter() - t
        assert s.counters()["frames_free"] == s.counters()["frames_total"]
        return dt

    print(f"teardown of a 1 GiB resident address space (262144 pages): {best(teardown, 3) * 1e3:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
