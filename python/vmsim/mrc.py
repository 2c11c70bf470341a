"""Miss-ratio curves: the misses of a workload or trace against resident memory, per policy.

A miss is an access that needs a frame: a first touch that allocates (a
write fault on fresh memory, or the copy a write makes of the zero page), a
page-cache miss, or a swap-in. Reads of memory never written map the zero
page and are no misses. Sizes are resident user pages (``resident_limit``).

LRU's curve takes one pass (Mattson's stack distances, `StackDistances`):
the run is made once and every size's misses come from the histogram,
which equals a replay under ``policy="lru"`` at every size as long as no
frame the run got goes away before its end and every frame is a written
page (no munmap, no exiting fork child, no page cache). The pass checks
that between batches; where it does not hold (``heap``, ``mmap_churn``,
``fork_storm``, file-backed traces), LRU is replayed per size like every
other policy, and the curve says which was done (`lru_method`).

    curve = vmsim.mrc.miss_ratio_curve("zipf:pages=4096,count=200000", ["lru", "clock", "opt"], "5%..100%")
    print(curve.table())
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

import vmsim
from vmsim._core import StackDistances
from vmsim.outcome import Outcome
from vmsim.workloads import RunResult, run_target

PAGE = 4096
# The outcomes whose access needed a frame.
MISSES = (Outcome.ANON_ZERO_FILL, Outcome.COW_COPY, Outcome.FILE_MAJOR, Outcome.SWAP_IN)
# How many sizes a range ("1%..100%") stands for unless told.
DEFAULT_POINTS = 10


def misses_of(result: RunResult) -> int:
    """The accesses of a run that needed a frame."""
    return sum(result.outcomes[o.name] for o in MISSES)


@dataclass
class MissRatioCurve:
    """Misses per policy at each resident size.

    Attributes
    ----------
    target : str
        The workload spec or trace file.
    accesses : int
        Accesses of one run.
    distinct_pages : int
        Pages the run touched (what percent sizes are of).
    sizes : list of int
        Resident pages, ascending.
    misses : dict of str to list of int
        Per policy, the misses at each size.
    lru_method : str
        How LRU's misses were found: ``"stack distances"`` (one pass) or
        ``"replay"`` (a run per size).
    """

    target: str
    accesses: int
    distinct_pages: int
    sizes: list[int]
    misses: dict[str, list[int]] = field(default_factory=dict)
    lru_method: str = "stack distances"

    def ratios(self, policy: str) -> list[float]:
        """A policy's miss ratio at each size (misses over accesses)."""
        return [m / self.accesses if self.accesses else 0.0 for m in self.misses[policy]]

    def table(self) -> str:
        """The curve as a text table: a row per size, a miss-ratio column per policy."""
        policies = list(self.misses)
        head = ["resident pages", "% of distinct", *policies]
        rows = [
            [f"{s:,}", f"{100 * s / self.distinct_pages:.1f}%" if self.distinct_pages else "-"]
            + [f"{100 * self.ratios(p)[i]:.2f}%" for p in policies]
            for i, s in enumerate(self.sizes)
        ]
        widths = [max(len(r[c]) for r in [head, *rows]) for c in range(len(head))]
        lines = [
            f"{self.target}: {self.accesses:,} accesses, {self.distinct_pages:,} distinct pages; miss ratio by policy"
            + (f" (lru by {self.lru_method})" if "lru" in self.misses else ""),
            "  ".join(h.rjust(w) for h, w in zip(head, widths)),
        ]
        lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in rows]
        return "\n".join(lines)

    def record(self) -> dict[str, Any]:
        """The curve as plain data (for JSON)."""
        return {
            "target": self.target,
            "accesses": self.accesses,
            "distinct_pages": self.distinct_pages,
            "sizes": self.sizes,
            "misses": self.misses,
            "miss_ratios": {p: self.ratios(p) for p in self.misses},
            "lru_method": self.lru_method,
        }

    def plot(self, path: str | Path) -> None:
        """Draw miss ratio against resident memory, a line per policy, to a PNG (needs matplotlib)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4.5))
        for policy in self.misses:
            ax.plot(self.sizes, [100 * r for r in self.ratios(policy)], marker="o", markersize=3, label=policy)
        ax.set_xlabel("resident memory (pages)")
        ax.set_ylabel("miss ratio (%)")
        ax.set_ylim(bottom=0)
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
        ax.set_title(f"{self.target}\n{self.accesses:,} accesses, {self.distinct_pages:,} distinct pages", fontsize=9)
        ax.legend(title="policy")
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)


def parse_sizes(spec: str, distinct_pages: int, points: int = DEFAULT_POINTS) -> list[int]:
    """Resident sizes from a spec: comma-separated items, each a page count
    (``512``), a percent of the distinct pages (``25%``), or a range of
    either (``1%..100%``, ``256..4096``) standing for `points` evenly spaced
    sizes. Sorted, without repeats, each at least one page."""
    if points < 2:
        raise ValueError(f"a range needs at least 2 points, got {points}")
    out: set[int] = set()
    for item in (part.strip() for part in spec.split(",")):
        ends = [e.strip() for e in item.split("..")]
        if len(ends) > 2 or not all(ends):
            raise ValueError(f"bad size {item!r} in {spec!r}: use N, N%, or A..B (e.g. 1%..100%)")
        values = [_one_size(e, distinct_pages, spec) for e in ends]
        if len(values) == 2:
            lo, hi = values
            if lo > hi:
                raise ValueError(f"size range {item!r} runs backwards")
            values = [round(v) for v in np.linspace(lo, hi, points)]
        out.update(max(1, round(v)) for v in values)
    return sorted(out)


def _one_size(text: str, distinct_pages: int, spec: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(%?)", text)
    if m is None:
        raise ValueError(f"bad size {text!r} in {spec!r}: a page count (512) or a percent (25%)")
    value = float(m.group(1))
    if value <= 0:
        raise ValueError(f"size {text!r} must be above 0")
    return distinct_pages * value / 100 if m.group(2) else value


class _Tapped:
    """A simulator whose runs show each batch to `access_tap` before it runs
    (RunResult reads it); the rest is the simulator's own."""

    def __init__(self, sim: vmsim.Simulator, tap: Callable[[Any, np.ndarray, Any], None]):
        self._sim, self.access_tap = sim, tap

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sim, name)


