"""Headline fault-throughput benchmark: vmsim against the host kernel.

    python benches/run.py [--pages N] [--repeat R]      (or: vmsim bench)

For each workload (write faults on fresh anonymous memory, read faults,
COW writes after fork) it prints faults per second in the simulator (one
access_batch call, release build, one core) and on the real kernel, and
their ratio. Best of R runs each.
"""

import sys

from vmsim.bench import main

if __name__ == "__main__":
    sys.exit(main())
