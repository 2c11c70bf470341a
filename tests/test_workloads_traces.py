"""Workloads, trace formats, replay, the CLI's run/explain/bench, and sweeps."""

from __future__ import annotations

import json
import lzma
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import vmsim
from vmsim import PAGE_SIZE, cli, traces, workloads
from vmsim.procmaps import parse_maps
from vmsim.sweeps import SweepResult, sweep
from vmsim.workloads import Workload

DATA = Path(__file__).parent / "data"


# ----- generators ------------------------------------------------------------------


def test_generators_shape_range_and_determinism():
    base, pages = 0x1000_0000, 256
    a, o = workloads.sequential(base, pages, passes=3, op=1)
    assert a.dtype == np.uint64 and o.dtype == np.uint8 and a.size == 3 * pages
    assert (o == 1).all() and a[0] == base and a[pages - 1] == base + (pages - 1) * PAGE_SIZE and a[pages] == base
    a, _ = workloads.strided(base, pages, stride=3, count=1000)
    assert ((a - base) // PAGE_SIZE % 3 == np.arange(1000) * 3 % pages % 3).all() and a.max() < base + pages * PAGE_SIZE
    for gen in (workloads.uniform, workloads.zipf):
        a1, o1 = gen(base, pages, 10_000, seed=5)
        a2, o2 = gen(base, pages, 10_000, seed=5)
        a3, _ = gen(base, pages, 10_000, seed=6)
        assert (a1 == a2).all() and (o1 == o2).all() and not (a1 == a3).all()
        assert a1.min() >= base and a1.max() < base + pages * PAGE_SIZE
        assert set(np.unique(o1)) <= {0, 1}
    # Zipf skew: the most popular page takes far more than 1/pages of the accesses.
    a, _ = workloads.zipf(base, pages, 100_000, skew=1.2, seed=1)
    top = np.bincount(((a - base) // PAGE_SIZE).astype(np.int64)).max()
    assert top > 100_000 / pages * 20


@pytest.mark.parametrize("kind", list(workloads.PLANS))
def test_every_workload_runs_reproducibly_and_cleans_up(kind):
    results = []
    for _ in range(2):
        sim = vmsim.Simulator(memory="128MiB")
        extra = f"file={DATA / 'cat.maps'}," if kind == "maps" else ""  # the one workload that needs a file
        r = Workload.parse(f"{kind}:{extra}seed=4").run(sim)
        sim.check()
        c = sim.counters()
        assert c["frames_free"] == c["frames_total"] and c["processes"] == 0
        results.append((r.accesses, r.outcomes, r.min_flt, r.rss_peak))
    assert results[0] == results[1]
    assert results[0][0] > 0


def test_fork_storm_counts():
    sim = vmsim.Simulator(memory="128MiB")
    r = Workload.make("fork_storm", pages=1000, children=5, fraction=0.1).run(sim)
    assert r.outcomes["ANON_ZERO_FILL"] == 1000
    assert r.outcomes["COW_COPY"] == 5 * 100
    # Every fault of the run, the exited children's included (they went to the
    # parent's cmin_flt as each child was reaped).
    assert r.min_flt == 1500


def test_workload_parse_errors():
    with pytest.raises(ValueError, match="unknown workload"):
        Workload.parse("nosuch:pages=1")
    with pytest.raises(ValueError, match="key=value"):
        Workload.parse("zipf:pages")
    with pytest.raises(ValueError, match="bad value"):
        Workload.parse("zipf:skew=steep")
    assert Workload.parse("zipf:skew=1.5,pages=0x100,seed=9") == Workload.make("zipf", 9, skew=1.5, pages=256)


# ----- trace formats ------------------------------------------------------------------


def chunks(it):
    parts = list(it)
    return np.concatenate([a for a, _ in parts]), np.concatenate([o for _, o in parts])


def test_lackey_sample_made_by_valgrind(tmp_path):
    a, o = chunks(traces.read_lackey(DATA / "true.lackey", chunk_bytes=4096))  # many chunk boundaries
    lines = [line for line in (DATA / "true.lackey").read_text().splitlines() if not line.startswith("==")]
    kinds = [line.split()[0] for line in lines]
    assert a.size == len(kinds) + kinds.count("M")
    assert (o == 2).sum() == kinds.count("I") and (o == 1).sum() == kinds.count("S") + kinds.count("M")
    first = lines[0].split()[1].split(",")[0]
    assert a[0] == int(first, 16)


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind not installed")
def test_lackey_from_a_live_valgrind_run(tmp_path):
    out = tmp_path / "true.lackey"
    subprocess.run(
        ["valgrind", "--tool=lackey", "--trace-mem=yes", f"--log-file={out}", "/bin/true"], check=True, timeout=120
    )
    a, o = chunks(traces.read_lackey(out))
    assert a.size > 10_000 and set(np.unique(o)) == {0, 1, 2}
    r = traces.replay(vmsim.Simulator(memory="64MiB"), out)
    assert r.accesses == a.size


def test_lackey_malformed_line_names_its_number(tmp_path):
    p = tmp_path / "bad.lackey"
    p.write_text("==1== Lackey\nI  04016a10,3\n L 0401xyz0,4\n")
    with pytest.raises(traces.TraceError, match="line 3: bad hexadecimal address"):
        list(traces.read_lackey(p))


def test_text_and_csv(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("address,op\n0x1000,r\n4096,w\n\n# note\n0x2000,x\n")
    a, o = chunks(traces.read_text(p))
    assert a.tolist() == [0x1000, 4096, 0x2000] and o.tolist() == [0, 1, 2]
    bad = tmp_path / "bad.txt"
    bad.write_text("0x1000 r\n0x2000 r\n0x3000 jump\n")
    with pytest.raises(traces.TraceError, match="line 3: bad op"):
        list(traces.read_text(bad))


def test_numpy_formats(tmp_path):
    addrs = np.arange(0x1000_0000, 0x1000_0000 + 100 * PAGE_SIZE, PAGE_SIZE, dtype=np.uint64)
    ops = (np.arange(100) % 2).astype(np.uint8)
    np.savez(tmp_path / "t.npz", addrs=addrs, ops=ops)
    rec = np.zeros(100, dtype=[("addr", "<u8"), ("op", "u1")])
    rec["addr"], rec["op"] = addrs, ops
    np.save(tmp_path / "t.npy", rec)
    np.save(tmp_path / "pairs.npy", np.stack([addrs, ops.astype(np.uint64)], axis=1))
    for name in ("t.npz", "t.npy", "pairs.npy"):
        a, o = chunks(traces.read_numpy(tmp_path / name, chunk=7))
        assert (a == addrs).all() and (o == ops).all(), name
    np.save(tmp_path / "badops.npy", np.stack([addrs, np.full(100, 9, np.uint64)], axis=1))
    with pytest.raises(traces.TraceError, match="index 0"):
        list(traces.read_numpy(tmp_path / "badops.npy"))


def test_replay_reading_ahead_matches_plain_batches(tmp_path, monkeypatch):
    """Replay reads the next chunk in a worker thread: the outcomes are those
    of the same batches sent one after another, a bad op in a later chunk
    still raises TraceError, and no process is left behind either way."""
    monkeypatch.setattr(traces, "FIRST_CHUNK", 5)
    rng = np.random.default_rng(3)
    addrs = (0x1000_0000 + rng.integers(0, 64, 1000) * PAGE_SIZE).astype(np.uint64)
    ops = rng.integers(0, 2, 1000).astype(np.uint8)
    rec = np.zeros(1000, dtype=[("addr", "<u8"), ("op", "u1")])
    rec["addr"], rec["op"] = addrs, ops
    np.save(tmp_path / "t.npy", rec)
    monkeypatch.setattr(traces.read_numpy, "__defaults__", (64,))
    sim = vmsim.Simulator(memory="16MiB")
    result = traces.replay(sim, tmp_path / "t.npy", layout=None)
    plain = vmsim.Simulator(memory="16MiB")
    p = plain.spawn()
    p.map_trace_regions(addrs)
    codes = np.concatenate([p.access_batch(addrs[i : i + 64], ops[i : i + 64]) for i in range(0, 1000, 64)])
    assert result.outcomes == {o.name: int((codes == o).sum()) for o in vmsim.Outcome}
    assert sim.counters()["processes"] == 0
    rec["op"][900] = 7
    np.save(tmp_path / "bad.npy", rec)
    with pytest.raises(traces.TraceError, match="index 900"):
        traces.replay(sim, tmp_path / "bad.npy", layout=None)
    assert sim.counters()["processes"] == 0
    sim.check()


def test_trace_span_mapped_says_when_regions_are_missing():
    p = vmsim.Simulator(memory="16MiB").spawn()
    first, last = 0x1000_0000, 0x1000_0000 + (3 << 21) - 1
    assert not p.trace_span_mapped(first, last)
    assert p.map_trace_regions(np.array([first, last], np.uint64)) == 2
    assert not p.trace_span_mapped(first, last)  # the middle 2 MiB region is still a hole
    p.map_trace_regions(np.array([first + (1 << 21)], np.uint64))
    assert p.trace_span_mapped(first, last) and p.trace_span_mapped(first + 5, first + 9)


def test_champsim_xz(tmp_path):
    rec = np.zeros(3, dtype=traces.CHAMPSIM)
    rec["ip"] = [0x401000, 0x401004, 0x401008]
    rec["src_mem"][0, 0] = 0x7000_1000
    rec["dst_mem"][1, 0] = 0x7000_2000
    path = tmp_path / "t.champsimtrace.xz"
    with lzma.open(path, "wb") as f:
        f.write(rec.tobytes())
    a, o = chunks(traces.read_champsim(path))
    assert a.tolist() == [0x401000, 0x7000_1000, 0x401004, 0x7000_2000, 0x401008]
    assert o.tolist() == [2, 0, 2, 1, 2]
    with lzma.open(tmp_path / "short.xz", "wb") as f:
        f.write(rec.tobytes()[:100])
    with pytest.raises(traces.TraceError, match="truncated"):
        list(traces.read_champsim(tmp_path / "short.xz"))


def test_record_and_replay_own_format(tmp_path):
    path = tmp_path / "run.vmst"
    sim = vmsim.Simulator(memory="64MiB")
    with traces.record(sim, path) as rec:
        p = rec.spawn(layout="default")
        a = p.mmap(32 * PAGE_SIZE)
        p.access_batch(np.arange(a, a + 32 * PAGE_SIZE, PAGE_SIZE, dtype=np.uint64), "w")
        p.mprotect(a, PAGE_SIZE, "r")
        assert p.access(a, "w") is vmsim.Outcome.SEGV_ACCERR
        c = p.fork()
        c.access(a + PAGE_SIZE, "w")
        t = c.clone_thread()
        t.access(a + 2 * PAGE_SIZE, "w")
        t.exit()
        c.exit()
        p.munmap(a + 16 * PAGE_SIZE, 16 * PAGE_SIZE)
        p.brk(p.brk() + 8 * PAGE_SIZE)
        p.exit()
    original = sim.counters()["faults"]
    replayed = vmsim.Simulator(memory="64MiB")
    r = traces.replay(replayed, path)
    assert dict(r.outcomes.items()) == original
    assert r.min_flt == 32 + 1 + 1  # parent 32 fills; child: one copy by itself, one by its thread
    assert replayed.counters()["processes"] == 0
    # Malformed files are refused with the reason.
    (tmp_path / "bad.vmst").write_bytes(b"NOTATRACE" + bytes(24))
    with pytest.raises(traces.TraceError, match="magic"):
        traces.replay(replayed, tmp_path / "bad.vmst")
    (tmp_path / "trunc.vmst").write_bytes(traces.MAGIC + bytes(30))
    with pytest.raises(traces.TraceError, match="cut off"):
        traces.replay(replayed, tmp_path / "trunc.vmst")


# ----- the command line -------------------------------------------------------------------


def test_cli_run_workload_json(capsys):
    assert (
        cli.main(["run", "zipf:pages=512,count=20000,seed=2", "--memory", "64MiB", "--vma-index", "rbtree", "--json"])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["accesses"] == 20000 and out["vma_index"] == "rbtree" and out["memory"] == 64 << 20
    assert sum(out["outcomes"].values()) == 20000
    assert out["min_flt"] == sum(out["outcomes"][k] for k in ("ZERO_PAGE", "ANON_ZERO_FILL", "COW_COPY", "COW_REUSE"))


def test_cli_run_trace_table_and_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "run.png"
    assert cli.main(["run", str(DATA / "true.lackey"), "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "accesses" in out and "RSS peak" in out and "throughput" in out
    assert plot.stat().st_size > 1000


def test_cli_run_errors_are_reported(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text("0x1000 q\n")
    assert cli.main(["run", str(bad)]) == 2
    assert "line 1" in capsys.readouterr().err
    assert cli.main(["run", "zipf:skew=steep"]) == 2


def test_cli_explain_on_a_saved_maps_file(capsys):
    maps = parse_maps((DATA / "cat.maps").read_text())
    stack = next(m for m in maps if m[3] == "[stack]")
    heap_or_text = maps[0]
    assert cli.main(["explain", hex(heap_or_text[0] + 8), "--maps", str(DATA / "cat.maps")]) == 0
    out = capsys.readouterr().out
    assert "inside" in out and "=> ZERO_PAGE" in out
    assert cli.main(["explain", hex(heap_or_text[0] + 8), "--op", "w", "--maps", str(DATA / "cat.maps")]) == 0
    assert "=> SEGV_ACCERR" in capsys.readouterr().out  # the first mapping is read-only
    assert cli.main(["explain", hex(stack[0] - 64), "--op", "w", "--maps", str(DATA / "cat.maps")]) == 0
    out = capsys.readouterr().out
    assert "grows down" in out and "=> ANON_ZERO_FILL" in out
    assert cli.main(["explain", "0xdeadbeefdeadbeef"]) == 0
    assert "SEGV_NONCANONICAL" in capsys.readouterr().out


def test_cli_explain_live_pid(capsys):
    import os

    assert cli.main(["explain", "0x0", "--pid", str(os.getpid())]) == 0
    assert "=> SEGV_MAPERR" in capsys.readouterr().out


def test_cli_bench_quick(capsys):
    assert cli.main(["bench", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "write faults" in out and "COW writes after fork" in out and "x" in out


# ----- sweeps ---------------------------------------------------------------------------------


CONFIGS = [{"memory": "64MiB", "vma_index": "maple"}, {"memory": "64MiB", "vma_index": "list"}]
WORKLOADS = ["zipf:pages=256,count=5000,seed=1", Workload.make("mmap_churn", 2, cycles=20)]


def test_sweep_on_a_local_process_pool():
    records = sweep(CONFIGS, WORKLOADS)
    assert len(records) == 4
    assert [r["vma_index"] for r in records] == ["maple", "maple", "list", "list"]
    # Same workload, different index: identical results.
    assert records[0]["outcomes"] == records[2]["outcomes"] and records[1]["min_flt"] == records[3]["min_flt"]
    pd = pytest.importorskip("pandas")
    df = records.to_dataframe()
    assert isinstance(df, pd.DataFrame) and len(df) == 4 and "outcomes.HIT" in df.columns
    assert list(df["workload"]) == [r["workload"] for r in records]


def test_vmsim_sweep_is_the_function_the_readme_calls():
    records = vmsim.sweep([{"memory": "64MiB", "stack_rlimit": "4MiB"}], ["zipf:pages=64,count=500"], "threads")
    assert isinstance(records, SweepResult) and len(records) == 1
    # A Simulator option beyond the standard fields is kept as a field of its own.
    assert records[0]["stack_rlimit"] == "4MiB" and records[0]["memory"] == 64 << 20


def test_cli_json_sweep_records_and_dataframe_share_field_names(capsys):
    spec = "zipf:pages=256,count=5000,seed=1"
    assert cli.main(["run", spec, "--memory", "64MiB", "--json"]) == 0
    cli_record = json.loads(capsys.readouterr().out)
    (sweep_record,) = sweep([{"memory": "64MiB"}], [spec], executor="threads")
    assert list(cli_record) == list(sweep_record)
    assert cli_record["workload"] == sweep_record["workload"] == Workload.parse(spec).name
    for field in ("swap_outs", "evictions", "swap_ins", "writebacks", "policy", "swap"):
        assert field in sweep_record
    assert cli_record["outcomes"] == sweep_record["outcomes"]
    pd = pytest.importorskip("pandas")
    columns = list(SweepResult([sweep_record]).to_dataframe().columns)
    flat = [k for k in sweep_record if k != "outcomes"] + [f"outcomes.{k}" for k in sweep_record["outcomes"]]
    assert columns == flat and isinstance(pd.DataFrame(), pd.DataFrame)


def test_sweep_result_prints_as_a_table_that_fits_80_columns():
    records = sweep(CONFIGS, WORKLOADS, executor="threads")
    from vmsim.display import text_table

    text = text_table(["workload", "accesses"], [[r["workload"], r["accesses"]] for r in records], width=80)
    assert all(len(line) <= 80 for line in text.splitlines())
    shown = str(records)
    assert "sweep: 4 runs" in shown and "min_flt" in shown and "{" not in shown
    assert len(shown.splitlines()) == 2 + 4  # title, header, one line per record
    html = records._repr_html_()
    assert html.count("<tr>") == 5 and "maple" in html


def test_sweep_on_a_dask_local_cluster():
    distributed = pytest.importorskip("distributed", reason="Dask distributed is not installed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with cluster, distributed.Client(cluster) as client:
        records = sweep(CONFIGS, WORKLOADS, executor=client)
    assert len(records) == 4
    local = sweep(CONFIGS[:1], WORKLOADS[:1])
    assert records[0]["outcomes"] == local[0]["outcomes"]


def test_cli_run_under_pressure_every_policy(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "mix.png"
    args = [
        "run",
        "zipf:pages=2048,count=30000,skew=0.9,seed=1",
        "--memory",
        "64MiB",
        "--swap",
        "16MiB",
        "--resident-limit",
        "256",
        "--policy",
        "all",
        "--json",
        "--plot",
        str(plot),
    ]
    assert cli.main(args) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [r["policy"] for r in runs] == vmsim.policies()
    swap_ins = {r["policy"]: r["outcomes"]["SWAP_IN"] for r in runs}
    assert swap_ins["opt"] == min(swap_ins.values()) and swap_ins["opt"] > 0
    assert all(r["maj_flt"] == r["outcomes"]["SWAP_IN"] for r in runs)
    assert plot.stat().st_size > 1000
    assert cli.main(["run", "zipf:pages=512,count=5000", "--policy", "clock", "--swap", "4MiB"]) == 0
    assert "throughput" in capsys.readouterr().out


def test_sweep_on_threads_gives_the_process_pool_results():
    threads = sweep(CONFIGS, WORKLOADS, executor="threads")
    assert [(r["workload"], r["outcomes"]) for r in threads] == [
        (r["workload"], r["outcomes"]) for r in sweep(CONFIGS, WORKLOADS)
    ]
    with pytest.raises(ValueError, match="executor"):
        sweep(CONFIGS, WORKLOADS, executor="fibres")


def test_maps_workload_rebuilds_a_real_layout_and_accesses_it(capsys):
    w = Workload.parse(f"maps:{DATA / 'cat.maps'},count=20000,seed=2")
    assert dict(w.params)["file"] == str(DATA / "cat.maps") and "maps:" in w.name
    sim = vmsim.Simulator(memory="256MiB")
    result = w.run(sim)
    assert result.accesses == 20_000 and result.min_flt > 0
    assert result.outcomes["SEGV_ACCERR"] == 0 and result.outcomes["SEGV_MAPERR"] == 0, "only what it may touch"
    assert result.outcomes["COW_COPY"] + result.outcomes["ANON_ZERO_FILL"] > 0, "writes where it is writable"
    sim.check()
    # The layout it runs in is the file's: every user mapping at its address.
    from vmsim.procmaps import layout_from_maps

    maps = [m for m in parse_maps((DATA / "cat.maps").read_text()) if m[3] != "[vsyscall]"]
    p, _ = layout_from_maps(vmsim.Simulator(memory="256MiB"), maps)
    vmas = p.vmas()
    assert all(any(lo <= m[0] and m[1] <= hi for lo, hi, *_ in vmas) for m in maps)
    assert sum(hi - lo for lo, hi, *_ in vmas) == sum(hi - lo for lo, hi, *_ in maps)
    assert cli.main(["run", "maps", "--json"]) == 2
    assert "needs a saved /proc/PID/maps file" in capsys.readouterr().err
    assert cli.main(["run", "maps:/no/such.maps"]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_vma_churn_keeps_thousands_of_mappings_alive_while_it_churns():
    from vmsim.workloads import PARAMS, PLANS

    sim = vmsim.Simulator(memory="256MiB")
    plan = PLANS["vma_churn"](sim, np.random.default_rng(3), {**PARAMS["vma_churn"], "live": 1500, "cycles": 50})
    counts = []
    for proc, addrs, ops in plan:
        proc.access_batch(addrs, ops)
        counts.append(len(proc.vmas()))
    # Each live mapping and its guard page are two VMAs; the count holds steady as it churns.
    assert len(counts) == 50 and min(counts) >= 3000 and max(counts) - min(counts) <= 4
    proc.exit()
    sim.check()
    r = Workload.parse("vma_churn:live=300,cycles=100,seed=1").run(vmsim.Simulator(memory="256MiB"))
    assert r.outcomes["ANON_ZERO_FILL"] > 100 and r.outcomes["SEGV_MAPERR"] == 0
