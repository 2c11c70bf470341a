"""Bad input: each case raises the exact exception expected, and leaves the
simulation intact (check() passes, nothing leaked, the process still works)."""

from __future__ import annotations

import errno

import numpy as np
import pytest

import vmsim
from vmsim import PAGE_SIZE, Outcome

KERNEL = 0xFFFF_8000_0000_0000
NONCANON = 0x0000_8000_0000_0000
MAPPED = 0x1000_0000  # the fixture maps 4 pages here, page 2 unmapped


@pytest.fixture
def world():
    sim = vmsim.Simulator(memory="16MiB")
    p = sim.spawn()
    p.mmap(4 * PAGE_SIZE, addr=MAPPED, fixed=True)
    p.munmap(MAPPED + 2 * PAGE_SIZE, PAGE_SIZE)
    p.access(MAPPED, "w")
    return sim, p


def oserr(code):
    return lambda e: isinstance(e, OSError) and e.errno == code


CASES = [
    # (id, call, exception type, extra predicate)
    ("mmap kernel address fixed", lambda p: p.mmap(PAGE_SIZE, addr=KERNEL, fixed=True), OSError, oserr(errno.ENOMEM)),
    ("mmap non-canonical fixed", lambda p: p.mmap(PAGE_SIZE, addr=NONCANON, fixed=True), OSError, oserr(errno.ENOMEM)),
    ("mmap address past 2**64", lambda p: p.mmap(PAGE_SIZE, addr=1 << 64, fixed=True), OverflowError, None),
    ("mmap negative address", lambda p: p.mmap(PAGE_SIZE, addr=-4096, fixed=True), OverflowError, None),
    ("mmap negative length", lambda p: p.mmap(-1), ValueError, None),
    ("mmap unaligned fixed", lambda p: p.mmap(PAGE_SIZE, addr=MAPPED + 1, fixed=True), OSError, oserr(errno.EINVAL)),
    ("mmap zero length", lambda p: p.mmap(0), OSError, oserr(errno.EINVAL)),
    (
        "fixed_noreplace overlap",
        lambda p: p.mmap(PAGE_SIZE, addr=MAPPED, fixed_noreplace=True),
        FileExistsError,
        oserr(errno.EEXIST),
    ),
    ("fixed without addr", lambda p: p.mmap(PAGE_SIZE, fixed=True), ValueError, None),
    ("mmap bad prot", lambda p: p.mmap(PAGE_SIZE, prot="rwz"), ValueError, None),
    ("mmap bad flags", lambda p: p.mmap(PAGE_SIZE, flags="private|sideways"), ValueError, None),
    ("mmap length type", lambda p: p.mmap(3.5), TypeError, None),
    ("munmap unaligned", lambda p: p.munmap(MAPPED + 12, PAGE_SIZE), OSError, oserr(errno.EINVAL)),
    ("munmap zero length", lambda p: p.munmap(MAPPED, 0), OSError, oserr(errno.EINVAL)),
    ("munmap kernel range", lambda p: p.munmap(KERNEL, PAGE_SIZE), OSError, oserr(errno.EINVAL)),
    ("mprotect over a hole", lambda p: p.mprotect(MAPPED, 4 * PAGE_SIZE, "r"), OSError, oserr(errno.ENOMEM)),
    ("mprotect unmapped", lambda p: p.mprotect(0x7000_0000, PAGE_SIZE, "r"), OSError, oserr(errno.ENOMEM)),
    ("mprotect unaligned", lambda p: p.mprotect(MAPPED + 1, PAGE_SIZE, "r"), OSError, oserr(errno.EINVAL)),
    ("mprotect bad prot", lambda p: p.mprotect(MAPPED, PAGE_SIZE, "q"), ValueError, None),
    ("madvise bad advice", lambda p: p.madvise(MAPPED, PAGE_SIZE, "sometimes"), OSError, oserr(errno.EINVAL)),
    ("madvise over a hole", lambda p: p.madvise(MAPPED, 4 * PAGE_SIZE, "dontfork"), OSError, oserr(errno.ENOMEM)),
    ("access past 2**64", lambda p: p.access(1 << 64), OverflowError, None),
    ("access negative", lambda p: p.access(-1), OverflowError, None),
    ("access bad op", lambda p: p.access(MAPPED, "rw"), ValueError, None),
    ("access op code out of range", lambda p: p.access(MAPPED, 3), ValueError, None),
    ("batch wrong dtype", lambda p: p.access_batch(np.zeros(4, dtype=np.int64), "r"), TypeError, None),
    ("batch float dtype", lambda p: p.access_batch(np.zeros(4), "r"), TypeError, None),
    (
        "batch ops wrong dtype",
        lambda p: p.access_batch(np.zeros(4, dtype=np.uint64), np.zeros(4, dtype=np.int8)),
        TypeError,
        None,
    ),
    (
        "batch length mismatch",
        lambda p: p.access_batch(np.zeros(4, dtype=np.uint64), np.zeros(3, dtype=np.uint8)),
        ValueError,
        None,
    ),
    (
        "batch op code 7",
        lambda p: p.access_batch(np.zeros(2, dtype=np.uint64), np.array([0, 7], dtype=np.uint8)),
        ValueError,
        None,
    ),
    ("batch 2-D", lambda p: p.access_batch(np.zeros((2, 2), dtype=np.uint64), "r"), ValueError, None),
    ("batch not an array", lambda p: p.access_batch({"a": 1}, "r"), TypeError, None),
    (
        "batch negative in list",
        lambda p: p.access_batch([MAPPED, -5], "r"),
        OverflowError,
        lambda e: "addrs[1] = -5" in str(e),
    ),
    ("brk negative", lambda p: p.brk(-1), OverflowError, None),
    ("clone bad stack size", lambda p: p.clone_thread(stack_size="lots"), ValueError, None),
]


