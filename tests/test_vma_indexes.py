"""Every VMA index gives identical simulation results (issue: VMA index structures)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vmsim
from vmsim import PAGE_SIZE

INDEXES = vmsim.vma_indexes()
BASE = 0x1000_0000

op = st.one_of(
    st.tuples(
        st.just("mmap"),
        st.integers(0, 255),
        st.integers(1, 16),
        st.sampled_from(["r", "rw", "rx", "none"]),
        st.booleans(),
    ),
    st.tuples(st.just("munmap"), st.integers(0, 255), st.integers(1, 32)),
    st.tuples(st.just("mprotect"), st.integers(0, 255), st.integers(1, 32), st.sampled_from(["r", "rw", "none"])),
    st.tuples(st.just("access"), st.integers(0, 300), st.sampled_from(["r", "w", "x"])),
    st.tuples(st.just("brk"), st.integers(-8, 8)),
)


def replay(index: str, ops) -> list:
    sim = vmsim.Simulator(memory="16MiB", vma_index=index)
    p = sim.spawn(layout="default")
    log = []
    for o in ops:
        try:
            if o[0] == "mmap":
                _, page, n, prot, fixed = o
                log.append(p.mmap(n * PAGE_SIZE, prot=prot, addr=BASE + page * PAGE_SIZE, fixed=fixed))
            elif o[0] == "munmap":
                p.munmap(BASE + o[1] * PAGE_SIZE, o[2] * PAGE_SIZE)
            elif o[0] == "mprotect":
                p.mprotect(BASE + o[1] * PAGE_SIZE, o[2] * PAGE_SIZE, o[3])
            elif o[0] == "access":
                log.append(p.access(BASE + o[1] * PAGE_SIZE + 8, o[2]))
            else:
                log.append(p.brk(p.brk() + o[1] * PAGE_SIZE))
        except OSError as e:
            log.append(("errno", e.errno))
        log.append(p.maps())
    log.append(p.counters())
    sim.check()
    p.exit()
    c = sim.counters()
    assert c["frames_free"] == c["frames_total"]
    return log


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, max_size=60))
def test_all_indexes_agree(ops):
    reference = replay("sorted_vec", ops)
    for index in INDEXES:
        assert replay(index, ops) == reference, index


def test_vma_indexes_lists_all_five():
    assert set(INDEXES) == {"list", "rbtree", "maple", "btree", "sorted_vec"}
    assert vmsim.DEFAULT_VMA_INDEX in INDEXES
    assert vmsim.Simulator().vma_index == vmsim.DEFAULT_VMA_INDEX


@pytest.mark.parametrize("index", INDEXES)
def test_many_vmas_and_gap_search(index):
    """Thousands of VMAs: placement, lookups and teardown agree across indexes."""
    sim = vmsim.Simulator(memory="64MiB", vma_index=index)
    p = sim.spawn()
    addrs = []
    for i in range(3000):
        a = p.mmap(PAGE_SIZE, prot="r" if i % 2 else "rw")  # alternate prot: no merging
        addrs.append(a)
    assert len(p.vmas()) == 3000
    for a in addrs[::3]:
        p.munmap(a, PAGE_SIZE)
    # Freed holes are reused top-down: the next mapping lands in the highest hole.
    assert p.mmap(PAGE_SIZE, prot="rx") == max(addrs[::3])
    codes = p.access_batch(np.array(addrs, dtype=np.uint64), "r")
    unmapped = len(addrs[::3]) - 1  # one hole was mapped again
    assert int((codes == vmsim.Outcome.SEGV_MAPERR).sum()) == unmapped
    assert int((codes == vmsim.Outcome.ZERO_PAGE).sum()) == 3000 - unmapped
    sim.check()
    p.exit()
    assert sim.counters()["frames_free"] == sim.counters()["frames_total"]
