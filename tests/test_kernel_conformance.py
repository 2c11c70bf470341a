"""Conformance with the real kernel: the same small workloads run for real on
the host (counted with getrusage min_flt) and in vmsim must give the same
number of faults; the same bad accesses must get the same si_code.

Linux only. The faults the harness itself causes are measured (the same
touching code run over memory that is already faulted in) and subtracted.
Transparent huge pages are turned off for the measured mappings.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import platform
import resource
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import vmsim

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="needs a Linux kernel")

PAGE = mmap.PAGESIZE
N = 256  # pages per workload


def kernel_release() -> tuple:
    nums = []
    for part in platform.release().split(".")[:2]:
        digits = "".join(ch for ch in part if ch.isdigit())
        nums.append(int(digits or 0))
    return tuple(nums)


# This thread's faults only: another thread of the test process (a pool or
# cluster left from an earlier test) must not add its own to a measurement.
RUSAGE = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)


def min_flt() -> int:
    return resource.getrusage(RUSAGE).ru_minflt


class Host:
    """An anonymous private mapping on the host with one byte per page in view."""

    def __init__(self, npages: int = N):
        self.m = mmap.mmap(-1, npages * PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        if hasattr(mmap, "MADV_NOHUGEPAGE"):
            self.m.madvise(mmap.MADV_NOHUGEPAGE)
        self.pages = np.frombuffer(self.m, dtype=np.uint8)[::PAGE]

    def read(self) -> int:
        return int(self.pages.sum())

    def write(self, value: int = 1) -> None:
        self.pages[:] = value

    def close(self) -> None:
        del self.pages
        self.m.close()


def counted(op, target: Host) -> int:
    """min_flt caused by op(target), less the harness's own faults.

    The code path is warmed first on a fresh, already-faulted mapping (so the
    interpreter's own first-touch and copy-on-write faults after a fork happen
    there), and the same call on that mapping afterwards measures what the
    harness alone still costs."""
    dummy = Host(N)
    dummy.write(9)
    op(dummy)
    _ = target.pages.shape  # touch the target's own objects (copy-on-write after a fork)
    before = min_flt()
    op(target)
    measured = min_flt() - before
    before = min_flt()
    op(dummy)
    overhead = min_flt() - before
    dummy.close()
    return measured - overhead


def least(measure, tries: int = 3):
    """The smallest of a few host measurements: noise on a busy host (a
    stray fault in the harness) only ever adds faults, never removes one."""
    return min(measure() for _ in range(tries))


def on_fresh_host(*ops) -> int:
    """Faults of `ops` applied in turn to one fresh host mapping."""
    h = Host()
    total = sum(counted(op, h) for op in ops)
    h.close()
    return total


def READ(h):
    return h.read()


def WRITE(h):
    h.write(1)


def sim_process():
    sim = vmsim.Simulator(memory="64MiB")
    p = sim.spawn()
    a = p.mmap(N * PAGE)
    return sim, p, np.arange(a, a + N * PAGE, PAGE, dtype=np.uint64)


def test_write_faults_on_fresh_memory():
    real = least(lambda: on_fresh_host(WRITE))
    _sim, p, addrs = sim_process()
    p.access_batch(addrs, "w")
    assert real == p.counters()["min_flt"] == N


def test_read_then_write():
    real = least(lambda: on_fresh_host(READ, WRITE))
    _sim, p, addrs = sim_process()
    p.access_batch(addrs, "r")
    p.access_batch(addrs, "w")
    assert real == p.counters()["min_flt"] == 2 * N


FORK_HELPER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static long minflt(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

static long write_all(volatile char *p, long n, char v) {
    long before = minflt();
    for (long i = 0; i < n; i++) p[i * 4096] = v;
    return minflt() - before;
}

int main(int argc, char **argv) {
    long n = atol(argv[1]);
    int pipefd[2];
    volatile char *p = mmap(NULL, n * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    madvise((void *)p, n * 4096, MADV_NOHUGEPAGE);
    write_all(p, n, 1);
    write_all(p, n, 2); /* fault in the loop's own code and stack */
    if (pipe(pipefd)) return 1;
    pid_t pid = fork();
    /* Each side first runs the measuring code on nothing: its stack page is
       copy-on-write after fork too, and that fault is the harness's own. */
    if (pid == 0) {
        write_all(p, 0, 0);
        printf("child %ld\n", write_all(p, n, 3));
        fflush(stdout);
        char c;
        if (read(pipefd[0], &c, 1) != 1) return 1; /* hold the pages until the parent has written */
        _exit(0);
    }
    write_all(p, 0, 0);
    printf("parent_child_alive %ld\n", write_all(p, n, 4));
    fflush(stdout);
    if (write(pipefd[1], "x", 1) != 1) return 1;
    waitpid(pid, NULL, 0);
    printf("parent_after_exit %ld\n", write_all(p, n, 5));
    return 0;
}
"""


def host_lines(argv: list[str], runs: int = 3) -> dict[str, tuple[int, ...]]:
    """Run a helper printing "NAME N..." lines a few times: per name the
    smallest of each number (noise on a busy host only adds faults; errnos
    and sizes are the same every run)."""
    seen: dict[str, list[tuple[int, ...]]] = {}
    for _ in range(runs):
        out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=60).stdout
        for line in out.splitlines():
            name, *values = line.split()
            seen.setdefault(name, []).append(tuple(int(v) for v in values))
    return {name: tuple(min(column) for column in zip(*rows)) for name, rows in seen.items()}


def _compile(tmp_path, name: str, source: str, *functions: str):
    """Build a C helper; `functions` (shared C code) go in after its #include
    and #define lines, before its own code."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler for the helper")
    src = tmp_path / f"{name}.c"
    lines = textwrap.dedent(source).splitlines(keepends=True)
    at = max((i + 1 for i, line in enumerate(lines) if line.startswith("#")), default=0)
    src.write_text("".join(lines[:at]) + "".join(functions) + "".join(lines[at:]))
    exe = tmp_path / name
    subprocess.run([cc, "-O1", "-o", str(exe), str(src)], check=True, capture_output=True)
    return exe


def test_fork_then_write_in_child_and_parent(tmp_path):
    """Measured in C: a Python harness would add its own copy-on-write faults
    on the interpreter's heap after fork."""
    exe = _compile(tmp_path, "forkw", FORK_HELPER)

    def run_helper() -> dict:
        out = subprocess.run([str(exe), str(N)], check=True, capture_output=True, text=True, timeout=30).stdout
        return {k: int(v) for k, v in (line.split() for line in out.splitlines())}

    runs = [run_helper() for _ in range(3)]
    real = {k: min(r[k] for r in runs) for k in runs[0]}  # noise only adds faults

    _sim, p, addrs = sim_process()
    p.access_batch(addrs, "w")
    c = p.fork()

    def faults(task, fn):
        before = task.counters()["min_flt"]
        fn()
        return task.counters()["min_flt"] - before

    simulated = {
        "child": faults(c, lambda: c.access_batch(addrs, "w")),
        "parent_child_alive": faults(p, lambda: p.access_batch(addrs, "w")),
    }
    c.exit()
    simulated["parent_after_exit"] = faults(p, lambda: p.access_batch(addrs, "w"))
    assert simulated == real
    # Both sides copied while the other still held the page; the last is a hit.
    assert simulated == {"child": N, "parent_child_alive": N, "parent_after_exit": 0}


@pytest.mark.skipif(kernel_release() < (6, 1), reason="write-bit upgrade on mprotect needs Linux 6.1+")
def test_mprotect_then_access():
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    h = Host()
    h.write()
    addr = ctypes.addressof(ctypes.c_char.from_buffer(h.m))
    assert libc.mprotect(ctypes.c_void_p(addr), N * PAGE, mmap.PROT_READ) == 0
    reads = counted(READ, h)
    assert libc.mprotect(ctypes.c_void_p(addr), N * PAGE, mmap.PROT_READ | mmap.PROT_WRITE) == 0
    writes = counted(WRITE, h)
    h.close()
    _sim, p, addrs = sim_process()
    p.access_batch(addrs, "w")
    before = p.counters()["min_flt"]
    p.mprotect(int(addrs[0]), N * PAGE, "r")
    p.access_batch(addrs, "r")
    sim_reads = p.counters()["min_flt"] - before
    p.mprotect(int(addrs[0]), N * PAGE, "rw")
    p.access_batch(addrs, "w")
    sim_writes = p.counters()["min_flt"] - before - sim_reads
    assert (reads, writes) == (sim_reads, sim_writes) == (0, 0)


