# Signatures and types are written here; the docstrings are generated from the
# extension's own (the doc comments in rust/python/src): `python tests/stubdocs.py`
# rewrites them, and tests/test_api_docs.py fails when they are out of date.
from collections.abc import Sequence
from typing import Any, Callable, Literal

import numpy as np
import numpy.typing as npt
from typing_extensions import TypeAlias

from vmsim.counters import Layout as ProcessLayout
from vmsim.counters import (
    LiveAllocation,
    MemInfo,
    ProcessCounters,
    SimCounters,
    SlabInfo,
    Smaps,
    SmapsRollup,
    VmStat,
)
from vmsim.outcome import Outcome

Size: TypeAlias = int | str
Op: TypeAlias = Literal["r", "w", "x", 0, 1, 2]

OUTCOMES: list[tuple[str, int, bool, bool, str]]
"""(name, code, is_signal, is_fault, description) of every outcome, in code order."""
DEFAULT_VMA_INDEX: str
PAGE_SHIFT: int
PAGE_SIZE: int
TASK_SIZE: int
KERNEL_BASE: int
MMAP_MIN_ADDR: int
MAX_LINE: int
PM_PRESENT: int
PM_SWAP: int
PM_FILE: int
PM_MMAP_EXCLUSIVE: int
PM_PFN_MASK: int

class TraceLines:
    """A text trace read in chunks of whole lines, parsed by the core.

    Iterating yields ``(addrs, ops)`` numpy arrays per chunk.

    Parameters
    ----------
    path : str
        The trace file.
    kind : {"lackey", "text"}
        Its format.
    chunk_bytes : int, default 4194304
        Bytes read per chunk.

    Raises
    ------
    ValueError
        Naming a malformed line (the iteration ends there).
    """
    def __init__(self, path: str, kind: str, chunk_bytes: int = ...) -> None: ...
    def __iter__(self) -> TraceLines: ...
    def __next__(self) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint8]]: ...

class VmsimError(Exception):
    """Base class of vmsim's own errors."""

class InvariantError(VmsimError):
    """sim.check() found a broken invariant; the message names it."""

class ProcessExitedError(VmsimError):
    """The process (task) has exited; its handle can no longer be used."""

class KernelBugError(VmsimError):
    """Misuse of a kernel allocator (double free, wrong release call...), as KASAN, SLUB debug or kref would report it."""

class OutOfMemoryError(VmsimError):
    """A kernel allocation found no free simulated memory."""

ReleaseEvent: TypeAlias = tuple[str, str]

class Kernel:
    """The kernel's own allocators (`Simulator.kernel`).

    The same allocators the simulation uses: every ``mm_struct`` and
    ``vm_area_struct`` comes from a slab cache, every page-table page from the
    buddy allocator. Addresses are kernel virtual addresses (the direct map
    or the vmalloc area). Misuse (a double free, the wrong order, a put past
    zero...) raises `KernelBugError` naming the bug and changes nothing.
    """
    def alloc_pages(self, order: int) -> int:
        """Allocate 2**order contiguous frames from the buddy allocator.

        Parameters
        ----------
        order : int
            0 to 10.

        Returns
        -------
        int
            The block's direct-map address.

        Raises
        ------
        OutOfMemoryError
            No free block of that order, even after draining the per-CPU lists.
        """
    def __get_free_pages(self, order: int) -> int: ...
    def free_pages(self, addr: int, order: int) -> None:
        """Give a block back to the buddy allocator.

        Parameters
        ----------
        addr : int
            The address `alloc_pages` returned.
        order : int
            The order it was allocated with.
        """
    def buddyinfo(self) -> list[int]:
        """Free blocks per order, as ``/proc/buddyinfo`` shows them.

        Returns
        -------
        list of int
            Free blocks of order 0, 1, ... 10.
        """
    def kmalloc(self, size: int) -> int:
        """Allocate from the kmalloc caches (kmalloc-8 ... kmalloc-8k), or pages above.

        Parameters
        ----------
        size : int
            Bytes.

        Returns
        -------
        int
            The object's address.
        """
    def kzalloc(self, size: int) -> int:
        """``kzalloc``: `kmalloc` of zeroed memory (contents are not simulated).

        Parameters
        ----------
        size : int
            Bytes.

        Returns
        -------
        int
            The object's address.
        """
    def kmalloc_array(self, n: int, size: int) -> int:
        """``kmalloc_array``: `n` elements of `size` bytes, refused on overflow.

        Parameters
        ----------
        n : int
            Elements.
        size : int
            Bytes per element.

        Returns
        -------
        int
            The array's address.
        """
    def kfree(self, addr: int) -> None:
        """Free a `kmalloc` allocation.

        Parameters
        ----------
        addr : int
            The address `kmalloc` returned.
        """
    def kmalloc_many(self, size: int, n: int) -> npt.NDArray[np.uint64]:
        """`n` kmallocs of `size` bytes in one call.

        Parameters
        ----------
        size : int
            Bytes per object.
        n : int
            Objects.

        Returns
        -------
        numpy.ndarray of uint64
            Their addresses.
        """
    def kfree_many(self, addrs: npt.NDArray[np.uint64] | Sequence[int]) -> None:
        """`kfree` every address in order.

        Parameters
        ----------
        addrs : numpy.ndarray of uint64 or sequence of int
            Addresses `kmalloc` returned.
        """
    def kmem_cache_create(self, name: str, size: int) -> int:
        """Create a slab cache.

        Parameters
        ----------
        name : str
            Its name in `slabinfo`.
        size : int
            Object size in bytes.

        Returns
        -------
        int
            The cache's id.
        """
    def kmem_cache_alloc(self, cache: int) -> int:
        """Allocate an object from a slab cache.

        Parameters
        ----------
        cache : int
            The id `kmem_cache_create` returned.

        Returns
        -------
        int
            The object's address.
        """
    def kmem_cache_free(self, cache: int, addr: int) -> None:
        """Free an object to its slab cache.

        Parameters
        ----------
        cache : int
            The cache's id.
        addr : int
            The object's address.
        """
    def kmem_cache_destroy(self, cache: int) -> None:
        """Destroy an empty slab cache.

        Parameters
        ----------
        cache : int
            The cache's id.
        """
    def slabinfo(self) -> list[SlabInfo]:
        """Slab caches, as ``/proc/slabinfo`` shows them.

        Returns
        -------
        list of dict
            ``name``, ``active_objs``, ``num_objs``, ``objsize``, ``objperslab``,
            ``pagesperslab``, ``num_slabs`` per cache.
        """
    def vmalloc(self, size: int) -> int:
        """Allocate virtually contiguous memory from scattered frames.

        Parameters
        ----------
        size : int
            Bytes (rounded up to pages; a guard page follows the area).

        Returns
        -------
        int
            The area's address in the vmalloc range.
        """
    def vzalloc(self, size: int) -> int:
        """``vzalloc``: `vmalloc` of zeroed memory (contents are not simulated).

        Parameters
        ----------
        size : int
            Bytes.

        Returns
        -------
        int
            The area's address.
        """
    def vfree(self, addr: int) -> None:
        """Free a `vmalloc` area.

        Parameters
        ----------
        addr : int
            The address `vmalloc` returned.
        """
    def vmallocinfo(self) -> list[tuple[int, int, int, int, list[int], str]]:
        """The vmalloc areas, as ``/proc/vmallocinfo`` shows them.

        Returns
        -------
        list of tuple
            ``(start, end, size, pages, frames, caller)`` per area.
        """
    def kobject_create(
        self, name: str, parent: int | None = None, release: Callable[[str], object] | None = None
    ) -> int:
        """Create a kobject with a reference count of 1.

        Parameters
        ----------
        name : str
            Its name.
        parent : int, optional
            A parent kobject; the child holds a reference on it.
        release : callable, optional
            Called with the name when the count reaches zero.

        Returns
        -------
        int
            The kobject's address.
        """
    def kobject_get(self, addr: int) -> int:
        """Take a reference on a kobject.

        Parameters
        ----------
        addr : int
            The kobject's address.

        Returns
        -------
        int
            The new reference count.
        """
    def kobject_put(self, addr: int) -> list[str]:
        """Drop a reference on a kobject.

        Parameters
        ----------
        addr : int
            The kobject's address.

        Returns
        -------
        list of str
            The names released: the object, then any parent it let go.
        """
    def kobject_refcount(self, addr: int) -> int | None:
        """The reference count of a kobject.

        Parameters
        ----------
        addr : int
            The kobject's address.

        Returns
        -------
        int or None
            None once it is released.
        """
    def meminfo(self) -> MemInfo:
        """Totals per allocator, the LRU lists and the commit charge, in kB as ``/proc/meminfo``.

        Returns
        -------
        dict
            ``MemTotal``, ``MemFree``, ``SwapCached``, ``Active``, ``Inactive``,
            ``Active(anon)``, ``Inactive(anon)``, ``Active(file)``, ``Inactive(file)``,
            ``Unevictable``, ``Mlocked`` (the LRU lists: filled under
            ``policy="linux"``), ``Dirty``, ``Writeback``, ``PageTables``, ``Slab``,
            ``VmallocUsed``, ``AllocPages``, ``Committed_AS``, ``CommitLimit``.
        """
    def mmgrab(self, process: Process) -> int:
        """Take a lazy-TLB reference (``mmgrab``) on a process's ``mm_struct``.

        Parameters
        ----------
        process : Process
            A live task of this simulator.

        Returns
        -------
        int
            The ``mm_struct``'s address, for `mmdrop`.
        """
    def mmdrop(self, mm_struct: int) -> list[ReleaseEvent]:
        """Drop a reference taken with `mmgrab`.

        Parameters
        ----------
        mm_struct : int
            The address `mmgrab` returned.

        Returns
        -------
        list of tuple of (str, str)
            The release events when tracing, the last drop frees the ``mm_struct``.
        """

