"""mremap (tests/test_kernel_conformance.py holds faults and errors against the host)."""

from __future__ import annotations

import contextlib

import numpy as np

import vmsim
from vmsim import PAGE_SIZE, PM_SWAP, Outcome, traces


def pages(a, n):
    return np.arange(a, a + n * PAGE_SIZE, PAGE_SIZE, dtype=np.uint64)


def test_a_move_carries_swap_entries_and_file_offsets():
    sim = vmsim.Simulator(memory="64MiB", swap="64MiB", policy="fifo", resident_limit=16)
    p = sim.spawn()
    a = p.mmap(32 * PAGE_SIZE)
    p.access_batch(pages(a, 32), "w")  # half of them swapped out
    swapped = int((p.pagemap(a, 32 * PAGE_SIZE) & np.uint64(PM_SWAP) > 0).sum())
    assert swapped > 0
    blocker = p.mmap(PAGE_SIZE, addr=a + 32 * PAGE_SIZE, fixed=True)
    r = p.mremap(a, 32 * PAGE_SIZE, 64 * PAGE_SIZE, "maymove")
    assert r != a and int((p.pagemap(r, 32 * PAGE_SIZE) & np.uint64(PM_SWAP) > 0).sum()) == swapped
    codes = p.access_batch(pages(r, 32), "r")
    # The data moved with the entries: every page comes back (a hit or a swap-in), none zero-filled.
    assert np.isin(codes, [Outcome.HIT, Outcome.SWAP_IN]).all() and int((codes == Outcome.SWAP_IN).sum()) >= swapped
    p.munmap(blocker, PAGE_SIZE)
    f = sim.create_file(16 * PAGE_SIZE)
    m = p.mmap(8 * PAGE_SIZE, prot="r", flags="shared", file=f, offset=4 * PAGE_SIZE)
    p.access(m, "r")
    moved = p.mremap(m + 2 * PAGE_SIZE, 2 * PAGE_SIZE, 2 * PAGE_SIZE, "maymove|fixed", 0x7E00_0000_0000)
    assert any(v[0] == moved for v in p.vmas())
    assert f"{6 * PAGE_SIZE:08x}" in next(line for line in p.maps().splitlines() if line.startswith(f"{moved:x}"))
    p.exit()
    sim.check()


def test_a_locked_mapping_grows_populated():
    sim = vmsim.Simulator(memory="64MiB")
    p = sim.spawn()
    a = p.mmap(8 * PAGE_SIZE)
    p.munmap(a + 4 * PAGE_SIZE, 4 * PAGE_SIZE)
    p.mlock(a, 4 * PAGE_SIZE)
    before = p.counters()["min_flt"]
    assert p.mremap(a, 4 * PAGE_SIZE, 8 * PAGE_SIZE) == a
    assert p.counters()["min_flt"] - before == 4 and p.counters()["locked_vm"] == 8
    p.exit()
    sim.check()


def test_mremap_records_and_replays(tmp_path):
    path = tmp_path / "mremap.vmst"
    sim = vmsim.Simulator(memory="64MiB")
    with traces.record(sim, path) as rec:
        p = rec.spawn()
        a = p.mmap(8 * PAGE_SIZE)
        p.access_batch(pages(a, 8), "w")
        b = p.mremap(a, 8 * PAGE_SIZE, 16 * PAGE_SIZE, "maymove")
        p.access_batch(pages(b, 16), "w")
        c = p.mremap(b, 16 * PAGE_SIZE, 4 * PAGE_SIZE)
        with contextlib.suppress(OSError):  # refused (no maymove): recorded as failed, replayed as failing
            p.mremap(c, 4 * PAGE_SIZE, 4 * PAGE_SIZE, "fixed", 0x7E00_0000_0000)
        p.access_batch(pages(c, 4), "r")
        p.exit()
    again = vmsim.Simulator(memory="64MiB")
    result = traces.replay(again, path)
    assert result.min_flt == sim.counters()["min_flt"] == 16
