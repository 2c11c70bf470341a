"""vmsim's own trace format (`.vmst`): every call of the process API in the
order it was made, so that a replay rebuilds the same simulation exactly
(same outcomes, counters and maps), and a damaged or cut-off file is
refused instead of replaying as a shorter trace.

Format, version 2 (little-endian):

    header   8 bytes   b"VMSIMTR" + version byte (2)
    records  24 bytes  kind u8, flags u8, aux u16, pid u32, a u64, b u64
    end      one END record: a = records before it, b = CRC-32 of every byte before it

    kind  0 ACCESS      flags = op (0 read, 1 write, 2 exec); a = address
          1 SPAWN       flags = 1 for the default layout; pid = the new process
          2 MMAP        flags = prot (1 r, 2 w, 4 x) | 8 shared | 16 growsdown | 32 noreserve | 64 file;
                        a = the address asked for (0: none), b = length; an ARG record follows
          3 MUNMAP      a = address, b = length
          4 MPROTECT    flags = prot; a, b as above
          5 BRK         a = the new break
          6 FORK        a = the child's pid
          7 CLONE       a = the new thread's pid, b = its stack size (0: none)
          8 EXIT
          9 EXIT_GROUP
         10 MADVISE     flags = advice (0 dontfork, 1 dofork, 2 dontneed, 3 populate_read,
                        4 populate_write, 5 normal, 6 sequential, 7 random, 8 willneed, 9 cold,
                        10 free, 11 pageout, 12 remove); a, b as above
         11 MSYNC       flags = 1 async | 2 invalidate (else MS_SYNC); a, b as above
         12 FILE        aux = file number, a = size, b = name length in bytes; NAME records follow
         13 NAME        flags = bytes used (at most 22), then 22 bytes of the file's UTF-8 name
         14 TRUNCATE    aux = file number, a = size
         15 UNLINK      aux = file number
         16 CLOSE       aux = file number: its handle was dropped
         17 ARG         after MMAP: flags = 1 fixed | 2 fixed_noreplace | 4 address given | 8 populate,
                        aux = file number, a = file offset, b = the address mmap returned
         18 FADVISE     aux = file number, flags = advice (0 normal, 1 sequential, 2 random,
                        3 willneed, 4 dontneed, 5 noreuse), a = offset, b = length
         19 READAHEAD   aux = file number, a = the file's read_ahead_kb (after its FILE record)
         20 MLOCK       flags = 1 onfault; a = address, b = length
         21 MUNLOCK     a, b as above
         22 MLOCKALL    flags = 1 current | 2 future | 4 onfault
         23 MUNLOCKALL
         24 DROP_CACHES flags = the mode (1, 2, 3)
         25 MREMAP      flags = 1 maymove | 2 fixed | 4 dontunmap; a = old address, b = old length;
                        an ARG2 record follows
         26 ARG2        after MREMAP: a = new length, b = new address (fixed), aux unused;
                        then a RESULT record
         27 RESULT      a = the address the call returned
        255 END

    flags bit 128 on MMAP, MUNMAP, MPROTECT, MADVISE, MSYNC and TRUNCATE: the
    call failed with an OSError (it may still have changed something, as a
    partial mprotect does); the replay expects it to fail the same way.

pids are the trace's own numbers; replay maps them to simulator processes.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Union

import numpy as np

from vmsim._core import parse_size
from vmsim.workloads import RunResult

PathLike = Union[str, os.PathLike]

VERSION = 2
MAGIC = b"VMSIMTR" + bytes([VERSION])
RECORD = np.dtype([("kind", "<u1"), ("flags", "<u1"), ("aux", "<u2"), ("pid", "<u4"), ("a", "<u8"), ("b", "<u8")])
(ACCESS, SPAWN, MMAP, MUNMAP, MPROTECT, BRK, FORK, CLONE, EXIT, EXIT_GROUP) = range(10)
(MADVISE, MSYNC, FILE, NAME, TRUNCATE, UNLINK, CLOSE, ARG, FADVISE, READAHEAD) = range(10, 20)
(MLOCK, MUNLOCK, MLOCKALL, MUNLOCKALL, DROP_CACHES, MREMAP, ARG2, RESULT) = range(20, 28)
END = 255
KINDS = set(range(28)) | {END}
MREMAP_WORDS = ("maymove", "fixed", "dontunmap")
MCL_WORDS = ("current", "future", "onfault")
FAILED = 128
NAME_BYTES = RECORD.itemsize - 2
SHARED, GROWSDOWN, NORESERVE, HAS_FILE = 8, 16, 32, 64
FIXED, NOREPLACE, ADDR_GIVEN, POPULATE = 1, 2, 4, 8
OP_CODES = {"r": 0, "w": 1, "x": 2}
ADVICE = (
    "dontfork",
    "dofork",
    "dontneed",
    "populate_read",
    "populate_write",
    "normal",
    "sequential",
    "random",
    "willneed",
    "cold",
    "free",
    "pageout",
    "remove",
)
FADVICE = ("normal", "sequential", "random", "willneed", "dontneed", "noreuse")


class TraceError(ValueError):
    """A malformed trace; the message names the file and the record."""


def _prot_bits(prot: str) -> int:
    p = prot.strip().lower()
    if p == "none":
        return 0
    return (1 if "r" in p else 0) | (2 if "w" in p else 0) | (4 if "x" in p else 0)


def _prot_str(bits: int) -> str:
    return "".join(c for c, b in (("r", 1), ("w", 2), ("x", 4)) if bits & b) or "none"


def _size(value: Any) -> int:
    return parse_size(value) if isinstance(value, str) else int(value)


def _flag_words(flags: str) -> set[str]:
    return {w.strip().lower().removeprefix("map_") for w in re.split(r"[|, ]", flags) if w.strip()}


# ----- writing -----------------------------------------------------------------


class TraceWriter:
    """Appends records to a .vmst file (buffered), with a running checksum."""

    def __init__(self, path: PathLike):
        self._f = open(path, "wb")  # noqa: SIM115 - closed by close() / the Recorder's __exit__
        self._crc = zlib.crc32(MAGIC)
        self._count = 0
        self._buf: list[tuple[int, int, int, int, int, int]] = []
        self._f.write(MAGIC)

    def _write(self, data: bytes) -> None:
        self._f.write(data)
        self._crc = zlib.crc32(data, self._crc)

    def add(self, kind: int, pid: int = 0, flags: int = 0, a: int = 0, b: int = 0, aux: int = 0) -> None:
        """Queue one record (written out 65,536 at a time)."""
        self._buf.append((kind, flags, aux, pid, a, b))
        if len(self._buf) >= 65536:
            self.flush()

    def accesses(self, pid: int, addrs: np.ndarray, ops: np.ndarray) -> None:
        """Write a batch of accesses of `pid`, one record each, after what is queued."""
        self.flush()
        rec = np.zeros(len(addrs), RECORD)
        rec["kind"] = ACCESS
        rec["flags"] = ops
        rec["pid"] = pid
        rec["a"] = addrs
        self._write(rec.tobytes())
        self._count += rec.size

    def name(self, data: bytes) -> None:
        """NAME records holding `data`, 22 bytes each."""
        self.flush()
        for i in range(0, len(data), NAME_BYTES):
            part = data[i : i + NAME_BYTES]
            self._write(bytes([NAME, len(part)]) + part + bytes(NAME_BYTES - len(part)))
            self._count += 1

    def flush(self) -> None:
        """Write the queued records."""
        if self._buf:
            data = np.array(self._buf, RECORD).tobytes()
            self._write(data)
            self._count += len(self._buf)
            self._buf.clear()

    def close(self) -> None:
        """Write the END record: without it a reader refuses the file as cut off."""
        if self._f.closed:
            return
        self.flush()
        end = np.array([(END, 0, 0, 0, self._count, self._crc)], RECORD).tobytes()
        self._f.write(end)
        self._f.close()


class _RecordingFile:
    """Stands in for a File: its calls (and its handle's end) go to the trace."""

    def __init__(self, rec: Recorder, file: Any, number: int):
        self._rec, self._file, self.number = rec, file, number

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)

    def truncate(self, size: Any) -> None:
        n = _size(size)
        self._rec.call(TRUNCATE, 0, lambda: self._file.truncate(size), aux=self.number, a=n)

    def unlink(self) -> None:
        self._file.unlink()
        self._rec.w.add(UNLINK, aux=self.number)

    def fadvise(self, offset: Any, length: Any, advice: str) -> None:
        word = advice.strip().lower().removeprefix("posix_fadv_") if isinstance(advice, str) else None
        call = lambda: self._file.fadvise(offset, length, advice)  # noqa: E731
        if word not in FADVICE:
            return call()  # refused before anything happens: nothing to record
        code = FADVICE.index(word)
        self._rec.call(FADVISE, 0, call, flags=code, aux=self.number, a=_size(offset), b=_size(length))

    def __del__(self) -> None:
        rec = self.__dict__.get("_rec")
        if rec is not None and not rec.closed:
            rec.w.add(CLOSE, aux=self.number)


