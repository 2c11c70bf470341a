"""pytest-benchmark suite for trace replay, trace parsing and the
replacement policies (not part of the test run).

    pytest benches/ --benchmark-only --benchmark-json benches/results/pytest-benchmark.json
"""

from __future__ import annotations

import numpy as np
import pytest

import vmsim
from vmsim import PAGE_SIZE, traces

ACCESSES = 4_000_000
LACKEY_LINES = 2_000_000


@pytest.fixture(scope="module")
def npy_trace(tmp_path_factory):
    """A zipf trace over 16,384 pages, one write in five, as a structured .npy."""
    a, o = vmsim.workloads.zipf(0x1000_0000, 16_384, ACCESSES, skew=0.9, write_ratio=0.2, seed=1)
    rec = np.zeros(ACCESSES, [("addr", "<u8"), ("op", "u1")])
    rec["addr"], rec["op"] = a, o
    path = tmp_path_factory.mktemp("traces") / "zipf.npy"
    np.save(path, rec)
    return path


@pytest.fixture(scope="module")
def lackey_trace(tmp_path_factory):
    rng = np.random.default_rng(1)
    kinds = np.array(["I  ", " L ", " S ", " M "])[rng.integers(0, 4, LACKEY_LINES)]
    addrs = rng.integers(0x400000, 0x7FFF0000, LACKEY_LINES)
    path = tmp_path_factory.mktemp("traces") / "t.lackey"
    path.write_text("".join(f"{k}{x:08x},4\n" for k, x in zip(kinds, addrs)))
    return path


def test_npy_replay(benchmark, npy_trace):
    result = benchmark.pedantic(lambda: traces.replay(vmsim.Simulator(memory="1GiB"), npy_trace, layout=None), rounds=5)
    assert result.accesses == ACCESSES
    benchmark.extra_info["accesses_per_round"] = ACCESSES


def test_lackey_parse(benchmark, lackey_trace):
    count = benchmark.pedantic(lambda: sum(a.size for a, _ in traces.read_lackey(lackey_trace)), rounds=5)
    assert count >= LACKEY_LINES
    benchmark.extra_info["lines_per_round"] = LACKEY_LINES


@pytest.mark.parametrize("policy", ["fifo", "clock", "lru", "lru2q", "opt"])
def test_policy(benchmark, policy):
    """A zipf trace over 32,768 pages with room for half of them, every access a write."""
    pages, limit, n = 32_768, 16_384, 1_000_000
    ids = np.random.default_rng(3).zipf(1.2, n) % pages
    addrs = ids.astype(np.uint64) * np.uint64(PAGE_SIZE) + np.uint64(0x7F00_0000_0000)

    def setup():
        sim = vmsim.Simulator(memory=(pages + 4096) * PAGE_SIZE, swap=pages * PAGE_SIZE, policy=policy,
                              resident_limit=limit, overcommit=1)  # fmt: skip
        p = sim.spawn()
        p.mmap(pages * PAGE_SIZE, addr=0x7F00_0000_0000, fixed=True)
        return (p,), {}

    benchmark.pedantic(lambda p: p.access_batch(addrs, "w"), setup=setup, rounds=5)
    benchmark.extra_info["requests_per_round"] = n
