"""mmap, munmap, mprotect, madvise and brk: placement, splits, merges and errors."""

from __future__ import annotations

import errno

import pytest

import vmsim
from vmsim import PAGE_SIZE, Outcome

MMAP_BASE = 0x7FFF_F7FF_F000


def maps_lines(p):
    return p.maps().splitlines()


def test_top_down_placement_below_mmap_base(sim):
    p = sim.spawn(layout="default")
    a = p.mmap(PAGE_SIZE)
    assert a == MMAP_BASE - PAGE_SIZE
    b = p.mmap(2 * PAGE_SIZE)
    assert b == a - 2 * PAGE_SIZE
    # Adjacent compatible anonymous mappings merge into one VMA.
    assert sum(1 for lo, hi, _, _ in p.vmas() if lo <= b < hi and hi == a + PAGE_SIZE) == 1


def test_hint_is_used_when_free(sim, proc):
    a = proc.mmap(PAGE_SIZE, addr=0x1000_0000)
    assert a == 0x1000_0000
    b = proc.mmap(PAGE_SIZE, addr=0x1000_0000)  # taken: placed elsewhere
    assert b != a


def test_fixed_replaces_and_noreplace_refuses(sim, proc):
    a = proc.mmap(4 * PAGE_SIZE, addr=0x2000_0000, fixed=True)
    proc.access(a + PAGE_SIZE, "w")
    proc.mmap(PAGE_SIZE, prot="r", addr=a + PAGE_SIZE, fixed=True)
    assert proc.access(a + PAGE_SIZE, "r") is Outcome.ZERO_PAGE  # the old page is gone
    assert [v[2] for v in proc.vmas()] == ["rw-", "r--", "rw-"]
    with pytest.raises(FileExistsError) as err:
        proc.mmap(PAGE_SIZE, addr=a, fixed_noreplace=True)
    assert err.value.errno == errno.EEXIST


def test_munmap_whole_partial_and_spanning(sim, proc):
    a = proc.mmap(8 * PAGE_SIZE, addr=0x3000_0000, fixed=True)
    proc.munmap(a + 2 * PAGE_SIZE, 2 * PAGE_SIZE)  # a hole in the middle: split
    assert len(proc.vmas()) == 2
    assert proc.access(a + 2 * PAGE_SIZE, "r") is Outcome.SEGV_MAPERR
    proc.munmap(a + PAGE_SIZE, 6 * PAGE_SIZE)  # spans both VMAs and the hole
    assert [(lo - a, hi - a) for lo, hi, _, _ in proc.vmas()] == [(0, PAGE_SIZE), (7 * PAGE_SIZE, 8 * PAGE_SIZE)]
    proc.munmap(0x4000_0000, PAGE_SIZE)  # nothing there: allowed, as in Linux
    proc.munmap(a, 8 * PAGE_SIZE)
    assert proc.vmas() == []


def test_munmap_frees_frames_and_page_tables(sim, proc):
    base = sim.counters()["frames_used"]
    a = proc.mmap(1 << 21, addr=0x4000_0000, fixed=True)
    for i in range(0, 1 << 21, PAGE_SIZE):
        proc.access(a + i, "w")
    assert proc.counters()["pt_pages"] == 3
    proc.munmap(a, 1 << 21)
    assert proc.counters()["pt_pages"] == 0
    assert proc.counters()["rss_anon"] == 0
    assert sim.counters()["frames_used"] == base


def test_mprotect_splits_and_merges_back(sim, proc):
    a = proc.mmap(4 * PAGE_SIZE, addr=0x5000_0000, fixed=True)
    proc.mprotect(a + PAGE_SIZE, PAGE_SIZE, "r")
    assert [v[2] for v in proc.vmas()] == ["rw-", "r--", "rw-"]
    lines = maps_lines(proc)
    assert lines[1].startswith(f"{a + PAGE_SIZE:08x}-{a + 2 * PAGE_SIZE:08x} r--p")
    proc.mprotect(a + PAGE_SIZE, PAGE_SIZE, "rw")
    assert [v[2] for v in proc.vmas()] == ["rw-"]


def test_mprotect_write_protects_present_pages(sim, proc):
    a = proc.mmap(PAGE_SIZE)
    proc.access(a, "w")
    proc.mprotect(a, PAGE_SIZE, "r")
    assert proc.access(a, "w") is Outcome.SEGV_ACCERR
    assert proc.access(a, "r") is Outcome.HIT
    proc.mprotect(a, PAGE_SIZE, "rw")
    # An exclusive anonymous page gets its write bit straight back.
    assert proc.access(a, "w") is Outcome.HIT
    proc.mprotect(a, PAGE_SIZE, "none")
    assert proc.access(a, "r") is Outcome.SEGV_ACCERR
    proc.mprotect(a, PAGE_SIZE, "r")
    assert proc.access(a, "r") is Outcome.HIT


def test_mprotect_with_a_hole_is_enomem(sim, proc):
    a = proc.mmap(3 * PAGE_SIZE, addr=0x6000_0000, fixed=True)
    proc.munmap(a + PAGE_SIZE, PAGE_SIZE)
    with pytest.raises(OSError) as err:
        proc.mprotect(a, 3 * PAGE_SIZE, "r")
    assert err.value.errno == errno.ENOMEM
    # Linux changes the part before the hole, then fails.
    assert [v[2] for v in proc.vmas()] == ["r--", "rw-"]
    with pytest.raises(OSError) as err:
        proc.mprotect(a + PAGE_SIZE, PAGE_SIZE, "r")
    assert err.value.errno == errno.ENOMEM