class _RecordingProcess:
    """Stands in for a Process and writes every call to the trace."""

    def __init__(self, rec: Recorder, proc: Any):
        self._rec, self._p = rec, proc

    def __getattr__(self, name: str) -> Any:
        return getattr(self._p, name)

    def mmap(
        self, length, prot="rw", flags=None, addr=None, *, fixed=False, fixed_noreplace=False, file=None, offset=0
    ):
        real_file = file._file if isinstance(file, _RecordingFile) else file
        if file is not None and not isinstance(file, _RecordingFile):
            raise ValueError("a recorded process maps files made by the recorder (rec.create_file)")
        words = _flag_words(flags if flags is not None else ("private" if file is not None else "private|anonymous"))
        bits = (
            _prot_bits(prot)
            | (SHARED if "shared" in words else 0)
            | (GROWSDOWN if "growsdown" in words else 0)
            | (NORESERVE if "noreserve" in words else 0)
            | (HAS_FILE if file is not None else 0)
        )
        mode = (
            (FIXED if fixed or "fixed" in words else 0)
            | (NOREPLACE if fixed_noreplace or "fixed_noreplace" in words else 0)
            | (ADDR_GIVEN if addr is not None else 0)
            | (POPULATE if "populate" in words else 0)
        )
        number = file.number if file is not None else 0
        length_bytes = _size(length)

        def call() -> int:
            return self._p.mmap(
                length, prot, flags, addr, fixed=fixed, fixed_noreplace=fixed_noreplace, file=real_file, offset=offset
            )

        def arguments(result: int) -> None:  # the ARG record follows its MMAP, failed or not
            self._rec.w.add(ARG, self.pid, mode, int(offset), result, aux=number)

        return self._rec.call(MMAP, self.pid, call, flags=bits, a=addr or 0, b=length_bytes, then=arguments)

    def munmap(self, addr, length):
        return self._rec.call(MUNMAP, self.pid, lambda: self._p.munmap(addr, length), a=addr, b=_size(length))

    def mprotect(self, addr, length, prot):
        call = lambda: self._p.mprotect(addr, length, prot)  # noqa: E731
        return self._rec.call(MPROTECT, self.pid, call, flags=_prot_bits(prot), a=addr, b=_size(length))

    def madvise(self, addr, length, advice):
        word = advice.strip().lower().removeprefix("madv_") if isinstance(advice, str) else None
        call = lambda: self._p.madvise(addr, length, advice)  # noqa: E731
        if word not in ADVICE:
            return call()  # refused before anything happens: nothing to record
        return self._rec.call(MADVISE, self.pid, call, flags=ADVICE.index(word), a=addr, b=_size(length))

    def msync(self, addr, length, flags="sync"):
        words = {w.removeprefix("ms_") for w in _flag_words(flags)} if isinstance(flags, str) else {"?"}
        call = lambda: self._p.msync(addr, length, flags)  # noqa: E731
        if not words <= {"sync", "async", "invalidate"} or {"sync", "async"} <= words:
            return call()  # refused before anything happens: nothing to record
        bits = (1 if "async" in words else 0) | (2 if "invalidate" in words else 0)
        return self._rec.call(MSYNC, self.pid, call, flags=bits, a=addr, b=_size(length))

    def mremap(self, old_addr, old_length, new_length, flags=None, new_addr=None):
        words = {w.removeprefix("mremap_") for w in _flag_words(flags or "")}
        call = lambda: self._p.mremap(old_addr, old_length, new_length, flags, new_addr)  # noqa: E731
        if not words <= set(MREMAP_WORDS):
            return call()  # refused before anything happens: nothing to record
        bits = sum(1 << i for i, w in enumerate(MREMAP_WORDS) if w in words)

        def arguments(result: int) -> None:  # ARG2 and RESULT follow their MREMAP, failed or not
            self._rec.w.add(ARG2, self.pid, 0, _size(new_length), new_addr or 0)
            self._rec.w.add(RESULT, self.pid, 0, result)

        return self._rec.call(MREMAP, self.pid, call, flags=bits, a=old_addr, b=_size(old_length), then=arguments)

    def mlock(self, addr, length, *, onfault=False):
        call = lambda: self._p.mlock(addr, length, onfault=onfault)  # noqa: E731
        return self._rec.call(MLOCK, self.pid, call, flags=int(bool(onfault)), a=addr, b=_size(length))

    def munlock(self, addr, length):
        return self._rec.call(MUNLOCK, self.pid, lambda: self._p.munlock(addr, length), a=addr, b=_size(length))

    def mlockall(self, flags):
        words = {w.removeprefix("mcl_") for w in _flag_words(flags)} if isinstance(flags, str) else set()
        if not words or not words <= set(MCL_WORDS):
            return self._p.mlockall(flags)  # refused before anything happens: nothing to record
        bits = sum(1 << i for i, w in enumerate(MCL_WORDS) if w in words)
        return self._rec.call(MLOCKALL, self.pid, lambda: self._p.mlockall(flags), flags=bits)

    def munlockall(self):
        return self._rec.call(MUNLOCKALL, self.pid, self._p.munlockall)

    def brk(self, new_end=None):
        r = self._p.brk(new_end)
        if new_end is not None:
            self._rec.w.add(BRK, self.pid, 0, new_end)
        return r

    def _op_code(self, op) -> int:
        if op is None:
            return 0
        return OP_CODES[op.strip().lower()[:1]] if isinstance(op, str) else int(op)

    def access(self, addr, op=None):
        outcome = self._p.access(addr, op)  # checks its arguments first
        self._rec.w.add(ACCESS, self.pid, self._op_code(op), addr)
        return outcome

    def access_traced(self, addr, op=None):
        result = self._p.access_traced(addr, op)
        self._rec.w.add(ACCESS, self.pid, self._op_code(op), addr)
        return result

    def access_batch(self, addrs, ops=None):
        addrs = np.ascontiguousarray(addrs, dtype=np.uint64)
        if ops is None or isinstance(ops, (str, int)):
            codes = np.full(addrs.size, self._op_code(ops), np.uint8)
        else:
            codes = np.ascontiguousarray(ops, dtype=np.uint8)
        out = self._p.access_batch(addrs, codes)
        self._rec.w.accesses(self.pid, addrs, codes)
        return out

    def fork(self):
        c = self._p.fork()
        self._rec.w.add(FORK, self.pid, 0, c.pid)
        return _RecordingProcess(self._rec, c)

    def clone_thread(self, stack_size=None):
        t = self._p.clone_thread(stack_size=stack_size)
        stack = t.thread_stack
        self._rec.w.add(CLONE, self.pid, 0, t.pid, stack[1] - stack[0] if stack else 0)
        return _RecordingProcess(self._rec, t)

    def exit(self, trace=False):
        r = self._p.exit(trace)
        self._rec.w.add(EXIT, self.pid)
        return r

    def exit_group(self):
        self._p.exit_group()
        self._rec.w.add(EXIT_GROUP, self.pid)


