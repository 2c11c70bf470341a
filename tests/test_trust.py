"""Regression tests for the ways results could silently go wrong, the
interpreter could die or hang, and misuse could slip through (one test or
more per finding; each failed before its fix)."""

from __future__ import annotations

import contextlib
import errno
import gc
import threading
import time

import numpy as np
import pytest

import vmsim
from vmsim import PAGE_SIZE, Outcome, traces
from vmsim.workloads import Workload


def pages(a: int, n: int) -> np.ndarray:
    return np.arange(a, a + n * PAGE_SIZE, PAGE_SIZE, dtype=np.uint64)


def all_back(sim: vmsim.Simulator) -> bool:
    c = sim.counters()
    return c["frames_free"] == c["frames_total"] and c["swap_used"] == 0


# ----- reclaim keeps nothing of pages that went ------------------------------


@pytest.mark.parametrize("policy", vmsim.policies())
def test_a_reused_simulator_pages_the_same_every_run(policy):
    sim = vmsim.Simulator(memory="16MiB", swap="8MiB", policy=policy)
    runs = []
    for _ in range(3):
        p = sim.spawn()
        p.oom_score_adj = -1000  # the OOM outcome, not the OOM killer
        a = p.mmap(6000 * PAGE_SIZE)
        codes = p.access_batch(pages(a, 6000), "w")
        runs.append((int((codes == Outcome.OOM).sum()), int((codes == Outcome.ANON_ZERO_FILL).sum())))
        p.exit()
        sim.check()
        assert all_back(sim)
    assert runs == [runs[0]] * 3
    # Memory and swap hold 6144 pages; Linux reclaim keeps its min watermark
    # (128 pages at 16 MiB) for the kernel, so a few of the last pages are OOM.
    assert runs[0] == (0, 6000) if policy not in ("linux", "mglru") else 0 < runs[0][0] < 128


@pytest.mark.parametrize("policy", vmsim.policies())
def test_policy_state_goes_with_munmap_dontneed_and_truncate(policy):
    sim = vmsim.Simulator(memory="16MiB", swap="8MiB", policy=policy, resident_limit=512)
    p = sim.spawn()
    f = sim.create_file(256 * PAGE_SIZE)
    for _ in range(4):
        a = p.mmap(400 * PAGE_SIZE)
        p.access_batch(pages(a, 400), "w")
        p.madvise(a, 200 * PAGE_SIZE, "dontneed")
        sim.check()  # check() verifies the policy tracks no more pages than are mapped
        p.munmap(a, 400 * PAGE_SIZE)
        b = p.mmap(256 * PAGE_SIZE, prot="r", file=f)
        p.access_batch(pages(b, 256), "r")
        f.truncate(0)
        f.truncate(256 * PAGE_SIZE)
        sim.check()
        p.munmap(b, 256 * PAGE_SIZE)
    p.exit()
    assert (p.alive, all_back(sim)) == (False, True)


# ----- counts of exited processes ---------------------------------------------


def test_reaped_children_fold_into_cmin_flt_and_machine_totals_are_exact():
    sim = vmsim.Simulator(memory="64MiB")
    parent = sim.spawn()
    a = parent.mmap(64 * PAGE_SIZE)
    parent.access_batch(pages(a, 64), "w")
    child = parent.fork()
    child.access_batch(pages(a, 10), "w")  # 10 COW copies
    grandchild = child.fork()
    grandchild.access_batch(pages(a, 5), "w")  # 5 more
    thread = child.clone_thread(stack_size=0)
    thread.access(a + 20 * PAGE_SIZE, "w")  # counted in the child's own min_flt
    grandchild.exit()
    assert child.counters()["cmin_flt"] == 5
    assert parent.counters()["cmin_flt"] == 0, "the child is still alive"
    child.exit()
    assert parent.counters()["cmin_flt"] == 0, "its thread still runs: the process is not reaped yet"
    thread.exit()
    c = parent.counters()
    assert (c["min_flt"], c["cmin_flt"], c["cmaj_flt"]) == (64, 11 + 5, 0)
    assert sim.counters()["min_flt"] == 64 + 11 + 5
    parent.exit()


def test_fork_storm_reports_every_fault():
    sim = vmsim.Simulator(memory="128MiB")
    r = Workload.make("fork_storm", pages=4096, children=2, fraction=1.0).run(sim)
    assert r.min_flt == 3 * 4096 == sum(r.outcomes[o.name] for o in Outcome if o.is_fault)


# ----- inputs the kernel refuses ---------------------------------------------------


