"""The vmsim command line, run through its entry point."""

from __future__ import annotations

import io
import subprocess
import sys

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
    res = subprocess.run([sys.executable, "-m", "vmsim.cli", "demo"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "non-canonical" in res.stdout
