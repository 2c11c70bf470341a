"""Stack growth: accepted within RLIMIT_STACK, refused past it or into the guard gap."""

from __future__ import annotations

import vmsim
from vmsim import PAGE_SIZE, Outcome

MIB = 1 << 20


def stack_vma(p):
    return next(v for v in p.vmas() if "growsdown" in v[3])


def test_default_layout_has_a_growsdown_stack_at_the_top(sim):
    p = sim.spawn(layout="default")
    _lo, hi, prot, flags = stack_vma(p)
    assert hi == 0x7FFF_FFFF_F000
    assert prot == "rw-" and "growsdown" in flags
    assert "[stack]" in p.maps().splitlines()[-1]


def test_access_just_below_the_stack_grows_it(sim):
    p = sim.spawn(layout="default")
    lo, hi, _, _ = stack_vma(p)
    assert p.access(lo - 8, "w") is Outcome.ANON_ZERO_FILL
    assert stack_vma(p)[0] == lo - PAGE_SIZE
    # A read far below but within the rlimit grows it in one step.
    assert p.access(hi - 8 * MIB, "r") is Outcome.ZERO_PAGE
    assert stack_vma(p)[0] == hi - 8 * MIB


def test_growth_past_rlimit_is_refused(sim):
    p = sim.spawn(layout="default")
    lo, hi, _, _ = stack_vma(p)
    assert p.access(hi - 8 * MIB - 1, "w") is Outcome.SEGV_MAPERR
    assert stack_vma(p)[0] == lo  # unchanged
    assert p.counters()["min_flt"] == 0


def test_rlimit_is_configurable():
    sim = vmsim.Simulator(memory="16MiB", stack_rlimit="256KiB")
    p = sim.spawn(layout="default")
    _, hi, _, _ = stack_vma(p)
    assert p.access(hi - 256 * 1024, "w") is Outcome.ANON_ZERO_FILL
    assert p.access(hi - 256 * 1024 - 1, "w") is Outcome.SEGV_MAPERR
    sim.check()


def test_growth_into_the_guard_gap_is_refused(sim):
    p = sim.spawn(layout="default")
    _lo, hi, _, _ = stack_vma(p)
    below = hi - 4 * MIB
    p.mmap(PAGE_SIZE, prot="r", addr=below, fixed=True)
    neighbour_end = below + PAGE_SIZE
    # Within 1 MiB of the mapping below: refused.
    assert p.access(neighbour_end + MIB - PAGE_SIZE, "w") is Outcome.SEGV_MAPERR
    # Exactly 1 MiB above it: allowed.
    assert p.access(neighbour_end + MIB, "w") is Outcome.ANON_ZERO_FILL


def test_guard_gap_does_not_apply_below_a_prot_none_mapping(sim):
    p = sim.spawn(layout="default")
    _, hi, _, _ = stack_vma(p)
    below = hi - 4 * MIB
    p.mmap(PAGE_SIZE, prot="none", addr=below, fixed=True)
    assert p.access(below + 2 * PAGE_SIZE, "w") is Outcome.ANON_ZERO_FILL


def test_mmap_placement_keeps_clear_of_the_stack_gap(sim):
    p = sim.spawn()
    mmap_base = p.layout()["mmap_base"]
    top = mmap_base - PAGE_SIZE
    p.mmap(PAGE_SIZE, addr=top, flags="private|anonymous|growsdown", fixed=True)
    hinted = p.mmap(PAGE_SIZE, addr=top - PAGE_SIZE)  # hint inside the guard gap: not taken
    assert hinted != top - PAGE_SIZE
    assert not (top - MIB < hinted + PAGE_SIZE <= top)
    # Top-down placement stops a full guard gap below the stack.
    p.munmap(hinted, PAGE_SIZE)
    assert p.mmap(PAGE_SIZE) + PAGE_SIZE == top - MIB