def test_shared_growsdown_is_einval():
    sim = vmsim.Simulator(memory="16MiB")
    p = sim.spawn()
    with pytest.raises(OSError) as e:
        p.mmap(PAGE_SIZE, flags="shared|anonymous|growsdown")
    assert e.value.errno == errno.EINVAL
    assert p.vmas() == []


def test_a_file_of_another_simulator_is_refused():
    one, other = vmsim.Simulator(memory="16MiB"), vmsim.Simulator(memory="16MiB")
    f = other.create_file(PAGE_SIZE)
    p = one.spawn()
    with pytest.raises(ValueError, match="another Simulator"):
        p.mmap(PAGE_SIZE, prot="r", file=f)
    assert p.vmas() == []


@pytest.mark.parametrize(
    ("size", "code"), [(2**64 - 1, errno.EINVAL), (2**63, errno.EINVAL), ((16 << 40) + 1, errno.EFBIG)]
)
def test_truncate_to_absurd_sizes_fails_and_unmaps_nothing(size, code):
    sim = vmsim.Simulator(memory="16MiB")
    f = sim.create_file(4 * PAGE_SIZE)
    p = sim.spawn()
    a = p.mmap(4 * PAGE_SIZE, prot="r", file=f)
    p.access(a + 3 * PAGE_SIZE, "r")
    with pytest.raises(OSError) as e:
        f.truncate(size)
    assert e.value.errno == code
    assert p.access(a + 3 * PAGE_SIZE, "r") is Outcome.HIT
    with pytest.raises(OSError):
        sim.create_file(size)
    sim.check()


def test_overcommit_heuristic_refuses_one_request_larger_than_ram_and_swap():
    sim = vmsim.Simulator(memory="64MiB")
    p = sim.spawn()
    with pytest.raises(OSError) as e:
        p.mmap(1 << 46)
    assert e.value.errno == errno.ENOMEM
    p.mmap(1 << 44, prot="r")  # not writable: not accounted
    p.mmap(1 << 44, flags="private|anonymous|noreserve")  # MAP_NORESERVE: not accounted
    p.mmap(1 << 44, flags="shared|anonymous|noreserve")
    big = p.mmap(60 << 20)  # within RAM: fine, and many of them are (mode 0 checks one request)
    p.mmap(60 << 20)
    with pytest.raises(OSError):
        p.mprotect(p.mmap(1 << 30, prot="r"), 1 << 30, "rw")  # made writable: charged now
    assert sim.kernel.meminfo()["Committed_AS"] == 2 * (60 << 10)
    p.munmap(big, 60 << 20)
    assert sim.kernel.meminfo()["Committed_AS"] == 60 << 10
    sim.check()
    assert vmsim.Simulator(memory="64MiB", overcommit=1).spawn().mmap(1 << 46) > 0


def test_overcommit_never_holds_committed_as_under_the_limit():
    sim = vmsim.Simulator(memory="64MiB", overcommit=2, overcommit_ratio=50)
    info = sim.kernel.meminfo()
    assert info["CommitLimit"] == sim.counters()["frames_total"] * 50 // 100 * 4  # kB: 50% of RAM, no swap
    p = sim.spawn()
    a = p.mmap(24 << 20)
    with pytest.raises(OSError):
        p.mmap(8 << 20)  # 32 MiB would reach the limit (less the reserves)
    with pytest.raises(OSError):
        p.mmap(8 << 20, flags="private|anonymous|noreserve")  # mode 2 ignores MAP_NORESERVE
    with pytest.raises(OSError):
        p.fork()  # the child would double the private writable memory
    assert p.brk(p.brk() + (16 << 20)) == p.brk(), "brk is refused: the break stays"
    p.munmap(a, 24 << 20)
    p.mmap(8 << 20)
    assert p.fork().alive
    assert sim.kernel.meminfo()["Committed_AS"] == 2 * (8 << 10)
    sim.check()
    with pytest.raises(ValueError):
        vmsim.Simulator(overcommit=3)


def test_stack_growth_is_charged_and_refused_past_the_commit_limit():
    # CommitLimit 4% of 64 MiB = 655 pages, less the 511-page admin reserve:
    # the default layout's 37 committed pages fit, 1 MiB more of stack does not.
    sim = vmsim.Simulator(memory="64MiB", overcommit=2, overcommit_ratio=4, stack_rlimit="64MiB")
    p = sim.spawn(layout="default")
    top = p.layout()["start_stack"]
    assert p.access(top - (1 << 20), "w") is Outcome.SEGV_MAPERR
    assert p.access(top - (64 << 10), "w") is Outcome.ANON_ZERO_FILL
    sim.check()


# ----- the release trace -------------------------------------------------------------


