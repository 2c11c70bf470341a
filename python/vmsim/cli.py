"""The `vmsim` command line: demo, explain, run, mrc, bench."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import vmsim
from vmsim.procmaps import layout_from_maps, parse_maps
from vmsim.workloads import RunResult


class _Parser(argparse.ArgumentParser):
    """A usage error is one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    try:
        n = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def parse_address(text: str) -> int:
    """An address as /proc/PID/maps or a debugger shows it: hex with 0x, or
    without it (as maps prints it: zero-padded to 8 digits or more), or a
    short decimal number."""
    t = text.strip().lower().replace("_", "")
    decimal = t.isdigit() and len(t) < 8 and not (len(t) > 1 and t.startswith("0"))
    try:
        n = int(t, 0) if t.startswith(("0x", "0o", "0b", "-")) or decimal else int(t, 16)
    except ValueError:
        raise ValueError(f"{text!r} is not an address (hex like 0x7ffd1234 or 7ffd1234, or decimal)") from None
    if not 0 <= n < 1 << 64:
        raise ValueError(f"address {text} is outside the 64-bit range 0..0xffffffffffffffff")
    return n


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="vmsim", description="A virtual-memory and page-fault simulator faithful to Linux.")
    parser.add_argument("--version", action="version", version=f"vmsim {vmsim.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo", help="where does an uninitialised pointer land? the kernel's steps, address by address"
    )
    demo.add_argument("--color", choices=["auto", "always", "never"], default="auto", help="colour the outcomes")
    demo.add_argument("--exit", action="store_true", help="show instead how an exiting process gives its memory back")
    demo.add_argument("--step", action="store_true", help="wait for Enter before each case")

    ex = sub.add_parser(
        "explain", help="the kernel's decision for one address of a real (or the default) process layout"
    )
    ex.add_argument(
        "addr", help="the address: hex with 0x, or as /proc/PID/maps prints it (7ffca0165000), or short decimal"
    )
    ex.add_argument("--op", choices=["r", "w", "x"], default="r")
    ex.add_argument("--step", action="store_true", help="wait for Enter between the kernel's steps")
    src = ex.add_mutually_exclusive_group()
    src.add_argument("--maps", type=Path, help="a saved /proc/PID/maps file")
    src.add_argument("--pid", type=int, help="read /proc/PID/maps of a live process")

    from vmsim.workloads import describe

    run = sub.add_parser(
        "run",
        help="run a workload (e.g. zipf:pages=4096,count=1000000) or replay a trace file",
        description="Run a workload or replay a trace file, then print what happened.",
        epilog="workloads (WORKLOAD:key=value,... ; unknown keys are errors):\n" + describe(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "target", help="WORKLOAD[:key=value,...] or a trace file (.vmst, .npy/.npz, lackey, text/CSV, ChampSim .xz)"
    )
    run.add_argument("--memory", default="256MiB")
    run.add_argument(
        "--vma-index",
        default=None,
        choices=[*vmsim.vma_indexes(), "all"],
        help="the VMA index; 'all' runs the same work on every index and compares them",
    )
    run.add_argument(
        "--repeat",
        type=_positive_int,
        default=5,
        help="with --vma-index all: runs per index, for the median and spread of the rate (default: 5)",
    )
    run.add_argument("--swap", default=None, help="swap space (e.g. 1GiB); turns reclaim on")
    run.add_argument(
        "--policy",
        default=None,
        choices=[*vmsim.policies(), "all"],
        help="replacement policy; 'all' runs once per policy and compares them",
    )
    run.add_argument("--resident-limit", type=_positive_int, default=None, help="at most this many resident user pages")
    run.add_argument(
        "--cgroup",
        metavar="KEY=SIZE,...",
        default=None,
        help="run in a memory cgroup with these limits (max, high, low, swap_max; e.g. max=64MiB,high=48MiB); "
        "needs --policy linux (the default with --cgroup) or mglru",
    )
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.add_argument(
        "--plot", type=Path, help="write RSS and cumulative faults over time to this PNG (needs matplotlib)"
    )

    mrc = sub.add_parser(
        "mrc",
        help="miss-ratio curves: misses against resident memory, per policy",
        description="Misses of a workload or trace against resident memory (resident_limit), per policy. "
        "A miss is an access that needs a frame: a first touch that allocates, a page-cache miss or a swap-in. "
        "LRU takes one pass (stack distances) where that is exact; other policies run once per size.",
    )
    mrc.add_argument("target", help="WORKLOAD[:key=value,...] or a trace file, as for `vmsim run`")
    mrc.add_argument(
        "--policy",
        default="lru",
        help="comma-separated policies, or 'all' (default: lru); choose from " + ", ".join(vmsim.policies()),
    )
    mrc.add_argument(
        "--sizes",
        default="1%..100%",
        help="resident sizes: page counts (512), percents of the distinct pages (25%%), ranges of either "
        "(1%%..100%%), comma-separated (default: 1%%..100%%)",
    )
    mrc.add_argument("--points", type=_positive_int, default=10, help="sizes a range stands for (default: 10)")
    mrc.add_argument("--memory", default="4GiB", help="simulated memory of every run (default: 4GiB)")
    mrc.add_argument("--vma-index", default=None, choices=vmsim.vma_indexes())
    mrc.add_argument("--json", action="store_true", help="print the curve as JSON")
    mrc.add_argument("--plot", type=Path, help="draw the curves to this PNG (needs matplotlib)")

    bench = sub.add_parser(
        "bench",
        help="benchmarks: simulated faults vs the real kernel (default), or the VMA indexes (bench vma)",
    )
    bench.add_argument(
        "suite",
        nargs="?",
        default="kernel",
        choices=["kernel", "vma"],
        help="kernel: write, read and COW faults against the host kernel; vma: every VMA index operation by operation",
    )
    bench.add_argument("--quick", action="store_true", help="smaller runs")
    bench.add_argument("--index", default="all", help="bench vma: comma-separated indexes, or all (default)")
    bench.add_argument(
        "--vmas", default="100,1000,10000", help="bench vma: comma-separated VMA counts (default: 100,1000,10000)"
    )
    bench.add_argument("--lookups", type=_positive_int, default=100_000, help="bench vma: lookups timed per run")
    bench.add_argument("--repeat", type=_positive_int, default=5, help="bench vma: runs per index and size (default 5)")
    bench.add_argument("--json", action="store_true", help="bench vma: the rows as JSON")
    bench.add_argument("--plot", type=Path, help="bench vma: draw ns per operation against VMAs to this PNG")
    return parser


# ----- explain ------------------------------------------------------------------


def page_table_indices(addr: int) -> str:
    """Where the 4-level walk looks for `addr`: an index into the PGD, PUD,
    PMD and PTE tables (9 bits each, from bit 39 down) and the offset in the page."""
    top = addr >> 47
    if top not in (0, (1 << 17) - 1):
        return "page-table indices: none (not canonical: bits 63..47 differ, no walk is made)"
    levels = ", ".join(
        f"{name} {(addr >> shift) & 511}" for name, shift in (("PGD", 39), ("PUD", 30), ("PMD", 21), ("PTE", 12))
    )
    return f"page-table indices: {levels}, offset {addr & 0xFFF:#x} in the page"


def cmd_explain(args) -> int:
    from vmsim import demo

    addr = parse_address(args.addr)
    sim = vmsim.Simulator(memory="256MiB")
    notes: list[str] = []
    maps = None
    if args.maps or args.pid is not None:
        path = args.maps if args.maps else Path(f"/proc/{args.pid}/maps")
        maps = parse_maps(path.read_text())
        p, notes = layout_from_maps(sim, maps)
        where = str(path)
    else:
        p = sim.spawn(layout="default")
        where = "the default process layout"
    print(f"{addr:#x}, { {'r': 'read', 'w': 'write', 'x': 'instruction fetch'}[args.op] }, in {where}")
    if maps:
        inside = [m for m in maps if m[0] <= addr < m[1]]
        above = [m for m in maps if m[0] > addr]
        if inside:
            print(f"  maps: inside {inside[0][0]:x}-{inside[0][1]:x} {inside[0][2]} {inside[0][3]}")
        elif above:
            print(
                f"  maps: in no mapping; the next one up is {above[0][0]:x}-{above[0][1]:x} {above[0][2]} {above[0][3]}"
            )
    print("  " + page_table_indices(addr))
    outcome, steps = p.access_traced(addr, args.op)
    pause = sys.stdin if args.step else None
    for i, s in enumerate(steps, 1):
        if pause is not None and not demo.wait_for_enter(sys.stdout, pause):
            pause = None
        print(f"  {i}. {s}")
    print(f"=> {outcome.name}")
    for n in notes:
        print(f"  (note: {n})")
    return 0


# ----- run ------------------------------------------------------------------------


CGROUP_LIMITS = ("max", "high", "low", "swap_max")


def parse_cgroup(spec: str) -> dict[str, Any]:
    """``max=64MiB,high=48MiB`` as keyword arguments of `Simulator.cgroup`."""
    limits: dict[str, Any] = {}
    for item in spec.split(","):
        key, eq, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not eq or key not in CGROUP_LIMITS or not value.strip():
            raise ValueError(f"bad --cgroup item {item!r}: use KEY=SIZE with KEY one of {', '.join(CGROUP_LIMITS)}")
        limits[key] = value.strip()
    return limits


def _run_once(
    args, policy: str | None, progress, vma_index: str | None = None
) -> tuple[vmsim.Simulator, RunResult, vmsim.Cgroup | None]:
    from vmsim.workloads import run_target

    kw: dict = {"memory": args.memory}
    if vma_index or args.vma_index:
        kw["vma_index"] = vma_index or args.vma_index
    if args.swap:
        kw["swap"] = args.swap
    if policy:
        kw["policy"] = policy
    if args.resident_limit is not None:
        kw["resident_limit"] = args.resident_limit
    sim = vmsim.Simulator(**kw)
    cgroup = sim.cgroup("vmsim-run", **parse_cgroup(args.cgroup)) if args.cgroup else None
    result = run_target(args.target, sim, progress=progress, cgroup=cgroup)
    sim.check()
    return sim, result, cgroup


def cmd_run_indexes(args) -> int:
    """`vmsim run TARGET --vma-index all`: the same work on every index, `--repeat` times each
    (interleaved), one row per index: faults (which must agree) and the rate's median and spread."""
    from vmsim.display import text_table
    from vmsim.vma_bench import median_spread

    if args.policy == "all":
        raise ValueError("--vma-index all and --policy all cannot go together: compare one thing at a time")
    if args.plot:
        raise ValueError("--plot draws one run; with --vma-index all the table compares the indexes")
    indexes = vmsim.vma_indexes()
    rates: dict[str, list[float]] = {i: [] for i in indexes}
    faults: dict[str, tuple[int, int]] = {}
    for _ in range(args.repeat):
        for index in indexes:
            _, result, _ = _run_once(args, args.policy, None, vma_index=index)
            rates[index].append(result.throughput)
            faults[index] = (result.min_flt, result.maj_flt)
    if len(set(faults.values())) != 1:
        raise vmsim.InvariantError(f"the VMA indexes disagree on the faults: {faults}")
    records = []
    for index in indexes:
        median, low, high = median_spread(rates[index])
        records.append(
            {
                "vma_index": index,
                "runs": args.repeat,
                "min_flt": faults[index][0],
                "maj_flt": faults[index][1],
                "accesses_per_second_median": median,
                "accesses_per_second_min": low,
                "accesses_per_second_max": high,
            }
        )
    if args.json:
        print(json.dumps(records))
        return 0
    rows = [
        [
            r["vma_index"],
            r["min_flt"],
            r["maj_flt"],
            round(r["accesses_per_second_median"] / 1e6, 2),
            f"{r['accesses_per_second_min'] / 1e6:.2f}-{r['accesses_per_second_max'] / 1e6:.2f}",
        ]
        for r in records
    ]
    header = ["index", "min_flt", "maj_flt", "M acc/s (median)", "spread"]
    print(text_table(header, rows, title=f"vmsim run {args.target}, every VMA index, {args.repeat} runs each"))
    return 0


def cmd_run(args) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    if args.vma_index == "all":
        return cmd_run_indexes(args)
    policies = vmsim.policies() if args.policy == "all" else [args.policy]
    if args.cgroup:
        if args.policy is None:
            policies = ["linux"]
        elif policies not in (["linux"], ["mglru"]):
            raise ValueError("--cgroup needs --policy linux or mglru: only Linux reclaim reclaims by memory cgroup")
    show_progress = sys.stderr.isatty() and not args.json
    runs = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,} accesses"),
        TimeElapsedColumn(),
        console=Console(file=sys.stderr),
        disable=not show_progress,
        transient=True,
    ) as bar:
        for pol in policies:
            task = bar.add_task(f"{args.target} [{pol or 'no reclaim'}]", total=None)
            sim, result, cgroup = _run_once(args, pol, lambda n, task=task: bar.advance(task, n))
            runs.append((pol, sim, result))
    records = [result.record(sim) for _, sim, result in runs]
    if cgroup is not None:
        records[0]["cgroup"] = {
            "limits": {k: getattr(cgroup, k) for k in CGROUP_LIMITS},
            "peak": cgroup.peak,
            "swap_peak": cgroup.swap_peak,
            "events": cgroup.events(),
        }
    if args.json:
        print(json.dumps(records[0] if len(records) == 1 else records))
    else:
        print(_run_table(args.target, runs, records))
    if args.plot:
        from vmsim import plots

        plots.to_files()
        config = plots.describe(runs[0][1], with_policy=len(runs) == 1)
        if args.cgroup:
            config += f", cgroup {args.cgroup}"
        if len(runs) > 1:
            fig = plots.mix_figure([(pol or "none", result) for pol, _, result in runs], config)
        else:
            fig = plots.timeline_figure(runs[0][2], config)
        plots.save(fig, args.plot)
    return 0


