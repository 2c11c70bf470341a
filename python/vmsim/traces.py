"""Memory traces: readers for the formats people already have, vmsim's own
event trace format, and replay.

Readers stream: each yields (addrs uint64, ops uint8) chunks, so a multi-GB
trace never sits in memory whole.

* Valgrind lackey (`valgrind --tool=lackey --trace-mem=yes`): `read_lackey`
* plain text / CSV (`ADDRESS OP` per line, hex with 0x or decimal): `read_text`
* `.npy` (a structured array with `addr` and `op`, or an (N, 2) array) and
  `.npz` (arrays `addrs` and `ops`): `read_numpy`
* ChampSim binary traces (`.xz`, 64-byte records): `read_champsim`
* libCacheSim's oracleGeneral (24-byte records, plain or `.zst`), the format
  public block and cache traces come in: `read_oracle_general`, and
  `write_oracle_general` to make one

None of those carries address-space events, so vmsim has its own format
(`.vmst`, documented in `vmsim.vmst`): `record()` writes every call of a
script, `replay()` rebuilds the same simulation, and a damaged or cut-off
file is refused.
"""

from __future__ import annotations

import lzma
import os
import zipfile
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Union

import numpy as np

from vmsim import _core, vmst
from vmsim.vmst import MAGIC, Recorder, TraceError, read_vmst, record
from vmsim.workloads import RunResult, spawning_in

if TYPE_CHECKING:
    from vmsim._core import Cgroup

__all__ = [
    "MAGIC",
    "Recorder",
    "TraceError",
    "read_champsim",
    "read_lackey",
    "read_numpy",
    "read_oracle_general",
    "read_text",
    "read_vmst",
    "reader_for",
    "record",
    "replay",
    "write_oracle_general",
]

Chunk = tuple[np.ndarray, np.ndarray]
PathLike = Union[str, os.PathLike]

CHUNK_BYTES = 4 << 20  # text per chunk: its arrays stay small enough for malloc to reuse
FIRST_CHUNK = 1 << 16  # accesses in the first chunk of a .npy/.npz trace


MAX_LINE = _core.MAX_LINE  # a text or lackey line longer than this is not a trace line
PAGE = _core.PAGE_SIZE


def _lines(path: PathLike, kind: str, chunk_bytes: int) -> Iterator[Chunk]:
    """Chunks of whole lines, read and parsed in Rust (the file never sits in memory whole)."""
    try:
        chunks = _core.TraceLines(os.fspath(path), kind, chunk_bytes)
        yield from chunks
    except ValueError as e:
        raise TraceError(f"{path}: {e}") from None


def read_lackey(path: PathLike, chunk_bytes: int = CHUNK_BYTES) -> Iterator[Chunk]:
    """Read ``valgrind --tool=lackey --trace-mem=yes`` output.

    Parameters
    ----------
    path : str or os.PathLike
        The trace file.
    chunk_bytes : int, default 4 MiB
        Bytes of text parsed per chunk.

    Yields
    ------
    tuple of (numpy.ndarray of uint64, numpy.ndarray of uint8)
        Addresses and op codes: ``I`` a fetch, ``L`` a read, ``S`` a write,
        ``M`` a read then a write.
    """
    return _lines(path, "lackey", chunk_bytes)


def read_text(path: PathLike, chunk_bytes: int = CHUNK_BYTES) -> Iterator[Chunk]:
    """Read ``ADDRESS OP`` or ``ADDRESS,OP`` lines (an optional CSV header line).

    Parameters
    ----------
    path : str or os.PathLike
        The trace file.
    chunk_bytes : int, default 4 MiB
        Bytes of text parsed per chunk.

    Yields
    ------
    tuple of (numpy.ndarray of uint64, numpy.ndarray of uint8)
        Addresses and op codes.
    """
    return _lines(path, "text", chunk_bytes)


