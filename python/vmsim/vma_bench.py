"""VMA-index studies (`vmsim bench vma`, `vmsim run --vma-index all`): each
index timed operation by operation in the core, the runs summarised and drawn."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from vmsim._core import vma_index_study

OPS = ("lookup_ns", "insert_ns", "remove_ns", "gap_ns")


def median_spread(values: list[float]) -> tuple[float, float, float]:
    """(median, lowest, highest) of repeated measurements."""
    return statistics.median(values), min(values), max(values)


def study(indexes: list[str], sizes: list[int], lookups: int, repeat: int) -> list[dict[str, Any]]:
    """Every index at every size, `repeat` times (interleaved, each run with
    its own seed): per (index, size) a record of each operation's median ns
    and its ``_spread`` (lowest, highest), and what the index counted of its
    lookups (``nodes_per_lookup``, ``cache_hit_rate``; None where it cannot)."""
    runs: dict[tuple[str, int], list[dict]] = {(i, n): [] for n in sizes for i in indexes}
    for r in range(repeat):
        for n in sizes:
            for index in indexes:
                runs[index, n].append(vma_index_study(index, n, lookups, seed=r + 1))
    records = []
    for (index, n), done in runs.items():
        rec: dict[str, Any] = {"vma_index": index, "vmas": n, "runs": repeat}
        for op in OPS:
            rec[op], low, high = median_spread([d[op] for d in done])
            rec[op + "_spread"] = [low, high]
        rec["nodes_per_lookup"], rec["cache_hit_rate"] = done[-1]["nodes_per_lookup"], done[-1]["cache_hit_rate"]
        records.append(rec)
    return records


def plot(records: list[dict], indexes: list[str], path: Path, title: str) -> None:
    """ns per operation against the number of VMAs, a panel per operation, a line per index (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(OPS), figsize=(13, 3.6), sharex=True)
    for ax, key, name in zip(axes, OPS, ("lookup", "insert", "remove", "gap search")):
        for index in indexes:
            rows = sorted((r["vmas"], r[key]) for r in records if r["vma_index"] == index)
            ax.plot([n for n, _ in rows], [v for _, v in rows], marker="o", markersize=3, label=index)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(name)
        ax.set_xlabel("VMAs")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("ns per operation")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="center right", title="index")
    fig.suptitle(f"VMA indexes, operation by operation ({title})", fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.9, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
