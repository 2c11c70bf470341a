"""Seeded, reproducible memory workloads.

Two layers:

* generators (`sequential`, `strided`, `uniform`, `zipf`) return numpy arrays
  of addresses and op codes for a region; they never touch a simulator;
* `Workload` names a workload and its parameters (small, picklable: what a
  sweep ships to a worker) and `Workload.run(sim)` plays it on a fresh
  process, including the address-space events some need (stack growth, brk,
  mmap churn, fork storms), always in whole batches, never a Python loop
  per access.

`Workload.parse("zipf:pages=4096,count=100000,skew=1.1,seed=3")` reads the
form the command line takes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, cast

import numpy as np

from vmsim._core import PAGE_SIZE, Cgroup, Process, Simulator, count_outcomes
from vmsim.outcome import Outcome

READ, WRITE, EXEC = 0, 1, 2

Arrays = tuple[np.ndarray, np.ndarray]


def _ops(rng: np.random.Generator, n: int, write_ratio: float) -> np.ndarray:
    return (rng.random(n) < write_ratio).astype(np.uint8)


# ----- pure generators -------------------------------------------------------


def sequential(base: int, pages: int, passes: int = 1, op: int = READ) -> Arrays:
    """Every page of a region in order, pass after pass.

    Parameters
    ----------
    base : int
        The region's first address.
    pages : int
        Pages in the region.
    passes : int, default 1
        Times the region is walked.
    op : int, default 0
        0 read, 1 write, 2 exec.

    Returns
    -------
    tuple of (numpy.ndarray of uint64, numpy.ndarray of uint8)
        Addresses and op codes.
    """
    addrs = np.tile(np.arange(pages, dtype=np.uint64) * PAGE_SIZE + np.uint64(base), passes)
    return addrs, np.full(addrs.size, op, dtype=np.uint8)


def strided(base: int, pages: int, stride: int, count: int, op: int = READ) -> Arrays:
    """Accesses stepping a fixed number of pages at a time, wrapping in the region.

    Parameters
    ----------
    base : int
        The region's first address.
    pages : int
        Pages in the region.
    stride : int
        Pages between accesses.
    count : int
        Accesses.
    op : int, default 0
        0 read, 1 write, 2 exec.

    Returns
    -------
    tuple of (numpy.ndarray of uint64, numpy.ndarray of uint8)
        Addresses and op codes.
    """
    idx = (np.arange(count, dtype=np.uint64) * np.uint64(stride)) % np.uint64(pages)
    return idx * np.uint64(PAGE_SIZE) + np.uint64(base), np.full(count, op, dtype=np.uint8)


def uniform(base: int, pages: int, count: int, write_ratio: float = 0.3, seed: int = 0) -> Arrays:
    """Accesses at uniformly random byte offsets of a region.

    Parameters
    ----------
    base : int
        The region's first address.
    pages : int
        Pages in the region.
    count : int
        Accesses.
    write_ratio : float, default 0.3
        The fraction of accesses that write.
    seed : int, default 0
        The random stream.

    Returns
    -------
    tuple of (numpy.ndarray of uint64, numpy.ndarray of uint8)
        Addresses and op codes.
    """
    rng = np.random.default_rng(seed)
    addrs = rng.integers(0, pages * PAGE_SIZE, count, dtype=np.uint64) + np.uint64(base)
    return addrs, _ops(rng, count, write_ratio)


def zipf(base: int, pages: int, count: int, skew: float = 1.1, write_ratio: float = 0.3, seed: int = 0) -> Arrays:
    """Accesses whose pages follow a Zipf law: page of rank k is drawn with
    weight 1/k**skew, the ranks scattered over the region.

    Parameters
    ----------
    base : int
        The region's first address.
    pages : int
        Pages in the region.
    count : int
        Accesses.
    skew : float, default 1.1
        The Zipf exponent (higher: hotter hot pages).
    write_ratio : float, default 0.3
        The fraction of accesses that write.
    seed : int, default 0
        The random stream.

    Returns
    -------
    tuple of (numpy.ndarray of uint64, numpy.ndarray of uint8)
        Addresses and op codes.
    """
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, pages + 1, dtype=np.float64) ** skew
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    ranks = np.searchsorted(cdf, rng.random(count))
    ranks = np.minimum(ranks, pages - 1)
    placement = rng.permutation(pages).astype(np.uint64)  # which page has which rank
    offsets = rng.integers(0, PAGE_SIZE, count, dtype=np.uint64) & np.uint64(~7 & 0xFFF)
    return placement[ranks] * np.uint64(PAGE_SIZE) + offsets + np.uint64(base), _ops(rng, count, write_ratio)


# ----- workloads with address-space events ----------------------------------


TIMELINE_POINTS = 256
"""A run's timeline keeps between this many points and twice as many, evenly
spaced in accesses, however long the run."""


@dataclass
class RunResult:
    """What running a workload (or a trace) did.

    Attributes
    ----------
    name : str
        The workload's spec, or ``trace:FILE``.
    accesses : int
        Accesses made.
    outcomes : dict of str to int
        Accesses per `Outcome` name.
    min_flt, maj_flt : int
        Faults of every process the run made (set when it ends).
    rss_peak : int
        The most resident pages seen in the running process.
    seconds : float
        Time inside the simulator.
    faults : int
        Counted faults so far (minor and major).
    whole_batches : bool
        Sample only at batch ends (set under ``policy="opt"``, whose known
        future is the batch).
    reclaim : list of tuple
        Under ``policy="linux"`` or ``"mglru"`` (see `for_simulator`), at each timeline
        point: (accesses so far, pages on ``inactive_anon``, ``active_anon``,
        ``inactive_file``, ``active_file``, ``unevictable``, refaults so far,
        refaults activated so far), machine-wide, from ``sim.vmstat()``.
    """

    name: str
    accesses: int = 0
    outcomes: dict = field(default_factory=lambda: {o.name: 0 for o in Outcome})
    min_flt: int = 0
    maj_flt: int = 0
    rss_peak: int = 0  # pages, sampled with the timeline and after each batch
    seconds: float = 0.0
    faults: int = 0  # counted faults (minor and major) so far
    _points: list = field(default_factory=list)
    _last: tuple = (0, 0, 0)
    _step: int = 1  # accesses between timeline points (doubles as the run grows)
    # Under policy "opt" the batch is the known future: splitting it would
    # change the result, so the timeline has a point per batch instead.
    whole_batches: bool = False
    reclaim: list = field(default_factory=list)
    _vmstat: Callable[[], Mapping[str, int]] | None = None
    # Sees every batch before it runs (a miss-ratio curve's one pass).
    _tap: Callable[[Process, np.ndarray, np.ndarray | str], None] | None = None

    @classmethod
    def for_simulator(cls, name: str, sim: Simulator) -> RunResult:
        """A result for a run on `sim`: whole batches under ``opt``, and the
        reclaim timeline under ``linux`` and ``mglru``."""
        linux = sim.policy in ("linux", "mglru")
        tap = getattr(sim, "access_tap", None)  # set by vmsim.mrc's tapped simulator
        return cls(name, whole_batches=sim.policy == "opt", _vmstat=cast(Any, sim.vmstat) if linux else None, _tap=tap)

    @property
    def throughput(self) -> float:
        return self.accesses / self.seconds if self.seconds else 0.0

    @property
    def timeline(self) -> list[tuple[int, int, int]]:
        """(accesses so far, RSS pages of the running process, counted faults so
        far) at evenly spaced points of the run, then at its end."""
        ended_between_points = self._last[0] > (self._points[-1][0] if self._points else 0)
        return [*self._points, self._last] if ended_between_points else list(self._points)

    def play(
        self, proc: Process, addrs: np.ndarray, ops: np.ndarray | str, progress: Callable[[int], None] | None = None
    ) -> None:
        """Run `addrs` (with `ops`) on `proc` in one call, counting outcomes
        and time, and sampling RSS and faults for the timeline."""
        n = int(addrs.size)
        if n == 0:
            return
        if self._tap is not None:
            self._tap(proc, addrs, ops)
        if self.whole_batches:
            first = every = n
        else:
            while (self.accesses + n) // self._step >= 2 * TIMELINE_POINTS:  # keep under 2x the points
                self._step *= 2
                self._points = [p for p in self._points if p[0] % self._step == 0]
            first, every = self._step - self.accesses % self._step, self._step
        if self._vmstat is None:
            self._run(proc, addrs, ops, first, every)
        else:
            # The reclaim timeline reads vmstat at each point: the batch runs
            # in its pieces here (the same pieces the core would run).
            start = 0
            for end in [*range(first, n, every), n]:
                piece = ops if isinstance(ops, str) else ops[start:end]
                self._run(proc, addrs[start:end], piece, end - start, end - start)
                v = self._vmstat()
                self.reclaim.append(
                    (
                        self._last[0],
                        *(v[f"nr_{lru}"] for lru in ("inactive_anon", "active_anon", "inactive_file", "active_file")),
                        v["nr_unevictable"],
                        v["workingset_refault_anon"] + v["workingset_refault_file"],
                        v["workingset_activate_anon"] + v["workingset_activate_file"],
                    )
                )
                start = end
        self.faults = self._last[2]
        if progress is not None:
            progress(n)

    def _run(self, proc: Process, addrs: np.ndarray, ops: np.ndarray | str, first: int, every: int) -> None:
        """One call into the simulator; its samples onto the timeline."""
        t0 = time.perf_counter()
        codes, samples = proc.access_batch_sampled(addrs, cast(Any, ops), first, every)
        self.seconds += time.perf_counter() - t0
        for o, count in zip(Outcome, count_outcomes(codes)):
            self.outcomes[o.name] += count
        for done, rss, faults in samples:
            self._last = (self.accesses + done, rss, self.faults + faults)
            self.rss_peak = max(self.rss_peak, rss)
            if self.whole_batches or self._last[0] % self._step == 0:
                self._points.append(self._last)
        self.accesses += int(addrs.size)
        self.faults = self._last[2]

    def count_faults(self, sim: Simulator, before: Mapping[str, Any]) -> None:
        """Every fault the run took, in every process it made (exited ones
        too): the machine-wide counts since `before` (sim.counters())."""
        after = sim.counters()
        self.min_flt = after["min_flt"] - before["min_flt"]
        self.maj_flt = after["maj_flt"] - before["maj_flt"]

    def record(self, sim: Simulator) -> dict[str, Any]:
        """The run as one flat record, the same fields whether it comes from
        `vmsim run --json`, a sweep, or `SweepResult.to_dataframe()`: the
        workload, the simulator's configuration, then what the run measured
        (`sim` is the simulator it ran on, fresh for this run)."""
        c = sim.counters()
        return {
            "workload": self.name,
            "memory": sim.memory,
            "vma_index": sim.vma_index,
            "swap": sim.swap,
            "policy": sim.policy,
            "resident_limit": sim.resident_limit,
            "accesses": self.accesses,
            "min_flt": self.min_flt,
            "maj_flt": self.maj_flt,
            "swap_ins": c["swap_ins"],
            "swap_outs": c["swap_outs"],
            "evictions": c["evictions"],
            "writebacks": c["writebacks"],
            "rss_peak_pages": self.rss_peak,
            "seconds": self.seconds,
            "accesses_per_second": self.throughput,
            "outcomes": dict(self.outcomes),
        }


class _SpawningIn:
    """A simulator whose `spawn` starts processes in one memory cgroup (as a
    shell inside a cgroup starts its children there); the rest is the
    simulator's own."""

    def __init__(self, sim: Simulator, cgroup: Cgroup):
        self._sim, self._cgroup = sim, cgroup

    def spawn(self, layout: str | None = None) -> Process:
        return self._sim.spawn(layout, cgroup=self._cgroup)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sim, name)