def read_numpy(path: PathLike, chunk: int = 1 << 20) -> Iterator[Chunk]:
    """Read a ``.npy`` trace (memory-mapped) or an ``.npz`` one with ``addrs`` and ``ops``.

    Parameters
    ----------
    path : str or os.PathLike
        The trace file: a structured ``.npy`` array with ``addr`` and ``op``,
        an ``(N, 2)`` integer array, or an ``.npz`` with arrays ``addrs`` and ``ops``.
    chunk : int, default 1048576
        At most this many accesses per chunk (the first chunks are smaller).

    Yields
    ------
    tuple of (numpy.ndarray of uint64, numpy.ndarray of uint8)
        Addresses and op codes.
    """
    path = Path(path)
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                if "addrs" not in z or "ops" not in z:
                    raise TraceError(f"{path}: an .npz trace needs arrays 'addrs' and 'ops'")
                addrs, ops = z["addrs"], z["ops"]
        else:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        if isinstance(e, TraceError):
            raise
        raise TraceError(f"{path}: not a readable numpy file ({e})") from None
    if path.suffix == ".npz":
        if addrs.ndim != 1 or ops.ndim != 1 or addrs.shape != ops.shape:
            raise TraceError(
                f"{path}: 'addrs' and 'ops' must be 1-D arrays of one length, got {addrs.shape} and {ops.shape}"
            )
        if ops.dtype.kind not in "ui":
            raise TraceError(f"{path}: ops must be integers, got {ops.dtype}")
    else:
        if arr.dtype.names and {"addr", "op"} <= set(arr.dtype.names) and arr.ndim == 1:
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
    # The first chunks are small and grow, so a replay starts simulating at
    # once and the reading ahead keeps up from the start.
    i, size = 0, min(chunk, FIRST_CHUNK)
    while i < len(addrs):
        a = np.ascontiguousarray(addrs[i : i + size], dtype=np.uint64)
        o = np.zeros(a.size, np.uint8) if ops is None else np.ascontiguousarray(ops[i : i + size]).astype(np.uint8)
        if o.size and o.max() > 2:
            bad = int(np.argmax(o > 2)) + i
            raise TraceError(f"{path}: op {int(ops[bad])} at index {bad} is not 0, 1 or 2")
        yield a, o
        i, size = i + size, min(chunk, 4 * size)


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
    """Read a ChampSim input trace (64-byte records, usually ``.xz``).

    Parameters
    ----------
    path : str or os.PathLike
        The trace file.
    records : int, default 262144
        Records read per chunk.

    Yields
    ------
    tuple of (numpy.ndarray of uint64, numpy.ndarray of uint8)
        Per instruction a fetch at its ``ip``, then its loads (source memory
        operands) and stores (destination operands); zero operands skipped.
    """
    opener = lzma.open if str(path).endswith(".xz") else open
    size = CHAMPSIM.itemsize
    with opener(path, "rb") as f:
        n = 0
        while True:
            try:
                data = f.read(records * size)
            except (lzma.LZMAError, EOFError) as e:
                raise TraceError(f"{path}: corrupt compressed data after record {n} ({e})") from None
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


ORACLE_GENERAL = np.dtype([("time", "<u4"), ("id", "<u8"), ("size", "<u4"), ("next", "<i8")])
"""libCacheSim's oracleGeneral record: request time, object id, object size,
the index of the object's next request (-1: none)."""
ORACLE_BASE = 0x10_0000_0000  # where the renumbered objects' pages start (64 GiB)


def read_oracle_general(path: PathLike, records: int = 1 << 18) -> Iterator[Chunk]:
    """Read a libCacheSim oracleGeneral trace (plain, or zstd-compressed ``.zst``).

    Object ids are renumbered densely in order of first request, one page
    each (object sizes are ignored: one object, one page), from
    `ORACLE_BASE` up; every request is a write, so a first request needs a
    frame as a cache insertion does.

    Parameters
    ----------
    path : str or os.PathLike
        The trace file.
    records : int, default 262144
        Records read per chunk.

    Yields
    ------
    tuple of (numpy.ndarray of uint64, numpy.ndarray of uint8)
    """
    size = ORACLE_GENERAL.itemsize
    dense: dict[int, int] = {}
    with open(path, "rb") as raw:
        f: Any = raw
        if str(path).endswith(".zst"):
            import zstandard

            f = zstandard.ZstdDecompressor().stream_reader(raw)
        offset, rest = 0, b""
        while True:
            try:
                data = rest + _read_full(f, records * size - len(rest))
            except Exception as e:  # zstandard.ZstdError, or a short read of the compressed file
                raise TraceError(f"{path}: corrupt compressed data after byte {offset} of the records ({e})") from None
            if not data:
                return
            whole = len(data) - len(data) % size
            if whole == 0:
                raise TraceError(f"{path}: truncated record at byte {offset} (records are {size} bytes)")
            rec = np.frombuffer(data[:whole], dtype=ORACLE_GENERAL)
            rest = data[whole:]
            uniq, first, inverse = np.unique(rec["id"], return_index=True, return_inverse=True)
            by_first = np.argsort(first, kind="stable")  # new objects numbered as they first come
            pages = np.empty(uniq.size, np.uint64)
            pages[by_first] = np.fromiter(
                (dense.setdefault(int(u), len(dense)) for u in uniq[by_first]), np.uint64, uniq.size
            )
            yield (ORACLE_BASE + pages[inverse] * np.uint64(PAGE)).astype(np.uint64), np.ones(rec.size, np.uint8)
            offset += whole


