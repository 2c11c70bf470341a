"""pytest-benchmark suite for the anonymous fault path (not part of the test run).

pytest benches/ --benchmark-only
"""

from __future__ import annotations

import numpy as np
import pytest

import vmsim
from vmsim import PAGE_SIZE

NPAGES = 65_536  # 256 MiB touched per round


@pytest.fixture(scope="module")
def sim():
    return vmsim.Simulator(memory="1GiB")


def _fresh(sim):
    p = sim.spawn()
    a = p.mmap(NPAGES * PAGE_SIZE)
    return p, np.arange(a, a + NPAGES * PAGE_SIZE, PAGE_SIZE, dtype=np.uint64)


@pytest.mark.parametrize("op", ["w", "r"])
def test_fault_throughput(benchmark, sim, op):
    def run(p, addrs):
        p.access_batch(addrs, op)
        p.exit()

    benchmark.pedantic(run, setup=lambda: (_fresh(sim), {}), rounds=10)
    benchmark.extra_info["faults_per_round"] = NPAGES


def test_cow_after_fork(benchmark, sim):
    def setup():
        p, addrs = _fresh(sim)
        p.access_batch(addrs, "w")
        child = p.fork()
        return (p, child, addrs), {}

    def run(p, child, addrs):
        child.access_batch(addrs, "w")
        child.exit()
        p.exit()

    benchmark.pedantic(run, setup=setup, rounds=10)
    benchmark.extra_info["faults_per_round"] = NPAGES


def test_hits(benchmark, sim):
    p, addrs = _fresh(sim)
    p.access_batch(addrs, "w")
    benchmark(p.access_batch, addrs, "w")
    p.exit()