def spawning_in(sim: Simulator, cgroup: Cgroup | None) -> Simulator:
    """`sim`, with the processes it spawns in `cgroup` (None: as it is)."""
    return sim if cgroup is None else cast(Any, _SpawningIn(sim, cgroup))


Chunk = tuple[Process, np.ndarray, np.ndarray]
Plan = Callable[[Simulator, np.random.Generator, dict], Iterator[Chunk]]

BATCH = 1 << 20  # accesses per batch: bounded memory, a progress tick per batch


def _batched(p: Process, addrs: np.ndarray, ops: np.ndarray) -> Iterator[Chunk]:
    for i in range(0, addrs.size, BATCH):
        yield p, addrs[i : i + BATCH], ops[i : i + BATCH]


def _region(sim: Simulator, prm: dict) -> tuple[Process, int, int]:
    p = sim.spawn(layout="default")
    pages = int(prm["pages"])
    return p, p.mmap(pages * PAGE_SIZE), pages


def _plan_sequential(sim, rng, prm):
    p, base, pages = _region(sim, prm)
    yield from _batched(p, *sequential(base, pages, int(prm["passes"]), int(prm["op"])))


def _plan_strided(sim, rng, prm):
    p, base, pages = _region(sim, prm)
    yield from _batched(p, *strided(base, pages, int(prm["stride"]), int(prm["count"]), int(prm["op"])))