def vma_indexes() -> list[str]:
    """Names of the VMA index structures a `Simulator` can use.

    Returns
    -------
    list of str
    """

def vma_index_study(index: str, vmas: int, lookups: int = 100_000, seed: int = 1) -> dict[str, float | None]:
    """Time one VMA index on its own: inserts, random lookups, gap searches and
    removes over `vmas` one-page VMAs (a hole after each), GIL released.

    Parameters
    ----------
    index : str
        One of `vma_indexes()`.
    vmas : int
        VMAs in the index (at least 1).
    lookups : int, optional
        Random lookups timed (default 100000).
    seed : int, optional
        The random order and addresses (default 1).

    Returns
    -------
    dict
        ``insert_ns``, ``lookup_ns``, ``gap_ns``, ``remove_ns`` per operation;
        ``nodes_per_lookup`` (None where the index does not show them) and
        ``cache_hit_rate`` (None without a cache).
    """

def parse_size(text: str) -> int:
    """Parse a size into bytes.

    Parameters
    ----------
    text : str
        ``"4096"``, ``"64KiB"``, ``"256MiB"``, ``"1GiB"``...

    Returns
    -------
    int

    Raises
    ------
    ValueError
        The text is not a size.
    """

def count_outcomes(codes: npt.NDArray[np.uint8]) -> list[int]:
    """Count the accesses of each outcome in an `access_batch` result.

    Parameters
    ----------
    codes : numpy.ndarray of uint8
        Outcome codes.

    Returns
    -------
    list of int
        Accesses per outcome, indexed by code (codes past the table are not
        counted).
    """

def parse_lackey(data: bytes, first_line: int = 1) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint8]]:
    """Parse ``valgrind --tool=lackey --trace-mem=yes`` output.

    Parameters
    ----------
    data : bytes
        Whole lines of the trace.
    first_line : int, default 1
        The line number of the first line, for error messages.

    Returns
    -------
    tuple of (numpy.ndarray of uint64, numpy.ndarray of uint8)
        Addresses and op codes (a modify ``M`` is a read then a write).

    Raises
    ------
    ValueError
        Naming the first malformed line.
    """

def parse_text(data: bytes, first_line: int = 1) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint8]]:
    """Parse ``ADDRESS OP`` lines (spaces, tabs or commas between).

    Parameters
    ----------
    data : bytes
        Whole lines of the trace.
    first_line : int, default 1
        The line number of the first line, for error messages.

    Returns
    -------
    tuple of (numpy.ndarray of uint64, numpy.ndarray of uint8)
        Addresses and op codes.

    Raises
    ------
    ValueError
        Naming the first malformed line.
    """

def policies() -> list[str]:
    """Names of the replacement policies a `Simulator` can use.

    Returns
    -------
    list of str
    """

