"""HTML views for Jupyter: `Simulator`, `Process`, counters and sweep results
render as tables (`_repr_html_` calls into here)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from vmsim._core import PAGE_SIZE, Process, Simulator


def _cell(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return escape(str(value))
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}"
    return escape(str(value))


def rows_table(header: Sequence[str], rows: Iterable[Sequence[Any]], caption: str = "") -> str:
    """An HTML table: one header row, then a row per item (numbers right-aligned)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td style="text-align:right">{_cell(v)}</td>' if _is_number(v) else f"<td>{_cell(v)}</td>" for v in row
        )
        + "</tr>"
        for row in rows
    )
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _flat(mapping: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            yield from _flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def mapping_table(mapping: Mapping[str, Any], caption: str = "") -> str:
    """A two-column table of a (nested) mapping; nested keys read `outer.inner`."""
    return rows_table(["counter", "value"], _flat(mapping), caption)


def _simulator_html(sim: Simulator) -> str:
    c = sim.counters()
    config = {"memory": f"{sim.memory:,} bytes", "vma_index": sim.vma_index}
    if sim.swap:
        config["swap"] = f"{sim.swap:,} bytes"
    if sim.policy:
        config["policy"] = sim.policy
    if sim.resident_limit is not None:
        config["resident_limit"] = f"{sim.resident_limit:,} pages"
    faults = {k: v for k, v in c["faults"].items() if v}
    counts = {k: v for k, v in c.items() if k != "faults"}
    return (
        mapping_table(config, "Simulator")
        + mapping_table(counts, "counters")
        + (mapping_table(faults, "accesses per outcome") if faults else "")
    )


def _process_html(p: Process) -> str:
    if not p.alive:
        return f"<p>Process {p.pid}: exited</p>"
    vmas = [
        (f"{lo:#014x}", f"{hi:#014x}", f"{(hi - lo) // PAGE_SIZE:,}", prot, flags) for lo, hi, prot, flags in p.vmas()
    ]
    return mapping_table(p.counters(), f"Process {p.pid} (tgid {p.tgid})") + rows_table(
        ["start", "end", "pages", "prot", "flags"], vmas, "VMAs"
    )


def html(obj: object) -> str:
    """The HTML view of a Simulator or a Process."""
    if isinstance(obj, Simulator):
        return _simulator_html(obj)
    if isinstance(obj, Process):
        return _process_html(obj)
    raise TypeError(f"no HTML view for {type(obj).__name__}")


def text_table(header: Sequence[str], rows: Iterable[Sequence[Any]], title: str = "", width: int | None = None) -> str:
    """A plain-text table that fits `width` columns (the terminal's by
    default): numbers right-aligned and never cut; when the table is too
    wide, the widest text columns are cut with an ellipsis, never wrapped."""
    import shutil

    width = width or shutil.get_terminal_size().columns
    cells = [[_text_cell(v) for v in r] for r in rows]
    numeric = [
        any(isinstance(r[i], (int, float)) and not isinstance(r[i], bool) for r in rows) for i in range(len(header))
    ]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(header)]
    while sum(widths) + 2 * (len(widths) - 1) > width:
        text_cols = [i for i in range(len(widths)) if not numeric[i] and widths[i] > 8]
        if not text_cols:
            break
        widest = max(text_cols, key=lambda i: widths[i])
        widths[widest] -= 1

    def line(values: Sequence[str]) -> str:
        out = []
        for i, value in enumerate(values):
            cut = value if len(value) <= widths[i] else value[: widths[i] - 1] + "…"
            out.append(cut.rjust(widths[i]) if numeric[i] else cut.ljust(widths[i]))
        return "  ".join(out).rstrip()

    lines = [title] if title else []
    lines += [line(list(header))] + [line(r) for r in cells]
    return "\n".join(lines)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text_cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "-" if value is None else str(value)
