"""VMA index structures side by side: Rust micro-benchmarks plus end-to-end
fault throughput, written to benches/results/ as a markdown table and a plot.

    python benches/vma_indexes.py [--quick] [--save] [--plot FILE.png]

Needs cargo (for the micro-benchmarks) and, for the plot, matplotlib
(`pip install '.[bench]'`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

import vmsim
from vmsim import PAGE_SIZE

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
# Pages touched per end-to-end run (the same whatever the VMA count): a
# smaller working set where the fault path is cache-hot, and a larger one.
TOTALS = (163_840, 655_360)


def micro(quick: bool) -> list[dict]:
    """The criterion micro-benchmarks (rust/core/benches/vma_index.rs), as
    rows of index, vmas, op and ns per op read from criterion's estimates."""
    cmd = ["cargo", "bench", "-p", "vmsim-core", "--bench", "vma_index", "--"] + (["--quick"] if quick else [])
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "criterion"
    rows = []
    for estimates in sorted(target.glob("vma_*/*/*/new/estimates.json")):
        n, index, group = estimates.parts[-3], estimates.parts[-4], estimates.parts[-5]
        if index not in vmsim.vma_indexes():
            continue
        ns = json.loads(estimates.read_text())["median"]["point_estimate"]
        rows.append({"index": index, "vmas": int(n), "op": group.removeprefix("vma_"), "ns_per_op": ns})
    return rows


def end_to_end(index: str, nvmas: int, total_pages: int, repeat: int = 3) -> float:
    """Write faults per second: every page of `nvmas` mappings touched once, in random order."""
    per = total_pages // nvmas
    best = 0.0
    for seed in range(repeat):
        sim = vmsim.Simulator(memory=(total_pages + total_pages // 8) * PAGE_SIZE, vma_index=index)
        p = sim.spawn()
        base = 0x1000_0000
        starts = base + np.arange(nvmas, dtype=np.uint64) * ((per + 1) * PAGE_SIZE)  # a one-page hole after each
        for s in starts:
            p.mmap(per * PAGE_SIZE, addr=int(s), fixed=True)
        assert len(p.vmas()) == nvmas
        pages = (starts[:, None] + np.arange(per, dtype=np.uint64)[None, :] * PAGE_SIZE).ravel()
        np.random.default_rng(seed).shuffle(pages)
        t0 = time.perf_counter()
        codes = p.access_batch(pages, "w")
        dt = time.perf_counter() - t0
        assert (codes == vmsim.Outcome.ANON_ZERO_FILL).all()
        best = max(best, pages.size / dt)
        p.exit()
    return best


def render_table(rows: list[dict], e2e: dict) -> str:
    """The results as markdown: ns per operation per size, then the fault path end to end."""
    ops = ["lookup_random", "lookup_local", "insert", "remove", "gap_search"]
    sizes = sorted({r["vmas"] for r in rows})
    by = {(r["index"], r["vmas"], r["op"]): r["ns_per_op"] for r in rows}
    indexes = list(dict.fromkeys(r["index"] for r in rows))
    lines = [
        "# VMA index benchmarks",
        "",
        "`python benches/vma_indexes.py`. ns per operation: criterion's median",
        "(rust/core/benches/vma_index.rs, release build):",
        "",
    ]
    for op in ops:
        lines += [
            f"## {op}",
            "",
            "| index | " + " | ".join(f"{n} VMAs" for n in sizes) + " |",
            "|---" * (len(sizes) + 1) + "|",
        ]
        for ix in indexes:
            lines.append(f"| {ix} | " + " | ".join(f"{by.get((ix, n, op), float('nan')):.1f}" for n in sizes) + " |")
        lines.append("")
    lines += ["## End to end: write faults per second through access_batch", ""]
    lines += ["Every page of the mappings touched once, in random order (best of 3).", ""]
    cols = sorted({(t, n) for _, n, t in e2e})
    totals = sorted({t for t, _ in cols})
    head = (
        " | ".join(f"{n} VMAs, {t} pages" for t, n in cols) + " | " + " | ".join(f"ratio at {t} pages" for t in totals)
    )
    lines += [f"| index | {head} |", "|---" * (len(cols) + len(totals) + 1) + "|"]
    for ix in indexes:
        vals = [f"{e2e[(ix, n, t)] / 1e6:.2f} M" for t, n in cols]
        ratios = []
        for t in totals:
            ns = sorted(n for tt, n in cols if tt == t)
            ratios.append(f"{e2e[(ix, ns[-1], t)] / e2e[(ix, ns[0], t)]:.0%}")
        lines.append(f"| {ix} | " + " | ".join(vals + ratios) + " |")
    lines.append("")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path, quick: bool) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot (pip install '.[bench]')", file=sys.stderr)
        return False
    ops = ["lookup_random", "lookup_local", "insert", "remove", "gap_search"]
    fig, axes = plt.subplots(1, len(ops), figsize=(4 * len(ops), 4), sharey=True)
    series = defaultdict(list)
    for r in rows:
        series[(r["index"], r["op"])].append((r["vmas"], r["ns_per_op"]))
    for ax, op in zip(axes, ops):
        for (ix, o), pts in series.items():
            if o == op:
                pts.sort()
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=ix)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(op)
        ax.set_xlabel("VMAs")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("ns per operation")
    axes[-1].legend(title="index", loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    fig.suptitle(f"VMA index operations against the number of VMAs (criterion{', --quick' if quick else ''})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer sizes, shorter runs")
    ap.add_argument("--save", action="store_true", help="write the table and plot to benches/results/")
    ap.add_argument("--plot", type=Path, help="write the plot to this PNG")
    args = ap.parse_args(argv)
    rows = micro(args.quick)
    e2e = {(ix, n, t): end_to_end(ix, n, t) for ix in vmsim.vma_indexes() for n in (10, 10_000) for t in TOTALS}
    table = render_table(rows, e2e)
    print(table)
    plots = [args.plot] if args.plot else []
    if args.save:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "vma_indexes.md").write_text(table)
        print(f"wrote {RESULTS / 'vma_indexes.md'}")
        plots.append(RESULTS / "vma_indexes.png")
    for path in plots:
        if plot(rows, path, args.quick):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
