"""Miss-ratio curves (vmsim.mrc, `vmsim mrc`): LRU by stack distances in one
pass equals LRU replayed at every size; the other policies are replayed."""

import json

import numpy as np
import pytest

import vmsim
from vmsim import mrc, traces
from vmsim.cli import main
from vmsim.workloads import run_target


def lru_replayed(target, size, distinct):
    sim = vmsim.Simulator(memory="4GiB", swap=(distinct + 1024) * 4096, policy="lru", resident_limit=size)
    return mrc.misses_of(run_target(target, sim))


def random_trace(tmp_path, n, pages, write_ratio, seed):
    rng = np.random.default_rng(seed)
    rec = np.zeros(n, [("addr", "<u8"), ("op", "u1")])
    rec["addr"] = 0x5000_0000 + rng.integers(0, pages, n) * 4096 + rng.integers(0, 4096, n)
    rec["op"] = rng.random(n) < write_ratio
    path = tmp_path / f"random-{seed}.npy"
    np.save(path, rec)
    return str(path)


@pytest.mark.parametrize("write_ratio", [1.0, 0.5, 0.1])
def test_stack_distances_equal_lru_replayed_at_every_size(tmp_path, write_ratio):
    # Reads of pages never written map the zero page: no frame, no miss.
    trace = random_trace(tmp_path, 30_000, 1200, write_ratio, seed=int(write_ratio * 10))
    curve = mrc.miss_ratio_curve(trace, ["lru"], "1..1300", points=12)
    assert curve.lru_method == "stack distances"
    assert curve.distinct_pages == 1200 and curve.accesses == 30_000
    replayed = [lru_replayed(trace, s, curve.distinct_pages) for s in curve.sizes]
    assert curve.misses["lru"] == replayed
    assert replayed == sorted(replayed, reverse=True) and replayed[0] > replayed[-1]


def test_a_workload_that_unmaps_is_replayed_for_lru_too():
    # heap frees chunks (munmap): freed frames leave the stack, which one pass cannot follow.
    curve = mrc.miss_ratio_curve("heap:allocs=600", ["lru"], "10%..100%", points=4)
    assert curve.lru_method == "replay"
    assert curve.misses["lru"] == [lru_replayed("heap:allocs=600", s, curve.distinct_pages) for s in curve.sizes]


def test_every_policy_has_a_curve_and_opt_is_the_floor():
    curve = mrc.miss_ratio_curve("zipf:pages=2048,count=60000", ["lru", "fifo", "clock", "opt"], "5%..100%", points=5)
    assert set(curve.misses) == {"lru", "fifo", "clock", "opt"}
    for i in range(len(curve.sizes)):
        assert curve.misses["opt"][i] <= min(curve.misses[p][i] for p in ("lru", "fifo", "clock"))
    # At 100% of the distinct pages nothing is evicted: only first touches miss, under every policy.
    assert len({curve.misses[p][-1] for p in curve.misses}) == 1
    assert all(0 < r <= 1 for r in curve.ratios("fifo"))


def test_sizes_are_counts_percents_and_ranges():
    assert mrc.parse_sizes("1%..100%", 200, points=5) == [2, 52, 101, 150, 200]
    assert mrc.parse_sizes("512", 200) == [512]
    assert mrc.parse_sizes("10, 50%, 10", 200) == [10, 100]
    assert mrc.parse_sizes("0.1%", 200) == [1], "at least one page"
    for bad in ["", "a", "0", "5..1", "1..2..3", "..5", "-3", "5%%"]:
        with pytest.raises(ValueError):
            mrc.parse_sizes(bad, 200)


def test_stack_distances_by_hand():
    sd = vmsim.StackDistances()
    sd.feed(np.array([0x1000, 0x2000, 0x1000, 0x3000], dtype=np.uint64), "w")
    sd.feed([0x2000], [0])  # a read: page 2 is on the stack, at distance 3
    assert (sd.accesses, sd.distinct_pages, sd.written_pages) == (5, 3, 3)
    # Three first writes miss everywhere; page 1 again at distance 2, page 2 at 3.
    assert [sd.misses(n) for n in (0, 1, 2, 3, 4)] == [5, 5, 4, 3, 3]
    sd.feed([0x9000], "r")  # never written: the zero page
    assert (sd.misses(0), sd.distinct_pages, sd.written_pages) == (5, 4, 3)
    sd.feed([0x1000], "w", space=7)  # another address space: another page
    assert sd.written_pages == 4
    with pytest.raises(ValueError, match="ops has 1 entries but addrs has 2"):
        sd.feed([1, 2], [1])
    with pytest.raises(ValueError, match="not an access code"):
        sd.feed([1], [9])
    assert sd.accesses == 7, "a refused batch adds nothing"


def test_cli_prints_the_table_and_json_and_draws_the_plot(tmp_path, capsys):
    target = "zipf:pages=1024,count=20000"
    assert main(["mrc", target, "--policy", "lru,clock", "--sizes", "10%..100%", "--points", "3"]) == 0
    out = capsys.readouterr().out
    assert "lru by stack distances" in out and "clock" in out and "100.0%" in out
    assert main(["mrc", target, "--sizes", "50%", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["lru_method"] == "stack distances" and len(record["miss_ratios"]["lru"]) == 1
    pytest.importorskip("matplotlib")
    png = tmp_path / "mrc.png"
    assert main(["mrc", target, "--policy", "all", "--sizes", "20%,60%,100%", "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["mrc", "zipf", "--sizes", "0%"], "must be above 0"),
        (["mrc", "zipf", "--policy", "bogus"], "unknown policy 'bogus'"),
        (["mrc", "no-such-trace.npy"], "no such trace file"),
        (["mrc", "zipf:pages=4096", "--memory", "64KiB"], "ENOMEM"),
    ],
)
def test_cli_user_errors_are_one_line_and_exit_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_trace_with_page_cache_reads_is_replayed_for_lru(tmp_path):
    # File pages need frames to be read: the one pass (which counts reads of
    # unwritten pages as the zero page) would miss them.
    path = tmp_path / "file.vmst"
    sim = vmsim.Simulator(memory="64MiB")
    with traces.record(sim, path) as rec:
        p = rec.spawn()
        f = rec.create_file(64 * 4096, name="/data")
        a, b = p.mmap(64 * 4096, prot="r", flags="private", file=f), p.mmap(64 * 4096)
        rng = np.random.default_rng(1)
        for _ in range(10):
            p.access_batch(np.arange(a, a + 64 * 4096, 4096, dtype=np.uint64), "r")
            p.access_batch(b + rng.integers(0, 64, 50).astype(np.uint64) * np.uint64(4096), "w")
        p.exit()
    curve = mrc.miss_ratio_curve(str(path), ["lru"], "10..128", points=3)
    assert curve.lru_method == "replay"
    assert curve.misses["lru"] == [lru_replayed(str(path), s, curve.distinct_pages) for s in curve.sizes]
    assert curve.misses["lru"][0] > curve.misses["lru"][-1]