def _plan_uniform(sim, rng, prm):
    p, base, pages = _region(sim, prm)
    yield from _batched(
        p,
        *uniform(base, pages, int(prm["count"]), float(prm["write_ratio"]), int(rng.integers(1 << 31))),
    )


def _plan_zipf(sim, rng, prm):
    p, base, pages = _region(sim, prm)
    yield from _batched(
        p,
        *zipf(
            base,
            pages,
            int(prm["count"]),
            float(prm["skew"]),
            float(prm["write_ratio"]),
            int(rng.integers(1 << 31)),
        ),
    )


def _plan_stack(sim, rng, prm):
    """Recursion: each call pushes a frame (writes) below the last, returns pop (reads)."""
    p = sim.spawn(layout="default")
    top = p.layout()["start_stack"]
    frame = int(prm["frame_bytes"])
    depth = int(prm["depth"])
    rounds = int(prm["rounds"])
    down = np.uint64(top) - np.arange(1, depth + 1, dtype=np.uint64) * np.uint64(frame)
    addrs = np.tile(np.concatenate([down, down[::-1]]), rounds)
    ops = np.tile(np.concatenate([np.full(depth, WRITE, np.uint8), np.full(depth, READ, np.uint8)]), rounds)
    yield from _batched(p, addrs, ops)


