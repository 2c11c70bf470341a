"""A real process's layout from a saved ``/proc/PID/maps``: parsed, and
rebuilt in a simulated process (`vmsim explain --maps`, the ``maps`` workload)."""

from __future__ import annotations

from vmsim._core import TASK_SIZE, Process, Simulator

Mapping = tuple[int, int, str, str]  # start, end, perms (rwxp), name


def parse_maps(text: str) -> list[Mapping]:
    """(start, end, perms, name) of each line of a /proc/PID/maps text."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(None, 5)
        try:
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            perms = parts[1]
            if len(perms) != 4 or lo >= hi:
                raise ValueError
        except (ValueError, IndexError):
            raise ValueError(f"maps line {n} is not in /proc/PID/maps format: {line!r}") from None
        out.append((lo, hi, perms, parts[5].strip() if len(parts) > 5 else ""))
    return out


def layout_from_maps(sim: Simulator, maps: list[Mapping]) -> tuple[Process, list[str]]:
    """A process of `sim` with every user mapping of `maps` at its address and
    with its protection (file mappings as anonymous memory of the same
    shape), and notes on what was left out or changed."""
    p = sim.spawn()
    notes = []
    for lo, hi, perms, name in maps:
        if lo >= TASK_SIZE:
            notes.append(f"{name or hex(lo)} lies in the kernel half ({lo:#x}): not a user mapping, left out")
            continue
        prot = "".join(c for c in perms[:3] if c != "-") or "none"
        flags = ("shared" if perms[3] == "s" else "private") + "|anonymous"
        if name == "[stack]":
            flags += "|growsdown"
        p.mmap(hi - lo, prot=prot, flags=flags, addr=lo, fixed=True)
    if any(name and not name.startswith("[") for *_, name in maps):
        notes.append("file mappings are simulated as anonymous memory of the same shape")
    return p, notes
