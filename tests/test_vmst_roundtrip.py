"""A .vmst recording replays exactly: random scripts over every call of the
process and file API are recorded, replayed on a fresh simulator of the same
configuration, and every counter and every live process's maps must match;
damaged, cut-off or inconsistent files are refused."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vmsim
from vmsim import PAGE_SIZE, traces, vmst

EXAMPLES = {"ci": 60, "long": 1500}[os.environ.get("HYPOTHESIS_PROFILE", "ci")]
BASE = 0x1000_0000
CONFIGS = [
    {"memory": "16MiB"},
    {"memory": "16MiB", "swap": "1MiB", "policy": "clock", "resident_limit": 48},
    {"memory": "16MiB", "swap": "1MiB", "policy": "lru", "resident_limit": 32},
    {"memory": "16MiB", "overcommit": 2, "overcommit_ratio": 10},
]
PROTS = ["r", "rw", "rwx", "none", "x"]
OPS = [
    "spawn", "mmap", "mmap_file", "munmap", "mprotect", "madvise", "brk", "access", "batch", "traced",
    "fork", "clone", "exit", "exit_group", "msync", "create_file", "truncate", "unlink", "close",
]  # fmt: skip


def run_script(data, rec) -> list:
    """Random calls through the recorder; returns every process made."""
    procs = [rec.spawn(layout=data.draw(st.sampled_from([None, "default"])))]
    files: list = []
    page = lambda: BASE + data.draw(st.integers(0, 63)) * PAGE_SIZE  # noqa: E731
    length = lambda: data.draw(st.integers(1, 12)) * PAGE_SIZE  # noqa: E731
    for _ in range(data.draw(st.integers(5, 40))):
        live = [p for p in procs if p.alive]
        if not live:
            procs.append(rec.spawn())
            continue
        p = data.draw(st.sampled_from(live))
        op = data.draw(st.sampled_from(OPS))
        try:
            if op == "spawn":
                procs.append(rec.spawn(layout=data.draw(st.sampled_from([None, "default"]))))
            elif op == "mmap":
                flags = data.draw(
                    st.sampled_from(["private|anonymous", "shared|anonymous", "private|anonymous|growsdown",
                                     "private|anonymous|noreserve"])
                )  # fmt: skip
                how = data.draw(st.sampled_from(["hint", "fixed", "noreplace", "none"]))
                kw = {"fixed": how == "fixed", "fixed_noreplace": how == "noreplace"}
                addr = None if how == "none" else page()
                p.mmap(length(), data.draw(st.sampled_from(PROTS)), flags, addr, **kw)
            elif op == "mmap_file" and files:
                f = data.draw(st.sampled_from(files))
                flags = data.draw(st.sampled_from([None, "private", "shared"]))
                offset = data.draw(st.integers(0, 8)) * PAGE_SIZE
                p.mmap(length(), data.draw(st.sampled_from(PROTS)), flags, page(), fixed=True, file=f, offset=offset)
            elif op == "munmap":
                p.munmap(page(), length())
            elif op == "mprotect":
                p.mprotect(page(), length(), data.draw(st.sampled_from(PROTS)))
            elif op == "madvise":
                p.madvise(page(), length(), data.draw(st.sampled_from(["dontfork", "dofork", "dontneed"])))
            elif op == "brk":
                p.brk(p.brk() + data.draw(st.integers(-8, 16)) * PAGE_SIZE)
            elif op == "access":
                p.access(page() + 8, data.draw(st.sampled_from(["r", "w", "x"])))
            elif op == "traced":
                p.access_traced(page(), data.draw(st.sampled_from(["r", "w"])))
            elif op == "batch":
                n = data.draw(st.integers(1, 64))
                addrs = np.array([page() for _ in range(n)], dtype=np.uint64)
                p.access_batch(
                    addrs, np.array(data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)), np.uint8)
                )
            elif op == "fork":
                procs.append(p.fork())
            elif op == "clone":
                procs.append(p.clone_thread(stack_size=data.draw(st.sampled_from([0, 4 * PAGE_SIZE]))))
            elif op == "exit":
                p.exit()
            elif op == "exit_group":
                p.exit_group()
            elif op == "msync":
                p.msync(page(), length())
            elif op == "create_file":
                files.append(rec.create_file(data.draw(st.integers(0, 40)) * 1000, name=f"/f{len(files)}"))
            elif op == "truncate" and files:
                data.draw(st.sampled_from(files)).truncate(data.draw(st.integers(0, 40)) * 1000)
            elif op == "unlink" and files:
                data.draw(st.sampled_from(files)).unlink()
            elif op == "close" and files:
                files.pop(data.draw(st.integers(0, len(files) - 1)))
        except (OSError, vmsim.ProcessExitedError):
            pass  # refused as Linux refuses it: recorded (OSError) or changing nothing
    return procs


def snapshot(sim, procs: dict) -> tuple:
    return sim.counters(), {pid: (p.maps(), p.counters()) for pid, p in procs.items() if p.alive}


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_scripts_replay_exactly(data):
    config = data.draw(st.sampled_from(CONFIGS))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run.vmst"
        sim = vmsim.Simulator(**config)
        with traces.record(sim, path) as rec:
            procs = run_script(data, rec)
            original = snapshot(sim, {p.pid: p for p in procs})
        again = vmsim.Simulator(**config)
        replayed = vmst.replay_into(again, path)
        assert_same(snapshot(again, replayed.processes), original)
        again.check()


def assert_same(got: tuple, want: tuple) -> None:
    """Counters field by field, then each process's maps and counters: a
    failure names what differs."""
    (got_sim, got_procs), (want_sim, want_procs) = got, want
    assert {k: v for k, v in got_sim.items() if v != want_sim[k]} == {}, want_sim
    assert sorted(got_procs) == sorted(want_procs), "different live processes"
    for pid, (maps, counters) in want_procs.items():
        assert got_procs[pid][0] == maps, f"maps of pid {pid}"
        assert {k: v for k, v in got_procs[pid][1].items() if v != counters[k]} == {}, f"pid {pid}: {counters}"


def record_small(path: Path) -> tuple[vmsim.Simulator, dict]:
    """A script of the calls the old format lost; returns the simulator and its live processes by pid."""
    sim = vmsim.Simulator(memory="16MiB")
    with traces.record(sim, path) as rec:
        p = rec.spawn(layout="default")
        f = rec.create_file(8 * PAGE_SIZE, name="/data/é-file")
        a = p.mmap(4 * PAGE_SIZE, prot="r", file=f)  # default flags for a file: private
        p.access_batch(np.arange(a, a + 4 * PAGE_SIZE, PAGE_SIZE, dtype=np.uint64), "r")
        b = p.mmap(8 * PAGE_SIZE, flags="private|anonymous|growsdown", addr=BASE, fixed=True)
        p.access(b - PAGE_SIZE, "w")  # grows the stack-like mapping
        p.madvise(b, 2 * PAGE_SIZE, "dontfork")
        t = p.clone_thread(stack_size=16 * PAGE_SIZE)
        t.access(t.thread_stack[1] - 8, "w")
        c = p.fork()
        c.access(b + 3 * PAGE_SIZE, "w")
        with pytest.raises(OSError):
            p.mprotect(b + 6 * PAGE_SIZE, 16 * PAGE_SIZE, "r")  # partly applied, then ENOMEM: recorded as failed
        f.truncate(PAGE_SIZE)
        c.exit()
    return sim, {q.pid: q for q in (p, t)}


def test_the_calls_that_were_lost_before_replay_exactly(tmp_path):
    path = tmp_path / "t.vmst"
    sim, recorded = record_small(path)
    again = vmsim.Simulator(memory="16MiB")
    procs = vmst.replay_into(again, path).processes
    live = {pid: p for pid, p in procs.items() if p.alive}
    assert again.counters() == sim.counters()
    assert {pid: (p.maps(), p.counters()) for pid, p in live.items()} == {
        pid: (q.maps(), q.counters()) for pid, q in recorded.items()
    }
    assert "/data/é-file" in live[1].maps()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b[: len(b) - 24], "cut off|no end record"),  # the recording stopped before closing
        (lambda b: b[: len(b) - 30], "cut off"),
        (lambda b: b[:100] + bytes([b[100] ^ 1]) + b[101:], "checksum"),
        (lambda b: b"VMSIMTR\x01" + b[8:], "version 1"),
        (lambda b: b"NOTATRACE" + b[9:], "magic"),
    ],
)
def test_damaged_files_are_refused_before_anything_runs(tmp_path, damage, message):
    path = tmp_path / "t.vmst"
    record_small(path)
    path.write_bytes(damage(path.read_bytes()))
    sim = vmsim.Simulator(memory="16MiB")
    with pytest.raises(traces.TraceError, match=message):
        traces.replay(sim, path)
    assert sim.counters()["processes"] == 0


def write_records(path: Path, records: list) -> None:
    import zlib

    body = np.array(records, vmst.RECORD).tobytes()
    crc = zlib.crc32(vmst.MAGIC + body)
    end = np.array([(vmst.END, 0, 0, 0, len(records), crc)], vmst.RECORD).tobytes()
    path.write_bytes(vmst.MAGIC + body + end)


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([(vmst.SPAWN, 0, 0, 1, 0, 0), (vmst.ACCESS, 0, 0, 2, 0x1000, 0)], "process 2 does not exist"),
        ([(vmst.SPAWN, 0, 0, 1, 0, 0), (vmst.EXIT, 0, 0, 1, 0, 0), (vmst.EXIT, 0, 0, 1, 0, 0)], "process 1"),
        ([(vmst.SPAWN, 0, 0, 1, 0, 0), (vmst.SPAWN, 0, 0, 1, 0, 0)], "made again while it is alive"),
        ([(vmst.SPAWN, 0, 0, 1, 0, 0), (vmst.MMAP, 3, 0, 1, 0, 4096)], "ends inside"),
        ([(vmst.SPAWN, 0, 0, 1, 0, 0), (99, 0, 0, 1, 0, 0)], "unknown kind 99"),
        ([(vmst.SPAWN, 0, 0, 1, 0, 0), (vmst.ACCESS, 7, 0, 1, 0x1000, 0)], "access op 7"),
        ([(vmst.TRUNCATE, 0, 3, 0, 0, 0)], "file 3 does not exist"),
    ],
)
def test_inconsistent_traces_name_the_record_and_leave_nothing_alive(tmp_path, records, message):
    path = tmp_path / "t.vmst"
    write_records(path, records)
    sim = vmsim.Simulator(memory="16MiB")
    with pytest.raises(traces.TraceError, match=message):
        traces.replay(sim, path)
    assert sim.counters()["processes"] == 0
    sim.check()
