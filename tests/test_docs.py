"""The documentation runs: README.md's python blocks in order as one session
and its shell blocks marked runnable (```bash runnable); the python blocks of
every page under docs/ (each page one session); and the example notebook.
Blocks that only show a pattern are marked ```text. (`mkdocs build --strict`
runs in .ci/run.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").rglob("*.md"))
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.M | re.S)


def blocks(path: Path, info: str) -> list[str]:
    """The bodies of the fenced blocks of `path` whose info string is `info`."""
    return [body for tag, body in FENCE.findall(path.read_text()) if tag.strip() == info]


def run_python_blocks(path: Path) -> None:
    session: dict = {"__name__": "__docs__"}
    for n, body in enumerate(blocks(path, "python"), 1):
        try:
            exec(compile(body, f"{path.name} python block {n}", "exec"), session)
        except Exception as e:
            pytest.fail(f"{path.relative_to(ROOT)} python block {n} fails: {type(e).__name__}: {e}\n{body}")


def test_the_readme_has_blocks_of_both_kinds():
    assert len(blocks(README, "python")) >= 5 and len(blocks(README, "bash runnable")) >= 1


def test_readme_python_blocks_run_in_order_as_one_session(tmp_path, monkeypatch, capsys):
    pytest.importorskip("pandas")
    monkeypatch.chdir(tmp_path)
    run_python_blocks(README)


@pytest.mark.parametrize("n", range(len(blocks(README, "bash runnable"))))
def test_readme_runnable_shell_blocks(n, tmp_path):
    pytest.importorskip("matplotlib")
    body = blocks(README, "bash runnable")[n]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "COLUMNS": "80"}
    command = ["bash", "-euo", "pipefail", "-c", body]
    run = subprocess.run(command, check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"README shell block {n + 1} fails:\n{body}\n{run.stderr[-2000:]}"


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT / "docs")) for p in PAGES])
def test_docs_pages_python_blocks_run(page, tmp_path, monkeypatch, capsys):
    pytest.importorskip("pandas")
    monkeypatch.chdir(tmp_path)
    run_python_blocks(page)


def test_every_docs_page_is_in_the_site_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in PAGES:
        assert str(page.relative_to(ROOT / "docs")) in nav, f"{page} is not in mkdocs.yml's nav"


def test_the_example_notebook_runs(tmp_path):
    nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (pip install '.[test]')")
    nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed (pip install '.[test]')")
    pytest.importorskip("ipykernel", reason="ipykernel is not installed (pip install '.[test]')")
    nb = nbformat.read(ROOT / "docs" / "notebook.ipynb", as_version=4)
    where = {"metadata": {"path": str(tmp_path)}}
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", resources=where).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    html = [o["data"]["text/html"] for o in outputs if "data" in o and "text/html" in o["data"]]
    assert any("Simulator" in h and "<table>" in h for h in html)  # Simulator._repr_html_
    assert any("VMAs" in h for h in html)  # Process._repr_html_
    assert any("sweep: 4 runs" in h for h in html)  # SweepResult._repr_html_
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the plot