def test_munmap_holes():
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    h = Host()
    addr = ctypes.addressof(ctypes.c_char.from_buffer(h.m))
    # Unmap the middle half, then touch the two remaining quarters.
    assert libc.munmap(ctypes.c_void_p(addr + N // 4 * PAGE), N // 2 * PAGE) == 0
    quarter = N // 4
    lo = np.frombuffer((ctypes.c_char * (quarter * PAGE)).from_address(addr), dtype=np.uint8)[::PAGE]
    hi = np.frombuffer((ctypes.c_char * (quarter * PAGE)).from_address(addr + 3 * quarter * PAGE), dtype=np.uint8)[
        ::PAGE
    ]

    class Halves:
        def __init__(self, a, b):
            self.a, self.b = a, b

        def write(self, value):
            self.a[:] = value
            self.b[:] = value

    dummy = Host(N)
    dummy.write(9)
    Halves(dummy.pages[:quarter], dummy.pages[quarter:]).write(1)  # warm the code path
    halves = Halves(lo, hi)
    before = min_flt()
    halves.write(1)
    real = min_flt() - before
    dummy.close()
    # The mmap object still thinks it owns the whole range: unmap the rest ourselves.
    del lo, hi, h.pages
    libc.munmap(ctypes.c_void_p(addr), quarter * PAGE)
    libc.munmap(ctypes.c_void_p(addr + 3 * quarter * PAGE), quarter * PAGE)
    _sim, p, addrs = sim_process()
    p.munmap(int(addrs[0]) + quarter * PAGE, 2 * quarter * PAGE)
    codes = p.access_batch(addrs, "w")
    assert real == p.counters()["min_flt"] == 2 * quarter
    assert int((codes == vmsim.Outcome.SEGV_MAPERR).sum()) == 2 * quarter


SEGV_HELPER = r"""
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

static sigjmp_buf env;
static volatile int code;

static void on_segv(int sig, siginfo_t *si, void *uc) {
    (void)sig; (void)uc;
    code = si->si_code;
    siglongjmp(env, 1);
}

static void try_access(const char *name, volatile char *p, char op) {
    code = 0;
    if (sigsetjmp(env, 1) == 0) {
        if (op == 'r') { volatile char c = *p; (void)c; }
        else if (op == 'w') { *p = 1; }
        else { ((void (*)(void))(uintptr_t)p)(); }
        printf("%s ok\n", name);
    } else {
        printf("%s %d\n", name, code);
    }
    fflush(stdout);
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);
    char *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *none = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *data = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *hole = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(hole, 4096);
    try_access("null", (char *)0, 'r');
    try_access("hole", hole, 'w');
    try_access("ro_write", ro, 'w');
    try_access("ro_read", ro, 'r');
    try_access("none_read", none, 'r');
    try_access("data_exec", data, 'x');
    try_access("kernel", (char *)0xffff800000000000ULL, 'r');
    try_access("noncanonical", (char *)0xdead000000000000ULL, 'r');
    return 0;
}
"""

SI_CODES = {"1": "SEGV_MAPERR", "2": "SEGV_ACCERR", "128": "SEGV_NONCANONICAL"}


def test_signal_classes_match_the_kernel(tmp_path):
    exe = _compile(tmp_path, "segv", SEGV_HELPER)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True, timeout=30).stdout
    real = {}
    for line in out.splitlines():
        name, result = line.split()
        real[name] = "OK" if result == "ok" else SI_CODES.get(result, result)

    sim = vmsim.Simulator(memory="16MiB")
    p = sim.spawn(layout="default")
    ro = p.mmap(PAGE, prot="r")
    none = p.mmap(PAGE, prot="none")
    data = p.mmap(PAGE, prot="rw")
    hole = p.mmap(PAGE, prot="r")
    p.munmap(hole, PAGE)
    cases = {
        "null": (0, "r"),
        "hole": (hole, "w"),
        "ro_write": (ro, "w"),
        "ro_read": (ro, "r"),
        "none_read": (none, "r"),
        "data_exec": (data, "x"),
        "kernel": (0xFFFF_8000_0000_0000, "r"),
        "noncanonical": (0xDEAD_0000_0000_0000, "r"),
    }
    simulated = {}
    for name, (addr, op) in cases.items():
        o = p.access(addr, op)
        simulated[name] = o.name if o.is_signal else "OK"
    assert simulated == real


# ----- file mappings ---------------------------------------------------------------------

FILE_PAGES = 512

# The fault counting the anonymous-memory helpers share: this process's minor
# faults, and those of touching (reading or writing) one byte per page.
FAULTS_C = r"""
static long flt(void) { struct rusage u; getrusage(RUSAGE_SELF, &u); return u.ru_minflt; }
static long touch(char *m, long n, int write) {
    long before = flt();
    for (long i = 0; i < n; i++) { if (write) m[i * P] = 1; else (void)*(volatile char *)(m + i * P); }
    return flt() - before;
}
"""

# A C function the file helpers share: a file of `pages` pages, written,
# synced, dropped from the cache, then read back one page at a time with
# readahead off, so it is cached as single pages (order-0 folios: 6.18's
# whole-large-folio fault-around does not apply). Returns the descriptor, -1
# on failure.
CACHED_FILE_C = r"""
static int cached_file(const char *path, long pages) {
    char buf[4096];
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    memset(buf, 7, sizeof buf);
    for (long i = 0; i < pages; i++) if (write(fd, buf, 4096) != 4096) return -1;
    fsync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
    for (long i = 0; i < pages; i++) if (pread(fd, buf, 4096, i * 4096) != 4096) return -1;
    return fd;
}
"""

FAULT_AROUND_HELPER = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* fa FILE START N PGOFF TOUCH: cache FILE's 512 pages as single pages, map N
   of them (from page PGOFF) read-only at START pages past a 2 MiB boundary,
   read page TOUCH, and print which pages of the mapping are present. */
int main(int argc, char **argv) {
    const long P = 4096, pages = 512;
    long start = atol(argv[2]), n = atol(argv[3]), pgoff = atol(argv[4]), touch = atol(argv[5]);
    int fd = cached_file(argv[1], pages);
    if (fd < 0) return 1;
    char *res = mmap(NULL, 8 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uintptr_t base = ((uintptr_t)res + (2 << 20) - 1) & ~((uintptr_t)(2 << 20) - 1);
    char *m = mmap((void *)(base + start * P), n * P, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, pgoff * P);
    if (m == MAP_FAILED) return 1;
    volatile char c = m[touch * P];
    (void)c;
    unsigned char vec[512];
    mincore(m, n * P, vec);
    int pm = open("/proc/self/pagemap", O_RDONLY);
    long cached = 0;
    for (long i = 0; i < n; i++) cached += vec[i] & 1;
    printf("%ld", cached);
    for (long i = 0; i < n; i++) {
        uint64_t e;
        if (pread(pm, &e, 8, ((uintptr_t)(m + i * P) / P) * 8) != 8) return 1;
        if (e >> 63) printf(" %ld", i);
    }
    printf("\n");
    return 0;
}
"""


@pytest.mark.parametrize(
    ("start", "n", "pgoff", "touch"),
    [
        (5, 64, 0, 0),  # the mapping starts mid-window: the window moves up to it, keeping its 16 pages
        (5, 64, 0, 3),  # a fault inside that first partial window
        (0, 10, 0, 9),  # the mapping ends mid-window
        (509, 10, 0, 0),  # the window stops at the end of the page table
        (0, 64, 3, 20),  # a file offset does not move the window (it follows the address)
        (0, 64, 0, 40),  # an aligned window in the middle
    ],
)
def test_fault_around_maps_the_pages_the_kernel_maps(tmp_path, start, n, pgoff, touch):
    """Which pages one read fault maps (/proc/self/pagemap on the host,
    `Process.pagemap` in vmsim), every page of the file already cached."""
    exe = _compile(tmp_path, "fa", FAULT_AROUND_HELPER, CACHED_FILE_C)
    data = tmp_path / "fa.dat"

    def host() -> list[int]:
        out = subprocess.run([str(exe), str(data), str(start), str(n), str(pgoff), str(touch)], check=True,
                             capture_output=True, text=True, timeout=30).stdout.split()  # fmt: skip
        assert int(out[0]) == n, "the host did not keep the file cached"
        return [int(x) for x in out[1:]]

    real = min((host() for _ in range(3)), key=len)  # a stray fault elsewhere never removes a page

    sim = vmsim.Simulator(memory="64MiB")  # fault_around_bytes 64 KiB, as the host's default
    f = sim.create_file(FILE_PAGES * PAGE)
    reader = sim.spawn()
    r = reader.mmap(FILE_PAGES * PAGE, prot="r", flags="shared", file=f)
    reader.access_batch(np.arange(r, r + FILE_PAGES * PAGE, PAGE, dtype=np.uint64), "r")
    reader.exit()
    assert f.cached_pages == FILE_PAGES
    p = sim.spawn()
    base = 0x7F00_0000_0000 + start * PAGE  # 2 MiB aligned, plus `start` pages
    m = p.mmap(n * PAGE, prot="r", file=f, offset=pgoff * PAGE, addr=base, fixed=True)
    assert p.access(m + touch * PAGE, "r") is vmsim.Outcome.FILE_MINOR
    present = np.flatnonzero(p.pagemap(m, n * PAGE) & np.uint64(vmsim.PM_PRESENT)).tolist()
    assert present == real


SHMEM_HELPER = r"""
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#define P 4096L
static char *shm(long n) {
    char *m = mmap(NULL, n * P, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    madvise(m, n * P, MADV_NOHUGEPAGE);
    return m;
}
int main(int argc, char **argv) {
    long n = atol(argv[1]);
    char *a = shm(n);
    printf("window_offset %ld\n", ((unsigned long)a / P) % 16);
    printf("read_fresh %ld\n", touch(a, n, 0));
    printf("write_after_read %ld\n", touch(a, n, 1));
    mprotect(a, n * P, PROT_READ);
    mprotect(a, n * P, PROT_READ | PROT_WRITE);
    printf("write_after_round_trip_dirty %ld\n", touch(a, n, 1));
    char *b = shm(n);
    touch(b, n, 0);
    mprotect(b, n * P, PROT_READ);
    mprotect(b, n * P, PROT_READ | PROT_WRITE);
    printf("write_after_round_trip_clean %ld\n", touch(b, n, 1));
    fflush(stdout);
    if (fork() == 0) {
        touch(b, 1, 0); /* the harness's own first faults after fork (its stack) */
        touch(b, 1, 0);
        printf("child_read_cached %ld\n", touch(a, n, 0));
        printf("child_write_after_read %ld\n", touch(a, n, 1));
        fflush(stdout);
        _exit(0);
    }
    wait(NULL);
    return 0;
}
"""


def test_shared_anonymous_memory_fault_around_and_mprotect(tmp_path):
    """shmem: a fresh read faults each page in; a forked child reading the
    cached pages takes one fault per fault-around window; mprotect back to
    writable makes every PTE writable at once (shmem needs no write
    notification), so no write faults follow, clean pages or dirty."""
    exe = _compile(tmp_path, "shm", SHMEM_HELPER, FAULTS_C)

    def run() -> dict:
        out = subprocess.run([str(exe), str(N)], check=True, capture_output=True, text=True, timeout=30).stdout
        return {k: int(v) for k, v in (line.split() for line in out.splitlines())}

    runs = [run() for _ in range(3)]
    offset = runs[0]["window_offset"]
    real = {k: min(r[k] for r in runs if r["window_offset"] == offset) for k in runs[0] if k != "window_offset"}

    sim = vmsim.Simulator(memory="64MiB")
    p = sim.spawn()

    def shm(at: int) -> tuple[int, np.ndarray]:
        a = p.mmap(N * PAGE, prot="rw", flags="shared|anonymous", addr=at, fixed=True)
        return a, np.arange(a, a + N * PAGE, PAGE, dtype=np.uint64)

    def faults(task, addrs, op) -> int:
        before = task.counters()["min_flt"]
        task.access_batch(addrs, op)
        return task.counters()["min_flt"] - before

    a, pages_a = shm(0x7F00_0000_0000 + offset * PAGE)  # the host mapping's place in its 64 KiB window
    b, pages_b = shm(0x7E00_0000_0000)
    simulated = {"read_fresh": faults(p, pages_a, "r"), "write_after_read": faults(p, pages_a, "w")}
    p.mprotect(a, N * PAGE, "r")
    p.mprotect(a, N * PAGE, "rw")
    simulated["write_after_round_trip_dirty"] = faults(p, pages_a, "w")
    faults(p, pages_b, "r")
    p.mprotect(b, N * PAGE, "r")
    p.mprotect(b, N * PAGE, "rw")
    simulated["write_after_round_trip_clean"] = faults(p, pages_b, "w")
    child = p.fork()
    simulated["child_read_cached"] = faults(child, pages_a, "r")
    simulated["child_write_after_read"] = faults(child, pages_a, "w")
    assert simulated == real
    assert simulated["child_read_cached"] == -(-(N + offset) // 16)  # one fault per window the mapping spans


POPULATE_HELPER = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif
#define P 4096L
static long flt(void) { struct rusage u; getrusage(RUSAGE_SELF, &u); return u.ru_minflt + u.ru_majflt; }
static long touch(char *m, long n, int write) {
    long before = flt();
    for (long i = 0; i < n; i++) { if (write) m[i * P] = 1; else (void)*(volatile char *)(m + i * P); }
    return flt() - before;
}
static char *anon(long n, int prot) {
    char *m = mmap(NULL, n * P, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    madvise(m, n * P, MADV_NOHUGEPAGE); /* before populating: no huge pages */
    return m;
}
static long populate(char *m, long n, int advice) {
    long before = flt();
    return madvise(m, n * P, advice) ? -errno : flt() - before;
}
static long map_populate(long n, int flags, int fd, char **m) {
    long before = flt();
    *m = mmap(NULL, n * P, PROT_READ | PROT_WRITE, flags | MAP_POPULATE, fd, 0);
    return flt() - before;
}
int main(int argc, char **argv) {
    long n = atol(argv[2]);
    char *m = anon(n, PROT_READ | PROT_WRITE);
    printf("populate_write %ld\n", populate(m, n, MADV_POPULATE_WRITE));
    printf("populate_write_then_write %ld\n", touch(m, n, 1));
    m = anon(n, PROT_READ | PROT_WRITE);
    printf("populate_read %ld\n", populate(m, n, MADV_POPULATE_READ));
    printf("populate_read_then_read %ld\n", touch(m, n, 0));
    printf("populate_read_then_write %ld\n", touch(m, n, 1));
    printf("populate_write_read_only %ld\n", populate(anon(n, PROT_READ), n, MADV_POPULATE_WRITE));
    printf("populate_read_prot_none %ld\n", populate(anon(n, PROT_NONE), n, MADV_POPULATE_READ));
    m = anon(n, PROT_READ | PROT_WRITE);
    munmap(m + 4 * P, P);
    printf("populate_hole %ld\n", populate(m, n, MADV_POPULATE_WRITE));
    printf("map_populate_shared %ld\n", map_populate(n, MAP_SHARED | MAP_ANONYMOUS, -1, &m));
    printf("map_populate_shared_then_write %ld\n", touch(m, n, 1));
    int fd = cached_file(argv[1], n);
    if (fd < 0) return 1;
    printf("map_populate_file_private %ld\n", map_populate(n, MAP_PRIVATE, fd, &m));
    printf("map_populate_file_private_then_write %ld\n", touch(m, n, 1));
    return 0;
}
"""


def test_population_faults_happen_inside_the_call(tmp_path):
    """MADV_POPULATE_READ/WRITE and MAP_POPULATE: the faults are taken (and
    counted) inside the call, as the access they stand for would take them;
    later touches are hits. Errors as the host gives them (negative errno)."""
    exe = _compile(tmp_path, "populate", POPULATE_HELPER, CACHED_FILE_C)

    def run() -> dict:
        argv = [str(exe), str(tmp_path / "pop.dat"), str(N)]
        out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30).stdout
        return {k: int(v) for k, v in (line.split() for line in out.splitlines())}

    runs = [run() for _ in range(3)]
    real = {k: min(r[k] for r in runs) for k in runs[0]}

    sim = vmsim.Simulator(memory="64MiB")
    p = sim.spawn()

    def faults(fn) -> int:
        c = p.counters()
        before = c["min_flt"] + c["maj_flt"]
        try:
            fn()
        except OSError as e:
            return -e.errno
        c = p.counters()
        return c["min_flt"] + c["maj_flt"] - before

    def pages(a):
        return np.arange(a, a + N * PAGE, PAGE, dtype=np.uint64)

    def populate(a, advice):
        return faults(lambda: p.madvise(a, N * PAGE, advice))

    simulated = {}
    a = p.mmap(N * PAGE)
    simulated["populate_write"] = populate(a, "populate_write")
    simulated["populate_write_then_write"] = faults(lambda: p.access_batch(pages(a), "w"))
    a = p.mmap(N * PAGE)
    simulated["populate_read"] = populate(a, "populate_read")
    simulated["populate_read_then_read"] = faults(lambda: p.access_batch(pages(a), "r"))
    simulated["populate_read_then_write"] = faults(lambda: p.access_batch(pages(a), "w"))
    simulated["populate_write_read_only"] = populate(p.mmap(N * PAGE, prot="r"), "populate_write")
    simulated["populate_read_prot_none"] = populate(p.mmap(N * PAGE, prot="none"), "populate_read")
    a = p.mmap(N * PAGE)
    p.munmap(a + 4 * PAGE, PAGE)
    simulated["populate_hole"] = populate(a, "populate_write")
    box: list[int] = []
    simulated["map_populate_shared"] = faults(lambda: box.append(p.mmap(N * PAGE, flags="shared|anonymous|populate")))
    simulated["map_populate_shared_then_write"] = faults(lambda: p.access_batch(pages(box[-1]), "w"))
    f = sim.create_file(N * PAGE)
    reader = sim.spawn()  # the file cached, as the helper's reads leave it
    reader.access_batch(pages(reader.mmap(N * PAGE, prot="r", flags="shared", file=f)), "r")
    reader.exit()
    simulated["map_populate_file_private"] = faults(
        lambda: box.append(p.mmap(N * PAGE, flags="private|populate", file=f))
    )
    simulated["map_populate_file_private_then_write"] = faults(lambda: p.access_batch(pages(box[-1]), "w"))
    assert simulated == real
    sim.check()


SMAPS_HELPER = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#define P 4096L
/* Print "LABEL FIELD kB" for every kB field of the smaps record of the VMA at m. */
static void show(const char *label, char *m) {
    char line[512], want[64];
    int on = 0;
    snprintf(want, sizeof want, "%lx-", (unsigned long)m);
    FILE *f = fopen("/proc/self/smaps", "r");
    while (fgets(line, sizeof line, f)) {
        if (!strchr(line, ':') || strchr(line, '-') == line + strlen(want) - 1) {
            on = !strncmp(line, want, strlen(want));
            continue;
        }
        char key[64];
        long kb;
        if (on && strstr(line, " kB") && sscanf(line, "%63[^:]: %ld", key, &kb) == 2)
            printf("%s %s %ld\n", label, key, kb);
    }
    fclose(f);
}
int main(int argc, char **argv) {
    char *a = mmap(NULL, 16 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    madvise(a, 16 * P, MADV_NOHUGEPAGE);
    for (int i = 0; i < 8; i++) a[i * P] = 1;
    for (int i = 8; i < 12; i++) (void)*(volatile char *)(a + i * P); /* the zero page: not in Rss */
    show("anon", a);
    char *s = mmap(NULL, 8 * P, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    for (int i = 0; i < 4; i++) s[i * P] = 1;
    (void)*(volatile char *)(s + 5 * P);
    show("shmem", s);
    int fd = cached_file(argv[1], 4);
    if (fd < 0) return 1;
    char *f = mmap(NULL, 4 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    (void)*(volatile char *)f; /* fault-around maps the four cached pages */
    f[2 * P] = 1;              /* a private copy of page 2 */
    show("file", f);
    fflush(stdout);
    int gate[2];
    if (pipe(gate)) return 1;
    pid_t pid = fork();
    if (pid == 0) { /* holds its copy of the address space until the parent has looked */
        char c;
        close(gate[1]);
        if (read(gate[0], &c, 1) < 0) _exit(1);
        _exit(0);
    }
    show("anon_forked", a);
    show("shmem_forked", s);
    fflush(stdout);
    close(gate[1]);
    waitpid(pid, NULL, 0);
    return 0;
}
"""

SMAPS_FIELDS = ("Size", "Rss", "Pss", "Pss_Dirty", "Shared_Clean", "Shared_Dirty", "Private_Clean",
                "Private_Dirty", "Referenced", "Anonymous", "Swap", "SwapPss", "Locked")  # fmt: skip


def test_smaps_match_the_kernel(tmp_path):
    """Rss, Pss, clean/dirty, private/shared and Anonymous of a private
    anonymous mapping (written pages, zero-page reads), shmem, a private file
    mapping (fault-around, one copied page), and the anonymous mapping shared
    with a forked child."""
    exe = _compile(tmp_path, "smaps", SMAPS_HELPER, CACHED_FILE_C)
    out = subprocess.run([str(exe), str(tmp_path / "sm.dat")], check=True, capture_output=True, text=True, timeout=30)
    real: dict = {}
    for line in out.stdout.splitlines():
        label, field, kb = line.split()
        if field in SMAPS_FIELDS:
            real.setdefault(label, {})[field] = int(kb)

    sim = vmsim.Simulator(memory="64MiB")
    p = sim.spawn()

    def record(addr: int) -> dict:
        (rec,) = [r for r in p.smaps() if r["start"] == addr]
        return {k: rec[k] for k in SMAPS_FIELDS}

    a = p.mmap(16 * PAGE)
    p.access_batch(np.arange(a, a + 8 * PAGE, PAGE, dtype=np.uint64), "w")
    p.access_batch(np.arange(a + 8 * PAGE, a + 12 * PAGE, PAGE, dtype=np.uint64), "r")
    simulated = {"anon": record(a)}
    s = p.mmap(8 * PAGE, flags="shared|anonymous")
    p.access_batch(np.arange(s, s + 4 * PAGE, PAGE, dtype=np.uint64), "w")
    p.access(s + 5 * PAGE, "r")
    simulated["shmem"] = record(s)
    f = sim.create_file(4 * PAGE)
    reader = sim.spawn()  # the file cached, as the helper's reads leave it
    reader.access_batch(np.arange(4, dtype=np.uint64) * PAGE + reader.mmap(4 * PAGE, prot="r", file=f), "r")
    reader.exit()
    m = p.mmap(4 * PAGE, prot="rw", flags="private", file=f)
    p.access(m, "r")
    p.access(m + 2 * PAGE, "w")
    simulated["file"] = record(m)
    child = p.fork()
    simulated["anon_forked"] = record(a)
    simulated["shmem_forked"] = record(s)
    child.exit()
    assert simulated == real
    rollup = p.smaps_rollup()
    assert rollup["Rss"] == sum(r["Rss"] for r in p.smaps()) and rollup["Anonymous"] == 32 + 4


READAHEAD_HELPER = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#define P 4096L
/* ra FILE PAGES ADVICE ORDER: a cold file of PAGES pages (written, synced,
   dropped from the cache), mapped, advised (normal|sequential|random), then
   read one byte per page in the order the ORDER file lists (one index per
   line). Prints the major and minor faults of the reads and how many pages
   were cached after the first read (once its readahead I/O is done) and after all. */
static long cached(char *m, long n, unsigned char *vec) {
    long c = 0;
    mincore(m, n * P, vec);
    for (long i = 0; i < n; i++) c += vec[i] & 1;
    return c;
}
int main(int argc, char **argv) {
    long n = atol(argv[2]);
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
    char *buf = malloc(1 << 20);
    memset(buf, 7, 1 << 20);
    for (long done = 0; done < n * P; done += 1 << 20) if (write(fd, buf, 1 << 20) != 1 << 20) return 1;
    fsync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    long *order = malloc(n * sizeof(long));
    FILE *o = fopen(argv[4], "r");
    for (long i = 0; i < n; i++) if (fscanf(o, "%ld", &order[i]) != 1) return 1;
    unsigned char *vec = malloc(n);
    char *m = mmap(NULL, n * P, PROT_READ, MAP_SHARED, fd, 0);
    int advice = !strcmp(argv[3], "sequential") ? MADV_SEQUENTIAL : !strcmp(argv[3], "random") ? MADV_RANDOM : 0;
    madvise(m, n * P, advice);
    if (cached(m, n, vec)) return 2; /* not cold */
    struct rusage a, b;
    getrusage(RUSAGE_SELF, &a);
    (void)*(volatile char *)(m + order[0] * P);
    usleep(300000); /* the rest of the window is still being read: let that I/O finish */
    long first = cached(m, n, vec);
    for (long i = 1; i < n; i++) (void)*(volatile char *)(m + order[i] * P);
    getrusage(RUSAGE_SELF, &b);
    printf("major %ld\nminor %ld\ncached_after_first %ld\ncached_after %ld\n", b.ru_majflt - a.ru_majflt,
           b.ru_minflt - a.ru_minflt, first, cached(m, n, vec));
    return 0;
}
"""


def host_read_ahead_kb(path) -> int | None:
    """read_ahead_kb of the block device holding `path`, if sysfs shows it."""
    import os
    from pathlib import Path

    dev = os.stat(path).st_dev
    node = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}")
    for queue in (node / "queue", node / ".." / "queue"):
        try:
            return int((queue / "read_ahead_kb").read_text())
        except (OSError, ValueError):
            continue
    return None


@pytest.mark.parametrize(
    ("advice", "order"),
    [
        ("normal", "sequential"),
        ("normal", "random"),
        ("normal", "from_middle"),
        ("sequential", "sequential"),
        ("random", "random"),
    ],
)
def test_readahead_on_cold_file_faults_matches_the_kernel(tmp_path, advice, order):
    """A cold file read through a mapping: how many faults are major, and
    how much the first one read (read-around of read_ahead_kb centred on
    it, or forward under MADV_SEQUENTIAL, nothing under MADV_RANDOM).
    Minor faults are not compared: ext4 on 6.18 reads ahead into large
    folios and fault-around maps whole large folios, where vmsim's page
    cache holds 4 KiB pages (the same pages are read; fewer faults map them)."""
    kb = host_read_ahead_kb(tmp_path)
    if kb is None:
        pytest.skip("no read_ahead_kb in sysfs for the test's filesystem")
    n = max(4096, 4 * kb // 4)  # at least four read-around windows
    rng = np.random.default_rng(7)
    indices = {
        "sequential": np.arange(n),
        "random": rng.permutation(n),
        "from_middle": np.concatenate([np.arange(n // 2, n), np.arange(n // 2)]),
    }[order]
    (tmp_path / "order").write_text("\n".join(map(str, indices)))
    exe = _compile(tmp_path, "ra", READAHEAD_HELPER)
    argv = [str(exe), str(tmp_path / "ra.dat"), str(n), advice, str(tmp_path / "order")]
    runs = []
    for _ in range(3):
        run = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=120)
        if run.returncode == 2:
            pytest.skip("the host kept the file cached after POSIX_FADV_DONTNEED")
        run.check_returncode()
        runs.append({k: int(v) for k, v in (line.split() for line in run.stdout.splitlines())})
    # Noise on a busy host only adds major faults, and only delays the window's I/O.
    real = {
        "major": min(r["major"] for r in runs),
        "cached_after_first": max(r["cached_after_first"] for r in runs),
        "cached_after": max(r["cached_after"] for r in runs),
    }

    sim = vmsim.Simulator(memory=f"{max(256, 2 * n * PAGE // 2**20)}MiB", read_ahead_kb=kb)
    f = sim.create_file(n * PAGE)
    p = sim.spawn()
    m = p.mmap(n * PAGE, prot="r", flags="shared", file=f)
    if advice != "normal":
        p.madvise(m, n * PAGE, advice)
    addrs = indices.astype(np.uint64) * np.uint64(PAGE) + np.uint64(m)
    p.access(int(addrs[0]), "r")
    first = f.cached_pages
    p.access_batch(addrs[1:], "r")
    simulated = {"major": p.counters()["maj_flt"], "cached_after_first": first, "cached_after": f.cached_pages}
    assert simulated == real


MLOCK_HELPER = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#define P 4096L
static char *anon(long n, int prot) {
    char *m = mmap(NULL, n * P, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    madvise(m, n * P, MADV_NOHUGEPAGE);
    return m;
}
static void show(const char *name, int r, long before) { printf("%s %d %ld\n", name, r ? -errno : 0, flt() - before); }
static long locked_kb(void) {
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    while (fgets(line, sizeof line, f)) if (sscanf(line, "VmLck: %ld", &kb) == 1) break;
    fclose(f);
    return kb;
}
int main(void) {
    /* An unprivileged process, as vmsim's are: root's CAP_IPC_LOCK ignores RLIMIT_MEMLOCK. */
    struct rlimit rl = {8 << 20, 8 << 20};
    setrlimit(RLIMIT_MEMLOCK, &rl);
    if (getuid() == 0 && setuid(65534) != 0) return 3;
    long b;
    char *a = anon(64, PROT_READ | PROT_WRITE);
    b = flt(); show("mlock_rw", mlock(a, 64 * P), b);
    b = flt(); for (int i = 0; i < 64; i++) a[i * P] = 1; show("then_write", 0, b);
    char *ro = anon(64, PROT_READ);
    b = flt(); show("mlock_ro", mlock(ro, 64 * P), b);
    char *no = anon(64, PROT_NONE);
    b = flt(); show("mlock_prot_none", mlock(no, 64 * P), b);
    char *of = anon(64, PROT_READ | PROT_WRITE);
    b = flt(); show("mlock_onfault", mlock2(of, 64 * P, MLOCK_ONFAULT), b);
    char *u = anon(4, PROT_READ | PROT_WRITE);
    b = flt(); show("mlock_unaligned", mlock(u + 100, 2 * P), b);
    char *h = anon(8, PROT_READ | PROT_WRITE);
    munmap(h + 4 * P, P);
    b = flt(); show("mlock_hole", mlock(h, 8 * P), b);
    printf("vmlck_kb %ld 0\n", locked_kb());
    char *big = anon(4096, PROT_READ | PROT_WRITE);
    b = flt(); show("mlock_over_limit", mlock(big, 4096 * P), b);
    b = flt(); show("munlock", munlock(a, 64 * P), b);
    printf("vmlck_kb_after_munlock %ld 0\n", locked_kb());
    return 0;
}
"""


def test_mlock_populates_and_respects_the_limit(tmp_path):
    """mlock faults the range in (write faults in private writable memory,
    read faults elsewhere), mlock2(MLOCK_ONFAULT) faults nothing, PROT_NONE
    and holes are ENOMEM, RLIMIT_MEMLOCK (8 MiB, unprivileged) holds, VmLck
    counts the locked pages. Each line: call, result (-errno), faults."""
    exe = _compile(tmp_path, "mlock", MLOCK_HELPER, FAULTS_C)
    run = subprocess.run([str(exe)], check=False, capture_output=True, text=True, timeout=30)
    if run.returncode == 3:
        pytest.skip("could not drop root to test RLIMIT_MEMLOCK")
    run.check_returncode()
    real = host_lines([str(exe)])

    sim = vmsim.Simulator(memory="256MiB")  # RLIMIT_MEMLOCK 8 MiB by default
    p = sim.spawn()

    def call(fn) -> tuple[int, int]:
        before = p.counters()["min_flt"]
        try:
            fn()
            result = 0
        except OSError as e:
            result = -e.errno
        return result, p.counters()["min_flt"] - before

    simulated = {}
    a = p.mmap(64 * PAGE)
    simulated["mlock_rw"] = call(lambda: p.mlock(a, 64 * PAGE))
    simulated["then_write"] = call(lambda: p.access_batch(np.arange(a, a + 64 * PAGE, PAGE, dtype=np.uint64), "w"))
    ro = p.mmap(64 * PAGE, prot="r")
    simulated["mlock_ro"] = call(lambda: p.mlock(ro, 64 * PAGE))
    no = p.mmap(64 * PAGE, prot="none")
    simulated["mlock_prot_none"] = call(lambda: p.mlock(no, 64 * PAGE))
    of = p.mmap(64 * PAGE)
    simulated["mlock_onfault"] = call(lambda: p.mlock(of, 64 * PAGE, onfault=True))
    u = p.mmap(4 * PAGE)
    simulated["mlock_unaligned"] = call(lambda: p.mlock(u + 100, 2 * PAGE))
    h = p.mmap(8 * PAGE)
    p.munmap(h + 4 * PAGE, PAGE)
    simulated["mlock_hole"] = call(lambda: p.mlock(h, 8 * PAGE))
    simulated["vmlck_kb"] = (p.counters()["locked_vm"] * 4, 0)
    big = p.mmap(4096 * PAGE)
    simulated["mlock_over_limit"] = call(lambda: p.mlock(big, 4096 * PAGE))
    simulated["munlock"] = call(lambda: p.munlock(a, 64 * PAGE))
    simulated["vmlck_kb_after_munlock"] = (p.counters()["locked_vm"] * 4, 0)
    assert simulated == real
    sim.check()


MREMAP_HELPER = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#define P 4096L
static char *anon(long n) {
    char *m = mmap(NULL, n * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    madvise(m, n * P, MADV_NOHUGEPAGE);
    return m;
}
/* Print "name result faults-after" per case; result is 1/0 for where the
   mapping went, or -errno. */
int main(void) {
    char *a = anon(8);
    munmap(a + 4 * P, 4 * P);
    touch(a, 4, 1);
    char *r = mremap(a, 4 * P, 8 * P, 0);
    printf("grow_in_place %d %ld\n", r == a, touch(r, 8, 1));
    char *b = anon(5);
    mprotect(b + 4 * P, P, PROT_READ); /* a VMA right above: no room to grow in place */
    touch(b, 4, 1);
    r = mremap(b, 4 * P, 8 * P, 0);
    printf("grow_blocked %d 0\n", r == MAP_FAILED ? -errno : 1);
    r = mremap(b, 4 * P, 8 * P, MREMAP_MAYMOVE);
    printf("grow_moved %d %ld\n", r != b, touch(r, 8, 1)); /* the 4 moved pages take no fault */
    char *d = anon(4);
    touch(d, 4, 1);
    r = mremap(d, 4 * P, 4 * P, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);
    long moved = touch(r, 4, 1);
    printf("dontunmap %ld %ld\n", moved, touch(d, 4, 1)); /* the old range is mapped and empty */
    char *e = anon(8);
    touch(e, 8, 1);
    printf("shrink %d %ld\n", mremap(e, 8 * P, 2 * P, 0) == e, touch(e, 2, 1));
    char *f = anon(4);
    touch(f, 4, 1);
    char *target = anon(16);
    munmap(target, 16 * P);
    r = mremap(f, 4 * P, 4 * P, MREMAP_MAYMOVE | MREMAP_FIXED, target + 4 * P);
    printf("fixed %d %ld\n", r == target + 4 * P, touch(r, 4, 1));
    r = mremap(f, 4 * P, 4 * P, MREMAP_FIXED, target);
    printf("fixed_without_maymove %d 0\n", r == MAP_FAILED ? -errno : 0);
    char *g = anon(8);
    munmap(g + 2 * P, P);
    r = mremap(g, 8 * P, 16 * P, MREMAP_MAYMOVE);
    printf("across_mappings %d 0\n", r == MAP_FAILED ? -errno : 0);
    char *h = anon(4);
    r = mremap(h + 100, 4 * P, 8 * P, MREMAP_MAYMOVE);
    printf("unaligned %d 0\n", r == MAP_FAILED ? -errno : 0);
    r = mremap(h, 4 * P, 8 * P, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);
    printf("dontunmap_resize %d 0\n", r == MAP_FAILED ? -errno : 0);
    return 0;
}
"""


def test_mremap_moves_page_tables_and_fails_as_the_kernel_does(tmp_path):
    """Grow in place, grow by moving (moved pages take no fault), DONTUNMAP
    (the old range refaults), shrink, MREMAP_FIXED, and the errors."""
    exe = _compile(tmp_path, "mremap", MREMAP_HELPER, FAULTS_C)
    real = host_lines([str(exe)])

    sim = vmsim.Simulator(memory="64MiB")
    p = sim.spawn()

    def touch(a: int, n: int) -> int:
        before = p.counters()["min_flt"]
        p.access_batch(np.arange(a, a + n * PAGE, PAGE, dtype=np.uint64), "w")
        return p.counters()["min_flt"] - before

    def err(fn) -> int:
        try:
            fn()
        except OSError as e:
            return -e.errno
        return 0

    simulated = {}
    a = p.mmap(8 * PAGE)
    p.munmap(a + 4 * PAGE, 4 * PAGE)
    touch(a, 4)
    r = p.mremap(a, 4 * PAGE, 8 * PAGE)
    simulated["grow_in_place"] = (int(r == a), touch(r, 8))
    b = p.mmap(5 * PAGE)
    p.mprotect(b + 4 * PAGE, PAGE, "r")
    touch(b, 4)
    simulated["grow_blocked"] = (err(lambda: p.mremap(b, 4 * PAGE, 8 * PAGE)), 0)
    r = p.mremap(b, 4 * PAGE, 8 * PAGE, "maymove")
    simulated["grow_moved"] = (int(r != b), touch(r, 8))
    d = p.mmap(4 * PAGE)
    touch(d, 4)
    r = p.mremap(d, 4 * PAGE, 4 * PAGE, "maymove|dontunmap")
    moved = touch(r, 4)
    simulated["dontunmap"] = (moved, touch(d, 4))
    e = p.mmap(8 * PAGE)
    touch(e, 8)
    simulated["shrink"] = (int(p.mremap(e, 8 * PAGE, 2 * PAGE) == e), touch(e, 2))
    f = p.mmap(4 * PAGE)
    touch(f, 4)
    target = p.mmap(16 * PAGE)
    p.munmap(target, 16 * PAGE)
    r = p.mremap(f, 4 * PAGE, 4 * PAGE, "maymove|fixed", target + 4 * PAGE)
    simulated["fixed"] = (int(r == target + 4 * PAGE), touch(r, 4))
    simulated["fixed_without_maymove"] = (err(lambda: p.mremap(f, 4 * PAGE, 4 * PAGE, "fixed", target)), 0)
    g = p.mmap(8 * PAGE)
    p.munmap(g + 2 * PAGE, PAGE)
    simulated["across_mappings"] = (err(lambda: p.mremap(g, 8 * PAGE, 16 * PAGE, "maymove")), 0)
    h = p.mmap(4 * PAGE)
    simulated["unaligned"] = (err(lambda: p.mremap(h + 100, 4 * PAGE, 8 * PAGE, "maymove")), 0)
    simulated["dontunmap_resize"] = (err(lambda: p.mremap(h, 4 * PAGE, 8 * PAGE, "maymove|dontunmap")), 0)
    assert simulated == real
    sim.check()


MADV_FREE_HELPER = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#define P 4096L
static long lazyfree_kb(char *m) {
    char line[256], want[32];
    int on = 0;
    long kb = -1;
    snprintf(want, sizeof want, "%lx-", (unsigned long)m);
    FILE *f = fopen("/proc/self/smaps", "r");
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, want, strlen(want))) on = 1;
        else if (on && sscanf(line, "LazyFree: %ld", &kb) == 1) break;
    }
    fclose(f);
    return kb;
}
static long advise(char *m, long n, int advice) { return madvise(m, n * P, advice) ? -errno : 0; }
int main(void) {
    char *a = mmap(NULL, 64 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    madvise(a, 64 * P, MADV_NOHUGEPAGE);
    touch(a, 64, 1);
    printf("free %ld\n", advise(a, 64, MADV_FREE));
    printf("lazyfree_kb %ld\n", lazyfree_kb(a));
    printf("read_after_free %ld\n", touch(a, 64, 0));
    printf("write_after_free %ld\n", touch(a, 64, 1));
    printf("lazyfree_kb_after_write %ld\n", lazyfree_kb(a));
    printf("cold %ld\n", advise(a, 64, MADV_COLD));
    printf("write_after_cold %ld\n", touch(a, 64, 1));
    char *s = mmap(NULL, 4 * P, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    printf("free_shared %ld\n", advise(s, 4, MADV_FREE));
    char *l = mmap(NULL, 4 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mlock(l, 4 * P);
    printf("free_locked %ld\n", advise(l, 4, MADV_FREE));
    printf("cold_locked %ld\n", advise(l, 4, MADV_COLD));
    printf("unknown %ld\n", advise(l, 4, 12345));
    return 0;
}
"""


def test_madv_free_and_cold_match_the_kernel(tmp_path):
    """MADV_FREE: the pages stay mapped, so reading and writing them again
    takes no fault; they count as LazyFree until written. MADV_COLD takes no
    fault either. Shared or mlocked memory, and an unknown advice, are EINVAL."""
    exe = _compile(tmp_path, "madvfree", MADV_FREE_HELPER, FAULTS_C)
    real = {k: v for k, (v,) in host_lines([str(exe)]).items()}

    sim = vmsim.Simulator(memory="64MiB")
    p = sim.spawn()

    def touch(a: int, n: int, op: str) -> int:
        before = p.counters()["min_flt"]
        p.access_batch(np.arange(a, a + n * PAGE, PAGE, dtype=np.uint64), op)
        return p.counters()["min_flt"] - before

    def advise(a: int, n: int, advice: str) -> int:
        try:
            p.madvise(a, n * PAGE, advice)
        except OSError as e:
            return -e.errno
        return 0

    def lazyfree(a: int) -> int:
        return next(r["LazyFree"] for r in p.smaps() if r["start"] <= a < r["end"])

    a = p.mmap(64 * PAGE)
    touch(a, 64, "w")
    simulated = {"free": advise(a, 64, "free"), "lazyfree_kb": lazyfree(a)}
    simulated["read_after_free"] = touch(a, 64, "r")
    simulated["write_after_free"] = touch(a, 64, "w")
    simulated["lazyfree_kb_after_write"] = lazyfree(a)
    simulated["cold"] = advise(a, 64, "cold")
    simulated["write_after_cold"] = touch(a, 64, "w")
    s = p.mmap(4 * PAGE, flags="shared|anonymous")
    simulated["free_shared"] = advise(s, 4, "free")
    locked = p.mmap(4 * PAGE)
    p.mlock(locked, 4 * PAGE)
    simulated["free_locked"] = advise(locked, 4, "free")
    simulated["cold_locked"] = advise(locked, 4, "cold")
    simulated["unknown"] = advise(locked, 4, "madv_12345")
    # The host marks pages lazily free through a per-CPU batch (lru_lazyfree,
    # 31 folios): the last few wait for the next drain. vmsim marks them all.
    host_lazy, sim_lazy = real.pop("lazyfree_kb"), simulated.pop("lazyfree_kb")
    assert sim_lazy == 256 and 256 - 31 * 4 <= host_lazy <= 256
    assert simulated == real
    sim.check()


PAGEOUT_REMOVE_HELPER = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#define P 4096L
static void flt(long *mi, long *ma) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    *mi = u.ru_minflt;
    *ma = u.ru_majflt;
}
static long advise(char *m, long n, int a) { return madvise(m, n * P, a) ? -errno : 0; }
int main(int argc, char **argv) {
    int fd = cached_file(argv[1], 16);
    if (fd < 0) return 1;
    char *f = mmap(NULL, 16 * P, PROT_READ, MAP_PRIVATE, fd, 0);
    for (int i = 0; i < 16; i++) (void)*(volatile char *)(f + i * P);
    printf("pageout %ld\n", advise(f, 16, MADV_PAGEOUT));
    unsigned char vec[16];
    mincore(f, 16 * P, vec);
    long cached = 0;
    for (int i = 0; i < 16; i++) cached += vec[i] & 1;
    printf("cached_after_pageout %ld\n", cached);
    long mi0, ma0, mi1, ma1;
    flt(&mi0, &ma0);
    for (int i = 0; i < 16; i++) (void)*(volatile char *)(f + i * P);
    flt(&mi1, &ma1);
    printf("refault_major %ld\n", ma1 - ma0);
    char *s = mmap(NULL, 16 * P, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    for (int i = 0; i < 16; i++) s[i * P] = 5;
    printf("remove %ld\n", advise(s + 4 * P, 8, MADV_REMOVE));
    long zeros = 0;
    flt(&mi0, &ma0);
    for (int i = 0; i < 16; i++) zeros += s[i * P] == 0;
    flt(&mi1, &ma1);
    printf("remove_refaults %ld\n", mi1 - mi0);
    printf("remove_zero_pages %ld\n", zeros);
    char *pa = mmap(NULL, 4 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("remove_private_anon %ld\n", advise(pa, 4, MADV_REMOVE));
    char *pf = mmap(NULL, 4 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    printf("remove_private_file %ld\n", advise(pf, 4, MADV_REMOVE));
    char *l = mmap(NULL, 4 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mlock(l, 4 * P);
    printf("pageout_locked %ld\n", advise(l, 4, MADV_PAGEOUT));
    return 0;
}
"""


def test_madv_pageout_and_remove_match_the_kernel(tmp_path):
    """MADV_PAGEOUT drops a file's pages mapped only here from the cache (the
    next read is major); MADV_REMOVE punches a hole in shmem (those pages
    refault, as zeroes); the errors of each."""
    exe = _compile(tmp_path, "pageout", PAGEOUT_REMOVE_HELPER, CACHED_FILE_C)
    real = {k: v for k, (v,) in host_lines([str(exe), str(tmp_path / "po.dat")]).items()}

    sim = vmsim.Simulator(memory="64MiB")
    p = sim.spawn()

    def advise(a: int, n: int, advice: str) -> int:
        try:
            p.madvise(a, n * PAGE, advice)
        except OSError as e:
            return -e.errno
        return 0

    def pages(a: int, n: int) -> np.ndarray:
        return np.arange(a, a + n * PAGE, PAGE, dtype=np.uint64)

    f = sim.create_file(16 * PAGE)
    reader = sim.spawn()  # cached, as the helper's reads leave it
    reader.access_batch(pages(reader.mmap(16 * PAGE, prot="r", flags="shared", file=f), 16), "r")
    reader.exit()
    m = p.mmap(16 * PAGE, prot="r", file=f)
    p.access_batch(pages(m, 16), "r")
    simulated = {"pageout": advise(m, 16, "pageout"), "cached_after_pageout": f.cached_pages}
    before = p.counters()["maj_flt"]
    p.access_batch(pages(m, 16), "r")
    simulated["refault_major"] = p.counters()["maj_flt"] - before
    s = p.mmap(16 * PAGE, flags="shared|anonymous")
    p.access_batch(pages(s, 16), "w")
    simulated["remove"] = advise(s + 4 * PAGE, 8, "remove")
    before = p.counters()["min_flt"]
    codes = p.access_batch(pages(s, 16), "r")
    simulated["remove_refaults"] = p.counters()["min_flt"] - before
    simulated["remove_zero_pages"] = int((codes != vmsim.Outcome.HIT).sum())  # refaulted: a fresh (zero) page
    simulated["remove_private_anon"] = advise(p.mmap(4 * PAGE), 4, "remove")
    simulated["remove_private_file"] = advise(p.mmap(4 * PAGE, prot="rw", file=f), 4, "remove")
    locked = p.mmap(4 * PAGE)
    p.mlock(locked, 4 * PAGE)
    simulated["pageout_locked"] = advise(locked, 4, "pageout")
    assert simulated == real
    sim.check()


# ----- reclaim: the counters have the kernel's own names ---------------------------


def _host_names(path: str) -> set[str]:
    try:
        with open(path) as f:
            return {line.split()[0].rstrip(":") for line in f if line.strip()}
    except OSError:
        pytest.skip(f"{path} is not readable here")


@pytest.mark.parametrize("policy", ["linux", "mglru"])
def test_vmstat_and_meminfo_names_are_the_hosts(policy):
    sim = vmsim.Simulator(memory="16MiB", swap="16MiB", policy=policy)
    vmstat, meminfo = _host_names("/proc/vmstat"), _host_names("/proc/meminfo")
    # Counters a kernel has only with some config (or since some version) are
    # checked only where the host has them; the rest must all be there.
    optional = {"kswapd_low_wmark_hit_quickly", "kswapd_high_wmark_hit_quickly", "oom_kill"}
    missing = {name for name in sim.vmstat() if name not in vmstat and name not in optional}
    assert not missing, f"vmsim's vmstat has names the host's /proc/vmstat lacks: {sorted(missing)}"
    own = {"AllocPages"}  # vmsim's own (documented): the pages alloc_pages handed out
    missing = {name for name in sim.meminfo() if name not in meminfo and name not in own}
    assert not missing, f"vmsim's meminfo has names the host's /proc/meminfo lacks: {sorted(missing)}"


# ----- reclaim: which file pages read(2) and write(2) activate -----------------
#
# The host's /proc/kpageflags shows each page's PG_active; vmsim's meminfo
# shows how many pages are on the active file list. The same steps on a cold
# file must activate the same pages. Each step runs over every page of the
# file; per-CPU folio batches can hold back up to 31 pages of the host's, so
# the host's answer is the state most of its pages are in.

LRU_PAGES = 512
KPF_ACTIVE, KPF_COMPOUND_HEAD, KPF_COMPOUND_TAIL = 6, 15, 16

LRU_STEPS = {
    "read": "read(2) of the whole file",
    "pages": "read(2) of each page by itself, in order",
    "halves": "read(2) of each page in two pieces, one after the other",
    "repeat": "read(2) of each page twice in a row",
    "touch": "a load from each page through a shared mapping",
    "write": "write(2) of each page by itself, in order",
}


def _take_steps(steps, read, write, touch):
    """Each step over the whole file, through read(offset, n), write(offset, n)
    and touch(page): the host's file descriptor and mapping, or vmsim's."""
    size = LRU_PAGES * PAGE
    for step in steps:
        if step == "read":
            read(0, size)
        for at in range(0, size, PAGE):
            if step == "pages":
                read(at, PAGE)
            elif step == "halves":
                read(at, 100), read(at + 100, 100)
            elif step == "repeat":
                read(at, PAGE), read(at, PAGE)
            elif step == "touch":
                touch(at // PAGE)
            elif step == "write":  # page by page: one big write makes the host a large folio
                write(at, PAGE)


def _host_lru_active(path, steps) -> bool:
    import ctypes
    import struct

    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    size = LRU_PAGES * PAGE
    with open(path, "wb") as f:
        f.write(os.urandom(size))
        f.flush()
        os.fsync(f.fileno())
    fd = os.open(path, os.O_RDWR)
    addr = None
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        # No readahead (vmsim's read(2) reads only what it is asked): it would
        # read in large folios, which vmsim's page cache does not model.
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        assert addr not in (None, ctypes.c_void_p(-1).value), "mmap failed"
        vec = ctypes.create_string_buffer(LRU_PAGES)
        assert libc.mincore(addr, size, vec) == 0
        if any(b & 1 for b in vec.raw):
            pytest.skip(f"POSIX_FADV_DONTNEED left pages of {path} cached (tmpfs?): no cold file to start from")

        def touch(page):
            ctypes.string_at(addr + page * PAGE, 1)

        _take_steps(steps, lambda at, n: os.pread(fd, n, at), lambda at, n: os.pwrite(fd, b"x" * n, at), touch)
        for page in range(LRU_PAGES):  # map every page, for its frame number
            touch(page)
        with open("/proc/self/pagemap", "rb") as pm, open("/proc/kpageflags", "rb") as kpf:
            pm.seek(addr // PAGE * 8)
            flags = []
            for entry in struct.unpack(f"{LRU_PAGES}Q", pm.read(8 * LRU_PAGES)):
                kpf.seek((entry & int(vmsim.PM_PFN_MASK)) * 8)
                flags.append(struct.unpack("Q", kpf.read(8))[0])
    finally:
        if addr:
            libc.munmap(addr, size)
        os.close(fd)
    if any(f >> KPF_COMPOUND_HEAD & 1 or f >> KPF_COMPOUND_TAIL & 1 for f in flags):
        pytest.skip("the host's page cache made large folios of the file, which vmsim's page cache does not model")
    active = sum(f >> KPF_ACTIVE & 1 for f in flags)
    assert active <= LRU_PAGES // 10 or active >= LRU_PAGES * 9 // 10, (
        f"{active} of {LRU_PAGES} active: no clear answer"
    )
    return active > LRU_PAGES // 2


def _sim_lru_active(steps) -> bool:
    sim = vmsim.Simulator(memory="64MiB", policy="linux")
    f = sim.create_file(LRU_PAGES * PAGE)
    p = sim.spawn()
    m = p.mmap(LRU_PAGES * PAGE, prot="r", flags="shared", file=f)
    _take_steps(steps, f.read, f.write, lambda page: p.access(m + page * PAGE, "r"))
    p.access_batch(np.arange(m, m + LRU_PAGES * PAGE, PAGE, dtype=np.uint64), "r")
    info = sim.meminfo()
    assert info["Active(file)"] + info["Inactive(file)"] == LRU_PAGES * 4
    sim.check()
    return info["Active(file)"] > info["Inactive(file)"]


def _lru_gen_enabled() -> bool:
    try:
        with open("/sys/kernel/mm/lru_gen/enabled") as f:
            return int(f.read().strip(), 16) != 0
    except (OSError, ValueError):
        return False


@pytest.mark.parametrize(
    "steps",
    [
        ["read"],
        ["read", "read"],
        ["pages", "pages"],
        ["halves"],
        ["halves", "read"],
        ["repeat"],
        ["repeat", "repeat"],
        ["touch", "read"],
        ["read", "touch", "read"],
        ["write"],
        ["write", "write"],
        ["read", "write"],
        ["write", "read", "read"],
    ],
    ids="+".join,
)
def test_read_and_write_activate_the_pages_the_kernel_activates(tmp_path, steps):
    if not os.access("/proc/kpageflags", os.R_OK) or os.geteuid() != 0:
        pytest.skip("needs root: /proc/kpageflags and the frame numbers in /proc/self/pagemap")
    if _lru_gen_enabled():
        pytest.skip("the host runs the multi-gen LRU, which keeps no PG_active")
    host = _host_lru_active(tmp_path / "data", steps)
    assert _sim_lru_active(steps) == host, (
        f"{', then '.join(LRU_STEPS[s] for s in steps)}: the host's pages are {'active' if host else 'inactive'}"
    )


# ----- reclaim: which pages survive a stream through a memory cgroup ----------
#
# A file used twice (read twice, or read and then loaded through a mapping)
# is active, and a stream read once through a memory cgroup at its limit
# evicts only inactive pages: so the file stays. Used once (one read, or
# loads through a mapping only, however many: one accessed bit), it goes.

STREAM_HELPER = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define P 4096
#define CHUNK (16 * P)
static char buf[CHUNK];
static long size_of(int fd) { struct stat st; fstat(fd, &st); return st.st_size; }
static long resident(void *m, long n) {
    unsigned char vec[n / P];
    long count = 0;
    mincore(m, n, vec);
    for (long i = 0; i < n / P; i++) count += vec[i] & 1;
    return count;
}
static void read_all(int fd) {
    for (long at = 0; at < size_of(fd); at += CHUNK) pread(fd, buf, CHUNK, at);
}
/* hot stream reads loads: read the hot file `reads` times, load every page
 * of it through a mapping `loads` times, read the stream once; print how
 * many hot pages were cached before (cold) and after (resident). */
int main(int argc, char **argv) {
    int hot = open(argv[1], O_RDONLY), stream = open(argv[2], O_RDONLY);
    int reads = atoi(argv[3]), loads = atoi(argv[4]);
    long n = size_of(hot);
    posix_fadvise(hot, 0, 0, POSIX_FADV_DONTNEED);
    posix_fadvise(stream, 0, 0, POSIX_FADV_DONTNEED);
    posix_fadvise(hot, 0, 0, POSIX_FADV_RANDOM); /* read what is asked, in 4 KiB folios */
    volatile char *m = mmap(0, n, PROT_READ, MAP_SHARED, hot, 0);
    printf("cold %ld\n", n / P - resident((void *)m, n));
    for (int r = 0; r < reads; r++) read_all(hot);
    for (int l = 0; l < loads; l++)
        for (long at = 0; at < n; at += P) (void)m[at];
    read_all(stream);
    printf("resident %ld\n", resident((void *)m, n));
    return 0;
}
"""

STREAM_LIMIT, HOT_BYTES, STREAM_BYTES, STREAM_CHUNK = 32 << 20, 4 << 20, 96 << 20, 16 * PAGE


@contextlib.contextmanager
def _host_memory_cgroup(limit: int):
    """A new memory cgroup of the host's, limited to `limit` bytes (v1 or v2):
    yields the file a pid is written to to move it in."""
    parent = limit_file = None
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if "memory" in controllers.split(","):
                parent, limit_file = f"/sys/fs/cgroup/memory{path}", "memory.limit_in_bytes"
    if parent is None and "memory" in _read_or_empty("/sys/fs/cgroup/cgroup.subtree_control").split():
        parent, limit_file = "/sys/fs/cgroup", "memory.max"
    if parent is None or not os.access(parent, os.W_OK):
        pytest.skip("no memory cgroup this test may create (needs root, and cgroup v1's memory hierarchy or v2's root)")
    group = os.path.join(parent, f"vmsim-conformance-{os.getpid()}")
    os.mkdir(group)
    try:
        with open(os.path.join(group, limit_file), "w") as f:
            f.write(str(limit))
        yield os.path.join(group, "cgroup.procs")
    finally:
        os.rmdir(group)


def _read_or_empty(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _sim_hot_pages_after_stream(reads: int, loads: int) -> int:
    sim = vmsim.Simulator(memory="256MiB", policy="linux")
    cg = sim.cgroup("conformance", max=STREAM_LIMIT)
    hot, stream = sim.create_file(HOT_BYTES, name="/hot"), sim.create_file(STREAM_BYTES, name="/stream")
    for _ in range(reads):
        for at in range(0, HOT_BYTES, STREAM_CHUNK):
            hot.read(at, STREAM_CHUNK, cgroup=cg)
    p = sim.spawn(cgroup=cg)
    m = p.mmap(HOT_BYTES, prot="r", flags="shared", file=hot)
    for _ in range(loads):
        p.access_batch(np.arange(m, m + HOT_BYTES, PAGE, dtype=np.uint64), "r")
    for at in range(0, STREAM_BYTES, STREAM_CHUNK):
        stream.read(at, STREAM_CHUNK, cgroup=cg)
    assert cg.events()["max"] > 0, "the stream reached the limit"
    sim.check()
    return hot.cached_pages


@pytest.fixture(scope="module")
def hot_and_stream_files(tmp_path_factory):
    """The hot file and the stream on the host's disk, written once."""
    where = tmp_path_factory.mktemp("stream")
    hot, stream = where / "hot.dat", where / "stream.dat"
    hot.write_bytes(os.urandom(HOT_BYTES))
    stream.write_bytes(os.urandom(STREAM_BYTES))
    os.sync()  # clean pages: POSIX_FADV_DONTNEED drops them
    return hot, stream


@pytest.mark.parametrize("reads, loads", [(1, 0), (2, 0), (3, 0), (0, 1), (0, 2), (1, 1)])
def test_a_stream_through_a_memory_cgroup_evicts_what_the_kernel_evicts(tmp_path, hot_and_stream_files, reads, loads):
    if _lru_gen_enabled():
        pytest.skip("the host runs the multi-gen LRU")
    exe = _compile(tmp_path, "stream_helper", STREAM_HELPER)
    hot, stream = hot_and_stream_files
    with _host_memory_cgroup(STREAM_LIMIT) as procs:
        argv = [
            "sh",
            "-c",
            'echo $$ > "$0" && exec "$@"',
            procs,
            str(exe),
            str(hot),
            str(stream),
            str(reads),
            str(loads),
        ]
        out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=120).stdout
    seen = {name: int(value) for name, value in (line.split() for line in out.splitlines())}
    pages = HOT_BYTES // PAGE
    if seen["cold"] != pages:
        pytest.skip(
            f"POSIX_FADV_DONTNEED left {pages - seen['cold']} pages cached (tmpfs?): no cold file to start from"
        )
    host_kept = seen["resident"] > pages // 2
    assert seen["resident"] <= pages // 10 or seen["resident"] >= pages * 9 // 10, (
        f"host: {seen['resident']} of {pages}"
    )
    sim_kept = _sim_hot_pages_after_stream(reads, loads) > pages // 2
    assert sim_kept == host_kept, f"read {reads}x, loaded {loads}x: the host {'kept' if host_kept else 'evicted'} it"
