"""MADV_FREE under memory pressure: clean lazily freed pages are discarded
without swap, rewritten ones are kept (tests/test_kernel_conformance.py holds
the no-pressure behaviour against the host)."""

from __future__ import annotations

import numpy as np

import vmsim
from vmsim import PAGE_SIZE, Outcome


def pages(a, n):
    return np.arange(a, a + n * PAGE_SIZE, PAGE_SIZE, dtype=np.uint64)


def test_pressure_discards_clean_lazyfree_pages_without_swap():
    sim = vmsim.Simulator(memory="64MiB", policy="fifo", resident_limit=32)  # no swap at all
    p = sim.spawn()
    a = p.mmap(32 * PAGE_SIZE)
    p.access_batch(pages(a, 32), "w")
    p.madvise(a, 16 * PAGE_SIZE, "free")  # the first half may go; the second half may not (no swap)
    b = p.mmap(16 * PAGE_SIZE)
    codes = p.access_batch(pages(b, 16), "w")
    assert (codes == Outcome.ANON_ZERO_FILL).all()  # room made by discarding, never OOM
    assert (p.access_batch(pages(a, 16), "r") == Outcome.ZERO_PAGE).any()  # discarded: zeroes
    assert sim.counters()["swap_outs"] == 0
    p.exit()
    sim.check()


def test_a_rewritten_lazyfree_page_is_kept():
    sim = vmsim.Simulator(memory="64MiB", policy="fifo", resident_limit=8)
    p = sim.spawn()
    a = p.mmap(8 * PAGE_SIZE)
    p.access_batch(pages(a, 8), "w")
    p.madvise(a, 8 * PAGE_SIZE, "free")
    p.access_batch(pages(a, 8), "w")  # written again: dirty, no longer discardable
    b = p.mmap(PAGE_SIZE)
    assert p.access(b, "w") is Outcome.OOM  # nothing can go: no swap, nothing clean to discard
    p.exit()
    sim.check()