def miss_ratio_curve(
    target: str,
    policies: Sequence[str] = ("lru",),
    sizes: str = "1%..100%",
    points: int = DEFAULT_POINTS,
    memory: int | str = "4GiB",
    vma_index: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> MissRatioCurve:
    """The miss-ratio curve of a workload or trace under each policy.

    Parameters
    ----------
    target : str
        A workload spec (``zipf:pages=4096``) or a trace file `vmsim run` reads.
    policies : sequence of str
        Replacement policies (`vmsim.policies()`); ``lru`` takes one pass.
    sizes : str
        Resident sizes: page counts, percents of the distinct pages, or
        ranges of either (see `parse_sizes`).
    points : int
        Sizes a range stands for.
    memory : int or str
        The simulated memory of every run (room for the run's pages and page
        tables: the sizes limit the resident pages, not the memory).
    vma_index : str, optional
        The VMA index of every run.
    progress : callable, optional
        Called with a line before each run.

    Returns
    -------
    MissRatioCurve

    Raises
    ------
    ValueError
        An unknown policy, a bad size, or a run that ran out of `memory`.
    """
    unknown = [p for p in policies if p not in vmsim.policies()]
    if unknown or not policies:
        raise ValueError(f"unknown policy {unknown[0] if unknown else '(none)'!r}: use {', '.join(vmsim.policies())}")
    kw: dict[str, Any] = {"memory": memory}
    if vma_index:
        kw["vma_index"] = vma_index
    distances, sim = StackDistances(), vmsim.Simulator(**kw)
    exact = True

    def tap(proc: Any, addrs: np.ndarray, ops: Any) -> None:
        nonlocal exact
        # Every frame the run holds is a page it wrote, and none went: the
        # stack is what LRU would hold.
        c = sim.counters()
        exact &= c["frames_used"] - c["pt_pages"] - c["kernel_pages"] - c["slab_pages"] == distances.written_pages
        distances.feed(addrs, ops, proc.tgid)

    if progress:
        progress(f"{target}: the stack-distance pass")
    first = run_target(target, cast(Any, _Tapped(sim, tap)))
    if first.outcomes[Outcome.OOM.name]:
        raise ValueError(f"the run ran out of simulated memory ({memory}): give it more (--memory)")
    # With room for everything, the run's misses are its first writes, as the
    # stack counts them; a page-cache page or a copy of a shared frame would differ.
    exact &= misses_of(first) == distances.written_pages
    exact &= not (first.outcomes[Outcome.FILE_MINOR.name] or first.outcomes[Outcome.FILE_MAJOR.name])
    curve = MissRatioCurve(target, first.accesses, distances.distinct_pages, [])
    curve.sizes = parse_sizes(sizes, curve.distinct_pages, points)
    swap = (max(distances.written_pages, distances.distinct_pages) + 1024) * PAGE  # room for every page
    for policy in policies:
        if policy == "lru" and exact:
            curve.misses[policy] = [distances.misses(s) for s in curve.sizes]
            continue
        if policy == "lru":
            curve.lru_method = "replay"
        curve.misses[policy] = []
        for s in curve.sizes:
            if progress:
                progress(f"{target}: {policy} at {s:,} resident pages")
            result = run_target(target, vmsim.Simulator(**kw, swap=swap, policy=policy, resident_limit=s))
            if result.outcomes[Outcome.OOM.name]:
                raise ValueError(
                    f"{policy} at {s:,} resident pages: {result.outcomes[Outcome.OOM.name]:,} accesses found no frame"
                    " (nothing could be evicted there): use larger sizes"
                )
            curve.misses[policy].append(misses_of(result))
    return curve
