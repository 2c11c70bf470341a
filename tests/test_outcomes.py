"""Each Outcome the anonymous fault path can give, reached by a scripted access."""

from __future__ import annotations

import vmsim
from vmsim import PAGE_SIZE, Outcome


def test_read_fault_maps_zero_page_then_write_copies(sim, proc):
    a = proc.mmap(PAGE_SIZE)
    assert proc.access(a, "r") is Outcome.ZERO_PAGE
    assert proc.access(a + 100, "r") is Outcome.HIT
    assert proc.access(a, "w") is Outcome.COW_COPY
    assert proc.access(a, "w") is Outcome.HIT
    assert proc.counters()["min_flt"] == 2
    sim.check()


def test_write_fault_fills_a_zeroed_frame(sim, proc):
    a = proc.mmap(2 * PAGE_SIZE)
    assert proc.access(a + PAGE_SIZE, "w") is Outcome.ANON_ZERO_FILL
    assert proc.counters()["rss_anon"] == 1


def test_cow_copy_and_reuse_after_fork(sim, proc):
    a = proc.mmap(PAGE_SIZE)
    proc.access(a, "w")
    child = proc.fork()
    assert child.access(a, "w") is Outcome.COW_COPY
    assert proc.access(a, "w") is Outcome.COW_REUSE
    assert proc.access(a, "w") is Outcome.HIT
    assert child.counters()["min_flt"] == 1
    sim.check()


def test_unmapped_address_is_maperr(sim, proc):
    assert proc.access(0, "r") is Outcome.SEGV_MAPERR
    assert proc.access(0x1234_0000, "w") is Outcome.SEGV_MAPERR


def test_kernel_half_and_top_page_are_maperr(sim, proc):
    assert proc.access(0xFFFF_8000_0000_0000, "r") is Outcome.SEGV_MAPERR
    assert proc.access(0xFFFF_FFFF_FFFF_F000, "w") is Outcome.SEGV_MAPERR
    assert proc.access(0x7FFF_FFFF_F000, "r") is Outcome.SEGV_MAPERR  # TASK_SIZE: never mapped


def test_non_canonical_is_general_protection(sim, proc):
    assert proc.access(0x0000_8000_0000_0000, "r") is Outcome.SEGV_NONCANONICAL
    assert proc.access(0xDEAD_BEEF_DEAD_BEEF, "w") is Outcome.SEGV_NONCANONICAL
    assert proc.counters()["min_flt"] == 0


def test_permission_errors_are_accerr(sim, proc):
    ro = proc.mmap(PAGE_SIZE, prot="r")
    none = proc.mmap(PAGE_SIZE, prot="none")
    assert proc.access(ro, "w") is Outcome.SEGV_ACCERR
    assert proc.access(none, "r") is Outcome.SEGV_ACCERR
    assert proc.access(ro, "r") is Outcome.ZERO_PAGE
    assert proc.counters()["min_flt"] == 1  # signals before handle_mm_fault are not counted


def test_write_only_mapping_can_be_read_on_x86(sim, proc):
    w = proc.mmap(PAGE_SIZE, prot="w")
    assert proc.access(w, "r") is Outcome.ZERO_PAGE


def test_exec_from_non_exec_page_counts_a_read_fault_then_nx(sim, proc):
    data = proc.mmap(PAGE_SIZE, prot="rw")
    assert proc.access(data, "x") is Outcome.SEGV_ACCERR
    assert proc.counters()["min_flt"] == 1  # the read fault that mapped the zero page
    assert proc.access(data, "x") is Outcome.SEGV_ACCERR
    assert proc.counters()["min_flt"] == 1  # present + NX: no fault counted
    code = proc.mmap(PAGE_SIZE, prot="rx")
    assert proc.access(code, "x") is Outcome.ZERO_PAGE
    assert proc.access(code, "x") is Outcome.HIT


def test_out_of_memory_outcome_then_recovery():
    sim = vmsim.Simulator(memory="64KiB", overcommit=1)  # 15 usable frames, more promised
    p = sim.spawn()
    a = p.mmap(64 * PAGE_SIZE)
    outcomes = [p.access(a + i * PAGE_SIZE, "w") for i in range(64)]
    assert Outcome.OOM in outcomes
    first_oom = outcomes.index(Outcome.OOM)
    assert all(o is Outcome.ANON_ZERO_FILL for o in outcomes[:first_oom])
    assert p.counters()["min_flt"] == first_oom  # failed faults are not counted
    sim.check()
    p.munmap(a, 64 * PAGE_SIZE)
    b = p.mmap(PAGE_SIZE)
    assert p.access(b, "w") is Outcome.ANON_ZERO_FILL
    p.exit()
    sim.check()
    c = sim.counters()
    assert c["frames_free"] == c["frames_total"]


def test_outcome_enum_matches_core():
    assert [(o.name, o.value) for o in Outcome] == [(name, code) for name, code, *_ in vmsim._core.OUTCOMES]
    assert Outcome.SEGV_MAPERR.is_signal and not Outcome.HIT.is_signal
    assert Outcome.COW_COPY.is_fault and not Outcome.SEGV_ACCERR.is_fault
