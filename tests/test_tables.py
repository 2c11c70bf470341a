"""The tables Python shares with the Rust core come from the core, once."""

import ast
import pathlib

import vmsim
from vmsim import _core
from vmsim.outcome import Outcome

STUB = pathlib.Path(vmsim.__file__).with_name("outcome.pyi")


def test_outcome_members_are_the_core_table_in_code_order():
    codes = [code for _, code, *_ in _core.OUTCOMES]
    assert codes == list(range(len(codes)))
    assert [(o.name, o.value) for o in Outcome] == [(name, code) for name, code, *_ in _core.OUTCOMES]
    for _name, code, is_signal, is_fault, text in _core.OUTCOMES:
        o = Outcome(code)
        assert (o.is_signal, o.is_fault, o.description) == (is_signal, is_fault, text)
        assert text and not (is_signal and is_fault)


def test_outcome_stub_lists_the_core_members():
    tree = ast.parse(STUB.read_text())
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Outcome"]
    declared = [
        (n.targets[0].id, n.value.value)  # type: ignore[attr-defined]
        for n in cls.body
        if isinstance(n, ast.Assign)
    ]
    assert declared == [(name, code) for name, code, *_ in _core.OUTCOMES]


def test_constants_come_from_the_core():
    assert vmsim.PAGE_SIZE == 1 << vmsim.PAGE_SHIFT == 4096
    assert vmsim.TASK_SIZE == 0x7FFF_FFFF_F000
    assert vmsim.KERNEL_BASE == 0xFFFF_8000_0000_0000
    assert vmsim.MMAP_MIN_ADDR == 65536