class StackDistances:
    """LRU stack distances of a stream of page references (Mattson's one pass).

    Feed it the accesses in order; `misses` then gives the misses of an LRU
    memory of any number of resident pages. A miss is an access that needs a
    frame: a page's first write, or any access to a page LRU would have
    evicted; reads of a page never written map the zero page and need none.
    For one address space this equals a replay under ``policy="lru"`` with
    ``resident_limit`` set to that size.
    """
    def __init__(self) -> None: ...
    def feed(
        self,
        addrs: npt.NDArray[np.uint64] | Sequence[int],
        ops: npt.NDArray[np.uint8] | Sequence[int] | Op,
        space: int = 0,
    ) -> None:
        """Add accesses, in order, to the stream.

        Parameters
        ----------
        addrs : numpy.ndarray of uint64 or sequence of int
            Virtual addresses (only their page counts).
        ops : numpy.ndarray of uint8, sequence of int, or {"r", "w", "x"}
            One op code per address (1 is a write), or one op for all.
        space : int, optional
            The address space the accesses are made in (pages of different
            spaces are different pages); default 0.
        """
    def misses(self, pages: int) -> int:
        """Misses of an LRU memory of `pages` resident pages.

        Parameters
        ----------
        pages : int
            Resident pages (0: every access to a written page misses).

        Returns
        -------
        int
        """
    @property
    def accesses(self) -> int:
        """Accesses fed so far."""
    @property
    def distinct_pages(self) -> int:
        """Distinct pages referenced, read or written."""
    @property
    def written_pages(self) -> int:
        """Pages written at least once: the most frames any size needs."""

class Cgroup:
    """A memory cgroup (cgroup v2's memory controller).

    Made by `Simulator.cgroup`. Processes run in it when spawned with
    ``spawn(cgroup=...)`` or moved with `Process.move_to`; their new pages
    (anonymous, page cache, shmem), swap and kernel memory (page tables, slab
    objects) are charged to it and to every ancestor. A group at `max` is
    reclaimed, and OOM-kills its largest process when reclaim cannot make
    room; over `high` it is reclaimed back under it; within `low` it is left
    alone by reclaim from outside while anything else can go. Sizes are in
    bytes; a limit of None means "max" (none). Needs ``policy="linux"``.
    """
    @property
    def path(self) -> str:
        """Its path below the root, as cgroupfs shows it (``"/batch/job1"``)."""
    @property
    def current(self) -> int:
        """``memory.current``: bytes charged here and below."""
    @property
    def peak(self) -> int:
        """``memory.peak``: the most `current` has been."""
    @property
    def swap_current(self) -> int:
        """``memory.swap.current``: bytes of swap charged here and below."""
    @property
    def swap_peak(self) -> int:
        """``memory.swap.peak``."""
    @property
    def max(self) -> int | None:
        """``memory.max`` in bytes (None: no limit). Setting it takes effect at the group's next charge."""
    @max.setter
    def max(self, value: Size | None) -> None:
        """``memory.max`` in bytes (None: no limit). Setting it takes effect at the group's next charge."""
    @property
    def high(self) -> int | None:
        """``memory.high`` in bytes (None: no limit)."""
    @high.setter
    def high(self, value: Size | None) -> None:
        """``memory.high`` in bytes (None: no limit)."""
    @property
    def low(self) -> int:
        """``memory.low`` in bytes (0: no protection)."""
    @low.setter
    def low(self, value: Size | None) -> None:
        """``memory.low`` in bytes (0: no protection)."""
    @property
    def swap_max(self) -> int | None:
        """``memory.swap.max`` in bytes (None: no limit)."""
    @swap_max.setter
    def swap_max(self, value: Size | None) -> None:
        """``memory.swap.max`` in bytes (None: no limit)."""
    @property
    def throttled(self) -> int:
        """Charges that stayed over `high` after the group's reclaim: where
        Linux would make the allocating task sleep (its throttling penalty).
        """
    def stat(self) -> dict[str, int]:
        """``memory.stat``: this group and every group below it.

        Returns
        -------
        dict
            Sizes in bytes (``anon``, ``file``, ``kernel``, ``pagetables``,
            ``slab``, ``shmem``, ``file_dirty``, ``swapcached``, the LRU lists
            ``inactive_anon`` ... ``unevictable``) and reclaim events
            (``pgscan``, ``pgsteal`` and their ``_kswapd``/``_direct`` parts,
            ``pgrefill``, ``pgactivate``, ``pgdeactivate``, ``workingset_*``).
        """
    def events(self) -> dict[str, int]:
        """``memory.events``: this group and every group below it.

        Returns
        -------
        dict
            ``low`` (reclaimed while protected), ``high`` (reclaimed over
            high), ``max`` (a charge hit max), ``oom`` (reclaim at max failed),
            ``oom_kill`` (processes killed).
        """

