"""`vmsim demo --exit`: how a dying process gives its memory back.

A process with two threads and a forked child exits piece by piece. For each
exit the simulator prints the route Linux takes (do_exit -> exit_mm -> mmput
-> __mmput -> exit_mmap ... mmdrop -> __mmdrop) beside what DragonOS does
with Rust ownership: the last Arc of the address space dropped runs its Drop.
"""

from __future__ import annotations

import shutil
import sys
import textwrap
from typing import TextIO

import numpy as np

from vmsim._core import PAGE_SIZE, Simulator

# What the same step is in DragonOS's ownership-based teardown.
DRAGONOS = {
    "do_exit": "the task exits",
    "exit_mm": "the task drops its Arc<AddressSpace>",
    "mmput": "Arc strong count goes down by one",
    "AddressSpace::drop": "last Arc gone: Drop for the address space runs",
    "__mmput": "(Drop) no users left",
    "exit_mmap": "(Drop) unmap every VMA",
    "unmap_vmas": "(Drop) each mapped frame's reference dropped",
    "free_pgtables": "(Drop) page-table frames back to the allocator",
    "vm_area_free": "(Drop) the VMA is dropped",
    "mmdrop": "(no second count: one Arc covers both)",
    "__mmdrop": "",
    "mm_free_pgd": "(Drop) the top-level table freed",
    "free_mm": "(Drop) the address space struct freed",
}


# Events that only DragonOS has: they belong in its column, not Linux's.
DRAGONOS_ONLY = {"AddressSpace::drop"}


def _rows(events: list[tuple[str, str]] | None) -> list[tuple[str, str]]:
    """(Linux step, DragonOS step) per event."""
    rows = []
    for name, detail in events or []:
        linux = "" if name in DRAGONOS_ONLY else f"{name}: {detail}"
        rows.append((linux, DRAGONOS.get(name, "")))
    return rows


def _print_route(title: str, events: list[tuple[str, str]] | None, out: TextIO, width: int) -> None:
    """The two routes side by side when the terminal is wide enough for both
    in full, else each Linux step with its DragonOS counterpart beneath it."""
    rows = _rows(events)
    left = max([len("Linux")] + [len(linux) for linux, _ in rows])
    right = max([len("DragonOS")] + [len(dragon) for _, dragon in rows])
    print("\n" + textwrap.fill(title, width, subsequent_indent="   "), file=out)
    if 2 + left + 3 + right <= width:
        print(f"  {'Linux':<{left}} | DragonOS", file=out)
        print(f"  {'-' * left}-+-{'-' * right}", file=out)
        for linux, dragon in rows:
            print(f"  {linux:<{left}} | {dragon}".rstrip(), file=out)
        return
    for linux, dragon in rows:
        if linux:
            print(textwrap.fill(linux, width, initial_indent="  ", subsequent_indent="      "), file=out)
        if dragon:
            print(
                textwrap.fill(f"DragonOS: {dragon}", width, initial_indent="      ", subsequent_indent="        "),
                file=out,
            )


def run(out: TextIO = sys.stdout, width: int | None = None) -> int:
    """Print the demo to `out`, fitting `width` columns (the terminal's by default)."""
    width = width or shutil.get_terminal_size().columns
    sim = Simulator(memory="64MiB")
    k = sim.kernel
    p = sim.spawn(layout="default")
    a = p.mmap(64 * PAGE_SIZE)
    p.access_batch(np.arange(a, a + 64 * PAGE_SIZE, PAGE_SIZE, dtype=np.uint64), "w")
    t = p.clone_thread(stack_size=0)
    child = p.fork()
    child.access_batch(np.arange(a, a + 8 * PAGE_SIZE, PAGE_SIZE, dtype=np.uint64), "w")  # 8 copies of its own
    lazy = k.mmgrab(p)  # a CPU still runs on this mm lazily (lazy TLB): one more mm_count

    print("vmsim demo --exit: the release route of two threads and a forked child", file=out)
    print(f"process {p.pid} (threads {p.pid}, {t.pid}) mapped 64 pages; its child {child.pid} copied 8.", file=out)
    slab = {s["name"]: s["active_objs"] for s in k.slabinfo()}
    print(f"slab: {slab['mm_struct']} mm_struct, {slab['vm_area_struct']} vm_area_struct objects live", file=out)

    _print_route(f"1. thread {t.pid} exits: other users remain, nothing is freed", t.exit(trace=True), out, width)
    _print_route(
        f"2. the child {child.pid} exits: the last user of its own address space", child.exit(trace=True), out, width
    )
    _print_route(
        f"3. the parent {p.pid} exits: pages and tables go; a lazy-TLB reference keeps the mm_struct",
        p.exit(trace=True),
        out,
        width,
    )
    sim.trace_release(True)
    _print_route("4. the CPU switches away and drops its lazy reference (mmdrop)", k.mmdrop(lazy), out, width)
    sim.trace_release(False)

    c = sim.counters()
    sim.check()
    leaks = sim.leak_check()
    print(
        f"\nAll gone: {c['frames_free']} of {c['frames_total']} frames free, {len(leaks)} kernel allocations live.",
        file=out,
    )
    return 0 if not leaks and c["frames_free"] == c["frames_total"] else 1