def _plan_heap(sim, rng, prm):
    """A malloc: small chunks from a brk heap grown in 132 KiB steps, large ones mmap'd."""
    p = sim.spawn(layout="default")
    n = int(prm["allocs"])
    sizes = rng.choice([32, 64, 128, 512, 4096, 300_000], size=n, p=[0.3, 0.3, 0.2, 0.1, 0.07, 0.03])
    top = p.brk()
    heap_end = top
    live_big = []
    for drawn in sizes:
        size = int(drawn)
        if size >= 128 * 1024:  # mmap threshold
            a = p.mmap(size)
            live_big.append((a, size))
            addrs = np.arange(a, a + size, PAGE_SIZE, dtype=np.uint64)
        else:
            if top + size > heap_end:
                heap_end = p.brk(heap_end + 132 * 1024)
            a = top
            top += (size + 15) & ~15
            addrs = np.arange(a, a + size, PAGE_SIZE, dtype=np.uint64)
        yield p, addrs, np.full(addrs.size, WRITE, np.uint8)
        if live_big and rng.random() < 0.3:  # free() of a large block: munmap
            a, s = live_big.pop(int(rng.integers(len(live_big))))
            p.munmap(a, s)


def _plan_mmap_churn(sim, rng, prm):
    """Map, touch, unmap, over and over."""
    p = sim.spawn(layout="default")
    for _ in range(int(prm["cycles"])):
        pages = int(rng.integers(1, int(prm["max_pages"]) + 1))
        a = p.mmap(pages * PAGE_SIZE)
        addrs, ops = sequential(a, pages, 1, WRITE)
        yield p, addrs, ops
        p.munmap(a, pages * PAGE_SIZE)


def _plan_fork_storm(sim, rng, prm):
    """A parent populates memory; N children each write a fraction of it (COW) and exit."""
    p, base, pages = _region(sim, prm)
    yield p, *sequential(base, pages, 1, WRITE)
    frac = float(prm["fraction"])
    for _ in range(int(prm["children"])):
        c = p.fork()
        idx = rng.choice(pages, size=max(1, int(pages * frac)), replace=False).astype(np.uint64)
        yield c, idx * np.uint64(PAGE_SIZE) + np.uint64(base), np.full(idx.size, WRITE, np.uint8)
        c.exit()


def _plan_many_vmas(sim, rng, prm):
    """`n` one-page VMAs kept mapped (a PROT_NONE page between each two, as
    guard pages split a JVM's or a browser's heap), then random accesses
    across them: every fault's find_vma searches thousands of VMAs."""
    p = sim.spawn(layout="default")
    n = int(prm["n"])
    base = p.mmap(2 * n * PAGE_SIZE, prot="none")
    for i in range(n):
        p.mprotect(base + 2 * i * PAGE_SIZE, PAGE_SIZE, "rw")
    pages = rng.integers(0, n, int(prm["count"])).astype(np.uint64) * np.uint64(2 * PAGE_SIZE) + np.uint64(base)
    ops = (rng.random(pages.size) < float(prm["write_ratio"])).astype(np.uint8)
    yield from _batched(p, pages, ops)