def _read_full(f: Any, n: int) -> bytes:
    """Up to `n` bytes, short only at the end (a decompressing reader may return less)."""
    parts, got = [], 0
    while got < n:
        part = f.read(n - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def write_oracle_general(
    path: PathLike, ids: np.ndarray, sizes: np.ndarray | int = PAGE, times: np.ndarray | None = None
) -> None:
    """Write requests as a libCacheSim oracleGeneral trace (zstd-compressed if `path` ends in ``.zst``).

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.
    ids : numpy.ndarray of uint64
        The object id of each request, in order.
    sizes : numpy.ndarray of uint32 or int, default 4096
        Object sizes in bytes.
    times : numpy.ndarray of uint32, optional
        Request times (default: the request index).
    """
    ids = np.asarray(ids, dtype=np.uint64)
    n = ids.size
    rec = np.zeros(n, ORACLE_GENERAL)
    rec["time"] = np.arange(n, dtype=np.uint32) if times is None else times
    rec["id"], rec["size"] = ids, sizes
    # Each request's next: the following request of the same object, in id-then-index order.
    order = np.lexsort((np.arange(n), ids))
    same = ids[order[1:]] == ids[order[:-1]]
    rec["next"] = -1
    rec["next"][order[:-1][same]] = order[1:][same]
    data = rec.tobytes()
    if str(path).endswith(".zst"):
        import zstandard

        data = zstandard.ZstdCompressor().compress(data)
    Path(path).write_bytes(data)


def reader_for(path: PathLike) -> Iterator[Chunk]:
    """The reader for a trace file, picked by its name and first bytes.

    Parameters
    ----------
    path : str or os.PathLike
        ``.npy``/``.npz``, ``.xz``/``.champsim``, a libCacheSim oracleGeneral
        trace named so (plain or ``.zst``), lackey output, or text.

    Returns
    -------
    iterator of tuple of (numpy.ndarray of uint64, numpy.ndarray of uint8)
    """
    p = str(path)
    if p.endswith((".npy", ".npz")):
        return read_numpy(path)
    if p.endswith((".xz", ".champsim", ".champsimtrace")):
        return read_champsim(path)
    if "oraclegeneral" in Path(p).name.lower():
        return read_oracle_general(path)
    with open(path, "rb") as f:
        head = f.read(4096)
    if head.startswith(b"==") or any(line[:3] in (b"I  ", b" L ", b" S ", b" M ") for line in head.splitlines()[:8]):
        return read_lackey(path)
    return read_text(path)


# ----- replay -------------------------------------------------------------------


def _read_ahead(chunks: Iterator[Chunk]) -> Iterator[tuple[np.ndarray, np.ndarray, int, int]]:
    """`chunks` with each one's lowest and highest address, the next chunk
    read (and its span found) in a worker thread while the caller simulates
    the current one. The readers (numpy's copies and reductions, the Rust
    line parser) and access_batch all release the GIL, so on two cores a
    replay costs about the larger of reading and simulating, not their sum.
    A reader's error comes out where its chunk would have."""

    def take() -> tuple[np.ndarray, np.ndarray, int, int] | None:
        chunk = next(chunks, None)
        if chunk is None:
            return None
        addrs, ops = chunk
        return (addrs, ops, int(addrs.min()), int(addrs.max())) if addrs.size else (addrs, ops, 0, 0)

    with ThreadPoolExecutor(1, thread_name_prefix="vmsim-read-ahead") as pool:
        pending = pool.submit(take)
        while (chunk := pending.result()) is not None:
            pending = pool.submit(take)
            yield chunk


def replay(
    sim,
    path: PathLike,
    progress: Callable[[int], None] | None = None,
    layout: str | None = "default",
    cgroup: Cgroup | None = None,
) -> RunResult:
    """Replay a trace file on a simulator.

    Plain access traces run in one process (with `layout`), the 2 MiB regions
    they touch mapped first; ``.vmst`` traces recreate their processes and
    events. Every process made has exited when it returns.

    Parameters
    ----------
    sim : Simulator
        The simulator to replay on.
    path : str or os.PathLike
        The trace file (any format `reader_for` knows, or ``.vmst``).
    progress : callable, optional
        Called with the number of accesses after each batch.
    layout : str or None, default "default"
        The layout of the process a plain trace runs in.
    cgroup : Cgroup, optional
        The memory cgroup its processes run in (default: the root).

    Returns
    -------
    RunResult
        Outcomes, faults, peak RSS, throughput and the timeline.

    Raises
    ------
    TraceError
        A malformed or damaged trace, naming the line or record.
    """
    sim = spawning_in(sim, cgroup)
    if str(path).endswith(".vmst"):
        return vmst.replay(sim, path, progress)
    result = RunResult.for_simulator(f"trace:{Path(path).name}", sim)
    before = sim.counters()
    p = sim.spawn(layout)
    try:
        for addrs, ops, first, last in _read_ahead(reader_for(path)):
            # Raw traces come from a process vmsim cannot see: map what they touch.
            if addrs.size and not p.trace_span_mapped(first, last):
                p.map_trace_regions(addrs)
            result.play(p, addrs, ops, progress)
        result.count_faults(sim, before)
    finally:
        p.exit()  # a trace that turns out malformed leaves no process behind
    return result
