"""Every performance target as a ratio against its anchor, measured in the
same run (this VM drifts ~30% between runs; ratios from one run hold).

    pip install '.[bench]'
    python benches/anchors.py [--quick] [--rounds 5] [--save]

Anchors and targets:
  * the bare prototype (../shared/anchors/bare_limit, built here into
    target/bare_limit): anonymous write, zero-page read and COW faults at most
    1.5x its ns per access, hits at most 1.3x, at 16k, 262k and 4M pages;
    host bytes per resident page at most 1.1x;
  * libCacheSim's C path on the same trace, policy and capacity: vmsim's rate
    at least 1.0x, miss counts equal (FIFO, LRU, Clock with init_freq=1,
    Belady with its precomputed next access);
  * replaying a .npy trace at least 0.9x sending the same addresses straight
    through access_batch; lackey parsing at least 0.25x of `wc -l`;
  * two simulators on two threads at least 1.8x one thread.

vmsim is measured as users run it: the release build through its Python API.
Rounds interleave anchor and vmsim; each figure is the median over rounds.
`--save` writes benches/results/anchors.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import vmsim
from vmsim import PAGE_SIZE, Outcome, traces

ROOT = Path(__file__).resolve().parents[1]
BARE_DEFAULT = ROOT.parent / "shared" / "anchors" / "bare_limit"
BASE = 0x7F00_0000_0000


# ----- the bare prototype ---------------------------------------------------------------------


def build_bare(source: Path) -> Path:
    target = ROOT / "target" / "bare_limit"
    env = {**os.environ, "CARGO_TARGET_DIR": str(target)}
    manifest = source / "Cargo.toml"
    subprocess.run(["cargo", "build", "--release", "-q", "--manifest-path", str(manifest)], check=True, env=env)
    return target / "release" / "bare_limit"


def bare_ns(exe: Path, pages: int, mode: str) -> float:
    out = subprocess.run([str(exe), str(pages), mode], check=True, capture_output=True, text=True).stdout
    return float(out.split("ns_per_op")[1].split()[0])


def bare_bytes_per_page(exe: Path, pages: int) -> float:
    out = subprocess.run([str(exe), str(pages), "mem"], check=True, capture_output=True, text=True).stdout
    return float(out.split("bytes_per_page")[1].split()[0])


# ----- vmsim's fault and hit paths ------------------------------------------------------------


def vmsim_ns(pages: int, mode: str) -> float:
    """ns per access of one access_batch over `pages` fresh pages (as bare_limit runs them)."""
    sim = vmsim.Simulator(memory=(2 * pages + pages // 128 + 4096) * PAGE_SIZE, overcommit=1)  # room for COW copies
    p = sim.spawn()
    a = p.mmap(pages * PAGE_SIZE, addr=BASE, fixed=True)
    addrs = np.arange(a, a + pages * PAGE_SIZE, PAGE_SIZE, dtype=np.uint64)
    target, op, expect = p, "w", Outcome.ANON_ZERO_FILL
    if mode == "read":
        op, expect = "r", Outcome.ZERO_PAGE
    elif mode in ("cow", "hit"):
        p.access_batch(addrs, "w")
        expect = Outcome.HIT
        if mode == "cow":
            target, expect = p.fork(), Outcome.COW_COPY
    t0 = time.perf_counter()
    codes = target.access_batch(addrs, op)
    dt = time.perf_counter() - t0
    assert (codes == expect).all(), f"unexpected outcomes in the {mode} run"
    return dt * 1e9 / pages


def vmsim_bytes_per_page(pages: int, policy: str | None = None) -> float:
    """Host bytes per resident page, from benches/memory.py in a fresh process (no reclaim policy by default)."""
    extra = ["--policy", policy] if policy else []
    out = subprocess.run([sys.executable, str(ROOT / "benches" / "memory.py"), "--pages", str(pages), *extra],
                         check=True, capture_output=True, text=True).stdout  # fmt: skip
    return float(out.split("bytes per resident page:")[1].split()[0])


# ----- libCacheSim ---------------------------------------------------------------------------------


def libcachesim_run(policy: str, capacity: int, path: Path) -> tuple[int, float]:
    """(misses, seconds) of libCacheSim's C path over the trace file."""
    import libcachesim as lcs

    make = {
        "fifo": lambda: lcs.FIFO(capacity),
        "lru": lambda: lcs.LRU(capacity),
        "clock": lambda: lcs.Clock(capacity, init_freq=1),
        "opt": lambda: lcs.Belady(capacity),
    }[policy]
    reader = lcs.TraceReader(str(path), lcs.TraceType.ORACLE_GENERAL_TRACE)
    cache = make()
    t0 = time.perf_counter()
    miss_ratio = cache.process_trace(reader)[0]
    dt = time.perf_counter() - t0
    return round(miss_ratio * reader.get_num_of_req()), dt


