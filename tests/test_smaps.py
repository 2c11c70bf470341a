"""Process.smaps / smaps_text / smaps_rollup (tests/test_kernel_conformance.py
holds the fields against the host's /proc/self/smaps)."""

from __future__ import annotations

import numpy as np

import vmsim
from vmsim import PAGE_SIZE


def pages(a, n):
    return np.arange(a, a + n * PAGE_SIZE, PAGE_SIZE, dtype=np.uint64)


def test_pss_is_shared_among_mappings_and_swap_is_counted():
    sim = vmsim.Simulator(memory="64MiB", swap="64MiB", policy="fifo", resident_limit=24)
    p = sim.spawn()
    a = p.mmap(16 * PAGE_SIZE)
    p.access_batch(pages(a, 16), "w")
    c1, c2 = p.fork(), p.fork()
    (rec,) = [r for r in p.smaps() if r["start"] == a]
    assert (rec["Rss"], rec["Shared_Dirty"], rec["Private_Dirty"]) == (64, 64, 0)
    assert rec["Pss"] == 64 // 3  # each page shared by three mappings: 64 kB / 3, rounded down as Linux does
    c1.exit()
    c2.exit()
    b = p.mmap(32 * PAGE_SIZE)
    p.access_batch(pages(b, 32), "w")  # over the 24-page limit: some pages go to swap
    swapped = sum(r["Swap"] for r in p.smaps())
    assert swapped > 0 and swapped == sum(r["SwapPss"] for r in p.smaps())
    rollup = p.smaps_rollup()
    assert rollup["Swap"] == swapped and rollup["Rss"] == sum(r["Rss"] for r in p.smaps())
    assert rollup["Pss_Anon"] == rollup["Pss"] and rollup["Pss_File"] == rollup["Pss_Shmem"] == 0
    assert rollup["Rss"] // 4 == p.counters()["rss_anon"]
    p.exit()
    sim.check()


def test_text_is_the_maps_line_then_the_fields():
    sim = vmsim.Simulator(memory="64MiB")
    p = sim.spawn(layout="default")
    text = p.smaps_text()
    maps = p.maps().splitlines()
    records = text.split("\n")
    headers = [line for line in records if line and not line.split(":")[0].replace("_", "").isalpha()]
    assert headers == maps
    assert "Rss:" in text and text.count("\nSize:") == len(maps) and text.count(" kB\n") == 17 * len(maps)
    assert repr(p.smaps_rollup()).startswith("{'Rss'")
    p.exit()
