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


def test_pageout_swaps_anonymous_pages_mapped_only_here():
    sim = vmsim.Simulator(memory="64MiB", swap="64MiB")
    p = sim.spawn()
    a = p.mmap(8 * PAGE_SIZE)
    p.access_batch(pages(a, 8), "w")
    child = p.fork()  # pages 0..3 shared with the child: left alone
    child.access_batch(pages(a + 4 * PAGE_SIZE, 4), "w")  # the child copies 4..7: the parent's are its own again
    p.madvise(a, 8 * PAGE_SIZE, "pageout")
    entries = p.pagemap(a, 8 * PAGE_SIZE)
    assert (entries[:4] & np.uint64(vmsim.PM_PRESENT) > 0).all()
    assert (entries[4:] & np.uint64(vmsim.PM_SWAP) > 0).all()
    assert (p.access_batch(pages(a + 4 * PAGE_SIZE, 4), "r") == Outcome.SWAP_IN).all()
    child.exit()
    p.exit()
    sim.check()


def test_remove_punches_a_hole_every_process_sees():
    sim = vmsim.Simulator(memory="64MiB")
    p = sim.spawn()
    s = p.mmap(8 * PAGE_SIZE, flags="shared|anonymous")
    p.access_batch(pages(s, 8), "w")
    child = p.fork()
    child.access_batch(pages(s, 8), "r")
    p.madvise(s, 4 * PAGE_SIZE, "remove")
    assert (child.pagemap(s, 4 * PAGE_SIZE) == 0).all()  # gone from the child's page table too
    assert (child.access_batch(pages(s, 4), "r") == Outcome.FILE_MINOR).all()  # fresh pages again
    f = sim.create_file(4 * PAGE_SIZE)
    shared = p.mmap(4 * PAGE_SIZE, prot="rw", flags="shared", file=f)
    private = child.mmap(4 * PAGE_SIZE, prot="rw", flags="private", file=f)
    child.access(private, "w")  # a private copy of page 0
    p.access_batch(pages(shared, 4), "w")
    p.madvise(shared, 4 * PAGE_SIZE, "remove")
    assert f.cached_pages == 0 and child.access(private, "r") is Outcome.HIT  # the copy stays (even_cows = 0)
    child.exit()
    p.exit()
    sim.check()
