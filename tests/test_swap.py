"""Swap and reclaim: textbook fault counts for each replacement policy
(checked against small reference implementations), Belady's anomaly, swap-in
faults, the swap cache after fork, file pages dropped or written back under
pressure, OOM with nothing reclaimable, and nothing leaked after exit."""

from __future__ import annotations

from collections import OrderedDict, deque

import numpy as np
import pytest

import vmsim
from vmsim import PAGE_SIZE, Outcome

SILBERSCHATZ = [7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1]
BELADY = [1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5]


# ----- reference implementations (obviously correct, tiny) ---------------------------


def ref_fifo(refs, frames):
    mem, q, faults = set(), deque(), 0
    for p in refs:
        if p not in mem:
            faults += 1
            if len(mem) == frames:
                mem.discard(q.popleft())
            mem.add(p)
            q.append(p)
    return faults


def ref_lru(refs, frames):
    mem, faults = OrderedDict(), 0
    for p in refs:
        if p in mem:
            mem.move_to_end(p)
            continue
        faults += 1
        if len(mem) == frames:
            mem.popitem(last=False)
        mem[p] = True
    return faults


def ref_clock(refs, frames):
    """Second chance: a page's bit is set on every access, the hand clears it."""
    ring, bit, faults = deque(), {}, 0
    for p in refs:
        if p in bit:
            bit[p] = True
            continue
        faults += 1
        if len(ring) == frames:
            while True:
                q = ring.popleft()
                if bit[q]:
                    bit[q] = False
                    ring.append(q)
                else:
                    del bit[q]
                    break
        ring.append(p)
        bit[p] = True
    return faults


def ref_opt(refs, frames):
    mem, faults = set(), 0
    for i, p in enumerate(refs):
        if p in mem:
            continue
        faults += 1
        if len(mem) == frames:

            def next_use(q, i=i):
                rest = refs[i + 1 :]
                return rest.index(q) if q in rest else len(refs)

            mem.discard(max(sorted(mem), key=next_use))
        mem.add(p)
    return faults


def simulate(policy, refs, frames):
    sim = vmsim.Simulator(memory="16MiB", swap="1MiB", policy=policy, resident_limit=frames)
    p = sim.spawn()
    a = p.mmap(16 * PAGE_SIZE, addr=0x1000_0000, fixed=True)
    codes = p.access_batch(np.array([a + r * PAGE_SIZE for r in refs], dtype=np.uint64), "w")
    sim.check()
    return sim, p, codes


@pytest.mark.parametrize("refs", [SILBERSCHATZ, BELADY, [1, 2, 3, 1, 4, 5, 2, 1, 6, 7, 3, 2, 1, 2, 3, 6]])
@pytest.mark.parametrize("frames", [3, 4])
@pytest.mark.parametrize(
    "policy, model", [("fifo", ref_fifo), ("lru", ref_lru), ("clock", ref_clock), ("opt", ref_opt)]
)
def test_fault_counts_match_the_reference(policy, model, refs, frames):
    _sim, p, codes = simulate(policy, refs, frames)
    faults = int((codes != Outcome.HIT).sum())
    assert faults == model(refs, frames)
    assert p.counters()["min_flt"] + p.counters()["maj_flt"] == faults


def test_textbook_numbers():
    counts = {pol: int((simulate(pol, SILBERSCHATZ, 3)[2] != Outcome.HIT).sum()) for pol in vmsim.policies()}
    assert (counts["fifo"], counts["lru"], counts["opt"]) == (15, 12, 9)
    assert counts["opt"] <= min(counts.values())
    assert counts["lru2q"] <= counts["fifo"]


def test_belady_anomaly_under_fifo():
    three = int((simulate("fifo", BELADY, 3)[2] != Outcome.HIT).sum())
    four = int((simulate("fifo", BELADY, 4)[2] != Outcome.HIT).sum())
    assert (three, four) == (9, 10)  # more frames, more faults
    assert int((simulate("lru", BELADY, 4)[2] != Outcome.HIT).sum()) <= int(
        (simulate("lru", BELADY, 3)[2] != Outcome.HIT).sum()
    )