def vmsim_policy_run(policy: str, capacity: int, ids: np.ndarray) -> tuple[int, float]:
    """(misses, seconds): every request a write to its page, `capacity` resident pages at most."""
    pages = int(ids.max()) + 1
    sim = vmsim.Simulator(memory=(pages + 4096) * PAGE_SIZE, swap=pages * PAGE_SIZE, policy=policy,
                          resident_limit=capacity, overcommit=1)  # fmt: skip
    p = sim.spawn()
    a = p.mmap(pages * PAGE_SIZE, addr=BASE, fixed=True)
    addrs = ids.astype(np.uint64) * np.uint64(PAGE_SIZE) + np.uint64(a)
    t0 = time.perf_counter()
    codes = p.access_batch(addrs, "w")
    dt = time.perf_counter() - t0
    misses = int(((codes == Outcome.ANON_ZERO_FILL) | (codes == Outcome.SWAP_IN)).sum())
    return misses, dt


def pressure_rate(policy: str, accesses: int) -> float:
    """Accesses/s under 2x memory pressure: uniform random writes over twice
    the simulated memory (16 MiB), swapping, reclaim by `policy`."""
    pages = 2 * 4096
    sim = vmsim.Simulator(memory="16MiB", swap="128MiB", policy=policy, overcommit=1)
    p = sim.spawn()
    a = p.mmap(pages * PAGE_SIZE)
    addrs = np.random.default_rng(3).integers(0, pages, accesses).astype(np.uint64) * np.uint64(PAGE_SIZE)
    addrs += np.uint64(a)
    t0 = time.perf_counter()
    p.access_batch(addrs, "w")
    return accesses / (time.perf_counter() - t0)


# ----- traces, threads ---------------------------------------------------------------------------------


def replay_ratio(accesses: int, tmp: Path) -> tuple[float, float]:
    """(replay s, direct access_batch s) over the same .npy addresses."""
    a, o = vmsim.workloads.zipf(0x1000_0000, 16_384, accesses, skew=0.9, write_ratio=0.2, seed=1)
    path = tmp / "t.npy"
    rec = np.zeros(accesses, [("addr", "<u8"), ("op", "u1")])
    rec["addr"], rec["op"] = a, o
    np.save(path, rec)
    sim = vmsim.Simulator(memory="1GiB")
    t0 = time.perf_counter()
    traces.replay(sim, path, layout=None)
    replay_s = time.perf_counter() - t0
    sim = vmsim.Simulator(memory="1GiB")
    p = sim.spawn()
    p.mmap(16_384 * PAGE_SIZE, addr=0x1000_0000, fixed=True, prot="rwx")
    t0 = time.perf_counter()
    for i in range(0, accesses, 1 << 22):
        p.access_batch(a[i : i + (1 << 22)], o[i : i + (1 << 22)])
    return replay_s, time.perf_counter() - t0


