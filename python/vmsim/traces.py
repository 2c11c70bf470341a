"""Memory traces: readers for the formats people already have, vmsim's own
event trace format, and replay.

Readers stream: each yields (addrs uint64, ops uint8) chunks, so a multi-GB
trace never sits in memory whole.

* Valgrind lackey (`valgrind --tool=lackey --trace-mem=yes`): `read_lackey`
* plain text / CSV (`ADDRESS OP` per line, hex with 0x or decimal): `read_text`
* `.npy` (a structured array with `addr` and `op`, or an (N, 2) array) and
  `.npz` (arrays `addrs` and `ops`): `read_numpy`
* ChampSim binary traces (`.xz`, 64-byte records): `read_champsim`

None of those carries address-space events, so vmsim has its own format
(`.vmst`), documented below, written by `record()` and replayed by
`replay()` with the mmaps, forks and exits in their places.

vmsim trace format, version 1 (little-endian):

    header   8 bytes  b"VMSIMTR" + version byte (1)
    records  24 bytes each: kind u8, flags u8, reserved u16, pid u32, a u64, b u64

    kind  0 ACCESS    flags = op (0 read, 1 write, 2 exec), a = address
          1 SPAWN     flags = 1 for the default layout; pid = the new process
          2 MMAP      flags = prot bits (1 r, 2 w, 4 x) | 8 shared | 16 fixed; a = address, b = length
          3 MUNMAP    a = address, b = length
          4 MPROTECT  flags = prot bits; a, b as above
          5 BRK       a = the new break
          6 FORK      pid = parent, a = child pid
          7 CLONE     pid = parent, a = new thread id
          8 EXIT      pid

pids are the trace's own numbers; replay maps them to simulator processes.
Non-fixed mmaps replay at the address they got when recorded (as fixed).
"""

from __future__ import annotations

import contextlib
import lzma
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Callable, Union

import numpy as np

from vmsim import _core
from vmsim._core import TASK_SIZE
from vmsim.workloads import RunResult

Chunk = tuple[np.ndarray, np.ndarray]
PathLike = Union[str, os.PathLike]

CHUNK_BYTES = 16 << 20

MAGIC = b"VMSIMTR\x01"
RECORD = np.dtype([("kind", "<u1"), ("flags", "<u1"), ("reserved", "<u2"), ("pid", "<u4"), ("a", "<u8"), ("b", "<u8")])
ACCESS, SPAWN, MMAP, MUNMAP, MPROTECT, BRK, FORK, CLONE, EXIT = range(9)
OP_CODES = {"r": 0, "w": 1, "x": 2}


class TraceError(ValueError):
    """A malformed trace; the message names the file and line or record."""


def _lines(path: PathLike, parse, chunk_bytes: int) -> Iterator[Chunk]:
    line = 1
    rest = b""
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk_bytes)
            data = rest + block
            if not block:
                if data.strip():
                    yield _parse(parse, data, line, path)
                return
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                rest = data
                continue
            whole, rest = data[:cut], data[cut:]
            yield _parse(parse, whole, line, path)
            line += whole.count(b"\n")


def _parse(parse, data: bytes, line: int, path: PathLike) -> Chunk:
    try:
        return parse(data, line)
    except ValueError as e:
        raise TraceError(f"{path}: {e}") from None


def read_lackey(path: PathLike, chunk_bytes: int = CHUNK_BYTES) -> Iterator[Chunk]:
    """Lackey output: I (fetch), L (load), S (store), M (load then store)."""
    return _lines(path, _core.parse_lackey, chunk_bytes)


def read_text(path: PathLike, chunk_bytes: int = CHUNK_BYTES) -> Iterator[Chunk]:
    """`ADDRESS OP` or `ADDRESS,OP` lines; an optional CSV header line."""
    return _lines(path, _core.parse_text, chunk_bytes)


