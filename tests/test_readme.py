"""README.md runs: its python blocks, in order, as one session, and every
shell block marked runnable (```bash runnable), so the README cannot drift
from the code. Blocks that only show a pattern are marked ```text."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.M | re.S)


def blocks(info: str) -> list[str]:
    """The bodies of the README's fenced blocks whose info string is `info`."""
    return [body for tag, body in FENCE.findall(README.read_text()) if tag.strip() == info]


def test_the_readme_has_blocks_of_both_kinds():
    assert len(blocks("python")) >= 5 and len(blocks("bash runnable")) >= 1


def test_python_blocks_run_in_order_as_one_session(tmp_path, monkeypatch, capsys):
    pytest.importorskip("pandas")
    monkeypatch.chdir(tmp_path)
    session: dict = {"__name__": "__readme__"}
    for n, body in enumerate(blocks("python"), 1):
        try:
            exec(compile(body, f"README.md python block {n}", "exec"), session)
        except Exception as e:
            pytest.fail(f"README python block {n} fails: {type(e).__name__}: {e}\n{body}")


@pytest.mark.parametrize("n", range(len(blocks("bash runnable"))))
def test_runnable_shell_blocks(n, tmp_path):
    pytest.importorskip("matplotlib")
    body = blocks("bash runnable")[n]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "COLUMNS": "80"}
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", body], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, f"README shell block {n + 1} fails:\n{body}\n{run.stderr[-2000:]}"
