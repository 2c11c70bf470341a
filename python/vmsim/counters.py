"""The shapes of what the counting calls return, as TypedDicts for type
checkers, and `Counters`, the dict they return at run time (it renders as a
table in Jupyter).

>>> c = sim.counters()
>>> c["frames_free"] / c["frames_total"]   # both typed int under mypy
"""

from __future__ import annotations

from typing import TypedDict


class Counters(dict):
    """A dict of named counters that Jupyter shows as a table."""

    def _repr_html_(self) -> str:
        from vmsim.display import mapping_table

        return mapping_table(self)


class SimCounters(TypedDict):
    """`Simulator.counters()`: machine-wide counts (pages unless named otherwise)."""

    frames_total: int
    frames_free: int
    frames_used: int
    pt_pages: int
    slab_pages: int
    kernel_pages: int
    processes: int
    tasks: int
    cache_hits: int
    cache_misses: int
    writebacks: int
    readahead_pages: int
    readahead_unused: int
    swap_total: int
    swap_used: int
    swap_ins: int
    swap_outs: int
    reclaim_scans: int
    evictions: int
    min_flt: int
    maj_flt: int
    faults: dict[str, int]


class ProcessCounters(TypedDict):
    """`Process.counters()`: one process's counts (RSS and swap in pages)."""

    min_flt: int
    maj_flt: int
    cmin_flt: int
    cmaj_flt: int
    rss_anon: int
    rss_file: int
    rss_shmem: int
    swap: int
    swap_ins: int
    swap_outs: int
    cache_hits: int
    cache_misses: int
    pt_pages: int
    vma_count: int
    threads: int
    locked_vm: int


class VmStat(TypedDict):
    """`Simulator.vmstat()`: the counters under /proc/vmstat's names."""

    nr_free_pages: int
    nr_page_table_pages: int
    nr_slab_unreclaimable: int
    pgfault: int
    pgmajfault: int
    pswpin: int
    pswpout: int
    pgscan: int
    pgsteal: int


class MemInfo(TypedDict):
    MemTotal: int
    MemFree: int
    PageTables: int
    Slab: int
    VmallocUsed: int
    AllocPages: int
    Committed_AS: int
    CommitLimit: int


"""`Kernel.meminfo()`: totals in kB, as /proc/meminfo shows them."""


class Layout(TypedDict):
    """`Process.layout()`: where the kernel placed the process's areas."""

    start_brk: int
    brk: int
    start_stack: int
    mmap_base: int


class SlabInfo(TypedDict):
    """One row of `Kernel.slabinfo()`, as /proc/slabinfo."""

    name: str
    active_objs: int
    num_objs: int
    objsize: int
    objperslab: int
    pagesperslab: int
    num_slabs: int


class LiveAllocation(TypedDict):
    """One row of `Simulator.leak_check()`."""

    addr: int
    size: int
    kind: str
    site: str


class Smaps(TypedDict):
    """One record of `Process.smaps()`: a VMA and what it holds, in kB."""

    start: int
    end: int
    prot: str
    flags: str
    Size: int
    KernelPageSize: int
    MMUPageSize: int
    Rss: int
    Pss: int
    Pss_Dirty: int
    Shared_Clean: int
    Shared_Dirty: int
    Private_Clean: int
    Private_Dirty: int
    Referenced: int
    Anonymous: int
    LazyFree: int
    AnonHugePages: int
    Swap: int
    SwapPss: int
    Locked: int


class SmapsRollup(TypedDict):
    """`Process.smaps_rollup()`: the smaps fields summed over every VMA, in kB."""

    Rss: int
    Pss: int
    Pss_Dirty: int
    Pss_Anon: int
    Pss_File: int
    Pss_Shmem: int
    Shared_Clean: int
    Shared_Dirty: int
    Private_Clean: int
    Private_Dirty: int
    Referenced: int
    Anonymous: int
    LazyFree: int
    Swap: int
    SwapPss: int
    Locked: int