def read_numpy(path: PathLike, chunk: int = 1 << 22) -> Iterator[Chunk]:
    """`.npy` (memory-mapped, read in chunks) or `.npz` with `addrs` and `ops`."""
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path) as z:
            if "addrs" not in z or "ops" not in z:
                raise TraceError(f"{path}: an .npz trace needs arrays 'addrs' and 'ops'")
            addrs, ops = z["addrs"], z["ops"]
    else:
        arr = np.load(path, mmap_mode="r")
        if arr.dtype.names and {"addr", "op"} <= set(arr.dtype.names):
            addrs, ops = arr["addr"], arr["op"]
        elif arr.ndim == 2 and arr.shape[1] == 2:
            addrs, ops = arr[:, 0], arr[:, 1]
        elif arr.ndim == 1 and arr.dtype.kind in "ui":
            addrs, ops = arr, None  # addresses only: reads
        else:
            raise TraceError(
                f"{path}: expected fields addr/op, an (N, 2) array or a 1-D address array, got {arr.dtype} {arr.shape}"
            )
    if addrs.dtype.kind not in "ui":
        raise TraceError(f"{path}: addresses must be integers, got {addrs.dtype}")
    for i in range(0, len(addrs), chunk):
        a = np.ascontiguousarray(addrs[i : i + chunk], dtype=np.uint64)
        o = np.zeros(a.size, np.uint8) if ops is None else np.ascontiguousarray(ops[i : i + chunk]).astype(np.uint8)
        if o.size and o.max() > 2:
            bad = int(np.argmax(o > 2)) + i
            raise TraceError(f"{path}: op {int(ops[bad])} at index {bad} is not 0, 1 or 2")
        yield a, o


CHAMPSIM = np.dtype(
    [
        ("ip", "<u8"),
        ("is_branch", "u1"),
        ("taken", "u1"),
        ("dst_regs", "u1", 2),
        ("src_regs", "u1", 4),
        ("dst_mem", "<u8", 2),
        ("src_mem", "<u8", 4),
    ]
)


def read_champsim(path: PathLike, records: int = 1 << 18) -> Iterator[Chunk]:
    """ChampSim input traces (64-byte records, usually .xz): each instruction
    is a fetch at `ip`, then its loads (source memory) and stores (destination)."""
    opener = lzma.open if str(path).endswith(".xz") else open
    size = CHAMPSIM.itemsize
    with opener(path, "rb") as f:
        n = 0
        while True:
            data = f.read(records * size)
            if not data:
                return
            if len(data) % size:
                raise TraceError(f"{path}: truncated record after record {n + len(data) // size}")
            rec = np.frombuffer(data, dtype=CHAMPSIM)
            n += rec.size
            cols = [rec["ip"][:, None], rec["src_mem"], rec["dst_mem"]]
            kinds = [
                np.full((rec.size, 1), 2, np.uint8),
                np.zeros((rec.size, 4), np.uint8),
                np.ones((rec.size, 2), np.uint8),
            ]
            addrs = np.concatenate(cols, axis=1).ravel()
            ops = np.concatenate(kinds, axis=1).ravel()
            keep = addrs != 0
            yield addrs[keep], ops[keep]


def reader_for(path: PathLike) -> Iterator[Chunk]:
    """Pick a reader by file name and first bytes."""
    p = str(path)
    if p.endswith((".npy", ".npz")):
        return read_numpy(path)
    if p.endswith((".xz", ".champsim", ".champsimtrace")):
        return read_champsim(path)
    with open(path, "rb") as f:
        head = f.read(4096)
    if head.startswith(b"==") or any(line[:3] in (b"I  ", b" L ", b" S ", b" M ") for line in head.splitlines()[:8]):
        return read_lackey(path)
    return read_text(path)


# ----- vmsim's own format -----------------------------------------------------


def _prot_bits(prot: str) -> int:
    return (1 if "r" in prot else 0) | (2 if "w" in prot else 0) | (4 if "x" in prot else 0)


def _prot_str(bits: int) -> str:
    return "".join(c for c, b in (("r", 1), ("w", 2), ("x", 4)) if bits & b) or "none"


class TraceWriter:
    """Appends records to a .vmst file (buffered)."""

    def __init__(self, path: PathLike):
        self._f = open(path, "wb")  # noqa: SIM115 - closed by close() / __exit__
        self._f.write(MAGIC)
        self._buf: list[tuple[int, int, int, int, int, int]] = []

    def add(self, kind: int, pid: int, flags: int = 0, a: int = 0, b: int = 0) -> None:
        self._buf.append((kind, flags, 0, pid, a, b))
        if len(self._buf) >= 65536:
            self.flush()

    def accesses(self, pid: int, addrs: np.ndarray, ops: np.ndarray) -> None:
        self.flush()
        rec = np.zeros(len(addrs), RECORD)
        rec["kind"] = ACCESS
        rec["flags"] = ops
        rec["pid"] = pid
        rec["a"] = addrs
        self._f.write(rec.tobytes())

    def flush(self) -> None:
        if self._buf:
            self._f.write(np.array(self._buf, RECORD).tobytes())
            self._buf.clear()

    def close(self) -> None:
        self.flush()
        self._f.close()


