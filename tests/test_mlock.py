"""mlock, mlock2(MLOCK_ONFAULT), munlock, mlockall, munlockall
(tests/test_kernel_conformance.py holds the faults and errors against the host)."""

from __future__ import annotations

import errno

import numpy as np
import pytest

import vmsim
from vmsim import PAGE_SIZE, Outcome, traces


def pages(a, n):
    return np.arange(a, a + n * PAGE_SIZE, PAGE_SIZE, dtype=np.uint64)


def test_locked_pages_are_never_reclaimed():
    sim = vmsim.Simulator(memory="64MiB", swap="64MiB", policy="lru", resident_limit=64)
    p = sim.spawn()
    locked = p.mmap(32 * PAGE_SIZE)
    p.mlock(locked, 32 * PAGE_SIZE)
    other = p.mmap(256 * PAGE_SIZE)
    p.access_batch(pages(other, 256), "w")  # pressure: only the unlocked pages go to swap
    assert (p.access_batch(pages(locked, 32), "w") == Outcome.HIT).all()
    assert int((p.pagemap(locked, 32 * PAGE_SIZE) & np.uint64(vmsim.PM_PRESENT) > 0).sum()) == 32
    p.munlock(locked, 32 * PAGE_SIZE)
    p.access_batch(pages(other, 256), "w")
    assert int((p.pagemap(locked, 32 * PAGE_SIZE) & np.uint64(vmsim.PM_SWAP) > 0).sum()) > 0  # evictable again
    p.exit()
    sim.check()


def test_locks_show_in_smaps_and_counters_and_are_not_inherited():
    sim = vmsim.Simulator(memory="64MiB")
    p = sim.spawn()
    a = p.mmap(16 * PAGE_SIZE)
    p.mlock(a, 16 * PAGE_SIZE)
    assert p.counters()["locked_vm"] == 16
    (rec,) = [r for r in p.smaps() if r["start"] == a]
    assert rec["Locked"] == rec["Rss"] == 64 and p.smaps_rollup()["Locked"] == 64
    child = p.fork()
    assert child.counters()["locked_vm"] == 0  # dup_mmap clears VM_LOCKED
    child.exit()
    p.munlockall()
    assert p.counters()["locked_vm"] == 0
    p.exit()
    sim.check()


def test_mlockall_future_locks_and_populates_new_mappings():
    sim = vmsim.Simulator(memory="64MiB", memlock_rlimit="1MiB")
    p = sim.spawn()
    p.mlockall("current|future")
    before = p.counters()["min_flt"]
    a = p.mmap(16 * PAGE_SIZE)
    assert p.counters()["min_flt"] - before == 16 and p.counters()["locked_vm"] == 16
    assert (p.access_batch(pages(a, 16), "w") == Outcome.HIT).all()
    with pytest.raises(OSError) as e:
        p.mmap(1 << 20)  # would pass the 1 MiB limit
    assert e.value.errno == errno.EAGAIN
    p.munlockall()
    b = p.mmap(1 << 20)  # MCL_FUTURE forgotten: neither locked nor populated
    assert p.counters()["locked_vm"] == 0 and int(p.pagemap(b, 1 << 20).sum()) == 0
    big = sim.spawn()
    big.mmap(2 << 20)
    with pytest.raises(OSError) as e:
        big.mlockall("current")  # the address space is larger than the limit
    assert e.value.errno == errno.ENOMEM
    with pytest.raises(ValueError, match="mlockall flag"):
        p.mlockall("sometimes")
    with pytest.raises(OSError) as e:
        p.mlockall("onfault")
    assert e.value.errno == errno.EINVAL
    p.exit()
    big.exit()
    sim.check()


def test_a_zero_limit_refuses_mlock():
    sim = vmsim.Simulator(memory="64MiB", memlock_rlimit=0)
    p = sim.spawn()
    a = p.mmap(PAGE_SIZE)
    with pytest.raises(PermissionError):
        p.mlock(a, PAGE_SIZE)
    p.exit()


def test_mlock_records_and_replays(tmp_path):
    path = tmp_path / "mlock.vmst"
    sim = vmsim.Simulator(memory="64MiB")
    with traces.record(sim, path) as rec:
        p = rec.spawn()
        a = p.mmap(32 * PAGE_SIZE)
        p.mlock(a, 16 * PAGE_SIZE)
        p.mlock(a + 16 * PAGE_SIZE, 16 * PAGE_SIZE, onfault=True)
        p.munlock(a, 4 * PAGE_SIZE)
        p.mlockall("MCL_CURRENT|MCL_FUTURE")
        p.mmap(8 * PAGE_SIZE)
        p.munlockall()
        p.access_batch(pages(a, 32), "w")
        p.exit()
    again = vmsim.Simulator(memory="64MiB")
    result = traces.replay(again, path)
    assert result.min_flt == sim.counters()["min_flt"]


def test_a_partly_locked_mapping_forks_cleanly():
    """The fuzzer's find: the child's copies lose VM_LOCKED, and neighbours
    that only the lock kept apart merge (the invariants hold)."""
    sim = vmsim.Simulator(memory="64MiB")
    p = sim.spawn()
    a = p.mmap(8 * PAGE_SIZE)
    p.mlock(a, 4 * PAGE_SIZE)
    child = p.fork()
    assert len(p.vmas()) == 2 and child.counters()["locked_vm"] == 0
    sim.check()
    child.exit()
    p.exit()
