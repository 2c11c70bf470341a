"""A small, slow, obviously-correct reference model of vmsim's anonymous-memory
semantics (SEMANTICS.md), for differential testing against the Rust core.

VMAs are a sorted list, pages a dict, frames a dict of reference counts and
page tables a set of (level, index) keys. Only private anonymous memory is
modelled; every rule below names the Linux behaviour it copies.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from vmsim import PAGE_SIZE, TASK_SIZE

USER_HALF_END = 1 << 47
MMAP_MIN_ADDR = 65536
GUARD_GAP = 256 * PAGE_SIZE
STACK_RLIMIT = 8 << 20
MMAP_BASE = TASK_SIZE - (128 << 20)
DEFAULT_START_BRK = 0x5555_5557_9000
TEXT_START = 0x5555_5555_4000
EXE = "/usr/bin/a.out"

EINVAL, ENOMEM, EEXIST, EPERM = 22, 12, 17, 1

# Outcome names, as vmsim.Outcome
HIT, ZERO_PAGE, ANON_ZERO_FILL, COW_COPY, COW_REUSE = "HIT", "ZERO_PAGE", "ANON_ZERO_FILL", "COW_COPY", "COW_REUSE"
MAPERR, ACCERR, NONCANON = "SEGV_MAPERR", "SEGV_ACCERR", "SEGV_NONCANONICAL"


class ModelOSError(Exception):
    def __init__(self, errno: int):
        super().__init__(errno)
        self.errno = errno


def page_up(x: int) -> int:
    return (x + PAGE_SIZE - 1) // PAGE_SIZE * PAGE_SIZE


def page_down(x: int) -> int:
    return x // PAGE_SIZE * PAGE_SIZE


def canonical(a: int) -> bool:
    return a < (1 << 47) or a >= (1 << 64) - (1 << 47)


@dataclass(frozen=True)
class Vma:
    start: int
    end: int
    prot: str  # "rwx" letters or "-"
    growsdown: bool = False
    dontcopy: bool = False
    anon_vma: int = 0
    file: str = ""  # the executable, for the default layout's text and data
    pgoff: int = 0  # file page at `start`
    account: bool = False  # VM_ACCOUNT: private writable memory charged to Committed_AS

    def r(self) -> bool:
        return self.prot[0] == "r"

    def w(self) -> bool:
        return self.prot[1] == "w"

    def x(self) -> bool:
        return self.prot[2] == "x"

    def accessible(self) -> bool:
        return self.prot != "---"

    def mergeable(self, nxt: Vma) -> bool:
        return (
            self.end == nxt.start
            and self.prot == nxt.prot
            and (self.growsdown, self.dontcopy, self.account) == (nxt.growsdown, nxt.dontcopy, nxt.account)
            and (self.anon_vma == 0 or nxt.anon_vma == 0 or self.anon_vma == nxt.anon_vma)
            and self.file == nxt.file
            and (not self.file or self.pgoff + (self.end - self.start) // PAGE_SIZE == nxt.pgoff)
        )


@dataclass
class Pte:
    frame: int | None  # None: the zero page
    writable: bool


@dataclass
class Mm:
    vmas: list = field(default_factory=list)
    ptes: dict = field(default_factory=dict)  # page address -> Pte
    tables: set = field(default_factory=set)  # (level, address >> shift) below the PGD
    start_brk: int = DEFAULT_START_BRK
    brk: int = DEFAULT_START_BRK
    start_stack: int = 0

    # -- VMA list helpers --
    def find(self, addr: int) -> Vma | None:
        return next((v for v in self.vmas if v.end > addr), None)

    def last_before(self, addr: int) -> Vma | None:
        before = [v for v in self.vmas if v.end <= addr]
        return before[-1] if before else None

    def put(self, v: Vma) -> None:
        self.vmas.append(v)
        self.vmas.sort(key=lambda x: x.start)

    def remove(self, v: Vma) -> None:
        self.vmas.remove(v)


TABLE_SHIFTS = {3: 39, 2: 30, 1: 21}  # PUD, PMD, PTE tables: the span each covers


def table_keys(addr: int) -> list:
    return [(lvl, addr >> s) for lvl, s in TABLE_SHIFTS.items()]


def table_span(key) -> tuple:
    lvl, idx = key
    s = TABLE_SHIFTS[lvl]
    return idx << s, (idx + 1) << s


class Model:
    def __init__(self, ram_pages: int) -> None:
        self.ram_pages = ram_pages  # overcommit mode 0 refuses one request larger than RAM (no swap here)
        self.mms: dict = {}
        self.tasks: dict = {}  # pid -> (tgid, mm id)
        self.min_flt: dict = {}  # tgid -> count
        self.cmin_flt: dict = {}  # tgid -> faults of reaped children
        self.parent: dict = {}  # tgid -> the tgid that forked it
        self.frames: dict = {}  # frame -> [refcount, exclusive]
        self.next_pid = 1
        self.next_mm = 1
        self.next_frame = 1
        self.next_anon_vma = 0

    # -- frames --
    def new_frame(self) -> int:
        f = self.next_frame
        self.next_frame += 1
        self.frames[f] = [1, True]
        return f

    def put_frame(self, f: int) -> None:
        self.frames[f][0] -= 1
        if self.frames[f][0] == 0:
            del self.frames[f]

    def new_anon_vma(self) -> int:
        self.next_anon_vma += 1
        return self.next_anon_vma

    # -- processes --
    def spawn(self, default: bool) -> int:
        mm = Mm()
        mid = self.next_mm
        self.next_mm += 1
        self.mms[mid] = mm
        pid = self.new_task(pid_tgid=None, mid=mid)
        if default:
            data = TEXT_START + 16 * PAGE_SIZE
            self.mmap(pid, TEXT_START, 16 * PAGE_SIZE, "r-x", fixed=True, file=(EXE, 0))
            self.mmap(pid, data, 4 * PAGE_SIZE, "rw-", fixed=True, file=(EXE, 16))
            self.mmap(pid, TASK_SIZE - 33 * PAGE_SIZE, 33 * PAGE_SIZE, "rw-", fixed=True, growsdown=True)
            mm.start_brk = mm.brk = data + 4 * PAGE_SIZE + 0x21000
            mm.start_stack = TASK_SIZE - 0x1000 + 0x7A0
        return pid

    def new_task(self, pid_tgid: int | None, mid: int) -> int:
        pid = self.next_pid
        self.next_pid += 1
        tgid = pid if pid_tgid is None else pid_tgid
        self.tasks[pid] = (tgid, mid)
        self.min_flt.setdefault(tgid, 0)
        self.cmin_flt.setdefault(tgid, 0)
        return pid

    def commit(self, pages: int) -> None:
        """Overcommit mode 0: one request larger than RAM + swap fails."""
        if pages > self.ram_pages:
            raise ModelOSError(ENOMEM)

    def mm(self, pid: int) -> Mm:
        return self.mms[self.tasks[pid][1]]

    def clone_thread(self, pid: int) -> int:
        tgid, mid = self.tasks[pid]
        return self.new_task(tgid, mid)

    def exit(self, pid: int) -> None:
        tgid, mid = self.tasks.pop(pid)
        parent = self.parent.get(tgid)
        alive = {t for t, _ in self.tasks.values()}
        if tgid not in alive and parent in alive:
            # Reaped: its faults and its children's go to the parent's cmin_flt.
            self.cmin_flt[parent] += self.min_flt[tgid] + self.cmin_flt[tgid]
        if all(m != mid for _, m in self.tasks.values()):
            mm = self.mms.pop(mid)
            for pte in mm.ptes.values():
                if pte.frame is not None:
                    self.put_frame(pte.frame)

    # -- VMA surgery --
    def split_at(self, mm: Mm, addr: int) -> None:
        v = mm.find(addr)
        if v is None or v.start >= addr:
            return
        mm.remove(v)
        mm.put(replace(v, end=addr))
        mm.put(replace(v, start=addr, pgoff=v.pgoff + (addr - v.start) // PAGE_SIZE if v.file else 0))

    def merge_around(self, mm: Mm, start: int, end: int) -> None:
        lo = max(start - 1, 0)
        vs = [v for v in mm.vmas if v.end > lo and v.start < end + 1]
        prev = mm.last_before(max(lo, 1))
        if prev is not None and (not vs or vs[0] != prev):
            vs.insert(0, prev)
        i = 0
        while i + 1 < len(vs):
            a, b = vs[i], vs[i + 1]
            if a.mergeable(b):
                merged = replace(a, end=b.end, anon_vma=max(a.anon_vma, b.anon_vma))
                mm.remove(a)
                mm.remove(b)
                mm.put(merged)
                vs[i] = merged
                del vs[i + 1]
            else:
                i += 1

    def zap(self, mm: Mm, start: int, end: int) -> None:
        for a in [a for a in mm.ptes if start <= a < end]:
            pte = mm.ptes.pop(a)
            if pte.frame is not None:
                self.put_frame(pte.frame)

    def unmap_region(self, mm: Mm, start: int, end: int) -> None:
        doomed = [v for v in mm.vmas if v.end > start and v.start < end]
        if not doomed:
            return
        self.zap(mm, start, end)
        for v in doomed:
            mm.remove(v)
        prev = mm.last_before(start)
        nxt = mm.find(start)
        floor = prev.end if prev else 0
        ceiling = nxt.start if nxt else USER_HALF_END
        # free_pgtables: tables wholly inside [floor, ceiling) that cover part of
        # the range, and everything below a freed table.
        freed = set()
        for lvl in (3, 2, 1):
            for key in sorted(t for t in mm.tables if t[0] == lvl):
                lo, hi = table_span(key)
                parent = (lvl + 1, lo >> TABLE_SHIFTS[lvl + 1]) if lvl < 3 else None
                if lo >= floor and hi <= ceiling and ((lo < end and hi > start) or parent in freed):
                    freed.add(key)
        mm.tables -= freed

    # -- system calls --
    def overlaps(self, mm: Mm, start: int, end: int) -> bool:
        v = mm.find(start)
        return v is not None and v.start < end

    def stack_gap_limit(self, mm: Mm, addr: int, length: int) -> int | None:
        nxt = mm.find(addr)
        if nxt is None or not nxt.growsdown:
            return None
        guard = max(nxt.start - GUARD_GAP, 0)
        return guard if addr + length > guard else None

    def gaps(self, mm: Mm):
        prev_end = 0
        for v in mm.vmas:
            yield prev_end, v.start
            prev_end = v.end
        yield prev_end, 1 << 64

    def unmapped_area(self, mm: Mm, hint: int, length: int) -> int:
        low = max(MMAP_MIN_ADDR, PAGE_SIZE)
        if hint:
            a = page_down(max(hint, low))
            if (
                a <= TASK_SIZE - length
                and not self.overlaps(mm, a, a + length)
                and self.stack_gap_limit(mm, a, length) is None
            ):
                return a
        high = MMAP_BASE
        while True:
            fits = [min(e, high) - length for s, e in self.gaps(mm) if min(e, high) - max(s, low) >= length]
            if not fits:
                break
            a = max(fits)
            lim = self.stack_gap_limit(mm, a, length)
            if lim is None:
                return a
            high = lim
        low2 = page_down(TASK_SIZE // 3)
        while True:
            fits = [max(s, low2) for s, e in self.gaps(mm) if min(e, TASK_SIZE) - max(s, low2) >= length]
            if not fits:
                raise ModelOSError(ENOMEM)
            a = min(fits)
            if self.stack_gap_limit(mm, a, length) is None:
                return a
            low2 = mm.find(a).end

    def mmap(
        self,
        pid: int,
        addr: int,
        length: int,
        prot: str,
        fixed: bool = False,
        noreplace: bool = False,
        growsdown: bool = False,
        file: tuple = ("", 0),
    ) -> int:
        mm = self.mm(pid)
        if length == 0:
            raise ModelOSError(EINVAL)
        length = page_up(length)
        if length > TASK_SIZE:
            raise ModelOSError(ENOMEM)
        if fixed or noreplace:
            if addr % PAGE_SIZE:
                raise ModelOSError(EINVAL)
            if addr > TASK_SIZE - length:
                raise ModelOSError(ENOMEM)
            if addr < MMAP_MIN_ADDR:
                raise ModelOSError(EPERM)
            if noreplace and self.overlaps(mm, addr, addr + length):
                raise ModelOSError(EEXIST)
        else:
            addr = self.unmapped_area(mm, addr, length)
        account = "w" in prot
        if account:
            self.commit(length // PAGE_SIZE)
        end = addr + length
        if fixed or noreplace:
            self.split_at(mm, addr)
            self.split_at(mm, end)
            self.unmap_region(mm, addr, end)
        mm.put(Vma(addr, end, prot, growsdown=growsdown, file=file[0], pgoff=file[1], account=account))
        self.merge_around(mm, addr, end)
        return addr

    def munmap(self, pid: int, start: int, length: int) -> None:
        mm = self.mm(pid)
        if length == 0 or start % PAGE_SIZE:
            raise ModelOSError(EINVAL)
        length = page_up(length)
        if start > TASK_SIZE or length > TASK_SIZE - start:
            raise ModelOSError(EINVAL)
        end = start + length
        self.split_at(mm, start)
        self.split_at(mm, end)
        self.unmap_region(mm, start, end)

    def mprotect(self, pid: int, start: int, length: int, prot: str) -> None:
        mm = self.mm(pid)
        if start % PAGE_SIZE:
            raise ModelOSError(EINVAL)
        if length == 0:
            return
        end = start + page_up(length)
        cur = start
        error = None
        while cur < end:
            v = mm.find(cur)
            if v is None or v.start > cur:
                error = ENOMEM
                break
            holds_end = v.end > end
            self.split_at(mm, cur)
            if holds_end:
                self.split_at(mm, end)
            v = mm.find(cur)
            if "w" in prot and not v.account:
                try:
                    self.commit((v.end - v.start) // PAGE_SIZE)
                except ModelOSError:
                    error = ENOMEM
                    cur = v.end  # refused before the change: the merge puts the split back
                    break
            nv = replace(v, prot=prot, account=v.account or "w" in prot)
            mm.remove(v)
            mm.put(nv)
            for a, pte in mm.ptes.items():
                if v.start <= a < v.end:
                    exclusive = pte.frame is not None and self.frames[pte.frame][1]
                    pte.writable = nv.w() and nv.accessible() and (pte.writable or exclusive)
            cur = v.end
        self.merge_around(mm, start, max(cur, start))
        if error:
            raise ModelOSError(error)

    def brk(self, pid: int, new: int) -> int:
        mm = self.mm(pid)
        if new < mm.start_brk:
            return mm.brk
        new_top, old_top = page_up(new), page_up(mm.brk)
        if new_top > TASK_SIZE:
            return mm.brk
        if new_top < old_top:
            self.munmap(pid, new_top, old_top - new_top)
        elif new_top > old_top:
            nxt = mm.find(old_top)
            if nxt is not None:
                gap = GUARD_GAP if nxt.growsdown else 0
                if max(nxt.start - gap, 0) < new_top + PAGE_SIZE:
                    return mm.brk
            if (new_top - old_top) // PAGE_SIZE > self.ram_pages:
                return mm.brk
            mm.put(Vma(old_top, new_top, "rw-", account=True))
            self.merge_around(mm, old_top, new_top)
        mm.brk = new
        return new

    def fork(self, pid: int) -> int:
        parent = self.mm(pid)
        child = Mm(start_brk=parent.start_brk, brk=parent.brk, start_stack=parent.start_stack)
        for v in parent.vmas:
            if v.dontcopy:
                continue
            child.put(replace(v, anon_vma=self.new_anon_vma()) if v.anon_vma else v)
            if not v.anon_vma:
                continue
            for a, pte in sorted(parent.ptes.items()):
                if v.start <= a < v.end:
                    pte.writable = False
                    if pte.frame is not None:
                        self.frames[pte.frame][0] += 1
                        self.frames[pte.frame][1] = False
                    child.ptes[a] = Pte(pte.frame, False)
                    child.tables.update(table_keys(a))
        mid = self.next_mm
        self.next_mm += 1
        self.mms[mid] = child
        cpid = self.new_task(None, mid)
        self.parent[cpid] = self.tasks[pid][0]
        return cpid

    # -- the fault path --
    def access(self, pid: int, addr: int, op: str) -> str:
        if not canonical(addr):
            return NONCANON
        if addr >= TASK_SIZE:
            return MAPERR
        mm = self.mm(pid)
        page = page_down(addr)
        pte = mm.ptes.get(page)
        v = mm.find(addr)
        present = pte is not None and v is not None and v.start <= addr and v.accessible()
        if present and (op == "r" or (op == "w" and pte.writable) or (op == "x" and v.x())):
            return HIT
        if v is None:
            return MAPERR
        if v.start > addr:
            if not v.growsdown:
                return MAPERR
            new_start = page_down(addr)
            prev = mm.last_before(v.start)
            gap = GUARD_GAP if prev is not None and not prev.growsdown and prev.accessible() else 0
            if (
                new_start < MMAP_MIN_ADDR
                or (prev is not None and new_start < prev.end + gap)
                or v.end - new_start > STACK_RLIMIT
            ):
                return MAPERR
            mm.remove(v)
            v = replace(v, start=new_start)
            mm.put(v)
        if op == "w" and not v.w():
            return ACCERR
        if op in "rx" and present:
            return ACCERR
        if not v.accessible():
            return ACCERR
        mm.tables.update(table_keys(addr))
        outcome = self._handle(mm, v, page, pte, op)
        if outcome != HIT:
            self.min_flt[self.tasks[pid][0]] += 1
            if op == "x" and not v.x():
                return ACCERR
        return outcome

    def _with_anon_vma(self, mm: Mm, v: Vma) -> None:
        if not v.anon_vma:
            mm.remove(v)
            mm.put(replace(v, anon_vma=self.new_anon_vma()))

    def _handle(self, mm: Mm, v: Vma, page: int, pte: Pte | None, op: str) -> str:
        if pte is None:
            if op != "w":
                mm.ptes[page] = Pte(None, False)
                return ZERO_PAGE
            mm.ptes[page] = Pte(self.new_frame(), True)
            self._with_anon_vma(mm, v)
            return ANON_ZERO_FILL
        if op == "w" and not pte.writable:
            if pte.frame is not None and (self.frames[pte.frame][0] == 1):
                self.frames[pte.frame][1] = True
                pte.writable = True
                return COW_REUSE
            if pte.frame is not None:
                self.put_frame(pte.frame)
            mm.ptes[page] = Pte(self.new_frame(), True)
            self._with_anon_vma(mm, v)
            return COW_COPY
        return HIT

    # -- reports --
    def maps(self, pid: int) -> str:
        mm = self.mm(pid)
        out = []
        for v in mm.vmas:
            if v.file:  # the executable: the simulator's first page-cache object
                line = f"{v.start:08x}-{v.end:08x} {v.prot}p {v.pgoff * PAGE_SIZE:08x} 08:01 1000"
                out.append(f"{line:<73}{v.file}")
                continue
            line = f"{v.start:08x}-{v.end:08x} {v.prot}p 00000000 00:00 0"
            name = ""
            if v.start <= mm.brk and v.end >= mm.start_brk and mm.brk > mm.start_brk:
                name = "[heap]"
            elif v.start <= mm.start_stack <= v.end:
                name = "[stack]"
            out.append(f"{line:<73}{name}" if name else line)
        return "".join(line + "\n" for line in out)

    def counters(self, pid: int) -> dict:
        tgid, mid = self.tasks[pid]
        mm = self.mms[mid]
        return {
            "min_flt": self.min_flt[tgid],
            "maj_flt": 0,
            "cmin_flt": self.cmin_flt[tgid],
            "cmaj_flt": 0,
            "rss_anon": sum(1 for p in mm.ptes.values() if p.frame is not None),
            "rss_file": 0,
            "rss_shmem": 0,
            "swap": 0,
            "swap_ins": 0,
            "swap_outs": 0,
            "cache_hits": 0,
            "cache_misses": 0,
            "pt_pages": len(mm.tables),
            "vma_count": len(mm.vmas),
            "threads": sum(1 for t, _ in self.tasks.values() if t == tgid),
            "locked_vm": 0,  # the model makes no mlock calls
        }

    def frames_used(self) -> int:
        return len(self.frames) + sum(len(m.tables) + 1 for m in self.mms.values())
