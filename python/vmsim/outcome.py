"""What one simulated access did. Values are the codes ``access_batch`` returns.

The members come from the Rust core's one outcome table (``vmsim._core.OUTCOMES``),
so the enum cannot drift from the codes the core returns.
"""

from __future__ import annotations

from enum import IntEnum

from vmsim._core import OUTCOMES


class _OutcomeBase(IntEnum):
    """The outcome of one access."""

    def __str__(self) -> str:
        return self.name

    def __format__(self, spec: str) -> str:
        return format(self.name, spec)

    @property
    def is_signal(self) -> bool:
        """Whether the task gets a signal (SIGSEGV or SIGBUS)."""
        return self in _SIGNALS

    @property
    def is_fault(self) -> bool:
        """Whether the access was a counted page fault (min_flt or maj_flt)."""
        return self in _COUNTED

    @property
    def description(self) -> str:
        """What the outcome means, in one line."""
        return _DESCRIPTIONS[self.value]


Outcome = _OutcomeBase("Outcome", [(name, code) for name, code, *_ in OUTCOMES], module=__name__)  # type: ignore[misc]
Outcome.__doc__ = "The outcome of one access: " + ", ".join(name for name, *_ in OUTCOMES) + "."

_SIGNALS = frozenset(Outcome(code) for _, code, signal, _, _ in OUTCOMES if signal)
_COUNTED = frozenset(Outcome(code) for _, code, _, fault, _ in OUTCOMES if fault)
_DESCRIPTIONS = {code: text for _, code, _, _, text in OUTCOMES}