def test_exit_and_mmdrop_trace_their_own_events_and_leave_the_rest():
    sim = vmsim.Simulator(memory="16MiB")
    sim.trace_release(True)
    first = sim.spawn()
    first.exit()
    second = sim.spawn()
    lazy = sim.kernel.mmgrab(second)
    own = second.exit(trace=True)
    assert own[0][0] == "do_exit" and f"task {second.pid}" in own[0][1]
    drop = sim.kernel.mmdrop(lazy)
    assert [e for e, _ in drop] == ["mmdrop", "__mmdrop", "mm_free_pgd", "free_mm"]
    events = sim.release_events()
    assert sum(1 for e, _ in events if e == "do_exit") == 2, "both exits stay in the sim-wide trace"
    assert events[-4:] == drop
    sim.trace_release(False)
    third = sim.spawn()
    assert third.exit(trace=True)[0][0] == "do_exit"
    assert sim.release_events() == []


# ----- the host process stays alive ------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda k: k.vmalloc(2**64 - 1),
        lambda k: k.vzalloc(2**64 - 4096),
        lambda k: k.kmalloc_many(64, 2**40),
        lambda k: k.kmalloc_many(64, 2**62),
        lambda k: k.kmalloc(2**63),
    ],
)
def test_huge_kernel_allocations_fail_cleanly(call):
    sim = vmsim.Simulator(memory="16MiB")
    with pytest.raises(vmsim.OutOfMemoryError):
        call(sim.kernel)
    sim.check()
    assert sim.leak_check() == []


def test_swap_costs_host_memory_only_when_used():
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sim = vmsim.Simulator(memory="16MiB", swap="4TiB", policy="fifo")
    assert sim.counters()["swap_total"] == (4 << 40) // PAGE_SIZE
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 64 << 10  # kB: under 64 MiB
    with pytest.raises(ValueError, match="swap"):
        vmsim.Simulator(swap="17TiB")


def test_batch_inputs_are_copied_before_the_gil_goes():
    sim = vmsim.Simulator(memory="256MiB")
    p = sim.spawn()
    a = p.mmap(20000 * PAGE_SIZE)
    addrs = np.tile(pages(a, 20000), 50)
    ops = np.ones(addrs.size, np.uint8)
    stop = threading.Event()

    def mutate():  # another thread scribbles on the arrays and resizes them
        while not stop.is_set():
            ops[:] = 7
            ops[:] = 1

    t = threading.Thread(target=mutate)
    t.start()
    try:
        for _ in range(5):
            # Copied while the bad code was there: refused before anything ran.
            with contextlib.suppress(ValueError):
                p.access_batch(addrs, ops)
    finally:
        stop.set()
        t.join()
    resizable = pages(a, 1000).copy()
    done = threading.Event()
    worker = threading.Thread(target=lambda: (p.access_batch(np.tile(resizable, 2000), "r"), done.set()))
    worker.start()
    resizable.resize(10, refcheck=False)  # the batch works on its own copy
    worker.join(timeout=60)
    assert done.is_set()
    with pytest.raises(ValueError, match="at most"):
        p.access_batch(np.broadcast_to(np.uint64(a), (10**10,)))
    with pytest.raises(ValueError, match="1-D"):
        p.access_batch(np.array(a, dtype=np.uint64))
    with pytest.raises(TypeError):
        p.access_batch(np.uint64(a))
    sim.check()


def test_a_release_callback_that_calls_back_into_vmsim_does_not_deadlock():
    sim = vmsim.Simulator(memory="16MiB")
    k = sim.kernel
    made = []

    class Callback:
        def __call__(self, name):
            pass

        def __del__(self):
            made.append(k.kobject_create("from-del"))

    def scenario():
        x = k.kobject_create("x", release=Callback())
        k.kobject_put(x)  # the callback runs and is dropped; its __del__ makes a kobject
        gc.collect()
        y = k.kobject_create("y", release=Callback())
        k.kobject_put(y)

    t = threading.Thread(target=scenario)
    t.start()
    t.join(timeout=30)
    assert not t.is_alive(), "deadlock"
    assert len(made) == 2
    for o in made:
        k.kobject_put(o)
    sim.check()


