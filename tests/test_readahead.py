"""File readahead on page faults (tests/test_kernel_conformance.py holds the
major faults and windows against the host kernel)."""

from __future__ import annotations

import errno

import numpy as np
import pytest

import vmsim
from vmsim import PAGE_SIZE, Outcome, traces


def pages(a, n):
    return np.arange(a, a + n * PAGE_SIZE, PAGE_SIZE, dtype=np.uint64)


def scan(sim, f, n, advice=None):
    p = sim.spawn()
    m = p.mmap(n * PAGE_SIZE, prot="r", flags="shared", file=f)
    if advice:
        p.madvise(m, n * PAGE_SIZE, advice)
    codes = p.access_batch(pages(m, n), "r")
    return p, m, codes


def test_a_cold_sequential_scan_costs_one_major_fault():
    sim = vmsim.Simulator(memory="64MiB")  # read_ahead_kb 128: 32-page windows
    f = sim.create_file(1024 * PAGE_SIZE)
    p, _, codes = scan(sim, f, 1024)
    assert int((codes == Outcome.FILE_MAJOR).sum()) == 1  # async readahead keeps ahead of the scan
    assert f.cached_pages == 1024
    c = sim.counters()
    assert c["readahead_pages"] == 1023 and c["readahead_unused"] == 0  # every page read ahead was used
    p.exit()
    sim.check()


def test_read_around_centres_the_window_and_counts_unused_pages():
    sim = vmsim.Simulator(memory="64MiB", read_ahead_kb=64)  # 16 pages
    f = sim.create_file(256 * PAGE_SIZE)
    p = sim.spawn()
    m = p.mmap(256 * PAGE_SIZE, prot="r", flags="shared", file=f)
    assert p.access(m + 100 * PAGE_SIZE, "r") is Outcome.FILE_MAJOR
    assert f.cached_pages == 16  # pages 92..107: ra_pages centred on the fault
    assert p.access(m + 92 * PAGE_SIZE, "r") is Outcome.FILE_MINOR
    assert p.access(m + 91 * PAGE_SIZE, "r") is Outcome.FILE_MAJOR
    c = sim.counters()
    assert c["readahead_pages"] == 15 + f.cached_pages - 16 - 1
    p.exit()
    del f  # the file goes: its unused read-ahead pages are wasted reads
    assert sim.counters()["readahead_unused"] > 0
    sim.check()


def test_random_advice_and_zero_window_read_one_page_per_fault():
    for config, advice in (({"read_ahead_kb": 0}, None), ({}, "random")):
        sim = vmsim.Simulator(memory="64MiB", fault_around_bytes="4KiB", **config)
        f = sim.create_file(64 * PAGE_SIZE)
        p, _, codes = scan(sim, f, 64, advice)
        assert (codes == Outcome.FILE_MAJOR).all() and sim.counters()["readahead_pages"] == 0
        p.exit()


def test_mmap_miss_turns_read_around_off_for_random_access():
    sim = vmsim.Simulator(memory="256MiB", read_ahead_kb=16)  # 4-page windows
    f = sim.create_file(16384 * PAGE_SIZE)
    p = sim.spawn()
    m = p.mmap(16384 * PAGE_SIZE, prot="r", flags="shared", file=f)
    spread = np.arange(0, 16384, 64, dtype=np.uint64)[:200]  # far apart: every fault misses
    p.access_batch(spread * np.uint64(PAGE_SIZE) + np.uint64(m), "r")
    # The first 100 misses read around (4 pages each), the rest read their page alone.
    assert f.cached_pages == 100 * 4 + 100
    p.exit()


def test_willneed_and_fadvise():
    sim = vmsim.Simulator(memory="64MiB")
    f = sim.create_file(256 * PAGE_SIZE, read_ahead_kb=256)
    assert f.read_ahead_kb == 256 and sim.read_ahead_kb == 128
    f.fadvise(0, 0, "sequential")
    assert f.read_ahead_kb == 512
    f.fadvise(0, 0, "normal")
    assert f.read_ahead_kb == 256
    p = sim.spawn()
    m = p.mmap(256 * PAGE_SIZE, prot="r", flags="shared", file=f)
    p.madvise(m, 64 * PAGE_SIZE, "willneed")
    assert f.cached_pages == 64
    assert (p.access_batch(pages(m, 64), "r") != Outcome.FILE_MAJOR).all()
    f.fadvise(32 * PAGE_SIZE, 0, "willneed")
    assert f.cached_pages == 256
    p.munmap(m, 256 * PAGE_SIZE)
    f.fadvise(0, 128 * PAGE_SIZE, "dontneed")  # unmapped now: dropped
    assert f.cached_pages == 128
    with pytest.raises(OSError) as e:
        f.fadvise(0, 0, "sometimes")
    assert e.value.errno == errno.EINVAL
    with pytest.raises(ValueError, match="read_ahead_kb"):
        sim.create_file(PAGE_SIZE, read_ahead_kb=3)
    with pytest.raises(ValueError, match="read_ahead_kb"):
        vmsim.Simulator(memory="64MiB", read_ahead_kb=6)
    p.exit()
    sim.check()


