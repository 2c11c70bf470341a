"""Several Python threads driving one Simulator at once (batch calls release
the GIL): different processes, and the same process. No crash, no deadlock,
counters equal to the sum of the work, check() passes."""

from __future__ import annotations

import contextlib
import threading

import numpy as np

import vmsim
from vmsim import PAGE_SIZE, Outcome

N = 2000


def run_threads(targets):
    errors = []

    def wrap(fn):
        def inner():
            try:
                fn()
            except BaseException as e:
                errors.append(e)

        return inner

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
        assert not t.is_alive(), "deadlock: a worker did not finish"
    assert not errors, errors


def test_threads_on_different_processes():
    sim = vmsim.Simulator(memory="256MiB")
    procs = [sim.spawn() for _ in range(4)]
    bases = [p.mmap(N * PAGE_SIZE) for p in procs]

    def worker(p, base):
        addrs = np.arange(base, base + N * PAGE_SIZE, PAGE_SIZE, dtype=np.uint64)
        for _ in range(3):
            p.access_batch(addrs, "w")
        child = p.fork()
        child.access_batch(addrs, "w")
        child.exit()

    run_threads([lambda p=p, b=b: worker(p, b) for p, b in zip(procs, bases)])
    for p in procs:
        assert p.counters()["min_flt"] == N
        assert p.counters()["rss_anon"] == N
    faults = sim.counters()["faults"]
    assert faults["ANON_ZERO_FILL"] == 4 * N
    assert faults["COW_COPY"] == 4 * N
    assert faults["HIT"] == 4 * 2 * N
    sim.check()
    for p in procs:
        p.exit()
    c = sim.counters()
    assert c["frames_free"] == c["frames_total"]


def test_threads_on_the_same_process():
    sim = vmsim.Simulator(memory="256MiB")
    p = sim.spawn()
    base = p.mmap(N * PAGE_SIZE)
    addrs = np.arange(base, base + N * PAGE_SIZE, PAGE_SIZE, dtype=np.uint64)
    tasks = [p] + [p.clone_thread(stack_size=0) for _ in range(3)]
    results = [None] * len(tasks)

    def worker(i):
        rng = np.random.default_rng(i)
        out = []
        for _ in range(4):
            out.append(tasks[i].access_batch(rng.permutation(addrs), "w"))
        results[i] = np.concatenate(out)

    run_threads([lambda i=i: worker(i) for i in range(len(tasks))])
    all_codes = np.concatenate(results)
    # Every page faulted exactly once, whichever thread got there first.
    assert int((all_codes == Outcome.ANON_ZERO_FILL).sum()) == N
    assert int((all_codes == Outcome.HIT).sum()) == all_codes.size - N
    assert p.counters()["min_flt"] == N
    sim.check()


def test_mixed_syscalls_and_accesses_in_parallel():
    sim = vmsim.Simulator(memory="256MiB")
    p = sim.spawn(layout="default")

    def mapper():
        for _i in range(200):
            a = p.mmap(4 * PAGE_SIZE)
            p.access(a, "w")
            p.mprotect(a, PAGE_SIZE, "r")
            p.munmap(a, 4 * PAGE_SIZE)

    def toucher():
        q = sim.spawn()
        a = q.mmap(N * PAGE_SIZE)
        for _ in range(5):
            q.access_batch(np.arange(a, a + N * PAGE_SIZE, PAGE_SIZE, dtype=np.uint64), "w")
        q.exit()

    def forker():
        for _ in range(20):
            c = p.fork()
            c.access(p.brk(), "r")
            c.exit()

    run_threads([mapper, toucher, forker, lambda: [sim.check() for _ in range(20)]])
    sim.check()
    p.exit()
    c = sim.counters()
    assert c["frames_free"] == c["frames_total"]