def test_python_keeps_running_while_a_long_batch_holds_the_simulator():
    sim = vmsim.Simulator(memory="1GiB")
    p = sim.spawn()
    a = p.mmap(200_000 * PAGE_SIZE)
    p.access_batch(pages(a, 200_000), "w")
    addrs = np.tile(pages(a, 200_000), 60)  # about a second of hits
    started = threading.Event()
    finished = threading.Event()

    def batch():
        started.set()
        p.access_batch(addrs, "r")
        finished.set()

    ticks = 0
    blocked_call_done = threading.Event()
    t = threading.Thread(target=batch)
    t.start()
    started.wait()
    # A second thread waits for the simulator's lock (it needs the process's mm)...
    waiter = threading.Thread(target=lambda: (p.counters(), blocked_call_done.set()))
    waiter.start()
    # ...while this one keeps running Python.
    while not finished.is_set():
        ticks += 1
        time.sleep(0.001)
    t.join()
    waiter.join(timeout=30)
    assert blocked_call_done.is_set()
    assert ticks > 20, f"the main thread ran only {ticks} times during the batch"


def test_reading_dev_zero_ends_with_an_error():
    t0 = time.perf_counter()
    with pytest.raises(traces.TraceError, match="longer than") as e:
        next(traces.read_text("/dev/zero"))
    assert time.perf_counter() - t0 < 10 and len(str(e.value)) < 300


def test_a_huge_bad_line_is_quoted_briefly(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes(b"0x1000 r\n" + b"z" * 50_000 + b"\n")
    with pytest.raises(traces.TraceError, match="line 2") as e:
        list(traces.read_text(path))
    assert len(str(e.value)) < 300


# ----- misuse is caught ------------------------------------------------------------------


def test_mmdrop_without_mmgrab_is_a_kernel_bug():
    sim = vmsim.Simulator(memory="16MiB")
    p = sim.spawn(layout="default")
    mm = sim.kernel.mmgrab(p)
    sim.kernel.mmdrop(mm)
    with pytest.raises(vmsim.KernelBugError, match="without a matching mmgrab"):
        sim.kernel.mmdrop(mm)
    a = p.mmap(PAGE_SIZE)
    assert p.access(a, "w") is Outcome.ANON_ZERO_FILL
    p.exit()
    sim.check()
    assert all_back(sim)


def test_the_simulators_own_objects_cannot_be_freed_from_outside():
    sim = vmsim.Simulator(memory="16MiB")
    p = sim.spawn(layout="default")
    k = sim.kernel
    own = [a for a in sim.leak_check() if "mm_struct" in a["site"] or "vm_area_struct" in a["site"]]
    assert own, "the process has an mm_struct and VMAs"
    for a in own:
        with pytest.raises(vmsim.KernelBugError, match=r"owns|kobject"):
            k.kfree(a["addr"])
    for cache in (0, 1):  # the mm_struct and vm_area_struct caches
        with pytest.raises(vmsim.KernelBugError, match="belongs to the kernel"):
            k.kmem_cache_alloc(cache)
        with pytest.raises(vmsim.KernelBugError):
            k.kmem_cache_free(cache, own[0]["addr"])
    o = k.kobject_create("dev")
    with pytest.raises(vmsim.KernelBugError, match="kobject_put"):
        k.kfree(o)
    assert k.kobject_put(o) == ["dev"]
    p.exit()
    sim.check()
    assert all_back(sim) and sim.leak_check() == []


def test_a_file_dropped_without_unlink_gives_its_pages_back():
    sim = vmsim.Simulator(memory="16MiB")
    p = sim.spawn()
    f = sim.create_file(64 * PAGE_SIZE)
    a = p.mmap(64 * PAGE_SIZE, prot="r", file=f)
    p.access_batch(pages(a, 64), "r")
    del f  # the handle goes; the mapping still holds the file
    assert p.access(a, "r") is Outcome.HIT
    p.munmap(a, 64 * PAGE_SIZE)  # nothing holds it now: unreachable, so gone
    assert sim.counters()["frames_used"] < 10, "only the process's tables and objects remain"
    p.exit()
    assert all_back(sim)
    for _ in range(1000):
        sim.create_file(PAGE_SIZE)  # made and dropped at once
    sim.check()


class _StrideChanger(np.ndarray):
    """An array whose iteration rewrites its own shape and strides."""

    def __iter__(self):
        self.shape = (self.size // 2, 2)
        return super().__iter__()


def test_an_array_that_changes_itself_when_iterated_is_read_safely():
    sim = vmsim.Simulator(memory="16MiB")
    p = sim.spawn()
    a = p.mmap(64 * PAGE_SIZE)
    weird = pages(a, 64).view(_StrideChanger)
    codes = p.access_batch(weird, "w")  # read through numpy's buffer, never by iterating
    assert (codes == Outcome.ANON_ZERO_FILL).all() and codes.size == 64
    ops = np.ones(64, np.uint8).view(_StrideChanger)
    assert (p.access_batch(pages(a, 64), ops) == Outcome.HIT).all()
    sim.check()
