"""Sweeps: the cross product of simulator configurations and workloads, each
run independently, on a local process pool, on threads of this process
(`executor="threads"`: simulators release the GIL while they run, so
independent ones use every core without copying anything between
processes), or on any `concurrent.futures` Executor (Dask's
`distributed.Client` is one). Workloads travel as names, parameters and
seeds, never as arrays: each worker generates its own.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Mapping
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

from vmsim.workloads import Workload

Config = Mapping[str, Any]


def run_one(config: Config, workload: Workload) -> dict:
    """Run one workload on a fresh simulator built from `config`; one record."""
    from vmsim._core import Simulator

    sim = Simulator(**dict(config))
    result = workload.run(sim)
    sim.check()
    record = {"config": dict(config), "workload": workload.name, **result.as_dict()}
    record.pop("name", None)
    return record


class SweepResult(list):
    """A list of records (dicts), with `to_dataframe()` where pandas is installed."""

    def to_dataframe(self):
        import pandas as pd

        rows = []
        for r in self:
            row = {f"config.{k}": v for k, v in r["config"].items()}
            row.update({k: v for k, v in r.items() if k not in ("config", "outcomes")})
            row.update({f"outcome.{k}": v for k, v in r["outcomes"].items()})
            rows.append(row)
        return pd.DataFrame(rows)


def sweep(
    configs: Iterable[Config], workloads: Iterable[Workload | str], executor: Executor | str | None = None
) -> SweepResult:
    """Run every workload under every configuration. Records come back in the
    order of the cross product (configs outer, workloads inner). `executor`:
    None for a local process pool, "threads" for a thread per core, or an
    Executor."""
    wl = [w if isinstance(w, Workload) else Workload.parse(w) for w in workloads]
    jobs = list(itertools.product([dict(c) for c in configs], wl))
    if executor is None or executor == "threads":
        make = ProcessPoolExecutor if executor is None else lambda: ThreadPoolExecutor(os.cpu_count())
        with make() as pool:
            return SweepResult(pool.map(run_one, *zip(*jobs)) if jobs else [])
    if isinstance(executor, str):
        raise ValueError(f"unknown executor {executor!r}: use None, 'threads' or a concurrent.futures.Executor")
    futures = [executor.submit(run_one, c, w) for c, w in jobs]
    return SweepResult(f.result() for f in futures)
