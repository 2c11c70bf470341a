"""Generated bad input through every public entry point: the Python API, the
kernel allocator API, each trace reader and each CLI command. Every case ends
in a clear exception (or, for values that happen to be valid, a clean
return), never a panic, abort or hang; then check() passes and, once
everything made is released, no frame is left behind."""

from __future__ import annotations

import lzma
import zlib
from pathlib import Path

import numpy as np
import pytest

import vmsim
from vmsim import PAGE_SIZE, cli, traces, vmst

CLEAR = (ValueError, TypeError, OverflowError, OSError, vmsim.VmsimError)

INTS = [-1, 0, 1, 2**31, 2**63, 2**64 - 1, 2**64, 2**200, -(2**70), np.int64(-5), np.uint64(2**64 - 1)]
NOT_INTS = ["abc", "", None, 3.5, float("nan"), [], {}, b"x", object()]
VALUES = INTS + NOT_INTS
SIZES = [*VALUES, "-4KiB", "1QiB", "99999999999999999999GiB", "4 KiB"]
STRINGS = ["", "zz", "r w", "\x00", "x" * 10_000, 5, None]
BAD_ARRAYS = [
    np.zeros(4, np.float64),
    np.zeros((2, 2), np.uint64),
    np.array(5, np.uint64),
    np.broadcast_to(np.uint64(0x1000), (10**10,)),
    np.arange(8, dtype=np.uint64)[::2],  # strided but valid
    np.array([-1, 2], np.int64),
    np.zeros(3, np.uint32),
    [-1, 2],
    [2**64],
    ["a"],
    "abc",
    b"\x00\x01",
    None,
    5,
]
BAD_OPS = [*BAD_ARRAYS, np.full(3, 9, np.uint8), np.zeros(2, np.uint8), "q", 7, -1, "rw"]

REGION = 0x1000_0000


def world():
    sim = vmsim.Simulator(memory="16MiB", swap="1MiB", policy="clock")
    p = sim.spawn(layout="default")
    p.mmap(8 * PAGE_SIZE, addr=REGION, fixed=True)
    p.access(REGION, "w")
    f = sim.create_file(4 * PAGE_SIZE)
    return sim, p, f