def test_dontneed_keeps_mapped_pages_and_writes_dirty_ones_back():
    sim = vmsim.Simulator(memory="64MiB", read_ahead_kb=0, fault_around_bytes="4KiB")
    f = sim.create_file(8 * PAGE_SIZE)
    p = sim.spawn()
    m = p.mmap(8 * PAGE_SIZE, prot="rw", flags="shared", file=f)
    p.access_batch(pages(m, 8), "w")
    p.munmap(m + 4 * PAGE_SIZE, 4 * PAGE_SIZE)
    f.fadvise(0, 0, "dontneed")
    assert f.cached_pages == 4 and sim.counters()["writebacks"] == 4
    p.exit()
    sim.check()


def test_sequential_advice_reads_forward():
    sim = vmsim.Simulator(memory="64MiB", read_ahead_kb=64)
    f = sim.create_file(256 * PAGE_SIZE)
    p = sim.spawn()
    m = p.mmap(256 * PAGE_SIZE, prot="r", flags="shared", file=f)
    p.madvise(m, 256 * PAGE_SIZE, "sequential")
    assert p.access(m, "r") is Outcome.FILE_MAJOR
    assert f.cached_pages == 16  # pages 0..15: forward from the fault
    p.exit()


def test_readahead_advice_records_and_replays(tmp_path):
    path = tmp_path / "ra.vmst"
    sim = vmsim.Simulator(memory="64MiB")
    with traces.record(sim, path) as rec:
        f = rec.create_file(512 * PAGE_SIZE, read_ahead_kb=64)
        p = rec.spawn()
        m = p.mmap(512 * PAGE_SIZE, prot="r", flags="shared", file=f)
        p.madvise(m, 512 * PAGE_SIZE, "random")
        p.madvise(m, 512 * PAGE_SIZE, "normal")
        p.madvise(m + 256 * PAGE_SIZE, 64 * PAGE_SIZE, "willneed")
        f.fadvise(0, 0, "sequential")
        p.access_batch(pages(m, 512), "r")
        f.fadvise(0, 0, "dontneed")
        p.exit()
        del f
    again = vmsim.Simulator(memory="64MiB")
    traces.replay(again, path)
    original, replayed = sim.counters(), again.counters()
    for key in ("maj_flt", "min_flt", "readahead_pages", "readahead_unused", "cache_misses"):
        assert replayed[key] == original[key], key


def test_msync_flags_and_drop_caches():
    sim = vmsim.Simulator(memory="64MiB", read_ahead_kb=0)
    f = sim.create_file(8 * PAGE_SIZE)
    p = sim.spawn()
    m = p.mmap(8 * PAGE_SIZE, prot="rw", flags="shared", file=f)
    p.access_batch(pages(m, 8), "w")
    assert p.msync(m, 8 * PAGE_SIZE, "async") == 0  # MS_ASYNC starts no I/O
    assert p.msync(m, 4 * PAGE_SIZE, "ms_sync|ms_invalidate") == 4
    for bad in ("sync|async", "later"):
        with pytest.raises(OSError) as e:
            p.msync(m, PAGE_SIZE, bad)
        assert e.value.errno == errno.EINVAL
    p.mlock(m, PAGE_SIZE)
    with pytest.raises(OSError) as e:
        p.msync(m, PAGE_SIZE, "sync|invalidate")
    assert e.value.errno == errno.EBUSY
    p.munmap(m, 8 * PAGE_SIZE)
    assert sim.drop_caches(1) == 4  # the clean pages; the four still dirty stay
    assert f.cached_pages == 4 and sim.drop_caches(2) == 0
    with pytest.raises(OSError):
        sim.drop_caches(4)
    p.exit()
    sim.check()


def test_drop_caches_and_msync_record_and_replay(tmp_path):
    path = tmp_path / "dc.vmst"
    sim = vmsim.Simulator(memory="64MiB")
    with traces.record(sim, path) as rec:
        f = rec.create_file(64 * PAGE_SIZE)
        p = rec.spawn()
        m = p.mmap(64 * PAGE_SIZE, prot="rw", flags="shared", file=f)
        p.access_batch(pages(m, 64), "w")
        p.msync(m, 32 * PAGE_SIZE, "async")
        p.msync(m, 32 * PAGE_SIZE)
        p.munmap(m, 64 * PAGE_SIZE)
        rec.drop_caches(3)
        m = p.mmap(64 * PAGE_SIZE, prot="r", flags="shared", file=f)
        p.access_batch(pages(m, 64), "r")
        p.exit()
        del f
    again = vmsim.Simulator(memory="64MiB")
    result = traces.replay(again, path)
    assert (result.maj_flt, again.counters()["writebacks"]) == (sim.counters()["maj_flt"], sim.counters()["writebacks"])