def test_stress_every_kind_of_call_at_once_with_reclaim():
    """Threads batching, mapping, forking, exiting, checking and allocating
    in the kernel, one scribbling on the batch inputs, under memory pressure:
    no panic, no deadlock, check() clean, every frame back."""
    sim = vmsim.Simulator(memory="32MiB", swap="16MiB", policy="clock", resident_limit=4096)
    shared_addrs = np.zeros(N, np.uint64)
    shared_ops = np.ones(N, np.uint8)
    stop = threading.Event()

    def batcher(seed):
        rng = np.random.default_rng(seed)
        p = sim.spawn(layout="default")
        a = p.mmap(3000 * PAGE_SIZE)
        shared_addrs[:] = a + rng.integers(0, 3000, N).astype(np.uint64) * PAGE_SIZE
        for _ in range(15):
            # The scribbler's bad op codes may be copied in: refused before anything runs.
            with contextlib.suppress(ValueError):
                p.access_batch(shared_addrs, shared_ops)
            child = p.fork()
            child.access_batch(shared_addrs[:500].copy(), "w")
            child.exit()
        p.exit()

    def scribbler():
        while not stop.is_set():
            shared_ops[:] = 9
            shared_ops[:] = 1

    def mapper():
        p = sim.spawn()
        for _ in range(300):
            a = p.mmap(8 * PAGE_SIZE, flags="shared|anonymous" if _ % 2 else "private|anonymous")
            p.access(a, "w")
            t = p.clone_thread(stack_size=4 * PAGE_SIZE)
            t.access(a + PAGE_SIZE, "w")
            p.madvise(a, 4 * PAGE_SIZE, "dontneed")
            t.exit()
            p.munmap(a, 8 * PAGE_SIZE)
        p.exit_group()

    def kernel_user():
        k = sim.kernel
        for _ in range(200):
            xs = k.kmalloc_many(128, 64)
            v = k.vmalloc(3 * PAGE_SIZE)
            o = k.kobject_create("dev")
            k.kfree_many(xs)
            k.vfree(v)
            k.kobject_put(o)

    def checker():
        for _ in range(30):
            sim.check()
            sim.counters()

    s = threading.Thread(target=scribbler)
    s.start()
    try:
        run_threads([lambda: batcher(1), lambda: batcher(2), mapper, kernel_user, checker])
    finally:
        stop.set()
        s.join()
    sim.check()
    c = sim.counters()
    assert (c["frames_free"], c["swap_used"], c["processes"]) == (c["frames_total"], 0, 0)
    assert sim.leak_check() == []


def _python_runs_during(action) -> int:
    """Python bytecodes another thread ran while `action` ran (GIL released: many)."""
    running, count = threading.Event(), [0]

    def spin():
        running.set()
        while running.is_set():
            count[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    running.wait()
    before = count[0]
    action()
    ran = count[0] - before
    running.clear()
    t.join()
    return ran


def test_building_and_tearing_down_a_large_simulator_releases_the_gil():
    """A big simulator's frame table is built, and all of it given back,
    without the GIL: another thread's Python keeps running meanwhile."""
    pages = 1 << 22
    made = []
    assert _python_runs_during(lambda: made.append(vmsim.Simulator(memory=pages * PAGE_SIZE))) > 0
    sim = made.pop()
    p = sim.spawn()
    a = p.mmap((1 << 20) * PAGE_SIZE)
    p.access_batch(np.arange(a, a + (1 << 20) * PAGE_SIZE, PAGE_SIZE, dtype=np.uint64), "w")
    del p
    holder = [sim]
    del sim
    assert _python_runs_during(holder.clear) > 0  # the last reference goes: teardown


def test_batches_read_numpy_arrays_in_place_or_copied():
    """Contiguous arrays (writable or not) are read in place, strided ones
    and lists are copied: the outcomes are the same either way."""
    sim = vmsim.Simulator(memory="16MiB")
    p = sim.spawn()
    a = p.mmap(64 * PAGE_SIZE)
    addrs = np.arange(a, a + 64 * PAGE_SIZE, PAGE_SIZE, dtype=np.uint64)
    ops = np.tile(np.array([1, 0], np.uint8), 32)
    frozen = addrs.copy()
    frozen.flags.writeable = False
    want = p.fork().access_batch(addrs, ops)
    for given in (frozen, np.repeat(addrs, 2)[::2], addrs.tolist()):
        assert (p.fork().access_batch(given, ops) == want).all()
    assert (p.fork().access_batch(addrs, ops.tolist()) == want).all()
    sim.check()