def _run_table(target: str, runs, records: list[dict]) -> str:
    """Measures down, one column per run: numbers only, so the table fits 80 columns."""
    from vmsim.display import text_table

    results = [r for _, _, r in runs]
    rows: list[list] = [["accesses", *(r.accesses for r in results)]]
    rows += [
        [f"  {name}", *(r.outcomes[name] for r in results)]
        for name in results[0].outcomes
        if any(r.outcomes[name] for r in results)
    ]
    rows += [["min_flt", *(r.min_flt for r in results)], ["maj_flt", *(r.maj_flt for r in results)]]
    if any(rec["swap_outs"] or rec["evictions"] for rec in records):
        rows += [
            [field, *(rec[field] for rec in records)] for field in ("swap_outs", "swap_ins", "evictions", "writebacks")
        ]
    rows.append(["RSS peak (pages)", *(r.rss_peak for r in results)])
    if "cgroup" in records[0]:
        cg = records[0]["cgroup"]
        rows.append(["cgroup peak (MiB)", round(cg["peak"] / 2**20, 1)])
        rows += [[f"cgroup {name} events", n] for name, n in cg["events"].items() if n]
    rows.append(["throughput (M/s)", *(round(r.throughput / 1e6, 2) for r in results)])
    header = ["measure", *(pol or "value" for pol, _, _ in runs)]
    return text_table(header, rows, title=f"vmsim run {target}")


