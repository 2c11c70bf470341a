"""`vmsim demo --exit`: how a dying process gives its memory back.

A process with two threads and a forked child exits piece by piece. For each
exit the simulator prints the route Linux takes (do_exit -> exit_mm -> mmput
-> __mmput -> exit_mmap ... mmdrop -> __mmdrop) beside what DragonOS does
with Rust ownership: the last Arc of the address space dropped runs its Drop.
"""

from __future__ import annotations

import sys
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


def _print_route(title: str, events: list[tuple[str, str]] | None, out: TextIO) -> None:
    print(f"\n{title}", file=out)
    print(f"  {'Linux':<58} | DragonOS", file=out)
    print(f"  {'-' * 58}-+-{'-' * 46}", file=out)
    for name, detail in events or []:
        left = f"{name}: {detail}"
        if len(left) > 58:
            left = left[:55] + "..."
        print(f"  {left:<58} | {DRAGONOS.get(name, '')}", file=out)


def run(out: TextIO = sys.stdout) -> int:
    sim = Simulator(memory="64MiB")
    k = sim.kernel
    p = sim.spawn(layout="default")
    a = p.mmap(64 * PAGE_SIZE)
    p.access_batch(np.arange(a, a + 64 * PAGE_SIZE, PAGE_SIZE, dtype=np.uint64), "w")
    t = p.clone_thread(stack_size=0)
    child = p.fork()
    child.access_batch(np.arange(a, a + 8 * PAGE_SIZE, PAGE_SIZE, dtype=np.uint64), "w")  # 8 copies of its own
    lazy = k.mmgrab(p)  # a CPU still runs on this mm lazily (lazy TLB): one more mm_count

    print("vmsim demo --exit: the release route of a process with two threads and a forked child", file=out)
    print(
        f"process {p.pid} (threads {p.pid}, {t.pid}) mapped 64 pages; its child {child.pid} copied 8 of them.", file=out
    )
    slab = {s["name"]: s["active_objs"] for s in k.slabinfo()}
    print(f"slab: {slab['mm_struct']} mm_struct, {slab['vm_area_struct']} vm_area_struct objects live", file=out)

    _print_route(f"1. thread {t.pid} exits: other users remain, nothing is freed", t.exit(trace=True), out)
    _print_route(f"2. the child {child.pid} exits: the last user of its own address space", child.exit(trace=True), out)
    _print_route(
        f"3. the parent {p.pid} exits: pages and tables go, the lazy-TLB reference keeps the mm_struct",
        p.exit(trace=True),
        out,
    )
    sim.trace_release(True)
    _print_route("4. the CPU switches away and drops its lazy reference (mmdrop)", k.mmdrop(lazy), out)
    sim.trace_release(False)

    c = sim.counters()
    sim.check()
    leaks = sim.leak_check()
    print(
        f"\nAll gone: {c['frames_free']} of {c['frames_total']} frames free, {len(leaks)} kernel allocations live.",
        file=out,
    )
    return 0 if not leaks and c["frames_free"] == c["frames_total"] else 1
