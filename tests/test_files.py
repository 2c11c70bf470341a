"""File-backed memory through the page cache: major and minor faults,
fault-around, SIGBUS past the end, private copy-on-write from the cache,
shared dirty pages and msync, truncate, unlink, and fork re-faulting."""

from __future__ import annotations

import errno

import numpy as np
import pytest

import vmsim
from vmsim import PAGE_SIZE, Outcome


@pytest.fixture
def sim():
    # Fault-around and readahead off unless a test turns them on: one page per fault.
    s = vmsim.Simulator(memory="64MiB", fault_around_bytes=PAGE_SIZE, read_ahead_kb=0)
    yield s
    s.check()


def pages(a, n):
    return np.arange(a, a + n * PAGE_SIZE, PAGE_SIZE, dtype=np.uint64)


def test_first_read_is_major_then_minor_across_processes(sim):
    f = sim.create_file(8 * PAGE_SIZE, name="/data/blob")
    p, q = sim.spawn(), sim.spawn()
    a = p.mmap(8 * PAGE_SIZE, prot="r", file=f)
    assert p.access(a, "r") is Outcome.FILE_MAJOR
    assert p.access(a, "r") is Outcome.HIT
    b = q.mmap(8 * PAGE_SIZE, prot="r", file=f)
    assert q.access(b, "r") is Outcome.FILE_MINOR  # the page cache is shared
    assert (p.counters()["maj_flt"], p.counters()["min_flt"]) == (1, 0)
    assert (q.counters()["maj_flt"], q.counters()["min_flt"]) == (0, 1)
    assert p.counters()["rss_file"] == 1 and p.counters()["rss_anon"] == 0
    assert (p.counters()["cache_misses"], q.counters()["cache_hits"]) == (1, 1)
    c = sim.counters()
    assert (c["cache_misses"], c["cache_hits"]) == (1, 1)
    assert f.cached_pages == 1
    assert "/data/blob" in p.maps()
    assert p.maps().splitlines()[0].split()[2] == "00000000"


def test_offset_and_eof(sim):
    f = sim.create_file(3 * PAGE_SIZE + 100)  # 4 pages, the last partly
    p = sim.spawn()
    a = p.mmap(8 * PAGE_SIZE, prot="r", file=f, offset=PAGE_SIZE)
    assert p.maps().split()[2] == f"{PAGE_SIZE:08x}"
    codes = p.access_batch(pages(a, 8), "r")
    # File pages 1, 2, 3 exist; 4.. are past the end: SIGBUS, not counted.
    assert list(codes[:3]) == [Outcome.FILE_MAJOR] * 3
    assert list(codes[3:]) == [Outcome.SIGBUS] * 5
    assert p.counters()["maj_flt"] == 3 and p.counters()["min_flt"] == 0
    with pytest.raises(OSError) as e:
        p.mmap(PAGE_SIZE, file=f, offset=100)
    assert e.value.errno == errno.EINVAL


def test_fault_around_maps_cached_neighbours():
    sim = vmsim.Simulator(memory="64MiB")  # default: 64 KiB window
    f = sim.create_file(64 * PAGE_SIZE)
    warm = sim.spawn()
    w = warm.mmap(64 * PAGE_SIZE, prot="r", file=f)
    warm.access_batch(pages(w, 64), "r")  # the whole file is cached now
    p = sim.spawn()
    a = p.mmap(64 * PAGE_SIZE, prot="r", file=f, addr=0x1000_0000, fixed=True)  # the window aligns on addresses
    assert p.access(a + 5 * PAGE_SIZE, "r") is Outcome.FILE_MINOR
    codes = p.access_batch(pages(a, 32), "r")
    # The 16-page aligned window around page 5 came in with that one fault.
    assert (codes[:16] == Outcome.HIT).all()
    assert codes[16] == Outcome.FILE_MINOR and (codes[17:32] == Outcome.HIT).all()
    assert p.counters()["min_flt"] == 2 and p.counters()["rss_file"] == 32
    # With fault-around off, each page is its own fault.
    off = vmsim.Simulator(memory="64MiB", fault_around_bytes="4KiB")
    g = off.create_file(16 * PAGE_SIZE)
    q = off.spawn()
    b = q.mmap(16 * PAGE_SIZE, prot="r", file=g)
    q.access_batch(pages(b, 16), "r")
    r = off.spawn()
    c = r.mmap(16 * PAGE_SIZE, prot="r", file=g)
    assert (r.access_batch(pages(c, 16), "r") == Outcome.FILE_MINOR).all()
    sim.check()
    off.check()
    with pytest.raises(ValueError):
        vmsim.Simulator(fault_around_bytes=3000)


