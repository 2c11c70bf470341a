"""Paging under memory pressure, per replacement policy.

    python benches/reclaim.py [--quick] [--save] [--plot FILE.png]

1. Throughput: uniform random accesses over a working set twice the
   simulated memory (64 MiB of RAM, 128 MiB touched, swap behind it).
2. The fault-rate curve: a zipf workload's faults against memory size
   (resident pages allowed), one line per policy; written as a markdown table
   and a PNG (log-log) to benches/results/.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import vmsim
from vmsim import PAGE_SIZE, Outcome, workloads

RESULTS = Path(__file__).resolve().parent / "results"


def throughput(policy: str, accesses: int) -> tuple:
    sim = vmsim.Simulator(memory="64MiB", swap="256MiB", policy=policy)
    p = sim.spawn()
    pages = 32_768  # 128 MiB
    base = p.mmap(pages * PAGE_SIZE)
    addrs, ops = workloads.uniform(base, pages, accesses, write_ratio=0.3, seed=1)
    p.access_batch(addrs[:pages], ops[:pages])  # warm up: fill memory first
    t0 = time.perf_counter()
    codes = p.access_batch(addrs, ops)
    dt = time.perf_counter() - t0
    assert not (codes == Outcome.OOM).any()
    faults = int((codes != Outcome.HIT).sum())
    sim.check()
    return accesses / dt, faults / accesses


def curve(policy: str, limits, count: int) -> list:
    out = []
    addrs_ops = None
    for limit in limits:
        sim = vmsim.Simulator(memory="256MiB", swap="256MiB", policy=policy, resident_limit=limit)
        p = sim.spawn()
        base = p.mmap(8192 * PAGE_SIZE, addr=0x1000_0000, fixed=True)
        if addrs_ops is None:
            addrs_ops = workloads.zipf(base, 8192, count, skew=0.9, write_ratio=0.3, seed=7)
        codes = p.access_batch(*addrs_ops)
        out.append(int((codes != Outcome.HIT).sum()))
    return out


def plot_curves(curves: dict[str, list[int]], limits: list[int], count: int, path: Path) -> None:
    """Faults against memory size, one line per policy (log-log)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot (pip install '.[bench]')", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for pol, faults in curves.items():
        ax.plot(limits, faults, marker="o", label=pol)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("memory (resident pages, the resident limit)")
    ax.set_ylabel("page faults")
    ax.set_title(f"faults against memory per policy\nzipf (skew 0.9) over 8192 pages, {count:,} accesses, swap 256 MiB")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(title="policy", loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--save", action="store_true", help="write the table and plot to benches/results/")
    ap.add_argument("--plot", type=Path, help="write the plot to this PNG")
    args = ap.parse_args(argv)
    n = 200_000 if args.quick else 2_000_000
    lines = [
        "# Paging under pressure",
        "",
        f"## Throughput: {n:,} uniform random accesses, working set 2x memory",
        "",
        "| policy | accesses/s | fault rate |",
        "|---|---|---|",
    ]
    for pol in vmsim.policies():
        rate, fr = throughput(pol, n)
        lines.append(f"| {pol} | {rate / 1e6:.2f} M | {fr:.1%} |")
        print(lines[-1], flush=True)
    limits = [256, 512, 1024, 2048, 4096, 8192]
    count = 100_000 if args.quick else 500_000
    curves = {pol: curve(pol, limits, count) for pol in vmsim.policies()}
    lines += [
        "",
        f"## Faults against memory size: zipf (skew 0.9) over 8192 pages, {count:,} accesses",
        "",
        "| policy | " + " | ".join(f"{limit} pages" for limit in limits) + " |",
        "|---" * (len(limits) + 1) + "|",
    ]
    for pol, faults in curves.items():
        lines.append(f"| {pol} | " + " | ".join(f"{f:,}" for f in faults) + " |")
    print("\n".join(lines[-len(curves) - 4 :]))
    plots = [args.plot] if args.plot else []
    if args.save:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "reclaim.md").write_text("\n".join(lines) + "\n")
        print(f"wrote {RESULTS / 'reclaim.md'}")
        plots.append(RESULTS / "reclaim.png")
    for path in plots:
        plot_curves(curves, limits, count, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