def test_swap_in_is_a_major_fault_and_counters_add_up():
    sim, p, codes = simulate("fifo", [0, 1, 2, 3, 0], 3)
    assert [Outcome(c) for c in codes] == [Outcome.ANON_ZERO_FILL] * 4 + [Outcome.SWAP_IN]
    c = sim.counters()
    assert (c["swap_outs"], c["swap_ins"], c["swap_used"]) == (2, 1, 1)  # page 1 is out now
    assert p.counters()["maj_flt"] == 1 and p.counters()["min_flt"] == 4
    assert p.counters()["swap"] == 1 and p.counters()["rss_anon"] == 3
    assert (p.counters()["swap_ins"], p.counters()["swap_outs"]) == (1, 2)
    assert c["evictions"] == 2 and c["reclaim_scans"] >= 2
    p.exit()
    c = sim.counters()
    assert c["swap_used"] == 0 and c["frames_free"] == c["frames_total"]


def test_swap_cache_after_fork_makes_the_second_swap_in_minor():
    sim = vmsim.Simulator(memory="16MiB", swap="1MiB", policy="fifo", resident_limit=4)
    p = sim.spawn()
    a = p.mmap(8 * PAGE_SIZE, addr=0x1000_0000, fixed=True)
    p.access(a, "w")
    c = p.fork()  # page 0 shared copy-on-write by both
    for i in range(1, 5):
        p.access(a + i * PAGE_SIZE, "w")  # pushes page 0 out, in both page tables
    sim.check()
    assert c.access(a, "r") is Outcome.SWAP_IN
    assert c.counters()["maj_flt"] == 1
    # The parent's swap entry finds the page the child brought back: minor.
    assert p.access(a, "r") is Outcome.SWAP_IN
    assert p.counters()["maj_flt"] == 0
    # Still shared: a write copies it.
    assert p.access(a, "w") is Outcome.COW_COPY
    sim.check()
    c.exit()
    p.exit()
    assert sim.counters()["frames_free"] == sim.counters()["frames_total"]


def test_file_pages_are_dropped_or_written_back():
    sim = vmsim.Simulator(memory="16MiB", policy="fifo", resident_limit=4)  # no swap at all
    f = sim.create_file(8 * PAGE_SIZE)
    p = sim.spawn()
    a = p.mmap(8 * PAGE_SIZE, prot="rw", flags="shared", file=f, addr=0x1000_0000, fixed=True)
    p.access(a, "w")  # dirty
    for i in range(1, 8):
        p.access(a + i * PAGE_SIZE, "r")
    c = sim.counters()
    assert c["writebacks"] == 1  # the dirty page was written back before it was dropped
    assert c["evictions"] == 4 and f.cached_pages == 4
    assert p.access(a, "r") is Outcome.FILE_MAJOR  # read in again
    sim.check()


def test_no_swap_and_nothing_reclaimable_is_oom():
    sim = vmsim.Simulator(memory="16MiB", policy="clock", resident_limit=4)  # anonymous memory, no swap
    p = sim.spawn()
    a = p.mmap(8 * PAGE_SIZE)
    codes = [p.access(a + i * PAGE_SIZE, "w") for i in range(6)]
    assert codes[:4] == [Outcome.ANON_ZERO_FILL] * 4
    assert codes[4:] == [Outcome.OOM] * 2
    sim.check()
    p.munmap(a, 8 * PAGE_SIZE)
    assert p.access(p.mmap(PAGE_SIZE), "w") is Outcome.ANON_ZERO_FILL


def test_pressure_from_real_memory_size_with_watermarks():
    """No limit: a working set twice the memory, reclaimed by the watermarks."""
    sim = vmsim.Simulator(memory="8MiB", swap="32MiB", policy="clock")
    p = sim.spawn()
    n = 4096  # 16 MiB of anonymous memory
    a = p.mmap(n * PAGE_SIZE)
    for _ in range(2):
        codes = p.access_batch(np.arange(a, a + n * PAGE_SIZE, PAGE_SIZE, dtype=np.uint64), "w")
        assert not (codes == Outcome.OOM).any()
    c = sim.counters()
    assert c["swap_outs"] > n // 2 and c["swap_ins"] > 0
    assert c["frames_free"] >= 4  # the low watermark holds
    sim.check()
    p.exit()
    c = sim.counters()
    assert c["frames_free"] == c["frames_total"] and c["swap_used"] == 0


def test_bad_reclaim_configuration():
    with pytest.raises(ValueError):
        vmsim.Simulator(policy="random")
    with pytest.raises(ValueError):
        vmsim.Simulator(swap=1000)
    with pytest.raises(ValueError):
        vmsim.Simulator(resident_limit=0)
