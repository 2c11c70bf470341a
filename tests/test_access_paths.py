"""access, access_traced and access_batch are one path in the core: the same
accesses give the same outcomes, counters and evictions under every policy."""

import numpy as np
import pytest

import vmsim
from vmsim import PAGE_SIZE


def run(policy: str, path: str):
    sim = vmsim.Simulator(memory="16MiB", swap="8MiB", policy=policy, resident_limit=48)
    parent = sim.spawn(layout="default")
    base = parent.mmap(64 * PAGE_SIZE)
    rng = np.random.default_rng(7)
    outcomes = []

    def go(p, n):
        addrs = (base + rng.integers(0, 64 * PAGE_SIZE, n)).astype(np.uint64)
        ops = rng.integers(0, 2, n).astype(np.uint8)
        if path == "batch" and policy != "opt":
            outcomes.extend(int(c) for c in p.access_batch(addrs, ops))
        elif path == "batch":  # OPT's known future is the batch: compare batches of one
            outcomes.extend(int(p.access_batch(addrs[i : i + 1], ops[i : i + 1])[0]) for i in range(n))
        elif path == "traced":
            outcomes.extend(int(p.access_traced(int(a), int(o))[0]) for a, o in zip(addrs, ops))
        else:
            outcomes.extend(int(p.access(int(a), int(o))) for a, o in zip(addrs, ops))

    go(parent, 300)
    child = parent.fork()
    go(child, 300)
    go(parent, 300)
    sim.check()
    return outcomes, sim.counters(), parent.counters(), child.counters()


@pytest.mark.parametrize("policy", vmsim.policies())
def test_single_traced_and_batch_agree(policy):
    batch = run(policy, "batch")
    assert batch[1]["evictions"] > 0 and batch[1]["faults"]["SWAP_IN"] > 0
    assert run(policy, "single") == batch
    assert run(policy, "traced") == batch
