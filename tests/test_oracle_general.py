"""libCacheSim's oracleGeneral trace format: written and read (plain and
.zst), object ids renumbered densely to pages, replayed with the misses a
reference LRU counts over the same ids."""

from collections import OrderedDict

import numpy as np
import pytest

import vmsim
from vmsim import mrc, traces
from vmsim.workloads import run_target


def zipf_ids(n, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.zipf(1.3, n) % 3000 * 7919 + 12345).astype(np.uint64)  # sparse, large ids


def reference_lru_misses(ids, capacity):
    cache, misses = OrderedDict(), 0
    for i in ids.tolist():
        if i in cache:
            cache.move_to_end(i)
        else:
            misses += 1
            cache[i] = None
            if len(cache) > capacity:
                cache.popitem(last=False)
    return misses


@pytest.mark.parametrize("name", ["t.oracleGeneral.bin", "t.oracleGeneral.zst"])
def test_round_trip_numbers_objects_densely_in_order_of_first_request(tmp_path, name):
    ids = zipf_ids(50_000)
    path = tmp_path / name
    traces.write_oracle_general(path, ids)
    chunks = list(traces.read_oracle_general(path, records=7_000))  # several chunks: one numbering across them
    assert len(chunks) == 8
    addrs = np.concatenate([a for a, _ in chunks])
    assert all((o == vmsim.WRITE).all() for _, o in chunks), "every request is a write: it needs a frame"
    pages = (addrs - traces.ORACLE_BASE) // vmsim.PAGE_SIZE
    _, first = np.unique(ids, return_index=True)
    order = ids[np.sort(first)]  # ids by first request
    assert pages[np.sort(first)].tolist() == list(range(order.size))
    assert (order[pages] == ids).all(), "the same page for every request of an object"
    assert next(iter(traces.reader_for(path)))[0].size == 50_000, "picked by its name"


def test_the_records_are_libcachesims(tmp_path):
    ids = np.array([5, 9, 5, 7, 9, 5], dtype=np.uint64)
    path = tmp_path / "small.oracleGeneral"
    traces.write_oracle_general(path, ids, sizes=100)
    rec = np.frombuffer(path.read_bytes(), dtype=traces.ORACLE_GENERAL)
    assert traces.ORACLE_GENERAL.itemsize == 24
    assert rec["id"].tolist() == [5, 9, 5, 7, 9, 5] and rec["time"].tolist() == [0, 1, 2, 3, 4, 5]
    assert rec["next"].tolist() == [2, 4, 5, -1, -1, -1], "the index of the object's next request"
    assert (rec["size"] == 100).all()
    lcs = pytest.importorskip("libcachesim")
    reader = lcs.TraceReader(str(path), lcs.TraceType.ORACLE_GENERAL_TRACE)
    assert reader.get_num_of_req() == 6


@pytest.mark.parametrize("capacity", [50, 400, 2500])
def test_replayed_lru_misses_equal_a_reference_lru_over_the_ids(tmp_path, capacity):
    ids = zipf_ids(40_000, seed=capacity)
    path = tmp_path / "z.oracleGeneral.zst"
    traces.write_oracle_general(path, ids)
    sim = vmsim.Simulator(memory="1GiB", swap="64MiB", policy="lru", resident_limit=capacity)
    assert mrc.misses_of(run_target(str(path), sim)) == reference_lru_misses(ids, capacity)
    curve = mrc.miss_ratio_curve(str(path), ["lru"], str(capacity))
    assert curve.lru_method == "stack distances" and curve.misses["lru"] == [reference_lru_misses(ids, capacity)]


def test_damaged_files_are_refused_with_their_offset(tmp_path):
    path = tmp_path / "cut.oracleGeneral.bin"
    traces.write_oracle_general(path, zipf_ids(100))
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(traces.TraceError, match=r"truncated record at byte 2376 \(records are 24 bytes\)"):
        list(traces.read_oracle_general(path))
    bad = tmp_path / "bad.oracleGeneral.zst"
    bad.write_bytes(b"\x28\xb5\x2f\xfd" + b"\x00garbage" * 10)
    with pytest.raises(traces.TraceError, match="corrupt compressed data"):
        list(traces.read_oracle_general(bad))
    sim = vmsim.Simulator(memory="64MiB")
    with pytest.raises(traces.TraceError):
        traces.replay(sim, path)
    sim.check()