class _RecordingProcess:
    """Stands in for a Process and writes every call to the trace."""

    def __init__(self, rec: Recorder, proc):
        self._rec, self._p = rec, proc

    def __getattr__(self, name):
        return getattr(self._p, name)

    def mmap(self, length, prot="rw", flags="private|anonymous", addr=None, **kw):
        a = self._p.mmap(length, prot, flags, addr, **kw)
        bits = _prot_bits(prot) | (8 if "shared" in flags else 0) | 16
        self._rec.w.add(
            MMAP, self._p.pid, bits, a, int(length) if not isinstance(length, str) else _core.parse_size(length)
        )
        return a

    def munmap(self, addr, length):
        self._p.munmap(addr, length)
        self._rec.w.add(MUNMAP, self._p.pid, 0, addr, length)

    def mprotect(self, addr, length, prot):
        self._p.mprotect(addr, length, prot)
        self._rec.w.add(MPROTECT, self._p.pid, _prot_bits(prot), addr, length)

    def brk(self, new_end=None):
        r = self._p.brk(new_end)
        if new_end is not None:
            self._rec.w.add(BRK, self._p.pid, 0, new_end)
        return r

    def access(self, addr, op="r"):
        outcome = self._p.access(addr, op)  # checks op first
        code = OP_CODES[op.strip().lower()[:1]] if isinstance(op, str) else int(op)
        self._rec.w.add(ACCESS, self._p.pid, code, addr)
        return outcome

    def access_batch(self, addrs, ops="r"):
        addrs = np.asarray(addrs, dtype=np.uint64)
        codes = np.full(addrs.size, OP_CODES[ops], np.uint8) if isinstance(ops, str) else np.asarray(ops, np.uint8)
        self._rec.w.accesses(self._p.pid, addrs, codes)
        return self._p.access_batch(addrs, codes)

    def fork(self):
        c = self._p.fork()
        self._rec.w.add(FORK, self._p.pid, 0, c.pid)
        return _RecordingProcess(self._rec, c)

    def clone_thread(self, stack_size=0):
        t = self._p.clone_thread(stack_size=stack_size)
        self._rec.w.add(CLONE, self._p.pid, 0, t.pid)
        return _RecordingProcess(self._rec, t)

    def exit(self, trace=False):
        self._rec.w.add(EXIT, self._p.pid)
        return self._p.exit(trace)


class Recorder:
    """`with vmsim.traces.record(sim, "run.vmst") as rec:` — `rec.spawn()`
    gives processes whose calls are written to the trace as they run.
    (Thread stacks are recorded as their mmaps; pass stack_size=0 to skip.)"""

    def __init__(self, sim, path: PathLike):
        self.sim = sim
        self.w = TraceWriter(path)

    def spawn(self, layout=None):
        p = self.sim.spawn(layout)
        self.w.add(SPAWN, p.pid, 1 if layout == "default" else 0)
        return _RecordingProcess(self, p)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.w.close()


def record(sim, path: PathLike) -> Recorder:
    return Recorder(sim, path)


def read_vmst(path: PathLike, records: int = 1 << 20) -> Iterator[np.ndarray]:
    """The records of a .vmst file, in chunks (structured arrays of RECORD)."""
    with open(path, "rb") as f:
        head = f.read(len(MAGIC))
        if head[:7] != MAGIC[:7]:
            raise TraceError(f"{path}: not a vmsim trace (bad magic)")
        if head[7] != MAGIC[7]:
            raise TraceError(f"{path}: vmsim trace version {head[7]}, this vmsim reads version {MAGIC[7]}")
        n = 0
        while True:
            data = f.read(records * RECORD.itemsize)
            if not data:
                return
            if len(data) % RECORD.itemsize:
                raise TraceError(f"{path}: truncated record after record {n + len(data) // RECORD.itemsize}")
            rec = np.frombuffer(data, RECORD)
            if rec.size and rec["kind"].max() > EXIT:
                bad = int(np.argmax(rec["kind"] > EXIT))
                raise TraceError(f"{path}: record {n + bad} has unknown kind {int(rec['kind'][bad])}")
            n += rec.size
            yield rec


