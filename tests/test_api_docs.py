"""The API documents itself: numpydoc docstrings on every public item of the
extension (from its Rust doc comments), the same text in the stubs, stub
signatures that match the extension's, and docstrings across the package."""

from __future__ import annotations

import ast
import inspect
import pydoc
import re

import pytest

import stubdocs
import vmsim
from vmsim import _core

STUB_TREE = ast.parse(stubdocs.STUB.read_text())
ITEMS = list(stubdocs.documented(_core, STUB_TREE))


def test_stub_docstrings_are_generated_from_the_extension():
    assert stubdocs.render(stubdocs.STUB.read_text(), _core) == stubdocs.STUB.read_text(), (
        "python/vmsim/_core.pyi is out of date: run python tests/stubdocs.py"
    )


def _params(node: ast.FunctionDef) -> list[str]:
    a = node.args
    names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]
    return [n for n in names if n != "self"]


def _init(node: ast.ClassDef) -> ast.FunctionDef | None:
    return next((f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)


@pytest.mark.parametrize(("node", "obj", "name"), ITEMS, ids=[name for *_, name in ITEMS])
def test_every_public_item_has_a_numpydoc_docstring(node, obj, name):
    doc = inspect.getdoc(obj)
    assert doc and len(doc.split("\n")[0]) > 8, f"{name} has no docstring"
    init = _init(node) if isinstance(node, ast.ClassDef) else None
    fn = init if init is not None else node
    params = _params(fn) if isinstance(fn, ast.FunctionDef) else []
    if params:
        assert "Parameters\n----------" in doc, f"{name} documents no parameters"
        section = doc.split("Parameters\n----------", 1)[1]
        for p in params:
            assert re.search(rf"^{p} :", section, re.M), f"{name}: parameter {p} is not documented"
    returns = fn.returns if isinstance(fn, ast.FunctionDef) and fn.name != "__init__" else None
    is_property = isinstance(node, ast.FunctionDef) and any(
        isinstance(d, ast.Name) and d.id == "property" for d in node.decorator_list
    )
    if returns is not None and not is_property and ast.unparse(returns) != "None":
        assert "Returns\n-------" in doc, f"{name} does not say what it returns"


CALLABLES = [(n, o, name) for n, o, name in ITEMS if isinstance(n, ast.FunctionDef) and callable(o)]


@pytest.mark.parametrize(("node", "obj", "name"), CALLABLES, ids=[name for *_, name in CALLABLES])
def test_stub_signatures_match_the_extension(node, obj, name):
    text = getattr(obj, "__text_signature__", None)
    assert text, f"{name} has no signature at run time"
    runtime = [p for p in inspect.signature(obj).parameters if p not in ("self", "$self")]
    assert _params(node) == runtime, f"{name}: the stub's parameters differ from the extension's"


@pytest.mark.parametrize("cls", [vmsim.Simulator, vmsim.Process, vmsim.File, vmsim.Kernel])
def test_help_shows_the_class_docstring_and_its_methods(cls):
    text = pydoc.render_doc(cls, renderer=pydoc.plaintext)
    assert inspect.getdoc(cls).split("\n")[0] in text
    methods = [m for m in vars(cls) if not m.startswith("_")]
    assert methods and all(inspect.getdoc(getattr(cls, m)).split("\n")[0] in text for m in methods)


def test_simulator_init_parameters_are_in_the_class_docstring():
    doc = inspect.getdoc(vmsim.Simulator)
    for p in inspect.signature(vmsim.Simulator).parameters:
        assert f"\n{p} :" in doc


@pytest.mark.parametrize(
    "module",
    ["vmsim", "vmsim.workloads", "vmsim.traces", "vmsim.sweeps", "vmsim.counters", "vmsim.plots", "vmsim.vmst"],
)
def test_python_modules_document_every_public_function_and_class(module):
    mod = __import__(module, fromlist=["_"])
    assert inspect.getdoc(mod)
    for name, obj in vars(mod).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
            continue
        if inspect.isfunction(obj) or inspect.isclass(obj):
            assert inspect.getdoc(obj), f"{module}.{name} has no docstring"
        if inspect.isclass(obj):
            for meth_name, meth in vars(obj).items():
                if not meth_name.startswith("_") and inspect.isfunction(meth):
                    assert inspect.getdoc(meth), f"{module}.{name}.{meth_name} has no docstring"


def test_an_outcome_prints_as_its_name():
    sim = vmsim.Simulator(memory="64MiB")
    p = sim.spawn()
    outcome = p.access(p.mmap(4096), "w")
    assert str(outcome) == "ANON_ZERO_FILL" and f"{outcome}" == "ANON_ZERO_FILL" and outcome == 2
    assert f"{outcome:>16}" == "  ANON_ZERO_FILL"


def test_repr_shows_swap_policy_and_limit():
    sim = vmsim.Simulator(memory="64MiB", swap="128MiB", policy="clock", resident_limit=100)
    text = repr(sim)
    assert 'swap="128MiB"' in text and 'policy="clock"' in text and "resident_limit=100" in text
    assert "swap" not in repr(vmsim.Simulator(memory="64MiB"))
    assert (sim.swap, sim.policy, sim.resident_limit) == (128 << 20, "clock", 100)


def test_vmstat_counts_faults_as_linux_names_them():
    sim = vmsim.Simulator(memory="64MiB")
    p = sim.spawn()
    a = p.mmap(8 * vmsim.PAGE_SIZE)
    for i in range(8):
        p.access(a + i * vmsim.PAGE_SIZE, "w")
    v, c = sim.vmstat(), sim.counters()
    assert v["pgfault"] == 8 and v["pgmajfault"] == 0 and v["nr_free_pages"] == c["frames_free"]
    assert set(v) == set(vmsim.counters.VmStat.__annotations__)


def test_counters_match_their_typed_dicts():
    sim = vmsim.Simulator(memory="64MiB")
    p = sim.spawn(layout="default")
    assert list(sim.counters()) == list(vmsim.counters.SimCounters.__annotations__)
    assert list(p.counters()) == list(vmsim.counters.ProcessCounters.__annotations__)
    assert list(p.layout()) == list(vmsim.counters.Layout.__annotations__)
    assert list(sim.kernel.meminfo()) == list(vmsim.counters.MemInfo.__annotations__)
    assert list(sim.kernel.slabinfo()[0]) == list(vmsim.counters.SlabInfo.__annotations__) or set(
        sim.kernel.slabinfo()[0]
    ) == set(vmsim.counters.SlabInfo.__annotations__)
    assert set(sim.leak_check()[0]) == set(vmsim.counters.LiveAllocation.__annotations__)


def test_jupyter_views_are_tables():
    sim = vmsim.Simulator(memory="64MiB", swap="64MiB", policy="lru")
    p = sim.spawn(layout="default")
    p.access(p.mmap(4096), "w")
    html = sim._repr_html_()
    assert html.startswith("<table>") and "policy" in html and "lru" in html and "ANON_ZERO_FILL" in html
    proc_html = p._repr_html_()
    assert "rss_anon" in proc_html and proc_html.count("<tr>") > len(p.vmas())
    assert sim.counters()._repr_html_().count("<tr>") == 1 + len(sim.counters()) - 1 + len(vmsim.Outcome)
    p.exit()
    assert "exited" in p._repr_html_()


def _python_api():
    from vmsim import sweeps, traces, workloads

    w = workloads
    return [
        w.sequential, w.strided, w.uniform, w.zipf, w.Workload.make, w.Workload.parse, w.Workload.run,
        traces.replay, traces.record, traces.reader_for, traces.read_lackey, traces.read_text,
        traces.read_numpy, traces.read_champsim, sweeps.sweep,
    ]  # fmt: skip


@pytest.mark.parametrize("fn", _python_api(), ids=lambda f: f.__qualname__)
def test_the_python_api_documents_every_parameter(fn):
    doc = inspect.getdoc(fn)
    assert doc and "Parameters\n----------" in doc, f"{fn.__qualname__} documents no parameters"
    section = doc.split("Parameters\n----------", 1)[1]
    for name, param in inspect.signature(fn).parameters.items():
        if name in ("self", "cls"):
            continue
        shown = f"**{name}" if param.kind is param.VAR_KEYWORD else f"{name} :"
        assert re.search(rf"^{re.escape(shown)}", section, re.M), f"{fn.__qualname__}: {name} is not documented"
