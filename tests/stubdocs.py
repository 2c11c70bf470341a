"""The docstrings of `python/vmsim/_core.pyi`, generated from the extension's
own (the doc comments in rust/python/src), so IDEs and the docs site read
the same text as `help()`.

    python tests/stubdocs.py          # rewrite the stub's docstrings
    python tests/stubdocs.py --check  # exit 1 if they are out of date

The signatures and types stay hand-written in the stub; tests/test_api_docs.py
checks them against the extension's.
"""

from __future__ import annotations

import ast
import inspect
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

STUB = Path(__file__).resolve().parent.parent / "python" / "vmsim" / "_core.pyi"


def public(name: str) -> bool:
    return not name.startswith("_")


def is_setter(node: ast.FunctionDef) -> bool:
    """A property's setter: its getter carries the docstring."""
    return any(isinstance(d, ast.Attribute) and d.attr == "setter" for d in node.decorator_list)


def documented(module: ModuleType, tree: ast.Module) -> Iterator[tuple[ast.AST, object, str]]:
    """(stub node, runtime object, qualified name) of every public class,
    function, method and property the stub declares."""
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and public(node.name):
            cls = getattr(module, node.name)
            yield node, cls, node.name
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and public(item.name) and not is_setter(item):
                    yield item, getattr(cls, item.name), f"{node.name}.{item.name}"
        elif isinstance(node, ast.FunctionDef) and public(node.name):
            yield node, getattr(module, node.name), node.name


def _docstring(text: str, indent: str) -> str:
    lines = text.split("\n")
    body = "\n".join((indent + line) if line else "" for line in lines[1:])
    return f'"""{lines[0]}' + (f"\n{body}\n{indent}" if len(lines) > 1 else "") + '"""'


def render(stub: str, module: ModuleType) -> str:
    """The stub with every declared item's docstring replaced by the runtime one."""
    tree = ast.parse(stub)
    lines = stub.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def at(lineno: int, col: int) -> int:
        return offsets[lineno - 1] + len(lines[lineno - 1].encode()[:col].decode())

    edits: list[tuple[int, int, str]] = []
    for node, obj, _ in documented(module, tree):
        doc = inspect.cleandoc(obj.__doc__ or "")
        assert isinstance(node, (ast.ClassDef, ast.FunctionDef))
        first = node.body[0]
        indent = " " * (node.col_offset + 4)
        has_doc = isinstance(first, ast.Expr) and isinstance(getattr(first.value, "value", None), str)
        # A decorated first item (a property) starts at its decorator.
        decorators = getattr(first, "decorator_list", [])
        starts = [(first.lineno, first.col_offset)] + [(d.lineno, d.col_offset - 1) for d in decorators]
        first_line, first_col = min(starts)
        start = at(first_line, first_col)
        same_line = lines[first_line - 1][:first_col].strip() != ""
        if same_line:  # `def f() -> int: ...`: the docstring goes on lines of its own
            start = at(first_line, len(lines[first_line - 1][:first_col].rstrip()))
        lead = "\n" + indent if same_line else ""
        text = _docstring(doc, indent) if doc else "..."
        if isinstance(node, ast.FunctionDef):
            last = node.body[-1]
            edits.append((start, at(last.end_lineno or last.lineno, last.end_col_offset or 0), lead + text))
        elif has_doc or same_line:
            edits.append((start, at(first.end_lineno or first.lineno, first.end_col_offset or 0), lead + text))
        elif doc:
            edits.append((start, start, text + "\n" + indent))
    for start, end, text in sorted(edits, reverse=True):
        stub = stub[:start] + text + stub[end:]
    return stub


def main() -> int:
    from vmsim import _core

    current = STUB.read_text()
    fresh = render(current, _core)
    if "--check" in sys.argv:
        if fresh != current:
            print(f"{STUB} docstrings are out of date: run python tests/stubdocs.py", file=sys.stderr)
            return 1
        return 0
    STUB.write_text(fresh)
    print(f"wrote {STUB}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