def process_cases():
    for v in SIZES:
        yield f"mmap length={v!r:.30}", lambda p, f, v=v: p.mmap(v)
        yield f"munmap length={v!r:.30}", lambda p, f, v=v: p.munmap(REGION, v)
        yield f"mprotect length={v!r:.30}", lambda p, f, v=v: p.mprotect(REGION, v, "r")
        yield f"madvise length={v!r:.30}", lambda p, f, v=v: p.madvise(REGION, v, "dontneed")
        yield f"msync length={v!r:.30}", lambda p, f, v=v: p.msync(REGION, v)
        yield f"clone_thread stack={v!r:.30}", lambda p, f, v=v: p.clone_thread(stack_size=v)
        yield f"truncate size={v!r:.30}", lambda p, f, v=v: f.truncate(v)
        yield f"mmap offset={v!r:.30}", lambda p, f, v=v: p.mmap(PAGE_SIZE, prot="r", file=f, offset=v)
    for v in VALUES:
        yield f"mmap addr={v!r:.30}", lambda p, f, v=v: p.mmap(PAGE_SIZE, addr=v, fixed=True)
        yield f"munmap addr={v!r:.30}", lambda p, f, v=v: p.munmap(v, PAGE_SIZE)
        yield f"mprotect addr={v!r:.30}", lambda p, f, v=v: p.mprotect(v, PAGE_SIZE, "r")
        yield f"madvise addr={v!r:.30}", lambda p, f, v=v: p.madvise(v, PAGE_SIZE, "dontneed")
        yield f"brk={v!r:.30}", lambda p, f, v=v: p.brk(v)
        yield f"access addr={v!r:.30}", lambda p, f, v=v: p.access(v, "w")
        yield f"access_traced addr={v!r:.30}", lambda p, f, v=v: p.access_traced(v, "r")
        yield f"access op={v!r:.30}", lambda p, f, v=v: p.access(REGION, v)
        yield f"trace_span_mapped first={v!r:.30}", lambda p, f, v=v: p.trace_span_mapped(v, REGION)
        yield f"trace_span_mapped last={v!r:.30}", lambda p, f, v=v: p.trace_span_mapped(REGION, v)
    for v in STRINGS:
        yield f"mmap prot={v!r:.30}", lambda p, f, v=v: p.mmap(PAGE_SIZE, prot=v)
        yield f"mmap flags={v!r:.30}", lambda p, f, v=v: p.mmap(PAGE_SIZE, flags=v)
        yield f"mprotect prot={v!r:.30}", lambda p, f, v=v: p.mprotect(REGION, PAGE_SIZE, v)
        yield f"madvise advice={v!r:.30}", lambda p, f, v=v: p.madvise(REGION, PAGE_SIZE, v)
    for i, a in enumerate(BAD_ARRAYS):
        yield f"access_batch addrs#{i}", lambda p, f, a=a: p.access_batch(a, "r")
        yield f"map_trace_regions addrs#{i}", lambda p, f, a=a: p.map_trace_regions(a)
    for i, o in enumerate(BAD_OPS):
        yield f"access_batch ops#{i}", lambda p, f, o=o: p.access_batch(np.full(3, REGION, np.uint64), o)
    for flags in ["shared|anonymous|growsdown", "private|shared", "anonymous", "private|anonymous|fixed"]:
        yield f"mmap flags {flags}", lambda p, f, flags=flags: p.mmap(PAGE_SIZE, flags=flags)
    yield "file mapped anonymous", lambda p, f: p.mmap(PAGE_SIZE, flags="private|anonymous", file=f)
    yield "file of another simulator", lambda p, f: p.mmap(PAGE_SIZE, file=vmsim.Simulator().create_file(4096))
    yield "file as a string", lambda p, f: p.mmap(PAGE_SIZE, file="/etc/passwd")


def exited_cases():
    for name in ["access", "mmap", "fork", "maps", "counters", "exit", "exit_group", "threads", "vmas", "layout"]:
        args = {"access": (REGION,), "mmap": (PAGE_SIZE,)}.get(name, ())
        yield f"exited {name}", lambda p, f, name=name, args=args: (p.exit(), getattr(p, name)(*args))


def kernel_cases():
    for v in VALUES:
        yield f"alloc_pages order={v!r:.30}", lambda k, v=v: k.alloc_pages(v)
        yield f"free_pages addr={v!r:.30}", lambda k, v=v: k.free_pages(v, 0)
        yield f"free_pages order={v!r:.30}", lambda k, v=v: k.free_pages(0xFFFF_8880_0000_1000, v)
        yield f"kfree addr={v!r:.30}", lambda k, v=v: k.kfree(v)
        yield f"vfree addr={v!r:.30}", lambda k, v=v: k.vfree(v)
        yield f"kmalloc_array n={v!r:.30}", lambda k, v=v: k.kmalloc_array(v, 64)
        yield f"kmalloc_many n={v!r:.30}", lambda k, v=v: k.kmalloc_many(64, v)
        yield f"kmem_cache_alloc cache={v!r:.30}", lambda k, v=v: k.kmem_cache_alloc(v)
        yield f"kmem_cache_free cache={v!r:.30}", lambda k, v=v: k.kmem_cache_free(v, 0xFFFF_8880_0000_1000)
        yield f"kmem_cache_destroy cache={v!r:.30}", lambda k, v=v: k.kmem_cache_destroy(v)
        yield f"kobject_create parent={v!r:.30}", lambda k, v=v: k.kobject_create("o", parent=v)
        yield f"kobject_get addr={v!r:.30}", lambda k, v=v: k.kobject_get(v)
        yield f"kobject_put addr={v!r:.30}", lambda k, v=v: k.kobject_put(v)
        yield f"kobject_refcount addr={v!r:.30}", lambda k, v=v: k.kobject_refcount(v)
        yield f"mmdrop addr={v!r:.30}", lambda k, v=v: k.mmdrop(v)
    for v in SIZES:
        yield f"kmalloc size={v!r:.30}", lambda k, v=v: k.kmalloc(v)
        yield f"kzalloc size={v!r:.30}", lambda k, v=v: k.kzalloc(v)
        yield f"vmalloc size={v!r:.30}", lambda k, v=v: k.vmalloc(v)
        yield f"vzalloc size={v!r:.30}", lambda k, v=v: k.vzalloc(v)
        yield f"kmem_cache_create size={v!r:.30}", lambda k, v=v: k.kmem_cache_create("c", v)
        yield f"kmalloc_many size={v!r:.30}", lambda k, v=v: k.kmalloc_many(v, 4)
    for i, a in enumerate(BAD_ARRAYS):
        yield f"kfree_many addrs#{i}", lambda k, a=a: k.kfree_many(a)
    yield "kmem_cache_create name=None", lambda k: k.kmem_cache_create(None, 64)
    yield "kobject_create release=5", lambda k: k.kobject_put(k.kobject_create("o", release=5))


