"""Trace throughput: replay of a large .npy trace end to end, and lackey parsing.

    python benches/traces.py [--accesses 100000000] [--lackey-lines 10000000]

Writes its inputs to a temporary directory (about 9 bytes per access).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

import vmsim
from vmsim import traces


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accesses", type=int, default=100_000_000)
    ap.add_argument("--lackey-lines", type=int, default=10_000_000)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        # A zipf-like working set of 64 MiB, mostly reads.
        path = os.path.join(d, "big.npy")
        rec = np.lib.format.open_memmap(path, mode="w+", dtype=[("addr", "<u8"), ("op", "u1")], shape=(args.accesses,))
        step = 10_000_000
        for i in range(0, args.accesses, step):
            n = min(step, args.accesses - i)
            a, o = vmsim.workloads.zipf(0x1000_0000, 16_384, n, skew=0.9, write_ratio=0.2, seed=i)
            rec["addr"][i : i + n] = a
            rec["op"][i : i + n] = o
        rec.flush()
        del rec
        sim = vmsim.Simulator(memory="1GiB")
        t0 = time.perf_counter()
        r = traces.replay(sim, path)
        dt = time.perf_counter() - t0
        print(
            f".npy replay: {r.accesses:,} accesses in {dt:.1f} s = {r.accesses / dt / 1e6:.1f} M accesses/s end to end"
        )

        lk = os.path.join(d, "big.lackey")
        rng = np.random.default_rng(1)
        kinds = np.array(["I  ", " L ", " S ", " M "])[rng.integers(0, 4, args.lackey_lines)]
        addrs = rng.integers(0x400000, 0x7FFF0000, args.lackey_lines)
        with open(lk, "w") as f:
            f.write("==1== Lackey, an example Valgrind tool\n")
            for i in range(0, args.lackey_lines, 1_000_000):
                sl = slice(i, i + 1_000_000)
                f.write("".join(f"{k}{a:08x},4\n" for k, a in zip(kinds[sl], addrs[sl])))
        t0 = time.perf_counter()
        n = sum(a.size for a, _ in traces.read_lackey(lk))
        dt = time.perf_counter() - t0
        print(
            f"lackey parsing: {args.lackey_lines:,} lines ({n:,} accesses) in {dt:.2f} s"
            f" = {args.lackey_lines / dt / 1e6:.1f} M lines/s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
