"""Headline fault-throughput benchmark: vmsim against the host kernel.

    python benches/run.py [--pages N] [--repeat R]

For each workload (write faults on fresh anonymous memory, read faults,
COW writes after fork) it prints faults per second in the simulator (one
access_batch call, release build, one core) and on the real kernel, and
their ratio. Best of R runs each.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import kernel_faults  # noqa: E402

import vmsim  # noqa: E402

PAGE = 4096


def _sim_run(npages: int, kind: str) -> tuple[int, float]:
    sim = vmsim.Simulator(memory=max(2 * npages * PAGE + (64 << 20), 64 << 20))
    p = sim.spawn()
    a = p.mmap(npages * PAGE)
    addrs = np.arange(a, a + npages * PAGE, PAGE, dtype=np.uint64)
    target = p
    op = "w"
    if kind == "read":
        op = "r"
    elif kind == "cow":
        p.access_batch(addrs, "w")
        target = p.fork()
    before = target.counters()["min_flt"]
    t0 = time.perf_counter()
    codes = target.access_batch(addrs, op)
    dt = time.perf_counter() - t0
    faults = target.counters()["min_flt"] - before
    expected = {"write": vmsim.Outcome.ANON_ZERO_FILL, "read": vmsim.Outcome.ZERO_PAGE, "cow": vmsim.Outcome.COW_COPY}[kind]
    assert (codes == expected).all(), f"unexpected outcomes in {kind} run"
    return faults, dt


def best(fn: Callable[[], tuple[int, float]], repeat: int) -> tuple[int, float]:
    runs = [fn() for _ in range(repeat)]
    return max(runs, key=lambda r: r[0] / r[1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=262_144, help="pages touched per run (default 262144 = 1 GiB)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)

    kernel_fns = {
        "write": kernel_faults.write_faults,
        "read": kernel_faults.read_faults,
        "cow": kernel_faults.cow_faults_after_fork,
    }
    print(f"{args.pages} pages per run, best of {args.repeat}")
    print(f"{'workload':<28}{'vmsim faults/s':>16}{'kernel faults/s':>17}{'ratio':>8}")
    for kind, label in [("write", "write faults (fresh anon)"), ("read", "read faults (zero page)"), ("cow", "COW writes after fork")]:
        s_faults, s_dt = best(lambda: _sim_run(args.pages, kind), args.repeat)
        k = max((kernel_fns[kind](args.pages) for _ in range(args.repeat)), key=lambda r: r.rate)
        s_rate = s_faults / s_dt
        print(f"{label:<28}{s_rate / 1e6:>14.2f} M{k.rate / 1e6:>15.2f} M{s_rate / k.rate:>7.1f}x")
        if k.faults < args.pages * 0.9:
            print(f"  (kernel counted {k.faults} faults for {args.pages} pages: huge pages or fault-around at work?)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