def machine_cases():
    for v in [*SIZES, -5]:
        yield f"create_file size={v!r:.30}", lambda sim, v=v: sim.create_file(v)
    for v in STRINGS:
        yield f"create_file name={v!r:.30}", lambda sim, v=v: sim.create_file(4096, name=v)
        yield f"spawn layout={v!r:.30}", lambda sim, v=v: sim.spawn(layout=v)
    for v in NOT_INTS:
        yield f"trace_release on={v!r:.30}", lambda sim, v=v: sim.trace_release(v)
    yield "mmgrab of another simulator's process", lambda sim: sim.kernel.mmgrab(vmsim.Simulator().spawn())
    yield "mmgrab of a non-process", lambda sim: sim.kernel.mmgrab(5)


MACHINE_CASES = list(machine_cases())


@pytest.mark.parametrize(("name", "call"), MACHINE_CASES, ids=[n for n, _ in MACHINE_CASES])
def test_simulator_methods(name, call):
    sim = vmsim.Simulator(memory="16MiB")
    try:
        result = call(sim)
    except BaseException as e:
        assert_clear(e)
    else:
        clean_up(result)
        del result
    sim.check()
    c = sim.counters()
    assert c["frames_free"] == c["frames_total"], "frames left behind"


def simulator_cases():
    for key in ["memory", "swap", "stack_rlimit", "stack_guard_gap", "fault_around_bytes"]:
        for v in SIZES:
            yield f"Simulator {key}={v!r:.30}", {key: v}
    for key in ["max_map_count", "resident_limit", "overcommit", "overcommit_ratio"]:
        for v in VALUES:
            yield f"Simulator {key}={v!r:.30}", {key: v}
    for key in ["vma_index", "policy"]:
        for v in STRINGS:
            yield f"Simulator {key}={v!r:.30}", {key: v}