@pytest.mark.parametrize("name, call, exc, check", CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_and_leaves_the_simulation_intact(world, name, call, exc, check):
    sim, p = world
    maps_before, counters_before, sim_before = p.maps(), p.counters(), sim.counters()
    with pytest.raises(exc) as info:
        call(p)
    if check is not None:
        assert check(info.value), info.value
    assert str(info.value)  # a reason, not an empty message
    sim.check()
    if name != "mprotect over a hole":  # Linux changes the part before the hole
        assert p.maps() == maps_before
    assert p.counters() == counters_before
    assert sim.counters()["frames_used"] == sim_before["frames_used"]
    assert p.access(MAPPED, "r") is Outcome.HIT  # still usable
    p.exit()
    c = sim.counters()
    assert c["frames_free"] == c["frames_total"]


def test_munmap_of_unmapped_range_is_allowed(world):
    sim, p = world
    p.munmap(0x5000_0000, 16 * PAGE_SIZE)
    p.munmap(MAPPED + 2 * PAGE_SIZE, PAGE_SIZE)  # the hole
    sim.check()


def test_exhausting_memory_then_recovering():
    sim = vmsim.Simulator(memory="256KiB", overcommit=1)  # promise more than there is
    p = sim.spawn()
    a = p.mmap(1 << 20)
    codes = p.access_batch(np.arange(a, a + (1 << 20), PAGE_SIZE, dtype=np.uint64), "w")
    assert (codes == Outcome.OOM).sum() > 0
    assert sim.counters()["frames_free"] == 0
    sim.check()
    p.munmap(a, 1 << 20)
    assert p.access(p.mmap(PAGE_SIZE), "w") is Outcome.ANON_ZERO_FILL
    p.exit()
    assert sim.counters()["frames_free"] == sim.counters()["frames_total"]


def test_exited_process_and_double_exit(world):
    sim, p = world
    t = p.clone_thread()
    p.exit()
    for call in (p.exit, lambda: p.access(MAPPED), p.maps, p.fork, p.clone_thread, p.brk, p.threads):
        with pytest.raises(vmsim.ProcessExitedError):
            call()
    assert t.access(MAPPED, "r") is Outcome.HIT  # the thread keeps the address space
    t.exit()
    with pytest.raises(vmsim.ProcessExitedError):
        t.exit()
    sim.check()
    assert sim.counters()["frames_free"] == sim.counters()["frames_total"]


def test_error_classes():
    assert issubclass(vmsim.ProcessExitedError, vmsim.VmsimError)
    assert issubclass(vmsim.InvariantError, vmsim.VmsimError)