def test_private_write_copies_and_leaves_the_cache_clean(sim):
    f = sim.create_file(4 * PAGE_SIZE)
    p = sim.spawn()
    a = p.mmap(4 * PAGE_SIZE, prot="rw", flags="private", file=f)
    assert p.access(a, "w") is Outcome.COW_COPY  # read in (major), then copied
    assert p.counters()["maj_flt"] == 1 and p.counters()["rss_anon"] == 1 and p.counters()["rss_file"] == 0
    assert p.access(a + PAGE_SIZE, "r") is Outcome.FILE_MAJOR
    assert p.access(a + PAGE_SIZE, "w") is Outcome.COW_COPY  # the cached page is never written
    assert p.counters()["min_flt"] == 1 and p.counters()["rss_anon"] == 2
    q = sim.spawn()
    b = q.mmap(4 * PAGE_SIZE, prot="rw", flags="shared", file=f)
    q.access(b, "r")
    assert q.msync(b, 4 * PAGE_SIZE) == 0  # nothing of the private copies reached the file
    assert sim.counters()["writebacks"] == 0


def test_shared_write_dirties_and_msync_writes_back(sim):
    f = sim.create_file(4 * PAGE_SIZE)
    p = sim.spawn()
    a = p.mmap(4 * PAGE_SIZE, prot="rw", flags="shared", file=f)
    assert p.access(a, "r") is Outcome.FILE_MAJOR
    assert p.access(a, "w") is Outcome.FILE_MINOR  # write-notify: the first write is seen
    assert p.access(a, "w") is Outcome.HIT
    assert p.access(a + PAGE_SIZE, "w") is Outcome.FILE_MAJOR
    assert p.msync(a, 4 * PAGE_SIZE) == 2
    assert sim.counters()["writebacks"] == 2
    assert p.access(a, "w") is Outcome.FILE_MINOR  # clean again and write-protected
    assert p.msync(a, 4 * PAGE_SIZE) == 1
    q = sim.spawn()
    b = q.mmap(4 * PAGE_SIZE, prot="r", flags="shared", file=f)
    assert q.access(b, "r") is Outcome.FILE_MINOR  # the same cached page


def test_truncate_then_access_is_sigbus(sim):
    f = sim.create_file(8 * PAGE_SIZE)
    p, q = sim.spawn(), sim.spawn()
    a = p.mmap(8 * PAGE_SIZE, prot="r", file=f)
    b = q.mmap(8 * PAGE_SIZE, prot="rw", flags="shared", file=f)
    p.access_batch(pages(a, 8), "r")
    q.access_batch(pages(b, 8), "r")
    f.truncate(2 * PAGE_SIZE)
    assert f.size == 2 * PAGE_SIZE and f.cached_pages == 2
    assert p.access(a + 5 * PAGE_SIZE, "r") is Outcome.SIGBUS  # was mapped: unmapped by truncate
    assert q.access(b + 2 * PAGE_SIZE, "w") is Outcome.SIGBUS
    assert p.access(a + PAGE_SIZE, "r") is Outcome.HIT
    assert p.counters()["rss_file"] == 2 and q.counters()["rss_file"] == 2
    sim.check()
    f.truncate(8 * PAGE_SIZE)  # growing back: the new pages read as (major) zeros
    assert p.access(a + 5 * PAGE_SIZE, "r") is Outcome.FILE_MAJOR


def test_unlinked_file_pages_go_with_the_last_mapping():
    sim = vmsim.Simulator(memory="64MiB")
    base = sim.counters()["frames_used"]
    f = sim.create_file(16 * PAGE_SIZE)
    p = sim.spawn()
    a = p.mmap(16 * PAGE_SIZE, prot="r", file=f)
    p.access_batch(pages(a, 16), "r")
    p.exit()
    assert f.cached_pages == 16  # a file's pages outlive its mappings
    f.unlink()
    assert f.cached_pages == 16  # the open handle keeps them
    del f
    sim.check()
    c = sim.counters()
    assert c["frames_used"] == base and c["frames_free"] == c["frames_total"]