def lackey_ratio(lines: int, tmp: Path) -> tuple[float, float]:
    """(vmsim parse s, wc -l s) over the same lackey file."""
    path = tmp / "t.lackey"
    rng = np.random.default_rng(1)
    kinds = np.array(["I  ", " L ", " S ", " M "])[rng.integers(0, 4, lines)]
    addrs = rng.integers(0x400000, 0x7FFF0000, lines)
    with open(path, "w") as f:
        for i in range(0, lines, 1_000_000):
            f.write("".join(f"{k}{x:08x},4\n" for k, x in zip(kinds[i : i + 1_000_000], addrs[i : i + 1_000_000])))
    t0 = time.perf_counter()
    sum(c[0].size for c in traces.read_lackey(path))
    parse = time.perf_counter() - t0
    t0 = time.perf_counter()
    subprocess.run(["wc", "-l", str(path)], check=True, capture_output=True)
    return parse, time.perf_counter() - t0


def thread_scaling(pages: int, repeats: int = 5) -> float:
    """Accesses/s of two simulators on two threads over one thread's rate
    (set-up excluded: each thread faults its pages in, then reads them 20
    times). One and two threads run interleaved `repeats` times and each
    keeps its best rate: the same single-thread run varies up to 2x here
    (the host's DAMON scans this process's page tables), which would
    otherwise swamp the ratio."""

    def work(start: threading.Barrier, times: list) -> None:
        sim = vmsim.Simulator(memory=(pages + 1024) * PAGE_SIZE, overcommit=1)
        p = sim.spawn()
        a = p.mmap(pages * PAGE_SIZE)
        addrs = np.arange(a, a + pages * PAGE_SIZE, PAGE_SIZE, dtype=np.uint64)
        start.wait()
        t0 = time.perf_counter()
        p.access_batch(addrs, "w")
        for _ in range(20):
            p.access_batch(addrs, "r")
        times.append(time.perf_counter() - t0)

    def run(n: int) -> float:
        start, times = threading.Barrier(n), []
        threads = [threading.Thread(target=work, args=(start, times)) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return n * 21 * pages / max(times)  # accesses per second, all threads

    best = {1: 0.0, 2: 0.0}
    for _ in range(repeats):
        for n in best:
            best[n] = max(best[n], run(n))
    return best[2] / best[1]


# ----- the table ---------------------------------------------------------------------------------


def median_of(rounds: int, fn: Callable[[], float]) -> float:
    return statistics.median(fn() for _ in range(rounds))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bare", type=Path, default=BARE_DEFAULT, help="the bare_limit source folder")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="smaller sizes, fewer rounds")
    ap.add_argument("--save", action="store_true", help="write benches/results/anchors.md")
    ap.add_argument("--faults-only", action="store_true", help="only the fault and hit rows against bare_limit")
    args = ap.parse_args(argv)
    rounds = 3 if args.quick else args.rounds
    sizes = [16_384, 262_144] if args.quick else [16_384, 262_144, 4_194_304]
    rows: list[tuple[str, str, str, str, str]] = []  # what, vmsim, anchor, ratio, target

    def row(what: str, ours: str, anchor: str, ratio: float, target: str) -> None:
        rows.append((what, ours, anchor, f"{ratio:.2f}x", target))
        print(f"{what:<44} {ours:>12} {anchor:>12} {ratio:>7.2f}x  {target}", flush=True)

    exe = build_bare(args.bare)
    print(f"{'':<44} {'vmsim':>12} {'anchor':>12} {'ratio':>8}  target")
    for pages in sizes:
        for mode, limit in [("write", 1.5), ("read", 1.5), ("cow", 1.5), ("hit", 1.3)]:
            ours, bare = [], []
            for _ in range(rounds):  # interleaved
                bare.append(bare_ns(exe, pages, mode))
                ours.append(vmsim_ns(pages, mode))
            o, b = statistics.median(ours), statistics.median(bare)
            row(f"{mode} ns/access, {pages:,} pages (bare_limit)", f"{o:.1f} ns", f"{b:.1f} ns", o / b, f"<= {limit}x")
    if args.faults_only:
        return 0
    mem_pages = 1 << 20 if args.quick else 4 << 20
    o, b = vmsim_bytes_per_page(mem_pages), bare_bytes_per_page(exe, mem_pages)
    row(f"host bytes per resident page, {mem_pages:,} pages", f"{o:.1f} B", f"{b:.1f} B", o / b, "<= 1.1x")

    o = vmsim_bytes_per_page(mem_pages, "linux")
    row(f"host bytes per resident page, policy=linux, {mem_pages:,}", f"{o:.1f} B", f"{b:.1f} B", o / b, "< 32 B")
    pressure = 500_000 if args.quick else 2_000_000
    rates: dict[str, list[float]] = {"clock": [], "linux": [], "mglru": []}
    for _ in range(rounds):  # interleaved
        for policy in rates:
            rates[policy].append(pressure_rate(policy, pressure))
    c = statistics.median(rates["clock"])
    for policy in ("linux", "mglru"):
        r = statistics.median(rates[policy])
        row(f"{policy} accesses/s at 2x pressure (clock)", f"{r / 1e6:.2f} M", f"{c / 1e6:.2f} M", r / c, ">= 0.5x")

    requests = 1_000_000 if args.quick else 4_000_000
    ids = np.random.default_rng(7).zipf(1.2, requests) % 32_768
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if _has_libcachesim():
            traces.write_oracle_general(tmp / "trace.oracleGeneral", ids, sizes=1)  # capacity in objects
            for policy in ["fifo", "lru", "clock", "opt"]:
                ours, theirs, misses = [], [], set()
                for _ in range(rounds):
                    m1, t1 = libcachesim_run(policy, 16_384, tmp / "trace.oracleGeneral")
                    m2, t2 = vmsim_policy_run(policy, 16_384, ids)
                    theirs.append(requests / t1)
                    ours.append(requests / t2)
                    misses.add((m1, m2))
                (m1, m2) = misses.pop()
                o, t = statistics.median(ours), statistics.median(theirs)
                equal = "misses equal" if m1 == m2 else f"MISSES DIFFER {m2} vs {m1}"
                row(
                    f"{policy} requests/s (libCacheSim), {equal}",
                    f"{o / 1e6:.2f} M",
                    f"{t / 1e6:.2f} M",
                    o / t,
                    ">= 1.0x",
                )
        else:
            print("libCacheSim is not installed (pip install '.[bench]'): its comparisons are left out")
        accesses = 4_000_000 if args.quick else 20_000_000
        times = [replay_ratio(accesses, tmp) for _ in range(rounds)]
        r, d_ = statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)
        row(".npy replay vs direct access_batch", f"{accesses / r / 1e6:.1f} M/s", f"{accesses / d_ / 1e6:.1f} M/s",
            d_ / r, ">= 0.9x")  # fmt: skip
        lines = 2_000_000 if args.quick else 10_000_000
        times = [lackey_ratio(lines, tmp) for _ in range(rounds)]
        p, w = statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)
        row("lackey parsing vs wc -l", f"{lines / p / 1e6:.1f} Ml/s", f"{lines / w / 1e6:.1f} Ml/s", w / p, ">= 0.25x")
    scale = median_of(rounds, lambda: thread_scaling(262_144))
    row("two simulators on two threads vs one", f"{scale:.2f}x", "1 thread", scale, ">= 1.8x")
    if args.save:
        out = ROOT / "benches" / "results" / "anchors.md"
        lines_md = ["| measure | vmsim | anchor | ratio | target |", "|---|---:|---:|---:|---|"]
        lines_md += [f"| {' | '.join(r)} |" for r in rows]
        out.write_text(
            "# Performance against the anchors\n\n"
            f"`python benches/anchors.py{' --quick' if args.quick else ''} --save`: "
            f"{rounds} interleaved rounds, medians; 2-core VM.\n\n" + "\n".join(lines_md) + "\n"
        )
        print(f"wrote {out}")
    return 0


def _has_libcachesim() -> bool:
    try:
        import libcachesim  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