def _plan_vma_churn(sim, rng, prm):
    """`live` mappings kept alive (each with a PROT_NONE guard page after it,
    so none merge) while, cycle after cycle, a random one is unmapped and a
    new one mapped and written; each cycle also reads `touches` pages across
    the live ones: inserts, removes and lookups among thousands of VMAs."""
    p = sim.spawn(layout="default")
    max_pages = int(prm["max_pages"])

    def new_mapping() -> tuple[int, int]:
        pages = int(rng.integers(1, max_pages + 1))
        a = p.mmap((pages + 1) * PAGE_SIZE)
        p.mprotect(a + pages * PAGE_SIZE, PAGE_SIZE, "none")
        return a, pages

    live = [new_mapping() for _ in range(int(prm["live"]))]
    for _ in range(int(prm["cycles"])):
        a, pages = live.pop(int(rng.integers(len(live))))
        p.munmap(a, (pages + 1) * PAGE_SIZE)
        a, pages = new_mapping()
        live.append((a, pages))
        picks = rng.integers(0, len(live), int(prm["touches"]))
        reads = np.array([live[i][0] + int(rng.integers(live[i][1])) * PAGE_SIZE for i in picks], dtype=np.uint64)
        addrs = np.concatenate([np.arange(a, a + pages * PAGE_SIZE, PAGE_SIZE, dtype=np.uint64), reads])
        ops = np.concatenate([np.full(pages, WRITE, np.uint8), np.full(reads.size, READ, np.uint8)])
        yield p, addrs, ops