def test_unlinked_while_mapped(sim):
    f = sim.create_file(4 * PAGE_SIZE, name="/tmp/x")
    p = sim.spawn()
    a = p.mmap(4 * PAGE_SIZE, prot="r", file=f)
    p.access(a, "r")
    f.unlink()
    del f
    assert "/tmp/x (deleted)" in p.maps()
    assert p.access(a + PAGE_SIZE, "r") is Outcome.FILE_MAJOR  # still readable through the mapping
    p.munmap(a, 4 * PAGE_SIZE)
    c = sim.counters()
    assert c["frames_used"] == 1 + c["slab_pages"]  # the PGD and slabs: the file's pages are gone


def test_fork_child_refaults_file_pages(sim):
    f = sim.create_file(4 * PAGE_SIZE)
    p = sim.spawn()
    a = p.mmap(4 * PAGE_SIZE, prot="r", file=f)
    p.access_batch(pages(a, 4), "r")
    c = p.fork()
    # A file mapping with no anonymous pages is not copied at fork: the child
    # faults the pages in again, from the page cache.
    assert (c.access_batch(pages(a, 4), "r") == Outcome.FILE_MINOR).all()
    assert c.counters()["min_flt"] == 4 and c.counters()["maj_flt"] == 0
    b = p.mmap(2 * PAGE_SIZE, prot="rw", flags="private", file=f)
    p.access(b, "w")  # now this VMA has an anonymous page: copied at fork
    c2 = p.fork()
    assert c2.access(b, "r") is Outcome.HIT
    assert c2.access(b, "w") is Outcome.COW_COPY


def test_file_errors(sim):
    f = sim.create_file(PAGE_SIZE)
    p = sim.spawn()
    with pytest.raises(ValueError):
        p.mmap(PAGE_SIZE, flags="private|anonymous", file=f)
    with pytest.raises(ValueError):
        p.mmap(PAGE_SIZE, offset=PAGE_SIZE)
    with pytest.raises(OSError):
        p.msync(0x1001, PAGE_SIZE)


def test_default_layout_text_comes_from_the_executable():
    sim = vmsim.Simulator(memory="64MiB")
    p = sim.spawn(layout="default")
    text = p.vmas()[0][0]
    assert "/usr/bin/a.out" in p.maps().splitlines()[0]
    assert p.access(text, "x") is Outcome.FILE_MAJOR  # read from "disk"
    # Readahead read the pages around it; the next page faults once more (fault-around
    # ran before the read), minor, and maps its cached neighbours.
    assert p.access(text + PAGE_SIZE, "x") is Outcome.FILE_MINOR
    assert p.access(text + 2 * PAGE_SIZE, "x") is Outcome.HIT
    q = sim.spawn(layout="default")
    assert q.access(text, "x") is Outcome.FILE_MINOR  # the page cache is shared
    child = p.fork()
    # Text is not copied at fork: the child faults it in again, from the cache.
    assert child.access(text, "x") is Outcome.FILE_MINOR
    assert child.counters()["maj_flt"] == 0
    data = p.vmas()[1][0]
    assert p.access(data, "w") is Outcome.COW_COPY  # initialised data: a private copy
    for t in (p, q, child):
        t.exit()
    c = sim.counters()
    assert c["frames_free"] == c["frames_total"]  # the executable's pages go with its last mapping
    sim.check()


def test_shmem_read_faults_map_cached_neighbours_writable():
    """shmem's map_pages is filemap_map_pages: a read fault maps the cached
    pages around it, writable in a shared mapping (no write notification)."""
    s = vmsim.Simulator(memory="64MiB")  # fault-around 64 KiB
    p = s.spawn()
    a = p.mmap(32 * PAGE_SIZE, prot="rw", flags="shared|anonymous", addr=0x7F00_0000_0000, fixed=True)
    assert (p.access_batch(pages(a, 32), "w") == Outcome.FILE_MINOR).all()  # fresh: every page is new
    c = p.fork()  # shared VMAs are not copied: the child faults its pages in again
    assert c.access(a, "r") is Outcome.FILE_MINOR
    codes = c.access_batch(pages(a, 32), "r")
    assert (codes[:16] == Outcome.HIT).all() and codes[16] == Outcome.FILE_MINOR and (codes[17:] == Outcome.HIT).all()
    assert (c.access_batch(pages(a, 32), "w") == Outcome.HIT).all()  # mapped writable
    c.exit()
    p.mprotect(a, 32 * PAGE_SIZE, "r")
    p.mprotect(a, 32 * PAGE_SIZE, "rw")
    assert (p.access_batch(pages(a, 32), "w") == Outcome.HIT).all()  # writable again at once
    p.exit()
    s.check()
