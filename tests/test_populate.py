"""MAP_POPULATE and MADV_POPULATE_READ/WRITE: the faults happen inside the
call (tests/test_kernel_conformance.py holds them against the host)."""

from __future__ import annotations

import errno

import numpy as np
import pytest

import vmsim
from vmsim import PAGE_SIZE, Outcome, traces


def pages(a, n):
    return np.arange(a, a + n * PAGE_SIZE, PAGE_SIZE, dtype=np.uint64)


def test_populate_counts_faults_but_no_accesses():
    sim = vmsim.Simulator(memory="64MiB")
    p = sim.spawn()
    a = p.mmap(8 * PAGE_SIZE, flags="private|anonymous|populate")
    assert p.counters()["min_flt"] == 8 and p.counters()["rss_anon"] == 8
    assert sum(sim.counters()["faults"].values()) == 0  # no access was made
    assert (p.access_batch(pages(a, 8), "w") == Outcome.HIT).all()
    b = p.mmap(8 * PAGE_SIZE, prot="r", flags="private|anonymous|populate")  # read faults: the zero page
    assert p.counters()["rss_anon"] == 8 and (p.access_batch(pages(b, 8), "r") == Outcome.HIT).all()
    n = p.mmap(8 * PAGE_SIZE, prot="none", flags="private|anonymous|populate")  # inaccessible: left alone
    assert int(p.pagemap(n, 8 * PAGE_SIZE).sum()) == 0
    p.exit()
    sim.check()


def test_populate_errors():
    sim = vmsim.Simulator(memory="64MiB")
    p = sim.spawn()
    f = sim.create_file(2 * PAGE_SIZE)
    a = p.mmap(4 * PAGE_SIZE, prot="r", flags="shared", file=f)  # two pages past the end of the file
    with pytest.raises(OSError) as e:
        p.madvise(a, 4 * PAGE_SIZE, "populate_read")
    assert e.value.errno == errno.EFAULT
    assert p.access(a + PAGE_SIZE, "r") is Outcome.HIT  # the pages before the error stay populated
    with pytest.raises(OSError) as e:
        p.madvise(a, PAGE_SIZE, "populate_write")
    assert e.value.errno == errno.EINVAL
    with pytest.raises(OSError) as e:
        p.madvise(a + 1, PAGE_SIZE, "populate_read")
    assert e.value.errno == errno.EINVAL
    p.madvise(a, 0, "populate_write")  # nothing to do
    # MAP_POPULATE ignores what it cannot populate: the mmap succeeds.
    b = p.mmap(4 * PAGE_SIZE, prot="r", flags="shared|populate", file=f)
    assert p.access(b + 3 * PAGE_SIZE, "r") is Outcome.SIGBUS
    p.exit()
    sim.check()


def test_populated_pages_are_known_to_reclaim():
    sim = vmsim.Simulator(memory="64MiB", swap="64MiB", policy="lru", resident_limit=16)
    p = sim.spawn()
    a = p.mmap(64 * PAGE_SIZE)
    p.madvise(a, 64 * PAGE_SIZE, "populate_write")
    assert p.counters()["rss_anon"] <= 16 and sim.counters()["evictions"] >= 48
    p.exit()
    sim.check()


def test_populate_records_and_replays(tmp_path):
    path = tmp_path / "pop.vmst"
    sim = vmsim.Simulator(memory="64MiB")
    with traces.record(sim, path) as rec:
        p = rec.spawn()
        a = p.mmap(16 * PAGE_SIZE, flags="private|anonymous|populate")
        b = p.mmap(16 * PAGE_SIZE)
        p.madvise(b, 16 * PAGE_SIZE, "populate_read")
        p.access_batch(pages(a, 16), "w")
        p.exit()
    replayed = vmsim.Simulator(memory="64MiB")
    result = traces.replay(replayed, path)
    assert result.min_flt == sim.counters()["min_flt"] == 32
    assert result.outcomes["HIT"] == 16
