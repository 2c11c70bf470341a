"""access_batch: numpy in and out, validation, GIL release, and agreement with access()."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import vmsim
from vmsim import PAGE_SIZE, Outcome


def test_batch_matches_single_accesses(sim):
    rng = np.random.default_rng(7)
    a_proc, b_proc = sim.spawn(), sim.spawn()
    for p in (a_proc, b_proc):
        p.mmap(64 * PAGE_SIZE, addr=0x1000_0000, fixed=True)
        p.mmap(16 * PAGE_SIZE, prot="r", addr=0x2000_0000, fixed=True)
    addrs = np.concatenate(
        [
            rng.integers(0x1000_0000, 0x1000_0000 + 80 * PAGE_SIZE, 500),
            rng.integers(0x2000_0000, 0x2000_0000 + 20 * PAGE_SIZE, 200),
        ]
    ).astype(np.uint64)
    ops = rng.integers(0, 3, addrs.size).astype(np.uint8)
    codes = a_proc.access_batch(addrs, ops)
    singles = [b_proc.access(int(x), int(o)) for x, o in zip(addrs, ops)]
    assert codes.dtype == np.uint8 and codes.shape == addrs.shape
    assert [Outcome(c) for c in codes] == singles
    assert a_proc.counters() == b_proc.counters()


def test_batch_counts_every_write_fault(sim, proc):
    n = 1000
    a = proc.mmap(n * PAGE_SIZE)
    codes = proc.access_batch(np.arange(a, a + n * PAGE_SIZE, PAGE_SIZE, dtype=np.uint64), "w")
    assert (codes == Outcome.ANON_ZERO_FILL).all()
    assert proc.counters()["min_flt"] == n
    assert sim.counters()["faults"]["ANON_ZERO_FILL"] == n
    codes = proc.access_batch(np.arange(a, a + n * PAGE_SIZE, PAGE_SIZE, dtype=np.uint64), vmsim.READ)
    assert (codes == Outcome.HIT).all()


def test_batch_accepts_lists_and_non_contiguous_arrays(sim, proc):
    a = proc.mmap(4 * PAGE_SIZE)
    assert list(proc.access_batch([a, a + PAGE_SIZE], [1, 0])) == [Outcome.ANON_ZERO_FILL, Outcome.ZERO_PAGE]
    strided = np.arange(a, a + 4 * PAGE_SIZE, PAGE_SIZE // 2, dtype=np.uint64)[::2]
    assert not strided.flags["C_CONTIGUOUS"]
    assert list(proc.access_batch(strided, "r")) == [Outcome.HIT, Outcome.HIT, Outcome.ZERO_PAGE, Outcome.ZERO_PAGE]


@pytest.mark.parametrize(
    "addrs, ops, exc",
    [
        (np.zeros(3, dtype=np.int64), "r", TypeError),
        (np.zeros(3, dtype=np.float64), "r", TypeError),
        (np.zeros(3, dtype=np.uint64), np.zeros(3, dtype=np.int32), TypeError),
        (np.zeros(3, dtype=np.uint64), np.zeros(2, dtype=np.uint8), ValueError),
        (np.zeros(3, dtype=np.uint64), np.array([0, 1, 3], dtype=np.uint8), ValueError),
        (np.zeros((2, 2), dtype=np.uint64), "r", ValueError),
        (np.zeros(3, dtype=np.uint64), "q", ValueError),
        ("not an array", "r", TypeError),
        ([-1], "r", OverflowError),
    ],
)
def test_batch_rejects_bad_input_before_running(sim, proc, addrs, ops, exc):
    with pytest.raises(exc):
        proc.access_batch(addrs, ops)
    assert proc.counters()["min_flt"] == 0
    assert sum(sim.counters()["faults"].values()) == 0


def test_batch_releases_the_gil(sim):
    """Two Python threads drive two processes at once; the totals add up."""
    procs = [sim.spawn() for _ in range(2)]
    n = 5_000
    bases = [p.mmap(n * PAGE_SIZE) for p in procs]

    def work(p, base):
        for _ in range(5):
            p.access_batch(np.arange(base, base + n * PAGE_SIZE, PAGE_SIZE, dtype=np.uint64), "w")

    threads = [threading.Thread(target=work, args=(p, b)) for p, b in zip(procs, bases)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        assert p.counters()["min_flt"] == n
    assert sim.counters()["faults"]["HIT"] == 2 * 4 * n
    sim.check()