class Recorder:
    """`with vmsim.traces.record(sim, "run.vmst") as rec:` — `rec.spawn()` and
    `rec.create_file()` give processes and files whose calls are written to
    the trace as they run. Leaving the block writes the end record."""

    def __init__(self, sim: Any, path: PathLike):
        self.sim = sim
        self.w = TraceWriter(path)
        self.closed = False
        self._files = 0

    def call(
        self,
        kind: int,
        pid: int,
        fn: Callable[[], Any],
        flags: int = 0,
        a: int = 0,
        b: int = 0,
        aux: int = 0,
        then: Callable[[Any], None] | None = None,
    ):
        """Run a system call and record it, marked failed if it raised OSError;
        `then(result)` (0 on failure) writes any record that must follow it."""
        try:
            result = fn()
        except OSError:
            self.w.add(kind, pid, flags | FAILED, a, b, aux)
            if then is not None:
                then(0)
            raise
        self.w.add(kind, pid, flags, a, b, aux)
        if then is not None:
            then(result)
        return result

    def spawn(self, layout: str | None = None) -> _RecordingProcess:
        """`Simulator.spawn`, recorded; the process records its own calls."""
        p = self.sim.spawn(layout)
        self.w.add(SPAWN, p.pid, 1 if layout == "default" else 0)
        return _RecordingProcess(self, p)

    def create_file(self, size: Any, name: str | None = None, *, read_ahead_kb: int | None = None) -> _RecordingFile:
        """`Simulator.create_file`, recorded; the file records its own calls."""
        f = self.sim.create_file(size, name, read_ahead_kb=read_ahead_kb)
        if self._files >= 0xFFFF:
            raise ValueError("a trace holds at most 65535 files")
        self._files += 1
        number = self._files
        name_bytes = f.name.encode()
        self.w.add(FILE, 0, 0, f.size, len(name_bytes), aux=number)
        self.w.name(name_bytes)
        if read_ahead_kb is not None:
            self.w.add(READAHEAD, 0, 0, f.read_ahead_kb, aux=number)
        return _RecordingFile(self, f, number)

    def drop_caches(self, mode: int) -> int:
        """`Simulator.drop_caches`, recorded."""
        dropped = self.sim.drop_caches(mode)  # a bad mode raises before anything is recorded
        self.w.add(DROP_CACHES, 0, mode)
        return dropped

    def close(self) -> None:
        """End the recording: the file gets its END record and CRC."""
        self.closed = True
        self.w.close()

    def __enter__(self) -> Recorder:  # noqa: PYI034 - Self needs Python 3.11
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def record(sim: Any, path: PathLike) -> Recorder:
    """Record a script into a ``.vmst`` file.

    Parameters
    ----------
    sim : Simulator
        The simulator the script runs on.
    path : str or os.PathLike
        The file to write.

    Returns
    -------
    Recorder
        Use it as the simulator (``spawn``, ``create_file``; the processes and
        files it hands out record their calls), as a context manager or with
        ``close()``.
    """
    return Recorder(sim, path)


