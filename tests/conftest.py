from __future__ import annotations

import pytest

import vmsim


@pytest.fixture
def sim():
    """A 64 MiB simulator whose invariants are checked after the test, and
    which must give every frame back once all its processes have exited."""
    s = vmsim.Simulator(memory="64MiB")
    yield s
    s.check()


@pytest.fixture
def proc(sim):
    return sim.spawn()


def all_exited(sim: vmsim.Simulator) -> bool:
    c = sim.counters()
    return c["frames_free"] == c["frames_total"] and c["pt_pages"] == 0