def test_brk_grows_and_shrinks_the_heap(sim):
    p = sim.spawn(layout="default")
    start = p.brk()
    assert p.layout()["start_brk"] == start
    assert "[heap]" not in p.maps()
    assert p.brk(start + 10 * PAGE_SIZE + 5) == start + 10 * PAGE_SIZE + 5
    assert "[heap]" in p.maps()
    assert p.access(start + 10 * PAGE_SIZE, "w") is Outcome.ANON_ZERO_FILL  # the partial page is mapped
    assert p.access(start + 11 * PAGE_SIZE, "w") is Outcome.SEGV_MAPERR
    assert p.brk(start + PAGE_SIZE) == start + PAGE_SIZE
    assert p.access(start + 5 * PAGE_SIZE, "r") is Outcome.SEGV_MAPERR
    assert p.brk(start - PAGE_SIZE) == start + PAGE_SIZE  # below start_brk: refused, old break returned
    heap = [v for v in p.vmas() if v[0] == start]
    assert heap and heap[0][1] == start + PAGE_SIZE


def test_brk_refuses_to_run_into_a_mapping(sim):
    p = sim.spawn(layout="default")
    start = p.brk()
    p.mmap(PAGE_SIZE, addr=start + 4 * PAGE_SIZE, fixed=True)
    assert p.brk(start + 8 * PAGE_SIZE) == start  # refused: old break
    assert p.brk(start + 2 * PAGE_SIZE) == start + 2 * PAGE_SIZE


def test_madvise_dontneed_drops_pages(sim, proc):
    a = proc.mmap(2 * PAGE_SIZE)
    proc.access(a, "w")
    proc.madvise(a, 2 * PAGE_SIZE, "dontneed")
    assert proc.counters()["rss_anon"] == 0
    assert proc.access(a, "r") is Outcome.ZERO_PAGE


def test_maps_format(sim):
    p = sim.spawn(layout="default")
    lines = maps_lines(p)
    assert lines[0].startswith("555555554000-555555564000 r-xp 00000000 08:01 ")
    assert lines[0].endswith("/usr/bin/a.out")
    assert lines[1].startswith("555555564000-555555568000 rw-p 00010000 08:01 ")  # data: file offset 16 pages
    assert lines[-1].startswith("7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0")
    assert lines[-1].endswith("[stack]")


@pytest.mark.parametrize(
    "call, exc, code",
    [
        (lambda p: p.mmap(0), OSError, errno.EINVAL),
        (lambda p: p.mmap(PAGE_SIZE, addr=0x1001, fixed=True), OSError, errno.EINVAL),
        (lambda p: p.mmap(PAGE_SIZE, addr=0x1000, fixed=True), PermissionError, errno.EPERM),
        (lambda p: p.mmap(PAGE_SIZE, addr=0x7FFF_FFFF_F000, fixed=True), OSError, errno.ENOMEM),
        (lambda p: p.mmap(1 << 48), OSError, errno.ENOMEM),
        (lambda p: p.mmap(PAGE_SIZE, flags="anonymous"), OSError, errno.EINVAL),
        (lambda p: p.mmap(PAGE_SIZE, flags="private|shared"), OSError, errno.EINVAL),
        (lambda p: p.munmap(0x1001, PAGE_SIZE), OSError, errno.EINVAL),
        (lambda p: p.munmap(0x1000, 0), OSError, errno.EINVAL),
        (lambda p: p.munmap(0x7FFF_FFFF_0000, 1 << 20), OSError, errno.EINVAL),
        (lambda p: p.mprotect(0x1001, PAGE_SIZE, "r"), OSError, errno.EINVAL),
        (lambda p: p.mprotect(0x9000_0000, PAGE_SIZE, "r"), OSError, errno.ENOMEM),
    ],
)
def test_syscall_errors_carry_linux_errno(sim, proc, call, exc, code):
    before = proc.maps()
    with pytest.raises(exc) as err:
        call(proc)
    assert err.value.errno == code
    assert proc.maps() == before


@pytest.mark.parametrize(
    "call",
    [
        lambda p: p.mmap(PAGE_SIZE, prot="rwq"),
        lambda p: p.mmap(PAGE_SIZE, flags="private|bogus"),
        lambda p: p.mprotect(0x1000, PAGE_SIZE, "read"),
        lambda p: p.access(0x1000, "z"),
        lambda p: p.access(0x1000, 7),
        lambda p: p.mmap("12 parsecs"),
    ],
)
def test_bad_strings_raise_value_error(sim, proc, call):
    with pytest.raises(ValueError):
        call(proc)


def test_unknown_madvise_advice_is_einval(sim, proc):
    """As madvise(2) answers an advice it does not know."""
    with pytest.raises(OSError) as e:
        proc.madvise(0x1000, PAGE_SIZE, "willneed-ish")
    assert e.value.errno == errno.EINVAL


def test_bad_simulator_arguments():
    with pytest.raises(ValueError):
        vmsim.Simulator(memory="1.5GiB")
    with pytest.raises(ValueError):
        vmsim.Simulator(memory=4097)
    with pytest.raises(ValueError):
        vmsim.Simulator(memory="1TiB")
    with pytest.raises(ValueError):
        vmsim.Simulator(vma_index="skiplist")
    with pytest.raises(ValueError):
        vmsim.Simulator().spawn(layout="weird")


def test_max_map_count_is_enforced():
    sim = vmsim.Simulator(memory="16MiB", max_map_count=8)
    p = sim.spawn()
    for i in range(8):
        p.mmap(PAGE_SIZE, prot="r" if i % 2 else "rw", addr=0x1000_0000 + i * PAGE_SIZE, fixed=True)
    assert len(p.vmas()) == 8
    with pytest.raises(OSError) as err:
        p.mmap(PAGE_SIZE, addr=0x2000_0000, fixed=True)
    assert err.value.errno == errno.ENOMEM
    sim.check()