class File:
    """A simulated regular file (`Simulator.create_file`).

    Dropping the object closes its handle; the file and its cached pages go
    once no handle and no mapping holds it.
    """
    @property
    def name(self) -> str:
        """The file's path."""
    @property
    def size(self) -> int:
        """The file's size in bytes."""
    @property
    def cached_pages(self) -> int:
        """Pages of the file in the page cache."""
    @property
    def read_ahead_kb(self) -> int:
        """This file's readahead window in KiB (its device's ``read_ahead_kb``)."""
    def fadvise(self, offset: Size, length: Size, advice: str) -> None:
        """Advise the kernel about the file's use, as posix_fadvise(2).

        Parameters
        ----------
        offset : int or str
            Start of the range in bytes.
        length : int or str
            Bytes in the range; 0 means to the end of the file.
        advice : str
            ``"normal"`` (the device's readahead window), ``"sequential"`` (twice
            that window), ``"random"`` (changes read(2) only: page faults follow
            ``madvise(..., "random")``), ``"willneed"`` (read the range into the
            cache now), ``"dontneed"`` (write back its dirty pages and drop those no
            process maps), ``"noreuse"`` (no effect).

        Raises
        ------
        OSError
            EINVAL for an unknown advice.
        """
    def read(self, offset: Size, length: Size, *, cgroup: Cgroup | None = None) -> int:
        """Read through the page cache, as read(2) (nothing is mapped, no fault taken).

        Missing pages are read in from the file; every page read is marked
        accessed (``folio_mark_accessed``) but the page the file's previous read
        ended in, so under ``policy="linux"`` a page read twice is activated,
        while one read in small pieces, or twice in a row, is not.

        Parameters
        ----------
        offset : int or str
            Where the read starts, in bytes.
        length : int or str
            Bytes to read.
        cgroup : Cgroup, optional
            The memory cgroup of the reading task: the pages read in are
            charged to it (default: the root).

        Returns
        -------
        int
            Bytes read: short at the end of the file, 0 past it.

        Raises
        ------
        OSError
            ENOMEM when no memory can be found for the page cache.
        """
    def write(self, offset: Size, length: Size, *, cgroup: Cgroup | None = None) -> int:
        """Write through the page cache, as write(2).

        Pages written become dirty (written back when reclaim, ``msync`` or
        ``fadvise("dontneed")`` lets them go) but are not marked accessed (Linux's
        write_begin does not mark them); a page only partly overwritten is read
        in first; the file grows when the write ends past it.

        Parameters
        ----------
        offset : int or str
            Where the write starts, in bytes.
        length : int or str
            Bytes to write.
        cgroup : Cgroup, optional
            The memory cgroup of the writing task: new pages are charged to it
            (default: the root).

        Returns
        -------
        int
            Bytes written.

        Raises
        ------
        OSError
            ENOMEM when no memory can be found; EFBIG past the largest file (16 TiB).
        """
    def truncate(self, size: Size) -> None:
        """Change the file's size, as truncate(2).

        Pages past the new end are unmapped everywhere (a later access there is
        SIGBUS) and leave the page cache.

        Parameters
        ----------
        size : int or str
            The new size in bytes.
        """
    def unlink(self) -> None:
        """Remove the file's name, as unlink(2).

        Mappings keep it (``maps()`` shows ``(deleted)``); its pages go with the
        last mapping and handle.
        """