# ----- reading ------------------------------------------------------------------


def _verify(path: PathLike) -> int:
    """Check the header, the END record and the checksum; return the record count."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if head[:7] != MAGIC[:7]:
            raise TraceError(f"{path}: not a vmsim trace (bad magic)")
        if head[7] != VERSION:
            raise TraceError(f"{path}: vmsim trace version {head[7]}; this vmsim reads version {VERSION}: re-record it")
        body = size - 8
        if body < RECORD.itemsize or body % RECORD.itemsize:
            raise TraceError(f"{path}: cut off (a partial record at the end, or no end record)")
        crc = zlib.crc32(head)
        left = body - RECORD.itemsize
        while left:
            data = f.read(min(left, 16 << 20))
            if not data:
                raise TraceError(f"{path}: shorter than its size")
            crc = zlib.crc32(data, crc)
            left -= len(data)
        end = np.frombuffer(f.read(RECORD.itemsize), RECORD)[0]
    count = body // RECORD.itemsize - 1
    if int(end["kind"]) != END:
        raise TraceError(f"{path}: no end record: the recording was cut off")
    if int(end["a"]) != count:
        raise TraceError(f"{path}: the end record counts {int(end['a'])} records, the file holds {count}")
    if int(end["b"]) != crc:
        raise TraceError(f"{path}: checksum mismatch: the file is corrupt")
    return count


def read_vmst(path: PathLike, records: int = 1 << 20) -> Iterator[np.ndarray]:
    """The records of a verified .vmst file, in chunks (the END record left out)."""
    count = _verify(path)
    with open(path, "rb") as f:
        f.seek(8)
        done = 0
        while done < count:
            n = min(records, count - done)
            rec = np.frombuffer(f.read(n * RECORD.itemsize), RECORD)
            done += n
            yield rec


# ----- replay -------------------------------------------------------------------


class _Replay:
    """Replays records on a simulator, checking each refers to what exists."""

    def __init__(self, sim: Any, path: PathLike, result: RunResult, progress: Callable[[int], None] | None):
        self.sim, self.path, self.result, self.progress = sim, path, result, progress
        self.procs: dict[int, Any] = {}  # trace pid -> Process
        self.group: dict[int, int] = {}  # trace pid -> trace pid of its process
        self.files: dict[int, Any] = {}
        self.n = 0  # index of the record being replayed
        self.pending_mmap: tuple | None = None
        self.pending_mremap: tuple | None = None
        self.pending_name: tuple | None = None  # (file number, size, length, bytes so far)

    def fail(self, why: str) -> TraceError:
        return TraceError(f"{self.path}: record {self.n}: {why}")

    def proc(self, pid: int) -> Any:
        p = self.procs.get(pid)
        if p is None:
            raise self.fail(f"process {pid} does not exist (never made, or it exited)")
        return p

    def new_proc(self, pid: int, proc: Any, group: int) -> None:
        if pid in self.procs:
            proc.exit()
            raise self.fail(f"pid {pid} is made again while it is alive")
        self.procs[pid] = proc
        self.group[pid] = group

    def file(self, number: int) -> Any:
        f = self.files.get(number)
        if f is None:
            raise self.fail(f"file {number} does not exist")
        return f

    def syscall(self, flags: int, fn: Callable[[], Any]) -> Any:
        """Run a recorded call; it must fail exactly when the recording's did."""
        try:
            result = fn()
        except OSError as e:
            if flags & FAILED:
                return None
            raise self.fail(f"the call failed in the replay but not in the recording: {e}") from None
        if flags & FAILED:
            raise self.fail("the call failed in the recording but not in the replay")
        return result

    def accesses(self, rec: np.ndarray, i: int, j: int) -> None:
        p = self.proc(int(rec["pid"][i]))
        self.result.play(p, np.ascontiguousarray(rec["a"][i:j]), np.ascontiguousarray(rec["flags"][i:j]), self.progress)

    def one(self, r: Any) -> None:
        kind, flags, aux = int(r["kind"]), int(r["flags"]), int(r["aux"])
        pid, a, b = int(r["pid"]), int(r["a"]), int(r["b"])
        if self.pending_name is not None:
            raw = r.tobytes()
            if kind != NAME or raw[1] > NAME_BYTES:
                raise self.fail("a file record without its name records")
            self.name_part(raw[2 : 2 + raw[1]])
            return
        if self.pending_mmap is not None and kind != ARG:
            raise self.fail("an mmap record without its argument record")
        if self.pending_mremap is not None and kind not in (ARG2, RESULT):
            raise self.fail("an mremap record without its argument records")
        if kind not in KINDS:
            raise self.fail(f"unknown kind {kind}")
        if kind == SPAWN:
            self.new_proc(pid, self.sim.spawn("default" if flags & 1 else None), pid)
        elif kind == MMAP:
            self.pending_mmap = (pid, flags, a, b)
        elif kind == ARG:
            self.mmap(flags, aux, a, b)
        elif kind == MUNMAP:
            self.syscall(flags, lambda: self.proc(pid).munmap(a, b))
        elif kind == MPROTECT:
            self.syscall(flags, lambda: self.proc(pid).mprotect(a, b, _prot_str(flags & 7)))
        elif kind == MADVISE:
            if flags & ~FAILED >= len(ADVICE):
                raise self.fail(f"unknown madvise advice {flags & ~FAILED}")
            self.syscall(flags, lambda: self.proc(pid).madvise(a, b, ADVICE[flags & ~FAILED]))
        elif kind == MREMAP:
            self.pending_mremap = (pid, flags, a, b)
        elif kind == ARG2:
            if self.pending_mremap is None:
                raise self.fail("an ARG2 record without its mremap record")
            self.pending_mremap = (*self.pending_mremap, a, b)
        elif kind == RESULT:
            self.mremap(a)
        elif kind == MSYNC:
            how = ("async" if flags & 1 else "sync") + ("|invalidate" if flags & 2 else "")
            self.syscall(flags, lambda: self.proc(pid).msync(a, b, how))
        elif kind == DROP_CACHES:
            self.sim.drop_caches(flags)
        elif kind == MLOCK:
            self.syscall(flags, lambda: self.proc(pid).mlock(a, b, onfault=bool(flags & 1)))
        elif kind == MUNLOCK:
            self.syscall(flags, lambda: self.proc(pid).munlock(a, b))
        elif kind == MLOCKALL:
            words = "|".join(w for i, w in enumerate(MCL_WORDS) if flags & (1 << i))
            self.syscall(flags, lambda: self.proc(pid).mlockall(words))
        elif kind == MUNLOCKALL:
            self.syscall(flags, lambda: self.proc(pid).munlockall())
        elif kind == BRK:
            self.proc(pid).brk(a)
        elif kind == FORK:
            self.new_proc(a, self.proc(pid).fork(), a)
        elif kind == CLONE:
            self.new_proc(a, self.proc(pid).clone_thread(stack_size=b), self.group[pid])
        elif kind == EXIT:
            self.proc(pid).exit()
            del self.procs[pid]
        elif kind == EXIT_GROUP:
            self.proc(pid).exit_group()
            gone = self.group[pid]
            for t in [t for t, g in self.group.items() if g == gone and t in self.procs]:
                del self.procs[t]
        elif kind == FILE:
            if aux in self.files:
                raise self.fail(f"file {aux} is made again while it is open")
            self.pending_name = (aux, a, b, b"")
            if b == 0:
                self.name_part(b"")
            elif b > 4096:
                raise self.fail(f"a file name of {b} bytes")
        elif kind == TRUNCATE:
            self.syscall(flags, lambda: self.file(aux).truncate(a))
        elif kind == UNLINK:
            self.file(aux).unlink()
        elif kind == FADVISE:
            if flags & ~FAILED >= len(FADVICE):
                raise self.fail(f"unknown fadvise advice {flags & ~FAILED}")
            self.syscall(flags, lambda: self.file(aux).fadvise(a, b, FADVICE[flags & ~FAILED]))
        elif kind == READAHEAD:
            self.file(aux)
            self.files[aux] = self.reopen_with_readahead(aux, a)
        elif kind == CLOSE:
            self.file(aux)
            del self.files[aux]  # drops the handle, as the recorded program did
        elif kind == NAME:
            raise self.fail("a file name record where none belongs")
        elif kind == END:
            raise self.fail("an end record before the end")

    def name_part(self, raw: bytes) -> None:
        number, size, length, so_far = self.pending_name  # type: ignore[misc]
        so_far += raw
        if len(so_far) < length:
            self.pending_name = (number, size, length, so_far)
            return
        self.pending_name = None
        try:
            name = so_far[:length].decode()
        except UnicodeDecodeError:
            raise self.fail("a file name that is not UTF-8") from None
        self.files[number] = self.sim.create_file(size, name)

    def reopen_with_readahead(self, number: int, kb: int) -> Any:
        """The file just made, made again on a device with `kb` of readahead
        (a READAHEAD record follows its FILE record, before any use)."""
        old = self.files.pop(number)
        name, size = old.name, old.size
        del old  # its only handle: the file goes
        return self.sim.create_file(size, name, read_ahead_kb=kb)

    def mremap(self, result: int) -> None:
        if self.pending_mremap is None or len(self.pending_mremap) != 6:
            raise self.fail("a result record without its mremap and argument records")
        pid, flags, old_addr, old_len, new_len, new_addr = self.pending_mremap
        self.pending_mremap = None
        words = "|".join(w for i, w in enumerate(MREMAP_WORDS) if flags & (1 << i)) or None
        got = self.syscall(
            flags, lambda: self.proc(pid).mremap(old_addr, old_len, new_len, words, new_addr if flags & 2 else None)
        )
        if got is not None and got != result:
            raise self.fail(f"mremap returned {got:#x} in the replay, {result:#x} in the recording")

    def mmap(self, mode: int, number: int, offset: int, result: int) -> None:
        if self.pending_mmap is None:
            raise self.fail("an argument record without its mmap record")
        pid, flags, addr, length = self.pending_mmap
        self.pending_mmap = None
        words = ["shared" if flags & SHARED else "private"]
        if not flags & HAS_FILE:
            words.append("anonymous")
        words += [w for bit, w in ((GROWSDOWN, "growsdown"), (NORESERVE, "noreserve")) if flags & bit]
        if mode & POPULATE:
            words.append("populate")
        file = self.file(number) if flags & HAS_FILE else None
        p = self.proc(pid)
        got = self.syscall(
            flags,
            lambda: p.mmap(
                length,
                _prot_str(flags & 7),
                "|".join(words),
                addr if mode & ADDR_GIVEN else None,
                fixed=bool(mode & FIXED),
                fixed_noreplace=bool(mode & NOREPLACE),
                file=file,
                offset=offset,
            ),
        )
        if got is not None and got != result:
            raise self.fail(f"mmap returned {got:#x} in the replay, {result:#x} in the recording")

    def run(self) -> None:
        for rec in read_vmst(self.path):
            kinds = rec["kind"]
            i = 0
            while i < rec.size:
                if kinds[i] == ACCESS and not self.in_group():
                    j = i
                    pid = rec["pid"][i]
                    while j < rec.size and kinds[j] == ACCESS and rec["pid"][j] == pid:
                        j += 1
                    if rec["flags"][i:j].max() > 2:
                        raise self.fail(f"access op {int(rec['flags'][i:j].max())} is not 0, 1 or 2")
                    self.accesses(rec, i, j)
                    self.n += j - i
                    i = j
                    continue
                self.one(rec[i])
                self.n += 1
                i += 1
        if self.in_group():
            raise self.fail("the trace ends inside a record group")

    def in_group(self) -> bool:
        """Inside a record group (a file's names, an mmap's or mremap's arguments)."""
        return self.pending_name is not None or self.pending_mmap is not None or self.pending_mremap is not None


@dataclass
class Replayed:
    """What a replay leaves: its result, the processes still alive and the
    files still open (by their trace numbers), as the recording left them."""

    result: RunResult
    processes: dict[int, Any]
    files: dict[int, Any]


def replay_into(sim: Any, path: PathLike, progress: Callable[[int], None] | None = None) -> Replayed:
    """Replay a .vmst file on `sim`, leaving the processes it ends with alive
    and the files it ends with open (dropping a file closes it)."""
    result = RunResult.for_simulator(f"trace:{Path(path).name}", sim)
    before = sim.counters()
    r = _Replay(sim, path, result, progress)
    try:
        r.run()
    except BaseException:
        for p in r.procs.values():
            if p.alive:
                p.exit_group()
        raise
    result.count_faults(sim, before)
    return Replayed(result, r.procs, r.files)


def replay(sim: Any, path: PathLike, progress: Callable[[int], None] | None = None) -> RunResult:
    """Replay a .vmst file on `sim`; every process made has exited when it returns."""
    done = replay_into(sim, path, progress)
    result, procs = done.result, done.processes
    for p in procs.values():
        if p.alive:
            p.exit_group()
    return result
