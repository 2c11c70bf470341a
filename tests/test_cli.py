"""The vmsim command line, run through its entry point."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest

import vmsim
from vmsim import cli, demo


def test_demo_walks_every_case_and_cleans_up():
    out = io.StringIO()
    assert demo.run(out, color=False) == 0
    text = out.getvalue()
    for outcome in ("SEGV_MAPERR", "SEGV_ACCERR", "SEGV_NONCANONICAL", "ANON_ZERO_FILL", "HIT", "ZERO_PAGE"):
        assert outcome in text
    assert "RLIMIT_STACK" in text
    assert "stack_guard_gap" in text
    assert "stack grown down" in text
    assert "frames are free again" in text
    assert "[stack]" in text and "[heap]" in text


def test_cli_main_runs_demo(capsys):
    assert cli.main(["demo", "--color", "never"]) == 0
    assert "uninitialised" in capsys.readouterr().out


def test_console_script_entry_point():
    res = subprocess.run(
        [sys.executable, "-m", "vmsim.cli", "demo"], capture_output=True, text=True, timeout=60, check=False
    )
    assert res.returncode == 0, res.stderr
    assert "non-canonical" in res.stdout


def test_demo_exit_shows_both_routes(capsys):
    assert cli.main(["demo", "--exit"]) == 0
    out = capsys.readouterr().out
    for step in (
        "do_exit",
        "exit_mm",
        "mmput",
        "__mmput",
        "exit_mmap",
        "unmap_vmas",
        "free_pgtables",
        "vm_area_free",
        "mmdrop",
        "__mmdrop",
        "mm_free_pgd",
        "free_mm",
        "Drop for the address space runs",
    ):
        assert step in out
    assert "mm_users 2 -> 1" in out  # a thread's exit leaves the address space alone
    assert "mm_count 2 -> 1" in out  # the lazy-TLB reference keeps the mm_struct
    assert "0 kernel allocations live" in out


def test_explain_reads_addresses_as_maps_and_debuggers_print_them():
    from vmsim.cli import parse_address

    assert parse_address("0x7ffca0165000") == parse_address("7ffca0165000") == 0x7FFCA0165000
    assert parse_address("00400000") == parse_address("55554000") - 0x55154000 == 0x400000
    assert parse_address("4096") == 4096
    for bad in ["-5", "0x1ffffffffffffffff", "zz"]:
        with pytest.raises(ValueError):
            parse_address(bad)


def test_run_help_lists_every_workload_with_its_parameters_and_defaults(capsys, monkeypatch):
    from vmsim.workloads import PARAMS

    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit) as e:
        cli.main(["run", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for kind, params in PARAMS.items():
        assert f"  {kind}: " in text
        for key, default in params.items():
            assert f"{key}={default} " in text
    assert all(len(line) <= 80 for line in text.splitlines())


def test_run_refuses_an_unknown_workload_parameter(capsys):
    assert cli.main(["run", "zipf:pagez=10"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown parameter 'pagez'" in err


@pytest.mark.parametrize("policies", [["fifo"], ["fifo", "clock", "lru", "lru2q", "opt", "linux", "mglru"]])
def test_run_tables_fit_80_columns_one_line_per_row(capsys, monkeypatch, policies):
    monkeypatch.setenv("COLUMNS", "80")
    policy = policies[0] if len(policies) == 1 else "all"
    argv = ["run", "zipf:pages=4096,count=200000", "--swap", "64MiB", "--resident-limit", "512", "--policy", policy]
    assert cli.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(len(line) <= 80 for line in lines)
    header = lines[1].split()
    assert header == ["measure", *policies]
    assert all(len(line.split()) >= 1 + len(policies) for line in lines[2:])  # nothing wrapped


@pytest.mark.parametrize("width", [80, 200])
def test_demo_exit_fits_the_terminal_and_keeps_dragonos_events_out_of_linux(width):
    from vmsim import demo_exit

    out = io.StringIO()
    assert demo_exit.run(out, width=width) == 0
    lines = out.getvalue().splitlines()
    assert max(len(line) for line in lines) <= width
    if width >= 132:  # wide: side by side, nothing cut
        assert any(line.strip().startswith("Linux") and "| DragonOS" in line for line in lines)
        assert not any("..." in line for line in lines)
        linux_column = [line.split(" | ")[0] for line in lines if " | " in line]
    else:  # narrow: each Linux step with its DragonOS counterpart beneath it
        assert any(line.strip().startswith("DragonOS: ") for line in lines)
        linux_column = [line for line in lines if line.startswith("  ") and not line.strip().startswith("DragonOS")]
    assert not any("AddressSpace::drop" in line for line in linux_column)
    assert any(
        "vm_area_free: 0x555555554000-0x555555564000 r-x back to the vm_area_struct" in line for line in lines
    ) or (width < 132)


@pytest.mark.parametrize("text", ["7ffca0165000", "0x7ffca0165000", "0X7FFCA0165000"])
def test_explain_takes_hex_as_maps_prints_it_with_or_without_0x(text, capsys):
    assert cli.main(["explain", text, "--op", "w"]) == 0
    assert capsys.readouterr().out.startswith("0x7ffca0165000, write")


def test_a_benchmark_writes_results_only_when_asked(tmp_path, monkeypatch, capsys):
    import importlib.util
    from pathlib import Path

    pytest.importorskip("matplotlib")
    path = Path(__file__).resolve().parent.parent / "benches" / "reclaim.py"
    spec = importlib.util.spec_from_file_location("bench_reclaim", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setattr(bench, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(bench, "throughput", lambda policy, n: (1.0, 0.5))  # the table's first part: not under test
    monkeypatch.setattr(bench, "curve", lambda policy, limits, count: [100 // (i + 1) for i in range(len(limits))])
    assert bench.main(["--quick"]) == 0
    assert not (tmp_path / "results").exists()
    assert bench.main(["--quick", "--plot", str(tmp_path / "mine.png")]) == 0
    assert (tmp_path / "mine.png").exists() and not (tmp_path / "results").exists()
    assert bench.main(["--quick", "--save"]) == 0
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["reclaim.md", "reclaim.png"]
    assert f"wrote {tmp_path / 'results' / 'reclaim.png'}" in capsys.readouterr().out


def test_run_in_a_cgroup_reports_its_peak_and_events(capsys):
    spec = "uniform:pages=8192,count=100000"
    assert cli.main(["run", spec, "--memory", "64MiB", "--swap", "64MiB", "--cgroup", "max=16MiB", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["policy"] == "linux", "--cgroup runs under Linux reclaim"
    cg = rec["cgroup"]
    assert cg["limits"]["max"] == 16 << 20 and 0 < cg["peak"] <= 16 << 20
    assert cg["events"]["max"] > 0 and rec["swap_outs"] > 0
    assert cli.main(["run", spec, "--memory", "64MiB", "--swap", "64MiB", "--cgroup", "max=16MiB,high=12MiB"]) == 0
    out = capsys.readouterr().out
    assert "cgroup peak (MiB)" in out and "cgroup high events" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cgroup", "max=16MiB", "--policy", "clock"], "--cgroup needs --policy linux"),
        (["--cgroup", "size=16MiB"], "bad --cgroup item 'size=16MiB'"),
        (["--cgroup", "max"], "bad --cgroup item 'max'"),
        (["--cgroup", "max=lots"], "lots"),
    ],
)
def test_run_refuses_a_bad_cgroup_in_one_line(args, message, capsys):
    assert cli.main(["run", "zipf:pages=64,count=100", "--swap", "16MiB", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_workload_killed_in_its_cgroup_is_one_line(capsys):
    args = ["run", "sequential:pages=8192,passes=1", "--memory", "64MiB", "--cgroup", "max=8MiB"]
    assert cli.main(args) == 2  # no swap: the group cannot make room, the OOM killer takes the workload
    err = capsys.readouterr().err
    assert "killed by the OOM killer: memory cgroup /vmsim-run at memory.max" in err and err.count("\n") == 1


def test_demo_shows_copy_on_write_from_both_sides_and_a_jump_into_the_heap():
    out = io.StringIO()
    assert demo.run(out, color=False) == 0
    text = out.getvalue()
    after_fork = text[text.index("fork(): the child writes") :]
    # In order: the child's write copies, the parent's then reuses its own frame, the fetch hits NX.
    cow, reuse, nx = (after_fork.index(s) for s in ("=> COW_COPY", "=> COW_REUSE", "forbids the fetch (NX)"))
    assert cow < reuse < nx and "=> SEGV_ACCERR" in after_fork[nx:]
    assert "The child and both threads exited" in text and "65535 of 65535 frames are free again" in text


@pytest.mark.parametrize("addr", [0x7FFD12345678, 0x400000, 0x1000, 0xFFFF_FFFF_8100_0000])
def test_explain_prints_the_page_table_indices_of_the_address(addr, capsys):
    assert cli.main(["explain", hex(addr)]) == 0
    out = capsys.readouterr().out
    pgd, pud, pmd, pte = ((addr >> (12 + 9 * level)) % 512 for level in (3, 2, 1, 0))
    assert f"PGD {pgd}, PUD {pud}, PMD {pmd}, PTE {pte}, offset {addr % 4096:#x} in the page" in out


def test_explain_says_a_non_canonical_address_has_no_walk(capsys):
    assert cli.main(["explain", "0xdeadbeefdeadbeef"]) == 0
    assert "page-table indices: none (not canonical" in capsys.readouterr().out


def test_step_waits_for_enter_and_goes_on_when_the_input_ends(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n"))  # one Enter, then the input ends
    assert cli.main(["explain", "0x7ffd12345678", "--step"]) == 0
    out = capsys.readouterr().out
    assert out.count("(Enter for the next step)") == 2, "waited once, then saw the end and stopped waiting"
    assert "3. expand_stack refused" in out
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n" * 100))
    assert cli.main(["demo", "--step", "--color", "never"]) == 0
    out = capsys.readouterr().out
    assert out.count("(Enter for the next step)") == out.count("\n[") == 15


def test_run_on_every_vma_index_gives_one_row_each_with_the_same_faults(capsys):
    argv = ["run", "many_vmas:n=400,count=20000", "--vma-index", "all", "--repeat", "2", "--json"]
    assert cli.main(argv) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["vma_index"] for r in rows] == vmsim.vma_indexes()
    assert len({(r["min_flt"], r["maj_flt"]) for r in rows}) == 1 and rows[0]["min_flt"] > 400
    assert all(r["runs"] == 2 and r["accesses_per_second_min"] <= r["accesses_per_second_median"] for r in rows)
    assert cli.main(["run", "zipf:pages=256,count=2000", "--vma-index", "all", "--repeat", "1"]) == 0
    table = capsys.readouterr().out
    assert all(index in table for index in vmsim.vma_indexes()) and "every VMA index" in table


def test_many_vmas_keeps_thousands_of_vmas_alive():
    from vmsim.workloads import PARAMS, PLANS

    sim = vmsim.Simulator(memory="256MiB")
    proc, addrs, _ = next(PLANS["many_vmas"](sim, np.random.default_rng(0), {**PARAMS["many_vmas"], "n": 3000}))
    vmas = proc.vmas()
    assert sum(prot == "rw-" for _, _, prot, _ in vmas) >= 3000 and len(vmas) >= 6000
    assert len({int(a) // 8192 for a in addrs}) > 2500, "accesses spread across them"
    proc.exit()
    sim.check()


def test_vma_index_all_refuses_policy_all_in_one_line(capsys):
    assert cli.main(["run", "zipf", "--vma-index", "all", "--policy", "all"]) == 2
    assert "cannot go together" in capsys.readouterr().err


def test_bench_vma_times_every_index_and_counts_its_lookups(capsys):
    argv = ["bench", "vma", "--vmas", "50,500", "--lookups", "2000", "--repeat", "2", "--json"]
    assert cli.main(argv) == 0
    rows = {(r["vma_index"], r["vmas"]): r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {(i, n) for i in vmsim.vma_indexes() for n in (50, 500)}
    for r in rows.values():
        for op in ("lookup_ns", "insert_ns", "remove_ns", "gap_ns"):
            lo, hi = r[op + "_spread"]
            assert 0 < lo <= r[op] <= hi
    # A list walks half of itself per lookup; the trees their depth; a cache only where there is one.
    assert 100 < rows["list", 500]["nodes_per_lookup"] < 400 and rows["list", 500]["cache_hit_rate"] < 0.1
    assert rows["rbtree", 500]["nodes_per_lookup"] < 20 and rows["maple", 500]["nodes_per_lookup"] < 5
    assert rows["maple", 500]["cache_hit_rate"] is None and rows["btree", 500]["nodes_per_lookup"] is None
    assert cli.main(["bench", "vma", "--index", "maple,list", "--vmas", "20", "--quick"]) == 0
    table = capsys.readouterr().out
    assert "maple" in table and "list" in table and "rbtree" not in table


def test_bench_vma_user_errors(capsys):
    assert cli.main(["bench", "vma", "--index", "bogus"]) == 2
    assert "unknown VMA index 'bogus'" in capsys.readouterr().err
    assert cli.main(["bench", "vma", "--vmas", "0"]) == 2
    assert "vmas must be 1..=10000000" in capsys.readouterr().err


def test_bench_vma_draws_its_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "indexes.png"
    argv = ["bench", "vma", "--vmas", "10,100", "--lookups", "1000", "--repeat", "1", "--plot", str(png)]
    assert cli.main(argv) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"wrote {png}" in capsys.readouterr().err