class Simulator:
    """A simulated machine: physical memory, a kernel, and the processes it runs.

    Every size argument takes an int (bytes) or a string such as ``"64KiB"``,
    ``"256MiB"`` or ``"1GiB"``. Reclaim runs when `swap`, `policy` or
    `resident_limit` is given; without them running out of frames is the
    ``OOM`` outcome.

    Parameters
    ----------
    memory : int or str, optional
        Physical memory (default 1 GiB), managed by a buddy allocator.
    vma_index : str, optional
        The structure that indexes each address space's VMAs: one of
        `vmsim.vma_indexes()` (default ``"maple"``, as Linux 6.x).
    stack_rlimit : int or str, optional
        RLIMIT_STACK: how far the main stack may grow (default 8 MiB).
    stack_guard_gap : int or str, optional
        The gap kept below a stack, as Linux's ``stack_guard_gap`` (default 1 MiB).
    max_map_count : int, optional
        ``vm.max_map_count``: at most this many VMAs per process (default 65530).
    memlock_rlimit : int or str, optional
        RLIMIT_MEMLOCK: how much a process may mlock (default 8 MiB; 0 refuses
        mlock with EPERM). Processes are unprivileged (no CAP_IPC_LOCK).
    fault_around_bytes : int or str, optional
        How much a read fault on a file maps around itself from the page cache
        (default 64 KiB; ``"4KiB"`` turns fault-around off).
    read_ahead_kb : int, optional
        The block device's ``read_ahead_kb``: the readahead window of file
        faults, in KiB (default 128, Linux's default; 0 turns readahead off).
    swap : int or str, optional
        Swap space; anonymous pages are swapped out under memory pressure.
    policy : str, optional
        The replacement policy: one of `vmsim.policies()`.
    resident_limit : int, optional
        At most this many resident user pages (a memory-cgroup-like cap).
    swappiness : int, optional
        ``vm.swappiness``, 0..200 (default 60): how readily ``policy="linux"``
        reclaims anonymous memory against the page cache.
    min_free_kbytes : int, optional
        ``vm.min_free_kbytes`` (default: as Linux computes it from the memory
        size): the min watermark, below which allocations reclaim directly.
    watermark_scale_factor : int, optional
        ``vm.watermark_scale_factor``, 1..3000 (default 10, i.e. 0.1% of
        memory): the gap from min to low and from low to high, where kswapd
        wakes and where it stops.
    overcommit : int, optional
        ``vm.overcommit_memory``: 0 heuristic (default), 1 always, 2 strict.
    overcommit_ratio : int, optional
        ``vm.overcommit_ratio`` in percent for mode 2 (default 50).

    Raises
    ------
    ValueError
        A malformed size, an unknown index or policy, a value out of range.

    Examples
    --------
    >>> sim = Simulator(memory="64MiB", swap="64MiB", policy="clock")
    >>> p = sim.spawn(layout="default")
    """
    def __init__(
        self,
        memory: Size | None = None,
        *,
        vma_index: str | None = None,
        stack_rlimit: Size | None = None,
        stack_guard_gap: Size | None = None,
        max_map_count: int | None = None,
        memlock_rlimit: Size | None = None,
        fault_around_bytes: Size | None = None,
        read_ahead_kb: int | None = None,
        swap: Size | None = None,
        policy: str | None = None,
        resident_limit: int | None = None,
        overcommit: int = 0,
        overcommit_ratio: int = 50,
        swappiness: int | None = None,
        min_free_kbytes: int | None = None,
        watermark_scale_factor: int | None = None,
    ) -> None: ...
    def create_file(self, size: Size, name: str | None = None, *, read_ahead_kb: int | None = None) -> File:
        """Create a regular file, for ``Process.mmap(file=...)``.

        Parameters
        ----------
        size : int or str
            The file's size in bytes (int or a string such as ``"64KiB"``).
        name : str, optional
            Its path, shown in ``maps()`` (default ``"/tmp/vmsim-file"``).
        read_ahead_kb : int, optional
            The readahead window of this file's device in KiB (default: the
            simulator's `read_ahead_kb`).

        Returns
        -------
        File
            A handle; the file goes once no handle and no mapping holds it.
        """
    def lru_gen(self) -> list[dict[str, Any]]:
        """The multi-gen LRU's generations, as /sys/kernel/debug/lru_gen lists them.

        Returns
        -------
        list of dict
            One per generation of every memory cgroup's lruvec, oldest first:
            ``memcg`` (its path), ``seq`` (the generation number), ``anon`` and
            ``file`` (pages in it), and ``tiers``: the refault feedback of
            tiers 0 to 3 as ``lru_gen_full`` shows it, a dict per tier with
            ``anon`` and ``file`` dicts: at the youngest generation the
            controller's averages (``avg_refaulted``, ``avg_total``), at the
            oldest generation of a type the counts since it became the oldest
            (``refaulted``, ``evicted``, ``protected``), elsewhere empty.

        Raises
        ------
        ValueError
            Under a policy other than ``"mglru"``.
        """
    def cgroup(
        self,
        name: str,
        *,
        max: Size | None = None,
        high: Size | None = None,
        low: Size | None = None,
        swap_max: Size | None = None,
        parent: Cgroup | None = None,
    ) -> Cgroup:
        """Create a memory cgroup (cgroup v2 semantics; needs ``policy="linux"`` or ``"mglru"``).

        Parameters
        ----------
        name : str
            Its name: one path component, unique among its siblings.
        max : int or str, optional
            ``memory.max``: the hard limit. A charge past it reclaims the
            group's own pages; if that cannot make room, the OOM killer kills
            the group's largest process. None or ``"max"``: no limit.
        high : int or str, optional
            ``memory.high``: past it the group is reclaimed back under it
            (``events()["high"]``; what stays over counts in `Cgroup.throttled`).
        low : int or str, optional
            ``memory.low``: while its usage is within it, reclaim from outside
            (the machine, an ancestor at its limit) leaves it alone unless
            nothing else can go (``events()["low"]``).
        swap_max : int or str, optional
            ``memory.swap.max``: at most this much of its memory in swap.
        parent : Cgroup, optional
            The group it is made in (default: the root).

        Returns
        -------
        Cgroup

        Raises
        ------
        ValueError
            A bad name or size, or a policy other than ``"linux"``.
        OSError
            EEXIST when a sibling has the name.
        """
    def spawn(self, layout: str | None = None, *, cgroup: Cgroup | None = None) -> Process:
        """Start a new process.

        Parameters
        ----------
        layout : str, optional
            ``None`` for an empty address space, or ``"default"`` for an ELF-like
            process: text and data of ``/usr/bin/a.out``, a heap (brk, empty until
            it grows), an mmap area below ``mmap_base`` and an 8 MiB-limited stack.

        cgroup : Cgroup, optional
            The memory cgroup it runs in (default: the root).

        Returns
        -------
        Process
            The new process's first task.
        """
    def counters(self) -> SimCounters:
        """Machine-wide counters.

        Returns
        -------
        dict
            Frames (``frames_total``, ``frames_free``, ``frames_used``), kernel pages
            (``pt_pages``, ``slab_pages``, ``kernel_pages``), ``processes``, ``tasks``,
            page-cache ``cache_hits``/``cache_misses``, ``writebacks``,
            ``readahead_pages`` (pages readahead read besides the faulting ones)
            and ``readahead_unused`` (those no fault has mapped: wasted reads while
            they stay unused), swap
            (``swap_total``, ``swap_used``, ``swap_ins``, ``swap_outs``), reclaim
            (``reclaim_scans``, ``evictions``), ``min_flt``/``maj_flt`` of every task
            that ever ran, and ``faults``: accesses per `Outcome` name.
        """
    def drop_caches(self, mode: int) -> int:
        """Drop caches, as writing to ``/proc/sys/vm/drop_caches``.

        Parameters
        ----------
        mode : int
            1: the clean page-cache pages of files no process maps; 2: reclaimable
            slab objects (the simulated kernel keeps none); 3: both. Dirty pages stay.

        Returns
        -------
        int
            Pages dropped.
        """
    def meminfo(self) -> MemInfo:
        """The machine's memory in kB, as ``/proc/meminfo``: the same as ``kernel.meminfo()``.

        Returns
        -------
        dict
            ``MemTotal``, ``MemFree``, the LRU lists (``Active(anon)``,
            ``Inactive(file)``, ``Unevictable``, ``Mlocked`` ...), ``SwapCached``,
            ``Dirty``, ``PageTables``, ``Slab``, ``Committed_AS`` and the rest.
        """
    def vmstat(self) -> VmStat:
        """Event counters under the names ``/proc/vmstat`` gives them.

        Returns
        -------
        dict
            ``nr_free_pages``, ``nr_page_table_pages``, ``nr_slab_unreclaimable``
            (pages), ``pgfault`` (every counted fault, minor and major, as Linux
            counts it), ``pgmajfault``, ``pswpin``, ``pswpout``; and Linux
            reclaim's own (zero under the textbook policies, whose scans and
            evictions ``counters()`` gives): the LRU list sizes
            ``nr_{in,}active_{anon,file}``, ``nr_unevictable``, ``nr_mlock``,
            ``pgscan_kswapd``/``_direct``, ``pgsteal_kswapd``/``_direct``,
            ``pgscan_anon``/``_file``, ``pgsteal_anon``/``_file``, ``pgrefill``,
            ``pgactivate``, ``pgdeactivate``, ``allocstall_normal``,
            ``pageoutrun``, ``kswapd_low_wmark_hit_quickly``,
            ``workingset_refault_{anon,file}``, ``workingset_activate_*``,
            ``workingset_restore_*``, ``workingset_nodereclaim``,
            ``unevictable_pgs_culled``, ``unevictable_pgs_mlocked``,
            ``unevictable_pgs_munlocked``, ``oom_kill``.
        """
    def check(self) -> None:
        """Verify every invariant of the simulation.

        Frame reference and map counts against the page tables, VMA index
        against the VMA list, free lists, page cache, swap, policy state.

        Raises
        ------
        InvariantError
            Naming the first invariant that does not hold.
        """
    def pids(self) -> list[int]:
        """Ids of the live tasks.

        Returns
        -------
        list of int
        """
    @property
    def kernel(self) -> Kernel:
        """The kernel's allocators, as a kernel module would call them.

        Buddy pages, kmalloc and slab caches, vmalloc and kobjects: the same
        allocators the simulation takes its own page tables and VMAs from.
        """
    def leak_check(self) -> list[LiveAllocation]:
        """Every kernel allocation still live.

        Returns
        -------
        list of dict
            ``addr``, ``size``, ``kind`` (the allocator) and ``site`` (the call
            that made it) per allocation.
        """
    def trace_release(self, on: bool) -> None:
        """Record the release route of every teardown from now on.

        Parameters
        ----------
        on : bool
            Start (True) or stop (False) recording; drain with `release_events`.
        """
    def release_events(self) -> list[ReleaseEvent]:
        """The release events recorded since the last call.

        Returns
        -------
        list of tuple of (str, str)
            ``(event, detail)`` pairs in order, e.g. ``("exit_mmap", "...")``.
        """
    @property
    def memory(self) -> int:
        """Physical memory in bytes."""
    @property
    def vma_index(self) -> str:
        """The name of the VMA index this simulator uses."""
    @property
    def read_ahead_kb(self) -> int:
        """The readahead window files get, in KiB (the device's ``read_ahead_kb``)."""
    @property
    def swap(self) -> int:
        """Swap space in bytes (0: none)."""
    @property
    def policy(self) -> str | None:
        """The replacement policy's name, or None when none was given."""
    @property
    def resident_limit(self) -> int | None:
        """The cap on resident user pages, or None."""
    def _repr_html_(self) -> str: ...

