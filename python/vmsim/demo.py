"""`vmsim demo`: where does an uninitialised pointer land?

A C program dereferences ``int *p`` without setting it. Whatever garbage ``p``
holds, the kernel decides what happens. The demo builds a realistic process
(text, data, heap, mmap area, stack) with a second thread, tries a handful of
values for ``p``, and prints the kernel's steps for each; then it forks, and
shows copy-on-write from both sides, and a jump into the heap (no exec
permission). With ``--step``, it waits for Enter before each case.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Callable, Literal, TextIO

from vmsim._core import Process, Simulator
from vmsim.outcome import Outcome

KIB = 1024
MIB = 1024 * KIB

_MEANING = {
    Outcome.HIT: "no fault: the page was already mapped",
    Outcome.ZERO_PAGE: "minor fault: the shared zero page is mapped read-only",
    Outcome.ANON_ZERO_FILL: "minor fault: a fresh zeroed page; the program goes on",
    Outcome.COW_COPY: "minor fault: the page is copied",
    Outcome.COW_REUSE: "minor fault: the page is made writable",
    Outcome.SEGV_MAPERR: "SIGSEGV (SEGV_MAPERR): nothing is mapped there",
    Outcome.SEGV_ACCERR: "SIGSEGV (SEGV_ACCERR): mapped, but the access is not allowed",
    Outcome.SEGV_NONCANONICAL: "SIGSEGV (SI_KERNEL) from a general-protection fault",
    Outcome.OOM: "out of memory",
}


@dataclass
class Case:
    title: str
    addr: int
    op: Literal["r", "w", "x"]
    who: Literal["parent", "child"] = "parent"


def _cases(p: Process, thread: Process, heap: int) -> list[Case]:
    layout = p.layout()
    vmas = p.vmas()
    text = vmas[0][0]
    stack_lo = next(lo for lo, hi, _, flags in vmas if "growsdown" in flags)
    t_lo, _ = thread.thread_stack  # type: ignore[misc]
    return [
        Case("p = NULL", 0, "r"),
        Case("p points into the heap (malloc'd memory not yet touched)", heap + 0x40, "w"),
        Case("the same heap page again", heap + 0x80, "w"),
        Case("p is just below the main stack: the stack grows", stack_lo - 0x10, "w"),
        Case("p is inside the main stack", layout["start_stack"], "r"),
        Case("p is 9 MiB below the stack top: past RLIMIT_STACK", layout["start_stack"] - 9 * MIB, "w"),
        Case("p is inside the other thread's stack (threads share memory)", t_lo + 0x1000, "w"),
        Case("p is in the other thread's stack guard page", t_lo - 0x10, "w"),
        Case("p points at program text and the code writes through it", text + 0x1234, "w"),
        Case("p is a kernel address", 0xFFFF_FFFF_8100_0000, "r"),
        Case("p is garbage: a non-canonical address", 0xDEAD_BEEF_DEAD_BEEF, "r"),
    ]


def _after_fork(heap: int) -> list[Case]:
    return [
        Case(
            "fork(): the child writes the heap page its parent wrote (shared copy-on-write)", heap + 0x40, "w", "child"
        ),
        Case("the parent writes that page too: the child has its own copy now", heap + 0x40, "w"),
        Case("p points into the heap and the program jumps there (the heap is not executable)", heap + 0x40, "x"),
    ]


def wait_for_enter(out: TextIO, stdin: TextIO) -> bool:
    """`--step`: wait for Enter; False once the input has ended (stop waiting)."""
    print("    (Enter for the next step)", end="", file=out, flush=True)
    line = stdin.readline()
    print(file=out)
    return bool(line)


def run(out: TextIO = sys.stdout, color: bool | None = None, pause: TextIO | None = None) -> int:
    """Play the demo; returns the process exit code. With `pause` (an input
    stream: ``--step``), wait for Enter before each case."""
    if color is None:
        color = out.isatty()
    paint: Callable[[str, str], str] = (lambda s, c: f"\x1b[{c}m{s}\x1b[0m") if color else (lambda s, c: s)

    sim = Simulator(memory="256MiB")
    p = sim.spawn(layout="default")
    thread = p.clone_thread()  # pthread-style: an 8 MiB stack with a guard page below it
    heap = p.brk()
    p.brk(heap + 132 * KIB)  # what malloc's first sbrk asks for
    # A read-only mapping 12 MiB below the stack top, to show the guard gap.
    below = p.vmas()[-1][1] - 12 * MIB
    p.mmap(4096, "r", addr=below, fixed_noreplace=True)

    print(paint("vmsim demo: where does an uninitialised `int *p` land?", "1"), file=out)
    print(f"A process with two threads (pids {p.pid}, {thread.pid}); its /proc/{p.pid}/maps:\n", file=out)
    for line in p.maps().splitlines():
        print("    " + line, file=out)

    cases = _cases(p, thread, heap)
    cases.insert(
        6, Case("p is within 1 MiB (the stack guard gap) of the mapping below the stack", below + 4096 + 512 * KIB, "w")
    )
    cases += _after_fork(heap)
    child = None  # forked when the first case in it comes: after the parent wrote its heap
    for n, case in enumerate(cases, 1):
        if pause is not None and not wait_for_enter(out, pause):
            pause = None
        verb = {"r": "reads *p", "w": "writes *p = 42", "x": "jumps to p"}[case.op]
        print(f"\n[{n}] {case.title}", file=out)
        proc, who = p, ""
        if case.who == "child":
            child = child or p.fork()
            proc, who = child, f" (in the child, pid {child.pid})"
        print(f"    p = {case.addr:#018x}; the program{who} {verb}", file=out)
        outcome, steps = proc.access_traced(case.addr, case.op)
        for step in steps:
            print(f"      - {step}", file=out)
        good = not outcome.is_signal
        print("    => " + paint(f"{outcome.name}: {_MEANING.get(outcome, '')}", "32" if good else "31"), file=out)

    c = p.counters()
    print(
        f"\nThe process took {c['min_flt']} minor faults; RSS {c['rss_anon']} anonymous pages; "
        f"{c['pt_pages']} page-table pages below the PGD.",
        file=out,
    )
    if child is not None:
        child.exit()
    thread.exit()
    p.exit()
    counters = sim.counters()
    sim.check()
    print(
        f"The child and both threads exited: the last Arc of the address space dropped, and "
        f"{counters['frames_free']} of {counters['frames_total']} frames are free again.",
        file=out,
    )
    return 0
