"""fork with copy-on-write, threads sharing one address space, and teardown."""

from __future__ import annotations

import numpy as np
import pytest

import vmsim
from vmsim import PAGE_SIZE, Outcome

from conftest import all_exited


def test_child_first_write_copies_parent_next_write_reuses(sim, proc):
    a = proc.mmap(4 * PAGE_SIZE)
    for i in range(4):
        proc.access(a + i * PAGE_SIZE, "w")
    before = proc.counters()["min_flt"]
    child = proc.fork()
    assert child.counters()["min_flt"] == 0
    assert child.counters()["rss_anon"] == 4
    assert child.access(a, "w") is Outcome.COW_COPY
    assert proc.access(a, "w") is Outcome.COW_REUSE
    assert proc.access(a + PAGE_SIZE, "w") is Outcome.COW_COPY
    assert child.access(a + PAGE_SIZE, "w") is Outcome.COW_REUSE
    # Reads after fork are hits: the pages stay mapped read-only.
    assert child.access(a + 2 * PAGE_SIZE, "r") is Outcome.HIT
    assert proc.counters()["min_flt"] == before + 2
    assert child.counters()["min_flt"] == 2
    sim.check()


def test_fork_uses_extra_frames_only_when_copying(sim, proc):
    a = proc.mmap(8 * PAGE_SIZE)
    proc.access_batch(np.arange(a, a + 8 * PAGE_SIZE, PAGE_SIZE, dtype=np.uint64), "w")
    used = sim.counters()["frames_used"]
    child = proc.fork()
    after_fork = sim.counters()["frames_used"]
    assert after_fork - used == 1 + child.counters()["pt_pages"]  # PGD + tables, no data pages
    child.access(a, "w")
    assert sim.counters()["frames_used"] == after_fork + 1


def test_zero_page_only_vma_is_not_copied(sim, proc):
    a = proc.mmap(PAGE_SIZE)
    proc.access(a, "r")  # zero page only: no anon_vma
    child = proc.fork()
    assert child.access(a, "r") is Outcome.ZERO_PAGE  # the child faults it in again
    b = proc.mmap(2 * PAGE_SIZE, addr=a + 16 * PAGE_SIZE)
    proc.access(b, "r")
    proc.access(b + PAGE_SIZE, "w")  # now the VMA has anon pages: the zero-page PTE is copied too
    child2 = proc.fork()
    assert child2.access(b, "r") is Outcome.HIT
    assert child2.access(b + PAGE_SIZE, "r") is Outcome.HIT


def test_shared_anonymous_memory_is_not_cow(sim, proc):
    a = proc.mmap(PAGE_SIZE, flags="shared|anonymous")
    assert proc.access(a, "w") is Outcome.FILE_MINOR
    child = proc.fork()
    assert child.access(a, "w") is Outcome.FILE_MINOR  # refaulted from the shmem page cache
    assert proc.access(a, "w") is Outcome.HIT
    assert child.counters()["rss_shmem"] == 1
    sim.check()


def test_dontfork_mapping_is_absent_in_child(sim, proc):
    a = proc.mmap(2 * PAGE_SIZE)
    proc.access(a, "w")
    proc.madvise(a, PAGE_SIZE, "dontfork")
    child = proc.fork()
    assert child.access(a, "r") is Outcome.SEGV_MAPERR
    assert child.access(a + PAGE_SIZE, "r") is Outcome.ZERO_PAGE
    assert len(proc.vmas()) == 2 and "dontfork" in proc.vmas()[0][3]


def test_threads_share_the_address_space(sim, proc):
    a = proc.mmap(PAGE_SIZE)
    t = proc.clone_thread(stack_size=0)
    assert t.tgid == proc.pid
    assert t.access(a, "w") is Outcome.ANON_ZERO_FILL
    assert proc.access(a, "w") is Outcome.HIT
    assert proc.threads() == [proc.pid, t.pid]
    # Fault counts are per process: all threads together.
    assert proc.counters()["min_flt"] == 1 == t.counters()["min_flt"]


def test_thread_stack_has_guard_page(sim, proc):
    t = proc.clone_thread()
    lo, hi = t.thread_stack
    assert hi - lo == 8 << 20
    assert t.access(hi - 8, "w") is Outcome.ANON_ZERO_FILL
    assert t.access(lo - 1, "w") is Outcome.SEGV_ACCERR


def test_last_thread_exit_tears_down(sim, proc):
    a = proc.mmap(16 * PAGE_SIZE)
    proc.access_batch(np.arange(a, a + 16 * PAGE_SIZE, PAGE_SIZE, dtype=np.uint64), "w")
    t = proc.clone_thread()
    proc.exit()
    assert not all_exited(sim)  # the thread still holds the address space
    assert t.access(a, "r") is Outcome.HIT
    t.exit()
    assert all_exited(sim)


def test_every_frame_returns_after_all_exit(sim):
    p = sim.spawn(layout="default")
    a = p.mmap(1 << 20)
    p.access_batch(np.arange(a, a + (1 << 20), PAGE_SIZE, dtype=np.uint64), "w")
    c1 = p.fork()
    c2 = c1.fork()
    c1.access(a, "w")
    c2.access(a + PAGE_SIZE, "w")
    t = c2.clone_thread()
    sim.check()
    for task in (p, c1, c2, t):
        task.exit()
    assert all_exited(sim)
    assert sim.counters()["processes"] == 0


def test_exit_group_ends_every_thread(sim, proc):
    t1 = proc.clone_thread()
    t2 = proc.clone_thread()
    t1.exit_group()
    assert not proc.alive and not t2.alive
    assert all_exited(sim)


def test_exited_process_raises(sim, proc):
    proc.exit()
    with pytest.raises(vmsim.ProcessExitedError):
        proc.access(0x1000)
    with pytest.raises(vmsim.ProcessExitedError):
        proc.exit()
    with pytest.raises(vmsim.ProcessExitedError):
        proc.mmap(PAGE_SIZE)
    with pytest.raises(vmsim.ProcessExitedError):
        proc.counters()


def test_fork_out_of_memory_fails_cleanly():
    sim = vmsim.Simulator(memory="64KiB")
    p = sim.spawn()
    a = p.mmap(9 * PAGE_SIZE)
    for i in range(9):
        p.access(a + i * PAGE_SIZE, "w")
    free = sim.counters()["frames_free"]
    assert free < 4  # not enough for the child's 4 table pages
    with pytest.raises(MemoryError if False else OSError) as err:
        p.fork()
    assert err.value.errno == 12
    sim.check()
    assert sim.counters()["frames_free"] == free
    p.exit()
    assert all_exited(sim)