# ----- replay -------------------------------------------------------------------


def replay(
    sim, path: PathLike, progress: Callable[[int], None] | None = None, layout: str | None = "default"
) -> RunResult:
    """Replay a trace file on `sim`. Plain access traces run in one process
    (default layout, with the trace's address ranges mapped first); .vmst
    traces recreate their processes and events. Every process made has
    exited when it returns."""
    if str(path).endswith(".vmst"):
        return _replay_vmst(sim, path, progress)
    result = RunResult(f"trace:{Path(path).name}")
    p = sim.spawn(layout=layout)
    mapped: set = set()
    for addrs, ops in reader_for(path):
        _map_pages_for(p, addrs, mapped)
        t0 = time.perf_counter()
        codes = p.access_batch(addrs, ops)
        result.add_batch(p, codes, time.perf_counter() - t0)
        if progress:
            progress(int(codes.size))
    result.absorb_counters([p])
    p.exit()
    return result


REGION = 1 << 21  # map traced addresses in 2 MiB pieces


def _map_pages_for(p, addrs: np.ndarray, mapped: set) -> None:
    """Raw address traces come from a process we cannot see: map (rwx, fixed)
    each 2 MiB region they touch that nothing maps yet, so the replay measures
    paging rather than a flood of SIGSEGVs."""
    user = addrs[(addrs >= 1 << 16) & (addrs < TASK_SIZE)]
    for region in np.unique(user >> np.uint64(21)).tolist():
        if region in mapped:
            continue
        mapped.add(region)
        start = max(region << 21, 1 << 16)  # nothing maps below mmap_min_addr
        # Partly mapped already (default layout): accesses there use what is mapped.
        with contextlib.suppress(FileExistsError):
            p.mmap((region + 1 << 21) - start, prot="rwx", addr=start, fixed_noreplace=True)


def _note_faults(flt: dict, p) -> None:
    c = p.counters()
    flt[p.tgid] = (c["min_flt"], c["maj_flt"])


def _replay_vmst(sim, path: PathLike, progress) -> RunResult:
    result = RunResult(f"trace:{Path(path).name}")
    procs: dict = {}
    flt: dict = {}  # tgid -> (min_flt, maj_flt) last seen: counters belong to the whole process
    for rec in read_vmst(path):
        kinds = rec["kind"]
        i = 0
        while i < rec.size:
            if kinds[i] == ACCESS:
                j = i
                pid = rec["pid"][i]
                while j < rec.size and kinds[j] == ACCESS and rec["pid"][j] == pid:
                    j += 1
                p = procs[int(pid)]
                t0 = time.perf_counter()
                codes = p.access_batch(np.ascontiguousarray(rec["a"][i:j]), np.ascontiguousarray(rec["flags"][i:j]))
                result.add_batch(p, codes, time.perf_counter() - t0)
                if progress:
                    progress(j - i)
                i = j
                continue
            k, flags, pid, a, b = (
                int(kinds[i]),
                int(rec["flags"][i]),
                int(rec["pid"][i]),
                int(rec["a"][i]),
                int(rec["b"][i]),
            )
            if k == SPAWN:
                procs[pid] = sim.spawn(layout="default" if flags & 1 else None)
            elif k == MMAP:
                procs[pid].mmap(
                    b, _prot_str(flags & 7), "shared|anonymous" if flags & 8 else "private|anonymous", a, fixed=True
                )
            elif k == MUNMAP:
                procs[pid].munmap(a, b)
            elif k == MPROTECT:
                procs[pid].mprotect(a, b, _prot_str(flags & 7))
            elif k == BRK:
                procs[pid].brk(a)
            elif k == FORK:
                procs[a] = procs[pid].fork()
            elif k == CLONE:
                procs[a] = procs[pid].clone_thread(stack_size=0)
            elif k == EXIT:
                _note_faults(flt, procs[pid])
                procs.pop(pid).exit()
            i += 1
    for p in procs.values():
        if p.alive:
            _note_faults(flt, p)
    for p in procs.values():
        if p.alive:
            p.exit()
    result.min_flt = sum(c[0] for c in flt.values())
    result.maj_flt = sum(c[1] for c in flt.values())
    return result
