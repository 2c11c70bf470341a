"""The pictures `vmsim run --plot` draws (matplotlib, from `vmsim[plot]`).

Each builder returns the Figure, so tests can read what was plotted; `save`
writes it and says where.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vmsim._core import PAGE_SIZE

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from vmsim._core import Simulator
    from vmsim.workloads import RunResult


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("plots need matplotlib: pip install 'vmsim[plot]'") from None
    return plt


def to_files() -> None:
    """Draw into files only (the Agg backend): for the command line, which
    has no display; a notebook keeps its own backend."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install 'vmsim[plot]'") from None
    matplotlib.use("Agg")


def describe(sim: Simulator, with_policy: bool = True) -> str:
    """The simulator's configuration in a few words, for titles."""
    parts = [f"memory {sim.memory / 2**20:g} MiB", f"{sim.vma_index} index"]
    if sim.swap:
        parts.append(f"swap {sim.swap / 2**20:g} MiB")
    if sim.resident_limit is not None:
        parts.append(f"resident limit {sim.resident_limit:,} pages")
    if sim.policy and with_policy:
        parts.append(f"policy {sim.policy}")
    return ", ".join(parts)


def timeline_figure(result: RunResult, config: str) -> Figure:
    """RSS (top panel) and cumulative faults (below it) against accesses;
    under Linux reclaim two more: the LRU lists' sizes, and refaults."""
    plt = _pyplot()
    points = result.timeline
    xs = [p[0] for p in points]
    panels = 4 if result.reclaim else 2
    fig, axes = plt.subplots(panels, 1, figsize=(8, 2.75 * panels), sharex=True)
    rss_ax, fault_ax = axes[0], axes[1]
    if result.reclaim:
        _reclaim_panels(result.reclaim, axes[2], axes[3])
    rss_ax.plot(xs, [p[1] * PAGE_SIZE / 2**20 for p in points], color="tab:blue", label="RSS")
    rss_ax.set_ylabel("RSS (MiB)")
    rss_ax.set_ylim(bottom=0)
    fault_ax.plot(xs, [p[2] for p in points], color="tab:red", label="faults")
    fault_ax.set_ylabel("page faults so far")
    fault_ax.set_ylim(bottom=0)
    axes[-1].set_xlabel("accesses")
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(6))  # room for "2,000,000"
        ax.xaxis.set_major_formatter(_thousands())
        ax.yaxis.set_major_formatter(_thousands())
    rss_ax.yaxis.set_major_formatter(_decimal())
    if result.reclaim:
        axes[2].yaxis.set_major_formatter(_decimal())
    fig.suptitle(f"{result.name}\n{config}", fontsize=10)
    fig.tight_layout()
    return fig


LRU_LISTS = ("inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable")


def _reclaim_panels(points: list, lru_ax: Any, refault_ax: Any) -> None:
    """The LRU lists' sizes (stacked, MiB) and cumulative refaults, machine-wide."""
    xs = [p[0] for p in points]
    sizes = [[p[1 + i] * PAGE_SIZE / 2**20 for p in points] for i in range(len(LRU_LISTS))]
    colors = ["tab:orange", "tab:red", "tab:cyan", "tab:blue", "tab:gray"]
    lru_ax.stackplot(xs, sizes, labels=LRU_LISTS, colors=colors, alpha=0.8)
    lru_ax.set_ylabel("LRU lists (MiB)")
    lru_ax.set_ylim(bottom=0)
    lru_ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    refault_ax.plot(xs, [p[6] for p in points], color="tab:purple", label="refaults")
    refault_ax.plot(xs, [p[7] for p in points], color="tab:green", label="refaults activated")
    refault_ax.set_ylabel("refaults so far")
    refault_ax.set_ylim(bottom=0)
    refault_ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def mix_figure(runs: list[tuple[str, RunResult]], config: str) -> Figure:
    """Stacked bars of each run's faults and signals by outcome; the legend
    sits beside the axes, so it covers no bar."""
    plt = _pyplot()
    results = [r for _, r in runs]
    names = [n for n in results[0].outcomes if n != "HIT" and any(r.outcomes[n] for r in results)]
    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    labels = [label for label, _ in runs]
    bottom = [0] * len(runs)
    for n in names:
        values = [r.outcomes[n] for r in results]
        ax.bar(labels, values, bottom=bottom, label=n)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_xlabel("replacement policy")
    ax.set_ylabel("accesses that were not hits")
    ax.yaxis.set_major_formatter(_thousands())
    ax.legend(title="outcome", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax.set_title(f"fault mix per policy: {results[0].name}\n{config}", fontsize=10)
    fig.tight_layout()
    return fig


def save(fig: Figure, path: Path | str) -> None:
    """Write `fig` to `path` and say so (on stderr: stdout may be JSON)."""
    fig.savefig(path, dpi=100)
    _pyplot().close(fig)
    print(f"wrote {path}", file=sys.stderr)


def _thousands() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: f"{v:,.0f}")


def _decimal() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: f"{v:,.1f}" if v < 100 else f"{v:,.0f}")