def give_back(k, made: list) -> None:
    """Free what a call that happened to be valid allocated (kobjects first:
    their memory goes with them)."""
    for a in sorted(made, key=lambda a: a["kind"] != "kobject"):
        if a["kind"] == "kobject":
            k.kobject_put(a["addr"])
        elif a["kind"] == "alloc_pages":
            k.free_pages(a["addr"], (a["size"] // PAGE_SIZE).bit_length() - 1)
        elif a["kind"] == "vmalloc":
            k.vfree(a["addr"])
        elif "kobject" not in a["site"]:
            k.kfree(a["addr"])


def clean_up(result) -> None:
    """Give back what a call that succeeded made, so leaks can be counted."""
    if isinstance(result, vmsim.Process) and result.alive:
        result.exit_group()


def assert_clear(e: BaseException) -> None:
    assert isinstance(e, CLEAR), f"{type(e).__name__}: {e}"
    assert 0 < len(str(e)) < 600, f"an unclear message: {str(e)[:200]!r}"


PROCESS_CASES = list(process_cases()) + list(exited_cases())


@pytest.mark.parametrize(("name", "call"), PROCESS_CASES, ids=[n for n, _ in PROCESS_CASES])
def test_process_api(name, call):
    sim, p, f = world()
    try:
        clean_up(call(p, f))
    except BaseException as e:
        assert_clear(e)
    sim.check()
    p.exit_group() if p.alive else None
    del f
    sim.check()
    c = sim.counters()
    assert (c["frames_free"], c["swap_used"]) == (c["frames_total"], 0), "frames left behind"


KERNEL_CASES = list(kernel_cases())


@pytest.mark.parametrize(("name", "call"), KERNEL_CASES, ids=[n for n, _ in KERNEL_CASES])
def test_kernel_api(name, call):
    sim = vmsim.Simulator(memory="16MiB")
    k = sim.kernel
    before = sim.leak_check()
    try:
        call(k)
    except BaseException as e:
        assert_clear(e)
    sim.check()
    give_back(k, [a for a in sim.leak_check() if a not in before])
    sim.check()
    c = sim.counters()
    assert c["frames_free"] == c["frames_total"] - c["slab_pages"] - c["kernel_pages"] or not sim.leak_check()


SIM_CASES = list(simulator_cases())


@pytest.mark.parametrize(("name", "kwargs"), SIM_CASES, ids=[n for n, _ in SIM_CASES])
def test_simulator_configuration(name, kwargs):
    try:
        sim = vmsim.Simulator(**kwargs)
    except BaseException as e:
        assert_clear(e)
        return
    sim.spawn().exit()
    sim.check()


# ----- trace readers and the CLI --------------------------------------------------------


def bad_trace_files(tmp: Path) -> list[tuple[str, Path]]:
    files = []

    def add(name: str, data: bytes) -> None:
        path = tmp / name
        path.write_bytes(data)
        files.append((name, path))

    add("garbage.txt", b"\xff\xfe\x00garbage\n")
    add("bad-op.txt", b"0x1000 q\n")
    add("bad-addr.txt", b"0xzz r\n")
    add("huge-addr.txt", b"0x1ffffffffffffffffff r\n")
    add("negative.txt", b"-5 r\n")
    add("long-line.txt", b"1" * 200_000)
    add("lackey.out", b"==1== lackey\n L 0xzz,8\n")
    add("corrupt.xz", b"\xfd7zXZ\x00" + bytes(100))
    add("truncated.xz", lzma.compress(bytes(64 * 3))[:-10])
    add("partial.champsim", bytes(100))
    add("corrupt.npz", b"PK\x03\x04" + bytes(50))
    add(
        "truncated.npy",
        b"\x93NUMPY\x01\x00v\x00{'descr': '<u8', 'fortran_order': False, 'shape': (100,), }" + bytes(20),
    )
    np.save(tmp / "float.npy", np.zeros(4, np.float64))
    files.append(("float.npy", tmp / "float.npy"))
    np.save(tmp / "3d.npy", np.zeros((2, 2, 2), np.uint64))
    files.append(("3d.npy", tmp / "3d.npy"))
    np.savez(tmp / "zero-d.npz", addrs=np.array(5, np.uint64), ops=np.array(0, np.uint8))
    files.append(("zero-d.npz", tmp / "zero-d.npz"))
    np.savez(tmp / "missing.npz", addrs=np.zeros(3, np.uint64))
    files.append(("missing.npz", tmp / "missing.npz"))
    np.savez(tmp / "mismatch.npz", addrs=np.zeros(3, np.uint64), ops=np.zeros(2, np.uint8))
    files.append(("mismatch.npz", tmp / "mismatch.npz"))
    np.savez(tmp / "bad-ops.npz", addrs=np.zeros(3, np.uint64), ops=np.full(3, 9, np.uint8))
    files.append(("bad-ops.npz", tmp / "bad-ops.npz"))
    add("empty.vmst", b"")
    add("magic-only.vmst", vmst.MAGIC)
    for name, records in [
        ("unknown-pid.vmst", [(vmst.ACCESS, 0, 0, 7, 0x1000, 0)]),
        ("exited-pid.vmst", [(vmst.SPAWN, 0, 0, 1, 0, 0), (vmst.EXIT, 0, 0, 1, 0, 0), (vmst.FORK, 0, 0, 1, 2, 0)]),
        ("reused-pid.vmst", [(vmst.SPAWN, 0, 0, 1, 0, 0), (vmst.SPAWN, 0, 0, 1, 0, 0)]),
    ]:
        body = np.array(records, vmst.RECORD).tobytes()
        end = np.array([(vmst.END, 0, 0, 0, len(records), zlib.crc32(vmst.MAGIC + body))], vmst.RECORD).tobytes()
        add(name, vmst.MAGIC + body + end)
    files.append(("dev-zero", Path("/dev/zero")))
    files.append(("missing", tmp / "no-such-file.txt"))
    files.append(("directory", tmp))
    return files


def test_every_trace_reader_refuses_bad_files(tmp_path):
    readers = [traces.read_text, traces.read_lackey, traces.read_numpy, traces.read_champsim, traces.read_vmst]
    cases = 0
    for name, path in bad_trace_files(tmp_path):
        for read in [*readers, traces.reader_for]:
            if name == "dev-zero" and read is traces.read_champsim:
                continue  # a binary reader streams an endless input (in bounded memory) as it should
            cases += 1
            try:
                for _ in read(path):
                    pass
            except BaseException as e:
                assert_clear(e)
        sim = vmsim.Simulator(memory="16MiB")
        try:
            traces.replay(sim, path)
        except BaseException as e:
            assert_clear(e)
        assert sim.counters()["processes"] == 0, f"{name}: a replay that failed left processes alive"
        sim.check()
    assert cases >= 150


CLI_CASES = [
    ["explain", "--", "-5"],
    ["explain", "0x1ffffffffffffffff"],
    ["explain", "nothex"],
    ["explain", "0x1000", "--op", "q"],
    ["explain", "0x1000", "--maps", "/no/such/maps"],
    ["explain", "0x1000", "--pid", "999999999"],
    ["run", "nosuch"],
    ["run", "zipf:foo=1"],
    ["run", "zipf:pages=-3"],
    ["run", "zipf:pages=abc"],
    ["run", "zipf:skew"],
    ["run", "zipf:write_ratio=2"],
    ["run", "zipf:count=1.5"],
    ["run", "zipf", "--resident-limit", "-3"],
    ["run", "zipf", "--resident-limit", "0"],
    ["run", "zipf", "--resident-limit", "x"],
    ["run", "zipf", "--memory", "-1"],
    ["run", "zipf", "--memory", "1QiB"],
    ["run", "zipf", "--memory", "1TiB"],
    ["run", "zipf", "--swap", "banana"],
    ["run", "zipf", "--policy", "mru"],
    ["run", "zipf", "--vma-index", "skiplist"],
    ["run", "/dev/zero"],
    ["bench", "--pages", "5"],
    ["nosuchcommand"],
]


@pytest.mark.parametrize("argv", CLI_CASES, ids=[" ".join(a) for a in CLI_CASES])
def test_cli_user_errors_are_one_line_and_exit_2(argv, capsys):
    try:
        code = cli.main(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.count("\n") == 0 and "Traceback" not in err and len(err) < 400, err


def test_cli_refuses_every_bad_trace_file_in_one_line(tmp_path, capsys):
    for name, path in bad_trace_files(tmp_path):
        code = cli.main(["run", str(path)])
        err = capsys.readouterr().err.strip()
        assert code == 2, (name, err)
        assert err.count("\n") == 0 and "Traceback" not in err, (name, err)


def test_the_table_is_large():
    assert len(PROCESS_CASES) + len(KERNEL_CASES) + len(SIM_CASES) + len(MACHINE_CASES) + len(CLI_CASES) >= 500
