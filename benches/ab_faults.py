"""Before/after: the fault and hit rates of two vmsim builds, measured
interleaved in one run (this VM drifts ~30% between runs, so only a
same-run comparison means anything).

    # build the old tree into another virtualenv, then:
    python benches/ab_faults.py --before /path/to/old-venv/bin/python [--pages 262144] [--rounds 3]

Each round runs every workload in each interpreter (best of 5 inside);
the table shows the median over rounds and after/before.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

# Runs inside each interpreter: only the public API, so old builds work too.
PROBE = r"""
import json, sys, time
import numpy as np
import vmsim
PAGE = 4096
def rate(n, kind):
    sim = vmsim.Simulator(memory=max(2 * n * PAGE + (64 << 20), 64 << 20))
    p = sim.spawn()
    a = p.mmap(n * PAGE)
    addrs = np.arange(a, a + n * PAGE, PAGE, dtype=np.uint64)
    target, op = p, {"read": "r"}.get(kind, "w")
    if kind in ("cow", "hit"):
        p.access_batch(addrs, "w")
    if kind == "cow":
        target = p.fork()
    t0 = time.perf_counter()
    target.access_batch(addrs, op)
    return n / (time.perf_counter() - t0)
n = int(sys.argv[1])
print(json.dumps({k: max(rate(n, k) for _ in range(5)) for k in ("write", "read", "cow", "hit")}))
"""

LABELS = {"write": "anon write fault", "read": "zero-page read fault", "cow": "COW fault", "hit": "hit"}


def measure(python: str, pages: int) -> dict[str, float]:
    out = subprocess.run([python, "-c", PROBE, str(pages)], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True, help="python of the environment with the old build")
    ap.add_argument("--after", default=sys.executable, help="python of the new build (default: this one)")
    ap.add_argument("--pages", type=int, default=262_144)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for _ in range(args.rounds):
        for side in ("before", "after"):
            runs[side].append(measure(getattr(args, side), args.pages))
    print(f"{args.pages} pages, median of {args.rounds} interleaved rounds (M accesses/s)")
    print(f"{'workload':<22} {'before':>8} {'after':>8} {'after/before':>13}")
    for kind, label in LABELS.items():
        before = statistics.median(r[kind] for r in runs["before"]) / 1e6
        after = statistics.median(r[kind] for r in runs["after"]) / 1e6
        print(f"{label:<22} {before:>8.1f} {after:>8.1f} {after / before:>12.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