def cmd_mrc(args) -> int:
    from vmsim import mrc

    policies = vmsim.policies() if args.policy == "all" else [p.strip() for p in args.policy.split(",")]
    show = sys.stderr.isatty() and not args.json
    curve = mrc.miss_ratio_curve(
        args.target,
        policies,
        args.sizes,
        points=args.points,
        memory=args.memory,
        vma_index=args.vma_index,
        progress=(lambda line: print(line, file=sys.stderr)) if show else None,
    )
    print(json.dumps(curve.record()) if args.json else curve.table())
    if args.plot:
        curve.plot(args.plot)
    return 0


def cmd_bench_vma(args) -> int:
    """`vmsim bench vma`: each index timed operation by operation (interleaved runs; median and spread)."""
    from vmsim import vma_bench
    from vmsim.display import text_table

    indexes = vmsim.vma_indexes() if args.index == "all" else [i.strip() for i in args.index.split(",")]
    unknown = [i for i in indexes if i not in vmsim.vma_indexes()]
    if unknown:
        raise ValueError(f"unknown VMA index {unknown[0]!r}: use all or {', '.join(vmsim.vma_indexes())}")
    try:
        sizes = [int(v) for v in args.vmas.split(",")]
    except ValueError:
        raise ValueError(f"--vmas takes comma-separated whole numbers, got {args.vmas!r}") from None
    lookups, repeat = (min(args.lookups, 20_000), min(args.repeat, 3)) if args.quick else (args.lookups, args.repeat)
    records = vma_bench.study(indexes, sizes, lookups, repeat)
    if args.plot:
        vma_bench.plot(records, indexes, args.plot, title=f"median of {repeat} runs, {lookups:,} lookups each")
        print(f"wrote {args.plot}", file=sys.stderr)
    if args.json:
        print(json.dumps(records))
        return 0

    def ns(value: float) -> str:
        return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"

    def spread(rec: dict) -> str:  # the lookups' range over the runs, as +-% of their median
        lo, hi = rec["lookup_ns_spread"]
        return f"±{50 * (hi - lo) / rec['lookup_ns']:.0f}%" if rec["lookup_ns"] else "-"

    rows = [
        [
            r["vma_index"],
            r["vmas"],
            ns(r["lookup_ns"]),
            spread(r),
            *(ns(r[op]) for op in ("insert_ns", "remove_ns", "gap_ns")),
            "-" if r["nodes_per_lookup"] is None else f"{r['nodes_per_lookup']:.1f}",
            "-" if r["cache_hit_rate"] is None else f"{100 * r['cache_hit_rate']:.1f}%",
        ]
        for r in records
    ]
    header = ["index", "VMAs", "lookup", "±", "insert", "remove", "gap", "nodes/lookup", "cache"]
    title = f"VMA indexes: ns per operation, median of {repeat} runs ({lookups:,} random lookups each)"
    print(text_table(header, rows, title=title))
    return 0


def cmd_bench(args) -> int:
    from vmsim import bench

    if args.suite == "vma":
        return cmd_bench_vma(args)
    rows = bench.headline(pages=16_384 if args.quick else 262_144, repeat=2 if args.quick else 5)
    bench.print_table(rows)
    return 0


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "demo" and args.exit:
            from vmsim import demo_exit

            return demo_exit.run(sys.stdout)
        if args.command == "demo":
            from vmsim import demo

            color = {"auto": None, "always": True, "never": False}[args.color]
            return demo.run(sys.stdout, color=color, pause=sys.stdin if args.step else None)
        if args.command == "explain":
            return cmd_explain(args)
        if args.command == "run":
            return cmd_run(args)
        if args.command == "mrc":
            return cmd_mrc(args)
        if args.command == "bench":
            return cmd_bench(args)
    except (ValueError, OSError, OverflowError, TypeError, MemoryError, vmsim.VmsimError) as e:
        # One line, never a traceback: the error is the user's input.
        print(f"vmsim {args.command}: {_one_line(e)}", file=sys.stderr)
        return 2
    parser.print_help()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
