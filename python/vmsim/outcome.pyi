# Type stub for vmsim.outcome: the enum is built at run time from the core's
# outcome table; tests/test_tables.py checks these members against it.
from enum import IntEnum

class Outcome(IntEnum):
    HIT = 0
    ZERO_PAGE = 1
    ANON_ZERO_FILL = 2
    COW_COPY = 3
    COW_REUSE = 4
    FILE_MINOR = 5
    FILE_MAJOR = 6
    SWAP_IN = 7
    SEGV_MAPERR = 8
    SEGV_ACCERR = 9
    SEGV_NONCANONICAL = 10
    SIGBUS = 11
    OOM = 12
    @property
    def is_signal(self) -> bool: ...
    @property
    def is_fault(self) -> bool: ...
    @property
    def description(self) -> str: ...
