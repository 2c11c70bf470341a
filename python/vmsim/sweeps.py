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
from typing import TYPE_CHECKING, Any

from vmsim.workloads import Workload

if TYPE_CHECKING:
    import pandas

Config = Mapping[str, Any]

# The fields `print(result)` shows, with their column headings; every field stays in the records.
_SHOWN = {
    "workload": "workload",
    "vma_index": "index",
    "policy": "policy",
    "accesses": "accesses",
    "min_flt": "min_flt",
    "maj_flt": "maj_flt",
    "evictions": "evictions",
    "accesses_per_second": "accesses/s",
}


def run_one(config: Config, workload: Workload) -> dict[str, Any]:
    """Run one workload on a fresh simulator built from `config`; its record
    (`RunResult.record`), with any further Simulator options the config
    names as fields of their own."""
    from vmsim._core import Simulator

    sim = Simulator(**dict(config))
    result = workload.run(sim)
    sim.check()
    record = result.record(sim)
    outcomes = record.pop("outcomes")
    record.update({k: v for k, v in config.items() if k not in record})
    record["outcomes"] = outcomes
    return record


def _flat(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record with its outcomes spread into `outcomes.NAME` fields."""
    row = {k: v for k, v in record.items() if k != "outcomes"}
    row.update({f"outcomes.{k}": v for k, v in record["outcomes"].items()})
    return row


class SweepResult(list):
    """The records of a sweep, in the order of the cross product.

    Each record is a dict with the fields `RunResult.record` gives (the same
    as `vmsim run --json`). Prints as a table; `to_dataframe()` gives one
    row per record, outcomes as `outcomes.NAME` columns; Jupyter shows it as
    an HTML table.
    """

    def to_dataframe(self) -> pandas.DataFrame:
        """The records as a pandas DataFrame (pandas must be installed)."""
        import pandas as pd

        return pd.DataFrame([_flat(r) for r in self])

    def _rows(self) -> list[list[Any]]:
        return [[r.get(k) for k in _SHOWN] for r in self]

    def __str__(self) -> str:
        from vmsim.display import text_table

        return text_table(list(_SHOWN.values()), self._rows(), title=f"sweep: {len(self)} runs")

    def _repr_html_(self) -> str:
        from vmsim.display import rows_table

        return rows_table(list(_SHOWN.values()), self._rows(), f"sweep: {len(self)} runs")


def sweep(
    configs: Iterable[Config], workloads: Iterable[Workload | str], executor: Executor | str | None = None
) -> SweepResult:
    """Run every workload under every configuration.

    Parameters
    ----------
    configs : iterable of mapping
        Keyword arguments of `Simulator`, one mapping per configuration.
    workloads : iterable of Workload or str
        Workloads, or their specs as the command line takes them
        (``"zipf:pages=4096,count=100000"``).
    executor : concurrent.futures.Executor or {"threads"}, optional
        None (default) for a local process pool, ``"threads"`` for a thread
        per core, or any Executor (Dask's ``distributed.Client``).

    Returns
    -------
    SweepResult
        One record per (config, workload), configs outer, workloads inner.
    """
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