class Process:
    """A task of a simulated process (`Simulator.spawn`, `fork`, `clone_thread`).

    Every method is a system call or an access made by this task; once the
    task has exited they raise `ProcessExitedError`. Addresses are ints,
    sizes ints or strings such as ``"64KiB"``; failed system calls raise
    `OSError` with Linux's errno.
    """
    @property
    def pid(self) -> int:
        """This task's id."""
    @property
    def tgid(self) -> int:
        """The thread-group id: the pid of the process this task belongs to."""
    @property
    def alive(self) -> bool:
        """Whether this task is still running."""
    @property
    def cgroup(self) -> Cgroup | None:
        """The memory cgroup the process charges (None: the root)."""
    def move_to(self, cgroup: Cgroup | None) -> None:
        """Move the process (every thread of it) to a memory cgroup.

        As in cgroup v2, what it has charged stays with its old group; the
        pages, swap and kernel memory it allocates from now on go to the new one.

        Parameters
        ----------
        cgroup : Cgroup or None
            The group (None: the root).
        """
    @property
    def oom_score_adj(self) -> int:
        """``/proc/pid/oom_score_adj``, -1000..1000 (default 0, inherited on fork).

        Added to the OOM killer's badness as a fraction (per mille) of the
        memory it weighs; -1000 means never killed.
        """
    @oom_score_adj.setter
    def oom_score_adj(self, value: int) -> None:
        """``/proc/pid/oom_score_adj``, -1000..1000 (default 0, inherited on fork).

        Added to the OOM killer's badness as a fraction (per mille) of the
        memory it weighs; -1000 means never killed.
        """
    @property
    def thread_stack(self) -> tuple[int, int] | None:
        """``(low, high)`` of the stack `clone_thread` mapped for this thread, else None."""
    def mmap(
        self,
        length: Size,
        prot: str = "rw",
        flags: str | None = None,
        addr: int | None = None,
        *,
        fixed: bool = False,
        fixed_noreplace: bool = False,
        file: File | None = None,
        offset: int = 0,
    ) -> int:
        """Map memory, as mmap(2).

        Parameters
        ----------
        length : int or str
            Bytes to map (rounded up to whole pages).
        prot : str, default "rw"
            Any of ``r``, ``w``, ``x`` (e.g. ``"rw"``), or ``"none"``.
        flags : str, optional
            ``|``-separated words: ``private`` or ``shared``, ``anonymous``,
            ``growsdown``, ``noreserve``, ``populate`` (MAP_POPULATE: the pages are
            faulted in, and counted, before mmap returns: a write fault in a private
            writable mapping, else a read fault); ``stack`` is accepted and changes
            nothing. Default ``"private|anonymous"``, or ``"private"`` with a file.
        addr : int, optional
            A hint (or the exact address with `fixed`).
        fixed : bool, default False
            MAP_FIXED: map exactly at `addr`, replacing what is there.
        fixed_noreplace : bool, default False
            MAP_FIXED_NOREPLACE: map exactly at `addr`, or fail with EEXIST.
        file : File, optional
            Map this file (of the same simulator).
        offset : int, optional
            Offset into `file`, a multiple of the page size.

        Returns
        -------
        int
            The start address of the mapping.

        Raises
        ------
        OSError
            ENOMEM, EINVAL, EEXIST... as Linux returns them.
        """
    def trace_span_mapped(self, first: int, last: int) -> bool:
        """Whether mappings cover every 2 MiB region from `first` to `last`.

        Parameters
        ----------
        first : int
            The lowest address of the span.
        last : int
            The highest address of the span.

        Returns
        -------
        bool
            True when `map_trace_regions` has nothing to do in that span.
        """
    def map_trace_regions(self, addrs: npt.NDArray[np.uint64] | Sequence[int]) -> int:
        """Map the regions a raw address trace touches, for replaying it.

        Parameters
        ----------
        addrs : numpy.ndarray of uint64 or sequence of int
            The trace's addresses.

        Returns
        -------
        int
            How many 2 MiB regions were mapped (private anonymous, rwx): those
            the addresses touch that no mapping overlaps yet.
        """
    def msync(self, addr: int, length: Size, flags: str = "sync") -> int:
        """Write back the dirty pages of shared file mappings in a range, as msync(2).

        Parameters
        ----------
        addr : int
            Start of the range, page aligned.
        length : int or str
            Bytes in the range.
        flags : str, default "sync"
            ``"sync"`` (MS_SYNC: write back now, the pages clean and write-protected
            again), ``"async"`` (MS_ASYNC: nothing, as Linux since 2.6.19), either
            with ``"|invalidate"`` (EBUSY on mlocked memory).

        Returns
        -------
        int
            How many pages were written back.
        """
    def munmap(self, addr: int, length: Size) -> None:
        """Unmap a range, as munmap(2); empty page tables go as ``free_pgtables`` frees them.

        Parameters
        ----------
        addr : int
            Start of the range, page aligned.
        length : int or str
            Bytes in the range.
        """
    def mprotect(self, addr: int, length: Size, prot: str) -> None:
        """Change the protection of a range, as mprotect(2) (splitting and merging VMAs).

        Parameters
        ----------
        addr : int
            Start of the range, page aligned.
        length : int or str
            Bytes in the range.
        prot : str
            Any of ``r``, ``w``, ``x``, or ``"none"``.
        """
    def madvise(self, addr: int, length: Size, advice: str) -> None:
        """Advise the kernel about a range, as madvise(2).

        Parameters
        ----------
        addr : int
            Start of the range, page aligned.
        length : int or str
            Bytes in the range.
        advice : str
            ``"normal"``, ``"sequential"`` (file faults read ahead, not around),
            ``"random"`` (file faults read only their page), ``"willneed"`` (read
            the file pages of the range into the cache now),
            ``"dontfork"``, ``"dofork"``, ``"dontneed"`` (drop the pages: a later
            access faults again, on zeroes for anonymous memory), ``"free"``
            (private anonymous pages mapped once may be discarded by reclaim, no
            swap, until written again; swapped-out ones are dropped now), ``"cold"``
            (their accessed bits cleared; both EINVAL on mlocked memory),
            ``"pageout"`` (pages mapped only here reclaimed now: to swap, or out of
            the page cache), ``"remove"`` (punch a hole in the shared object behind a
            shared writable mapping: its pages there go everywhere, a later access
            finds zeroes; EACCES on other mappings),
            ``"populate_read"`` or ``"populate_write"`` (fault every page in now, as
            a read or a write would, the faults counted; EINVAL where the mapping
            does not allow the access, EFAULT where a file ends, ENOMEM at a hole).
        """
    def brk(self, new_end: int | None = None) -> int:
        """Set the program break, as brk(2).

        Parameters
        ----------
        new_end : int, optional
            The new break; omitted, the current break is returned unchanged.

        Returns
        -------
        int
            The new break, or the old one if the request was refused.
        """
    def access(self, addr: int, op: Op | None = None) -> Outcome:
        """Make one memory access.

        Parameters
        ----------
        addr : int
            The virtual address.
        op : {"r", "w", "x"} or int, default "r"
            Read, write or instruction fetch (or 0, 1, 2).

        Returns
        -------
        Outcome
            What happened: a hit, which fault, or which signal.
        """
    def access_traced(self, addr: int, op: Op | None = None) -> tuple[Outcome, list[str]]:
        """Make one memory access and say why it went the way it did.

        Parameters
        ----------
        addr : int
            The virtual address.
        op : {"r", "w", "x"} or int, default "r"
            Read, write or instruction fetch (or 0, 1, 2).

        Returns
        -------
        tuple of (Outcome, list of str)
            The outcome and the kernel's steps, one sentence each.
        """
    def access_batch(
        self,
        addrs: npt.NDArray[np.uint64] | Sequence[int],
        ops: npt.NDArray[np.uint8] | Sequence[int] | Op | None = None,
    ) -> npt.NDArray[np.uint8]:
        """Make many accesses in one call, without the GIL.

        Contiguous arrays are read in place (do not write to them from another
        thread during the call); strided arrays and lists are copied first.

        Parameters
        ----------
        addrs : numpy.ndarray of uint64 or sequence of int
            The virtual addresses, in order (at most 2**30 a call).
        ops : numpy.ndarray of uint8, sequence of int, or {"r", "w", "x"}, default "r"
            One op code per address (0 read, 1 write, 2 exec), or one op for all.

        Returns
        -------
        numpy.ndarray of uint8
            The `Outcome` code of each access.
        """
    def access_batch_sampled(
        self,
        addrs: npt.NDArray[np.uint64] | Sequence[int],
        ops: npt.NDArray[np.uint8] | Sequence[int] | Op | None,
        first: int,
        every: int,
    ) -> tuple[npt.NDArray[np.uint8], list[tuple[int, int, int]]]:
        """`access_batch`, sampling the process as it goes: a run's timeline.

        A sample is taken after the first `first` accesses, every `every` accesses
        after that, and at the end. The batch runs in pieces between samples, which
        changes nothing, except under the ``opt`` policy, whose known future is the
        running piece: sample such a batch only at its end (``first=len(addrs)``).

        Parameters
        ----------
        addrs : numpy.ndarray of uint64 or sequence of int
            The virtual addresses, in order.
        ops : numpy.ndarray of uint8, sequence of int, or {"r", "w", "x"}
            One op code per address, or one op for all.
        first : int
            Accesses before the first sample (at least 1).
        every : int
            Accesses between samples after that (at least 1).

        Returns
        -------
        tuple of (numpy.ndarray of uint8, list of tuple of (int, int, int))
            The outcome codes, and per sample ``(accesses of the batch so far,
            resident pages of the process, counted faults of the batch so far)``.
        """
    def mremap(
        self, old_addr: int, old_length: Size, new_length: Size, flags: str | None = None, new_addr: int | None = None
    ) -> int:
        """Resize or move a mapping, as mremap(2).

        Shrinking unmaps the tail. Growing extends the mapping in place when the
        space after it is free; else, with ``maymove``, the mapping moves to a new
        address with its page-table entries (pages and swap entries move, they are
        not copied: the moved pages take no fault). ``fixed`` moves it to
        `new_addr`, replacing what is there; ``dontunmap`` moves the pages and
        leaves the old range mapped and empty.

        Parameters
        ----------
        old_addr : int
            Start of the range, page aligned.
        old_length : int or str
            Bytes of the range, within one mapping.
        new_length : int or str
            Its new length in bytes.
        flags : str, optional
            ``|``-separated: ``maymove``, ``fixed``, ``dontunmap`` (both need
            ``maymove``; ``dontunmap`` cannot resize).
        new_addr : int, optional
            Where ``fixed`` puts the mapping.

        Returns
        -------
        int
            The mapping's address after the call.

        Raises
        ------
        OSError
            EINVAL for bad flags, addresses or lengths; EFAULT when the old range
            is not inside one mapping; ENOMEM when it cannot grow in place without
            ``maymove``; EAGAIN past RLIMIT_MEMLOCK for a locked mapping.
        """
    def mlock(self, addr: int, length: Size, *, onfault: bool = False) -> None:
        """Lock a range in memory, as mlock(2) (``onfault``: mlock2 with MLOCK_ONFAULT).

        The range is rounded out to whole pages, its VMAs get VM_LOCKED, and its
        pages are faulted in now (counted, as ``get_user_pages`` faults are: a write
        in a private writable mapping, else a read) unless ``onfault``. Locked pages
        are never reclaimed. A forked child does not inherit the lock.

        Parameters
        ----------
        addr : int
            Start of the range (rounded down to its page).
        length : int or str
            Bytes in the range.
        onfault : bool, default False
            Lock only what faults in later (MLOCK_ONFAULT).

        Raises
        ------
        OSError
            EPERM when RLIMIT_MEMLOCK is 0, ENOMEM past it or at a hole (or when a
            page cannot be faulted in, as on PROT_NONE), EAGAIN out of memory.
        """
    def munlock(self, addr: int, length: Size) -> None:
        """Unlock a range, as munlock(2).

        Parameters
        ----------
        addr : int
            Start of the range (rounded down to its page).
        length : int or str
            Bytes in the range.
        """
    def mlockall(self, flags: str) -> None:
        """Lock the whole address space, as mlockall(2).

        Parameters
        ----------
        flags : str
            ``|``-separated: ``current`` (every mapping now; ENOMEM when the
            address space is larger than RLIMIT_MEMLOCK), ``future`` (every later
            mapping, populated as it is made; EAGAIN from mmap past the limit),
            ``onfault`` (populate nothing now).
        """
    def munlockall(self) -> None:
        """Unlock every mapping and forget ``mlockall("future")``, as munlockall(2)."""
    def fork(self) -> Process:
        """Fork this process, as fork(2).

        VMAs are copied (except ``dontfork`` ones), private pages are shared
        write-protected (copy on write), shared memory stays shared.

        Returns
        -------
        Process
            The child.

        Raises
        ------
        OSError
            ENOMEM when the copy cannot be charged or allocated.
        """
    def clone_thread(self, stack_size: Size | None = None) -> Process:
        """Start a thread that shares this address space.

        Parameters
        ----------
        stack_size : int or str, optional
            Size of the pthread-style stack mapped for it, with a guard page
            (default 8 MiB); 0 maps none.

        Returns
        -------
        Process
            The new task (its `thread_stack` is the stack mapped).
        """
    def exit(self, trace: bool = False) -> list[ReleaseEvent] | None:
        """This task exits; the address space goes with its last task.

        Parameters
        ----------
        trace : bool, default False
            Return the release route (``do_exit`` ... ``free_mm``).

        Returns
        -------
        list of tuple of (str, str) or None
            The release events when `trace` is true.
        """
    def exit_group(self) -> None:
        """Every thread of this process exits, as exit_group(2)."""
    def threads(self) -> list[int]:
        """Ids of this process's live threads.

        Returns
        -------
        list of int
        """
    def smaps(self) -> list[Smaps]:
        """What each VMA holds in memory, as ``/proc/PID/smaps`` counts it.

        Rss counts present pages with a page behind them (not the zero page); Pss
        shares each page among its mappings; a page mapped once is private, else
        shared; dirty when the PTE or the page is; Swap and SwapPss count swap
        entries. Locked, LazyFree and AnonHugePages stay 0 (not modelled yet).

        Returns
        -------
        list of dict
            Per VMA, lowest first: ``start``, ``end``, ``prot``, ``flags``, then the
            fields in kB as Linux prints them: ``Size``, ``KernelPageSize``,
            ``MMUPageSize``, ``Rss``, ``Pss``, ``Pss_Dirty``, ``Shared_Clean``,
            ``Shared_Dirty``, ``Private_Clean``, ``Private_Dirty``, ``Referenced``,
            ``Anonymous``, ``LazyFree``, ``AnonHugePages``, ``Swap``, ``SwapPss``,
            ``Locked``.
        """
    def smaps_text(self) -> str:
        """``/proc/PID/smaps`` as text: each VMA's maps line, then its fields in kB.

        Returns
        -------
        str
        """
    def smaps_rollup(self) -> SmapsRollup:
        """``/proc/PID/smaps_rollup``: the smaps fields summed over every VMA.

        Returns
        -------
        dict
            ``Rss``, ``Pss``, ``Pss_Dirty``, ``Pss_Anon``, ``Pss_File``,
            ``Pss_Shmem``, ``Shared_Clean``, ``Shared_Dirty``, ``Private_Clean``,
            ``Private_Dirty``, ``Referenced``, ``Anonymous``, ``LazyFree``, ``Swap``,
            ``SwapPss``, ``Locked``, in kB.
        """
    def pagemap(self, addr: int, length: Size) -> npt.NDArray[np.uint64]:
        """Page-table entries of a range, as ``/proc/PID/pagemap`` gives them.

        One 64-bit entry per page: ``PM_PRESENT`` (bit 63) with the frame number in
        bits 0-54 (``PM_PFN_MASK``; Linux shows it to root only), ``PM_SWAP`` (bit 62)
        with the swap offset from bit 5, ``PM_FILE`` (bit 61: a file or shmem page),
        ``PM_MMAP_EXCLUSIVE`` (bit 56: mapped once). The zero page is present with
        no other bit; soft-dirty is not modelled.

        Parameters
        ----------
        addr : int
            Start of the range (rounded down to its page).
        length : int or str
            Bytes in the range (rounded up to whole pages).

        Returns
        -------
        numpy.ndarray of uint64
            One entry per page; 0 where nothing is mapped.
        """
    def maps(self) -> str:
        """The address space in ``/proc/PID/maps`` format.

        Returns
        -------
        str
        """
    def vmas(self) -> list[tuple[int, int, str, str]]:
        """The VMAs, lowest first.

        Returns
        -------
        list of tuple of (int, int, str, str)
            ``(start, end, prot, flags)``, flags like ``"private"`` or
            ``"shared|growsdown"``.
        """
    def layout(self) -> ProcessLayout:
        """Where the kernel placed this process's areas.

        Returns
        -------
        dict
            ``start_brk``, ``brk``, ``start_stack`` and ``mmap_base``.
        """
    def counters(self) -> ProcessCounters:
        """This process's counters.

        Returns
        -------
        dict
            ``min_flt``/``maj_flt`` (its own, as getrusage(RUSAGE_SELF)),
            ``cmin_flt``/``cmaj_flt`` (its reaped children's), RSS in pages
            (``rss_anon``, ``rss_file``, ``rss_shmem``), ``swap`` (entries now),
            ``swap_ins``, ``swap_outs``, page-cache ``cache_hits``/``cache_misses``,
            ``pt_pages``, ``vma_count``, ``threads`` and ``locked_vm`` (pages of
            mlocked mappings, VmLck).
        """
    def _repr_html_(self) -> str: ...
