"""The simulator's own memory per resident simulated page.

    python benches/memory.py [--pages 4194304]

Builds a simulator just large enough for the pages (plus 1/64 for page
tables), makes every page resident with write faults, and divides the growth
of this process's resident set (VmRSS) by the number of resident pages.
`benches/anchors.py` runs this in a fresh process and holds the figure
against the bare prototype's (target: at most 1.1x).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import vmsim
from vmsim import PAGE_SIZE


def vm_rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=4 * 1024 * 1024)
    ap.add_argument("--policy", default=None, help="a reclaim policy to run with (default: none)")
    args = ap.parse_args(argv)
    n = args.pages
    chunk = 1 << 20
    chunks_needed = (n + chunk - 1) // chunk
    # This process's own buffers are made and touched before the baseline: the
    # address chunk and its page offsets (filled in place below: a temporary
    # array per chunk would stay in the heap and be counted), and (through one
    # throwaway batch of the same size) the per-thread buffers access_batch
    # copies its inputs into, and its output.
    addrs = np.ones(chunk, dtype=np.uint64)
    offsets = np.arange(chunk, dtype=np.uint64) * np.uint64(PAGE_SIZE)
    warm = vmsim.Simulator(memory="64MiB")
    warm.spawn().access_batch(addrs, "r")
    del warm
    base_rss = vm_rss()
    # Room enough that no reclaim runs: the figure is the per-page cost of what the policy keeps.
    sim = vmsim.Simulator(memory=(n + n // 32 + 4096) * PAGE_SIZE, policy=args.policy)
    p = sim.spawn()
    a = p.mmap(n * PAGE_SIZE)
    after_create = vm_rss()
    for i in range(chunks_needed):
        lo = i * chunk
        m = min(chunk, n - lo)
        np.add(offsets[:m], np.uint64(a + lo * PAGE_SIZE), out=addrs[:m])
        codes = p.access_batch(addrs[:m], "w")
        assert (codes == vmsim.Outcome.ANON_ZERO_FILL).all()
        del codes
    resident = p.counters()["rss_anon"]
    assert resident == n
    total = vm_rss() - base_rss
    print(f"resident simulated pages: {resident}")
    print(f"simulator memory at creation (frame table, allocator): {(after_create - base_rss) / 2**20:.1f} MiB")
    print(
        f"page tables and the rest after the faults:             {(total - (after_create - base_rss)) / 2**20:.1f} MiB"
    )
    print(f"bytes per resident page: {total / resident:.2f}")
    p.exit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
