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
    nr_inactive_anon: int
    nr_active_anon: int
    nr_inactive_file: int
    nr_active_file: int
    nr_unevictable: int
    nr_mlock: int
    nr_page_table_pages: int
    nr_slab_unreclaimable: int
    workingset_nodereclaim: int
    workingset_refault_anon: int
    workingset_refault_file: int
    workingset_activate_anon: int
    workingset_activate_file: int
    workingset_restore_anon: int
    workingset_restore_file: int
    pgfault: int
    pgmajfault: int
    pswpin: int
    pswpout: int
    pgactivate: int
    pgdeactivate: int
    pgrefill: int
    pgscan_kswapd: int
    pgscan_direct: int
    pgsteal_kswapd: int
    pgsteal_direct: int
    pgscan_anon: int
    pgscan_file: int
    pgsteal_anon: int
    pgsteal_file: int
    kswapd_low_wmark_hit_quickly: int
    pageoutrun: int
    allocstall_normal: int
    unevictable_pgs_culled: int
    unevictable_pgs_mlocked: int
    unevictable_pgs_munlocked: int
    oom_kill: int


# `Simulator.meminfo()` and `Kernel.meminfo()`: figures in kB, as /proc/meminfo shows them
# (the functional form: some names hold parentheses).
MemInfo = TypedDict(
    "MemInfo",
    {
        "MemTotal": int,
        "MemFree": int,
        "SwapCached": int,
        "Active": int,
        "Inactive": int,
        "Active(anon)": int,
        "Inactive(anon)": int,
        "Active(file)": int,
        "Inactive(file)": int,
        "Unevictable": int,
        "Mlocked": int,
        "Dirty": int,
        "Writeback": int,
        "PageTables": int,
        "Slab": int,
        "VmallocUsed": int,
        "AllocPages": int,
        "Committed_AS": int,
        "CommitLimit": int,
    },
)


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
