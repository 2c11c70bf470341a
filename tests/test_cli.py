"""The vmsim command line, run through its entry point."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

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