def _plan_maps(sim, rng, prm):
    """A real process's layout rebuilt from a saved /proc/PID/maps, then
    accesses at random over the pages it may touch (VMAs weighted by size):
    writes where it is writable (at `write_ratio`), reads elsewhere."""
    from vmsim.procmaps import layout_from_maps, parse_maps

    if not prm["file"]:
        raise ValueError("the maps workload needs a saved /proc/PID/maps file: maps:FILE")
    try:
        text = Path(str(prm["file"])).read_text()
    except OSError as e:
        raise ValueError(f"maps workload: cannot read {prm['file']!r} ({e.strerror or e})") from None
    p, _ = layout_from_maps(sim, parse_maps(text))
    vmas = [(lo, hi, prot) for lo, hi, prot, _ in p.vmas() if "r" in prot or "w" in prot]
    if not vmas:
        raise ValueError(f"maps workload: {prm['file']} has no mapping that can be read or written")
    sizes = np.array([(hi - lo) // PAGE_SIZE for lo, hi, _ in vmas], dtype=np.float64)
    count = int(prm["count"])
    which = rng.choice(len(vmas), size=count, p=sizes / sizes.sum())
    starts = np.array([lo for lo, _, _ in vmas], dtype=np.uint64)[which]
    pages = (rng.random(count) * sizes[which]).astype(np.uint64)
    writable = np.array(["w" in prot for _, _, prot in vmas])[which]
    ops = (writable & (rng.random(count) < float(prm["write_ratio"]))).astype(np.uint8)
    yield from _batched(p, starts + pages * np.uint64(PAGE_SIZE), ops)


# Each workload's parameters and their defaults (Workload.parse refuses others).
PARAMS: dict[str, dict[str, int | float | str]] = {
    "sequential": {"pages": 4096, "passes": 2, "op": WRITE},
    "strided": {"pages": 4096, "stride": 16, "count": 100_000, "op": READ},
    "uniform": {"pages": 4096, "count": 100_000, "write_ratio": 0.3},
    "zipf": {"pages": 4096, "count": 100_000, "skew": 1.1, "write_ratio": 0.3},
    "stack": {"frame_bytes": 256, "depth": 20_000, "rounds": 3},
    "heap": {"allocs": 2000},
    "mmap_churn": {"cycles": 200, "max_pages": 64},
    "fork_storm": {"pages": 4096, "fraction": 0.25, "children": 8},
    "many_vmas": {"n": 10_000, "count": 100_000, "write_ratio": 0.3},
    "maps": {"file": "", "count": 100_000, "write_ratio": 0.3},
    "vma_churn": {"live": 2000, "cycles": 2000, "max_pages": 8, "touches": 16},
}

# What each workload does, and what each parameter means (`vmsim run --help`, the docs).
SUMMARIES: dict[str, str] = {
    "sequential": "touch every page of a region in order, pass after pass",
    "strided": "step through a region a fixed number of pages at a time, wrapping",
    "uniform": "accesses at uniformly random offsets of a region",
    "zipf": "accesses whose pages follow a Zipf law (a few hot pages, a long tail)",
    "stack": "recursion: push frames down the stack (writes), pop them (reads)",
    "heap": "a malloc: small chunks from a brk heap, large ones mmap'd and some freed",
    "mmap_churn": "map a region, touch it, unmap it, over and over",
    "fork_storm": "children each write a fraction of the parent's pages (COW), exit",
    "many_vmas": "thousands of one-page VMAs, guard pages between, accessed at random",
    "maps": "a saved /proc/PID/maps layout (maps:FILE), accessed at random",
    "vma_churn": "thousands of mappings alive, one unmapped and one mapped per cycle",
}
PARAM_HELP: dict[str, str] = {
    "pages": "pages in the region",
    "passes": "times the region is walked",
    "op": "0 read, 1 write, 2 exec",
    "stride": "pages between accesses",
    "count": "accesses",
    "write_ratio": "fraction of accesses that write",
    "skew": "Zipf exponent (higher: hotter hot pages)",
    "frame_bytes": "bytes per stack frame",
    "depth": "frames per descent",
    "rounds": "descents",
    "allocs": "malloc calls",
    "cycles": "map/touch/unmap cycles",
    "max_pages": "largest mapping, in pages",
    "fraction": "fraction of the region each child writes",
    "children": "children forked one after another",
    "n": "one-page VMAs (and as many PROT_NONE between)",
    "file": "the saved maps file (maps:FILE for short)",
    "live": "mappings kept alive (each with a guard page)",
    "touches": "pages read across the live mappings per cycle",
}


def describe() -> str:
    """Every workload with its parameters and their defaults, as text."""
    lines = []
    for kind, params in PARAMS.items():
        lines.append(f"  {kind}: {SUMMARIES[kind]}")
        for key, default in params.items():
            lines.append(f"      {f'{key}={default}':<18}{PARAM_HELP[key]}")
    lines.append("  every workload also takes seed=N (default 0)")
    return "\n".join(lines)


# Parameters that must be at least 1, and fractions in [0, 1].
_AT_LEAST_ONE = {"pages", "passes", "stride", "frame_bytes", "max_pages", "n", "live"}
_FRACTIONS = {"write_ratio", "fraction"}


def _check_param(kind: str, key: str, value: object) -> None:
    defaults = PARAMS[kind]
    if key not in defaults:
        raise ValueError(f"unknown parameter {key!r} for {kind}; it takes {', '.join(defaults)} and seed")
    if isinstance(defaults[key], str):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{kind} parameter {key} must be a non-empty string, got {value!r}")
        return
    if isinstance(defaults[key], int) and (not isinstance(value, int) or isinstance(value, bool)):
        raise ValueError(f"{kind} parameter {key} must be an integer, got {value!r}")
    if not isinstance(value, (int, float)) or value < 0 or value != value:
        raise ValueError(f"{kind} parameter {key} must be a number at least 0, got {value!r}")
    if key in _AT_LEAST_ONE and value < 1:
        raise ValueError(f"{kind} parameter {key} must be at least 1, got {value!r}")
    if key in _FRACTIONS and value > 1:
        raise ValueError(f"{kind} parameter {key} is a fraction between 0 and 1, got {value!r}")
    if key == "op" and value not in (READ, WRITE, EXEC):
        raise ValueError(f"{kind} parameter op must be 0 (read), 1 (write) or 2 (exec), got {value!r}")


PLANS: dict = {
    "sequential": _plan_sequential,
    "strided": _plan_strided,
    "uniform": _plan_uniform,
    "zipf": _plan_zipf,
    "stack": _plan_stack,
    "heap": _plan_heap,
    "mmap_churn": _plan_mmap_churn,
    "fork_storm": _plan_fork_storm,
    "many_vmas": _plan_many_vmas,
    "maps": _plan_maps,
    "vma_churn": _plan_vma_churn,
}


@dataclass(frozen=True)
class Workload:
    """A named workload with its parameters and seed: cheap to ship to a worker.

    Build one with `Workload.parse` (the command line's form) or
    `Workload.make`, and play it with `run`.

    Attributes
    ----------
    kind : str
        The workload (`vmsim run --help` lists them with their parameters).
    params : tuple of (str, number)
        Its parameters, sorted by name; the others take their defaults.
    seed : int
        The random stream.
    """

    kind: str
    params: tuple[tuple[str, object], ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in PLANS:
            raise ValueError(f"unknown workload {self.kind!r}; choose one of {', '.join(PLANS)}")
        for key, value in self.params:
            _check_param(self.kind, key, value)
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer at least 0, got {self.seed!r}")

    @classmethod
    def make(cls, kind: str, seed: int = 0, **params) -> Workload:
        """A workload from keyword parameters: ``Workload.make("zipf", seed=3, pages=4096)``.

        Parameters
        ----------
        kind : str
            One of the workloads (`vmsim run --help` lists them).
        seed : int, default 0
            The random stream.
        **params
            The workload's parameters; unknown ones are a ValueError.
        """
        return cls(kind, tuple(sorted(params.items())), seed)

    @classmethod
    def parse(cls, spec: str) -> Workload:
        """A workload from its command-line form.

        Parameters
        ----------
        spec : str
            ``NAME`` or ``NAME:key=value,...``, e.g. ``"zipf:pages=4096,count=100000,seed=3"``.

        Returns
        -------
        Workload
        """
        kind, _, rest = spec.partition(":")
        params: dict = {}
        seed = 0
        items = list(filter(None, rest.split(",")))
        if kind in PARAMS and "file" in PARAMS[kind] and items and "=" not in items[0]:
            items[0] = "file=" + items[0]  # maps:FILE
        for item in items:
            key, eq, value = item.partition("=")
            if not eq:
                raise ValueError(f"bad workload parameter {item!r} in {spec!r}: expected key=value")
            num: object
            if kind in PARAMS and isinstance(PARAMS[kind].get(key), str):
                params[key] = value
                continue
            try:
                num = int(value, 0)
            except ValueError:
                try:
                    num = float(value)
                except ValueError:
                    raise ValueError(f"bad value {value!r} for {key!r} in {spec!r}") from None
            if key == "seed":
                seed = int(num)
            else:
                params[key] = num
        return cls.make(kind, seed, **params)

    @property
    def name(self) -> str:
        args = ",".join(f"{k}={v}" for k, v in self.params)
        return f"{self.kind}:{args},seed={self.seed}" if args else f"{self.kind}:seed={self.seed}"

    def run(
        self, sim: Simulator, progress: Callable[[int], None] | None = None, cgroup: Cgroup | None = None
    ) -> RunResult:
        """Play the workload on a simulator.

        Parameters
        ----------
        sim : Simulator
            Where it runs; every process it made has exited when it returns.
        progress : callable, optional
            Called with the number of accesses after each batch.
        cgroup : Cgroup, optional
            The memory cgroup its processes run in (default: the root).

        Returns
        -------
        RunResult
        """
        rng = np.random.default_rng(self.seed)
        result = RunResult.for_simulator(self.name, sim)
        before = sim.counters()
        procs: dict = {}
        params = {**PARAMS[self.kind], **dict(self.params)}
        for proc, addrs, ops in PLANS[self.kind](spawning_in(sim, cgroup), rng, params):
            procs.setdefault(proc.tgid, proc)
            result.play(proc, addrs, ops, progress)
        result.count_faults(sim, before)
        for p in procs.values():
            if p.alive:
                p.exit_group()
        return result


def run_target(
    target: str, sim: Simulator, progress: Callable[[int], None] | None = None, cgroup: Cgroup | None = None
) -> RunResult:
    """Run a workload spec (``zipf:pages=4096``) or replay a trace file, as `vmsim run` does.

    Raises
    ------
    ValueError
        When `target` is neither a known workload nor an existing file.
    """
    from vmsim import traces

    if Path(target).exists():
        return traces.replay(sim, target, progress=progress, cgroup=cgroup)
    kind = target.split(":", 1)[0]
    if kind not in PLANS:
        raise ValueError(f"unknown workload {kind!r} and no such trace file {target!r}; workloads: {', '.join(PLANS)}")
    return Workload.parse(target).run(sim, progress=progress, cgroup=cgroup)
