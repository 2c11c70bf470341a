"""Differential test: the Rust core against the pure-Python reference model.

Hypothesis drives random sequences of spawn / mmap / munmap / mprotect / brk /
fork / clone_thread / exit / access over several processes; after every step
both must agree on the result, on maps(), on every counter and on the frames
in use, and sim.check() must pass. CI runs a bounded number of examples; set
HYPOTHESIS_PROFILE=long for a longer local run.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import vmsim

import refmodel as M
from refmodel import PAGE_SIZE

settings.register_profile(
    "ci", max_examples=150, stateful_step_count=40, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.register_profile(
    "long", max_examples=2000, stateful_step_count=120, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

REGION = 0x1000_0000
PROTS = ["r--", "rw-", "r-x", "rwx", "---", "-w-"]


def prot_arg(p: str) -> str:
    return "none" if p == "---" else p


class Differential(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.sim = vmsim.Simulator(memory="64MiB", vma_index=os.environ.get("VMSIM_INDEX", "maple"))
        self.model = M.Model(ram_pages=self.sim.counters()["frames_total"])
        self.procs: dict = {}  # model pid -> vmsim Process

    # -- helpers --
    def pick(self, i: int):
        pids = sorted(self.procs)
        pid = pids[i % len(pids)]
        return pid, self.procs[pid]

    def both(self, real_call, model_call):
        try:
            real = ("ok", real_call())
        except OSError as e:
            real = ("errno", e.errno)
        try:
            model = ("ok", model_call())
        except M.ModelOSError as e:
            model = ("errno", e.errno)
        assert real == model
        return real

    def compare(self, pid):
        p = self.procs[pid]
        assert p.maps() == self.model.maps(pid)
        assert p.counters() == self.model.counters(pid)

    # -- rules --
    @precondition(lambda self: len(self.procs) < 5)
    @rule(default=st.booleans())
    def spawn(self, default):
        p = self.sim.spawn(layout="default" if default else None)
        pid = self.model.spawn(default)
        assert p.pid == pid
        self.procs[pid] = p
        self.compare(pid)

    @precondition(lambda self: self.procs)
    @rule(
        i=st.integers(0, 9),
        page=st.integers(0, 63),
        npages=st.integers(1, 12),
        prot=st.sampled_from(PROTS),
        how=st.sampled_from(["fixed", "noreplace", "hint", "anywhere"]),
    )
    def mmap(self, i, page, npages, prot, how):
        pid, p = self.pick(i)
        addr = REGION + page * PAGE_SIZE
        kw = {"fixed": how == "fixed", "fixed_noreplace": how == "noreplace"}
        real_addr = None if how == "anywhere" else addr
        self.both(
            lambda: p.mmap(npages * PAGE_SIZE, prot=prot_arg(prot), addr=real_addr, **kw),
            lambda: self.model.mmap(
                pid,
                0 if how == "anywhere" else addr,
                npages * PAGE_SIZE,
                prot,
                fixed=how == "fixed",
                noreplace=how == "noreplace",
            ),
        )
        self.compare(pid)

    @precondition(lambda self: self.procs)
    @rule(i=st.integers(0, 9), k=st.integers(0, 5), prot=st.sampled_from(PROTS))
    def mmap_below_stack(self, i, k, prot):
        """A one-page mapping at a distance below the stack that tests the guard gap."""
        pid, p = self.pick(i)
        gap = [0, PAGE_SIZE, 255 * PAGE_SIZE, 256 * PAGE_SIZE, 257 * PAGE_SIZE, 2 << 20][k]
        addr = M.TASK_SIZE - 40 * PAGE_SIZE - gap - PAGE_SIZE
        self.both(
            lambda: p.mmap(PAGE_SIZE, prot=prot_arg(prot), addr=addr, fixed=True),
            lambda: self.model.mmap(pid, addr, PAGE_SIZE, prot, fixed=True),
        )
        self.compare(pid)

    @precondition(lambda self: self.procs)
    @rule(i=st.integers(0, 9), page=st.integers(0, 70), npages=st.integers(1, 20))
    def munmap(self, i, page, npages):
        pid, p = self.pick(i)
        self.both(
            lambda: p.munmap(REGION + page * PAGE_SIZE, npages * PAGE_SIZE),
            lambda: self.model.munmap(pid, REGION + page * PAGE_SIZE, npages * PAGE_SIZE),
        )
        self.compare(pid)

    @precondition(lambda self: self.procs)
    @rule(i=st.integers(0, 9), page=st.integers(0, 70), npages=st.integers(1, 20), prot=st.sampled_from(PROTS))
    def mprotect(self, i, page, npages, prot):
        pid, p = self.pick(i)
        a = REGION + page * PAGE_SIZE
        self.both(
            lambda: p.mprotect(a, npages * PAGE_SIZE, prot_arg(prot)),
            lambda: self.model.mprotect(pid, a, npages * PAGE_SIZE, prot),
        )
        self.compare(pid)

    @precondition(lambda self: self.procs)
    @rule(i=st.integers(0, 9), delta=st.integers(-6, 10))
    def brk(self, i, delta):
        pid, p = self.pick(i)
        target = max(self.model.mm(pid).brk + delta * PAGE_SIZE - 100, 0)
        self.both(lambda: p.brk(target), lambda: self.model.brk(pid, target))
        self.compare(pid)

    @precondition(lambda self: self.procs and len(self.procs) < 6)
    @rule(i=st.integers(0, 9))
    def fork(self, i):
        pid, p = self.pick(i)
        child = p.fork()
        cpid = self.model.fork(pid)
        assert child.pid == cpid
        self.procs[cpid] = child
        self.compare(pid)
        self.compare(cpid)

    @precondition(lambda self: self.procs and len(self.procs) < 6)
    @rule(i=st.integers(0, 9))
    def clone_thread(self, i):
        pid, p = self.pick(i)
        t = p.clone_thread(stack_size=0)
        tid = self.model.clone_thread(pid)
        assert t.pid == tid
        self.procs[tid] = t
        self.compare(tid)

    @precondition(lambda self: self.procs)
    @rule(i=st.integers(0, 9))
    def exit(self, i):
        pid, p = self.pick(i)
        p.exit()
        self.model.exit(pid)
        del self.procs[pid]

    @precondition(lambda self: self.procs)
    @rule(
        i=st.integers(0, 9),
        where=st.sampled_from(["region", "stack", "heap", "wild"]),
        k=st.integers(0, 80),
        op=st.sampled_from(["r", "w", "x"]),
    )
    def access(self, i, where, k, op):
        pid, p = self.pick(i)
        mm = self.model.mm(pid)
        if where == "region":
            addr = REGION + k * PAGE_SIZE + 24
        elif where == "stack":
            # distances below the stack top that exercise growth and the rlimit
            dist = [
                PAGE_SIZE,
                33 * PAGE_SIZE,
                40 * PAGE_SIZE,
                1 << 20,
                4 << 20,
                (8 << 20) - PAGE_SIZE,
                8 << 20,
                (8 << 20) + 8,
                9 << 20,
            ]
            addr = M.TASK_SIZE - dist[k % len(dist)] + 16
        elif where == "heap":
            addr = mm.start_brk + (k - 4) * PAGE_SIZE
        else:
            addr = [0, M.TASK_SIZE, 0xFFFF_8000_0000_0000, 0xDEAD_BEEF_0000_0000, M.MMAP_BASE - PAGE_SIZE, 1 << 46][
                k % 6
            ]
        addr = max(addr, 0)
        assert p.access(addr, op).name == self.model.access(pid, addr, op)
        self.compare(pid)

    @invariant()
    def consistent(self):
        self.sim.check()
        c = self.sim.counters()
        # Slab pages (mm_structs, VMAs) depend on allocation order; the model counts the rest.
        assert c["frames_used"] - c["slab_pages"] == self.model.frames_used()
        assert c["processes"] == len({t for t, _ in self.model.tasks.values()})

    def teardown(self):
        for p in self.procs.values():
            p.exit()
        c = self.sim.counters()
        assert c["frames_free"] == c["frames_total"]
        assert self.sim.leak_check() == []  # the kernel allocators are back where they started


TestDifferential = Differential.TestCase
