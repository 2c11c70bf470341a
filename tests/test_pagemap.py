"""Process.pagemap: /proc/PID/pagemap entries for simulated pages, checked
against the host's own pagemap where it can show the same state."""

from __future__ import annotations

import mmap
import os
import struct
import sys
import time

import numpy as np
import pytest

import vmsim
from vmsim import PAGE_SIZE, PM_FILE, PM_MMAP_EXCLUSIVE, PM_PFN_MASK, PM_PRESENT, PM_SWAP

FLAGS = PM_PRESENT | PM_SWAP | PM_FILE | PM_MMAP_EXCLUSIVE  # soft-dirty (bit 55) is not modelled


def test_entries_for_each_kind_of_page():
    sim = vmsim.Simulator(memory="64MiB", swap="64MiB", policy="fifo", resident_limit=8)
    p = sim.spawn()
    a = p.mmap(4 * PAGE_SIZE)
    p.access(a, "r")  # the zero page
    p.access(a + PAGE_SIZE, "w")  # an anonymous page of its own
    f = sim.create_file(4 * PAGE_SIZE)
    b = p.mmap(4 * PAGE_SIZE, prot="r", file=f)
    p.access(b, "r")
    e = p.pagemap(a, 4 * PAGE_SIZE)
    assert e.dtype == np.uint64 and e.size == 4
    assert int(e[0]) == PM_PRESENT  # no page behind the zero page
    assert int(e[1]) & FLAGS == PM_PRESENT | PM_MMAP_EXCLUSIVE and int(e[1]) & PM_PFN_MASK > 0
    assert int(e[2]) == int(e[3]) == 0
    assert int(p.pagemap(b, PAGE_SIZE)[0]) & FLAGS == PM_PRESENT | PM_FILE | PM_MMAP_EXCLUSIVE
    child = p.fork()
    assert int(p.pagemap(a + PAGE_SIZE, 1)[0]) & FLAGS == PM_PRESENT  # shared with the child now
    assert child.pagemap(a + PAGE_SIZE, 1)[0] == p.pagemap(a + PAGE_SIZE, 1)[0]
    child.exit()
    # Swapped out: the swap bit and the offset from bit 5, not present.
    c = p.mmap(32 * PAGE_SIZE)
    p.access_batch(np.arange(c, c + 32 * PAGE_SIZE, PAGE_SIZE, dtype=np.uint64), "w")
    swapped = [int(x) for x in p.pagemap(c, 32 * PAGE_SIZE) if int(x) & PM_SWAP]
    assert swapped and all(not x & PM_PRESENT for x in swapped)
    p.exit()
    sim.check()


def test_a_range_is_whole_pages_and_stays_in_user_space():
    sim = vmsim.Simulator(memory="64MiB")
    p = sim.spawn()
    a = p.mmap(2 * PAGE_SIZE)
    assert p.pagemap(a + 100, PAGE_SIZE).size == 2  # from the page of a+100 to the page of its end
    assert p.pagemap(a, 0).size == 0
    with pytest.raises(ValueError, match="leaves user space"):
        p.pagemap(vmsim.TASK_SIZE - PAGE_SIZE, 2 * PAGE_SIZE)
    sim.check()


@pytest.mark.skipif(sys.platform != "linux", reason="needs /proc/self/pagemap")
def test_flags_match_the_hosts_pagemap():
    """Zero page, a private page, the same page after fork (in the parent)."""
    m = mmap.mmap(-1, 4 * PAGE_SIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if hasattr(mmap, "MADV_NOHUGEPAGE"):
        m.madvise(mmap.MADV_NOHUGEPAGE)
    view = np.frombuffer(m, dtype=np.uint8)
    base = view.ctypes.data
    _ = int(view[0])  # read: the zero page
    view[PAGE_SIZE] = 1  # write: a page of its own

    def host(page: int) -> int:
        with open("/proc/self/pagemap", "rb") as pm:
            pm.seek((base // PAGE_SIZE + page) * 8)
            return struct.unpack("<Q", pm.read(8))[0] & FLAGS

    real = [host(0), host(1), host(2)]
    pid = os.fork()
    if pid == 0:  # the child only holds its share of the page while the parent looks
        time.sleep(5)
        os._exit(0)
    try:
        real.append(host(1))
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    del view
    m.close()

    sim = vmsim.Simulator(memory="64MiB")
    p = sim.spawn()
    a = p.mmap(4 * PAGE_SIZE)
    p.access(a, "r")
    p.access(a + PAGE_SIZE, "w")
    simulated = [int(x) & FLAGS for x in p.pagemap(a, 3 * PAGE_SIZE)]
    child = p.fork()
    simulated.append(int(p.pagemap(a + PAGE_SIZE, 1)[0]) & FLAGS)
    child.exit()
    assert simulated == real
