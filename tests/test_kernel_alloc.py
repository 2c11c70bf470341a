"""Kernel allocators and the release path: exact buddy, slab and vmalloc
behaviour, kobject lifetimes, every misuse reported as KernelBugError with
the simulation intact, and the traced exit route."""

from __future__ import annotations

import numpy as np
import pytest

import vmsim
from vmsim import PAGE_SIZE, KernelBugError

PAGE_OFFSET = 0xFFFF_8880_0000_0000
VMALLOC_START = 0xFFFF_C900_0000_0000


def kaddr(pfn):
    return PAGE_OFFSET + pfn * PAGE_SIZE


def free_all(sim):
    c = sim.counters()
    return c["frames_free"] == c["frames_total"]


# ----- buddy allocator -------------------------------------------------------


def test_buddy_split_and_coalesce_exactly():
    sim = vmsim.Simulator(memory="64KiB")  # frame 0 is the zero page; 1..15 managed
    k = sim.kernel
    assert k.buddyinfo() == [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]  # blocks at 1, 2-3, 4-7, 8-15
    a = k.alloc_pages(0)
    assert a == kaddr(1)
    assert k.buddyinfo()[:4] == [0, 1, 1, 1]
    b = k.alloc_pages(0)  # splits 2-3: hands out 2, keeps 3
    assert b == kaddr(2)
    assert k.buddyinfo()[:4] == [1, 0, 1, 1]
    c = k.alloc_pages(2)
    assert c == kaddr(4)
    assert k.buddyinfo()[:4] == [1, 0, 0, 1]
    k.free_pages(b, 0)  # 2 and 3 coalesce; 0 is reserved, so no further
    assert k.buddyinfo()[:4] == [0, 1, 0, 1]
    k.free_pages(c, 2)
    k.free_pages(a, 0)
    assert k.buddyinfo()[:4] == [1, 1, 1, 1]
    sim.check()
    assert free_all(sim)


def test_buddy_max_order_blocks():
    sim = vmsim.Simulator(memory="8MiB")
    k = sim.kernel
    assert k.buddyinfo() == [1] * 11
    big = k.alloc_pages(10)
    assert big == kaddr(1024)
    assert k.buddyinfo()[10] == 0
    assert k.__get_free_pages(3) == kaddr(8)
    k.free_pages(big, 10)
    sim.check()


def test_alloc_pages_out_of_memory():
    sim = vmsim.Simulator(memory="64KiB")
    with pytest.raises(vmsim.OutOfMemoryError):
        sim.kernel.alloc_pages(4)
    with pytest.raises(ValueError):
        sim.kernel.alloc_pages(11)
    sim.check()


# ----- slab caches and kmalloc ------------------------------------------------


def slab(sim, name):
    return next(s for s in sim.kernel.slabinfo() if s["name"] == name)


def test_kmalloc_size_classes_and_slab_counts():
    sim = vmsim.Simulator(memory="16MiB")
    k = sim.kernel
    names = [s["name"] for s in k.slabinfo() if s["name"].startswith("kmalloc-")]
    assert names == [
        "kmalloc-8",
        "kmalloc-16",
        "kmalloc-32",
        "kmalloc-64",
        "kmalloc-128",
        "kmalloc-256",
        "kmalloc-512",
        "kmalloc-1k",
        "kmalloc-2k",
        "kmalloc-4k",
        "kmalloc-8k",
    ]
    ptrs = [k.kmalloc(60) for _ in range(100)]  # kmalloc-64: 64 objects per one-page slab
    s = slab(sim, "kmalloc-64")
    assert (s["active_objs"], s["num_objs"], s["num_slabs"], s["objperslab"], s["pagesperslab"]) == (100, 128, 2, 64, 1)
    assert len(set(ptrs)) == 100 and all(p % 64 == 0 for p in ptrs)
    for p in ptrs[:64]:
        k.kfree(p)
    assert slab(sim, "kmalloc-64")["num_slabs"] in (1, 2)
    for p in ptrs[64:]:
        k.kfree(p)
    s = slab(sim, "kmalloc-64")
    assert (s["active_objs"], s["num_slabs"]) == (0, 0)  # slabs went back to the buddy allocator
    sim.check()
    assert free_all(sim)


def test_large_kmalloc_goes_to_the_buddy_allocator():
    sim = vmsim.Simulator(memory="16MiB")
    k = sim.kernel
    free = sim.counters()["frames_free"]
    p = k.kmalloc(20_000)  # 5 pages -> an order-3 block
    assert p % PAGE_SIZE == 0
    assert sim.counters()["frames_free"] == free - 8
    assert any(a["kind"] == "kmalloc" and a["size"] == 8 * PAGE_SIZE for a in sim.leak_check())
    k.kfree(p)
    assert sim.counters()["frames_free"] == free


def test_kmalloc_zero_and_null_and_array():
    sim = vmsim.Simulator(memory="16MiB")
    k = sim.kernel
    assert k.kmalloc(0) == 16  # ZERO_SIZE_PTR
    k.kfree(16)
    k.kfree(0)
    p = k.kmalloc_array(10, 24)  # 240 bytes -> kmalloc-256
    assert slab(sim, "kmalloc-256")["active_objs"] == 1
    k.kfree(p)
    with pytest.raises(ValueError):
        k.kmalloc_array(1 << 40, 1 << 40)
    z = k.kzalloc(8)
    k.kfree(z)
    assert free_all(sim)


def test_kmem_cache_lifecycle():
    sim = vmsim.Simulator(memory="16MiB")
    k = sim.kernel
    c = k.kmem_cache_create("foo_cache", 100)
    s = slab(sim, "foo_cache")
    assert (s["objsize"], s["objperslab"]) == (104, 39)
    objs = [k.kmem_cache_alloc(c) for _ in range(40)]
    s = slab(sim, "foo_cache")
    assert (s["active_objs"], s["num_slabs"], s["num_objs"]) == (40, 2, 78)
    with pytest.raises(KernelBugError, match="still allocated"):
        k.kmem_cache_destroy(c)
    for o in objs:
        k.kmem_cache_free(c, o)
    k.kmem_cache_destroy(c)
    assert all(s["name"] != "foo_cache" for s in k.slabinfo())
    sim.check()


# ----- vmalloc ------------------------------------------------------------------


def test_vmalloc_areas_have_guard_pages_and_scattered_frames():
    sim = vmsim.Simulator(memory="16MiB")
    k = sim.kernel
    a = k.vmalloc(5000)  # 2 pages + guard
    b = k.vmalloc(PAGE_SIZE)  # 1 page + guard
    assert a == VMALLOC_START
    assert b == VMALLOC_START + 3 * PAGE_SIZE
    info = k.vmallocinfo()
    assert [(s, e, size, n) for s, e, size, n, _, _ in info] == [
        (a, a + 3 * PAGE_SIZE, 3 * PAGE_SIZE, 2),
        (b, b + 2 * PAGE_SIZE, 2 * PAGE_SIZE, 1),
    ]
    k.vfree(a)
    c = k.vmalloc(2 * PAGE_SIZE)  # fits the hole a left
    assert c == VMALLOC_START
    big = k.vmalloc(64 * PAGE_SIZE)
    frames = next(f for s, _, _, _, f, _ in k.vmallocinfo() if s == big)
    assert len(frames) == 64
    for v in (b, c, big):
        k.vfree(v)
    assert k.vmallocinfo() == []
    sim.check()
    assert free_all(sim)


# ----- kobjects ------------------------------------------------------------------


def test_kobject_release_once_child_before_parent():
    sim = vmsim.Simulator(memory="16MiB")
    k = sim.kernel
    released = []
    parent = k.kobject_create("parent", release=released.append)
    child = k.kobject_create("child", parent=parent, release=released.append)
    assert k.kobject_refcount(parent) == 2  # the child holds one
    assert k.kobject_get(child) == 2
    assert k.kobject_put(child) == []
    assert k.kobject_put(parent) == []  # the child's reference keeps it
    assert released == []
    assert k.kobject_put(child) == ["child", "parent"]
    assert released == ["child", "parent"]
    sim.check()
    assert sim.leak_check() == []
    assert free_all(sim)


# ----- misuse ------------------------------------------------------------------


def _double_kfree(k):
    p = k.kmalloc(32)
    k.kfree(p)
    k.kfree(p)


def _put_past_zero(k):
    o = k.kobject_create("once")
    k.kobject_put(o)
    k.kobject_put(o)


def _get_released(k):
    o = k.kobject_create("gone")
    k.kobject_put(o)
    k.kobject_get(o)


MISUSE = [
    ("double kfree", _double_kfree, "double free"),
    ("kfree of a vmalloc address", lambda k: k.kfree(k.vmalloc(PAGE_SIZE)), "vmalloc address"),
    ("vfree of a kmalloc address", lambda k: k.vfree(k.kmalloc(64)), "vfree of"),
    ("free_pages with the wrong order", lambda k: k.free_pages(k.alloc_pages(2), 1), "allocated with order 2"),
    ("free_pages of a misaligned address", lambda k: k.free_pages(k.alloc_pages(0) + 8, 0), "misaligned"),
    ("free_pages of a kmalloc block", lambda k: k.free_pages(k.kmalloc(10_000), 2), "kmalloc allocated"),
    ("kfree of alloc_pages memory", lambda k: k.kfree(k.alloc_pages(1)), "alloc_pages allocated"),
    ("kfree inside an object", lambda k: k.kfree(k.kmalloc(64) + 8), "not the start"),
    ("double vfree", lambda k: [k.vfree(v) for v in [k.vmalloc(PAGE_SIZE)] * 2], "no vmalloc area"),
    ("kobject_put past zero", _put_past_zero, "released kobject"),
    ("use of a released kobject", _get_released, "use after release"),
    (
        "kmem_cache_free to the wrong cache",
        lambda k: k.kmem_cache_free(k.kmem_cache_create("a", 64), k.kmalloc(64)),
        "belongs to kmalloc-64",
    ),
    ("kfree of a user address", lambda k: k.kfree(0x7000_0000), "not a kernel heap address"),
]


@pytest.mark.parametrize("name, misuse, message", MISUSE, ids=[m[0] for m in MISUSE])
def test_misuse_is_a_kernel_bug_and_changes_nothing(name, misuse, message):
    sim = vmsim.Simulator(memory="16MiB")
    with pytest.raises(KernelBugError, match=message):
        misuse(sim.kernel)
    sim.check()  # the simulation is intact


# ----- the simulator's own objects ------------------------------------------------


def test_mm_struct_and_vmas_come_from_slab_caches():
    sim = vmsim.Simulator(memory="64MiB")
    p = sim.spawn(layout="default")
    assert slab(sim, "mm_struct")["active_objs"] == 1
    assert slab(sim, "vm_area_struct")["active_objs"] == len(p.vmas()) == 3
    for i in range(5):
        p.mmap(PAGE_SIZE, prot="r" if i % 2 else "rw")
    c = p.fork()
    assert slab(sim, "mm_struct")["active_objs"] == 2
    assert slab(sim, "vm_area_struct")["active_objs"] == len(p.vmas()) + len(c.vmas())
    sites = {a["site"].split(" (")[0] for a in sim.leak_check()}
    assert {"mm_struct", "vm_area_struct"} <= sites
    p.exit()
    c.exit()
    assert slab(sim, "mm_struct")["active_objs"] == 0
    assert slab(sim, "vm_area_struct")["active_objs"] == 0
    assert sim.leak_check() == []
    assert free_all(sim)


def test_leak_check_names_the_call():
    sim = vmsim.Simulator(memory="16MiB")
    k = sim.kernel
    p = k.kmalloc(100)
    v = k.vmalloc(3 * PAGE_SIZE)
    leaks = sim.leak_check()
    assert [(a["kind"], a["site"]) for a in leaks] == [
        ("kmalloc", "kmalloc(100) (kmalloc-128)"),
        ("vmalloc", "vmalloc(12288)"),
    ]
    k.kfree(p)
    k.vfree(v)
    assert sim.leak_check() == []


# ----- the exit path, traced ---------------------------------------------------------


TEARDOWN = ["AddressSpace::drop", "__mmput", "exit_mmap", "unmap_vmas", "free_pgtables"]
FINAL = ["mmdrop", "__mmdrop", "mm_free_pgd", "free_mm"]


def names(events):
    return [e for e, _ in events]


def test_traced_exit_single_threaded():
    sim = vmsim.Simulator(memory="64MiB")
    p = sim.spawn(layout="default")
    a = p.mmap(16 * PAGE_SIZE)
    p.access_batch(np.arange(a, a + 16 * PAGE_SIZE, PAGE_SIZE, dtype=np.uint64), "w")
    events = p.exit(trace=True)
    nvmas = 4
    assert names(events) == ["do_exit", "exit_mm", "mmput"] + TEARDOWN + ["vm_area_free"] * nvmas + FINAL
    detail = dict(events)
    assert detail["mmput"] == "mm_users 1 -> 0"
    assert "16 pages freed" in detail["unmap_vmas"]
    assert detail["free_pgtables"].startswith("3 page-table pages freed")
    assert sim.leak_check() == [] and free_all(sim)


def test_traced_exit_with_threads_only_the_last_tears_down():
    sim = vmsim.Simulator(memory="64MiB")
    p = sim.spawn(layout="default")
    t = p.clone_thread(stack_size=0)
    first = p.exit(trace=True)
    assert names(first) == ["do_exit", "exit_mm", "mmput"]
    assert dict(first)["mmput"] == "mm_users 2 -> 1"
    last = t.exit(trace=True)
    assert names(last)[:4] == ["do_exit", "exit_mm", "mmput", "AddressSpace::drop"]
    assert names(last)[-4:] == FINAL
    assert free_all(sim)


def test_traced_exit_of_forked_processes():
    sim = vmsim.Simulator(memory="64MiB")
    p = sim.spawn(layout="default")
    a = p.mmap(4 * PAGE_SIZE)
    p.access_batch(np.arange(a, a + 4 * PAGE_SIZE, PAGE_SIZE, dtype=np.uint64), "w")
    c = p.fork()
    parent_events = p.exit(trace=True)
    # The pages are shared with the child: references drop, nothing is freed yet.
    assert "4 page mappings zapped, 0 pages freed" in dict(parent_events)["unmap_vmas"]
    child_events = c.exit(trace=True)
    assert "4 page mappings zapped, 4 pages freed" in dict(child_events)["unmap_vmas"]
    assert names(child_events)[-4:] == FINAL
    assert free_all(sim)


def test_lazy_tlb_reference_keeps_the_mm_struct():
    sim = vmsim.Simulator(memory="64MiB")
    p = sim.spawn(layout="default")
    k = sim.kernel
    mm = k.mmgrab(p)
    events = p.exit(trace=True)
    assert names(events)[-1] == "mmdrop"  # mm_count 2 -> 1: the mm_struct stays
    assert dict(events)["mmdrop"].endswith("mm_count 2 -> 1")
    assert slab(sim, "mm_struct")["active_objs"] == 1
    c = sim.counters()
    assert c["pt_pages"] == 1  # the PGD waits for __mmdrop
    assert c["frames_used"] == c["pt_pages"] + c["slab_pages"]  # and the mm_struct's slab: nothing else
    sim.check()
    sim.trace_release(True)
    assert names(k.mmdrop(mm)) == FINAL
    sim.trace_release(False)
    assert slab(sim, "mm_struct")["active_objs"] == 0
    sim.check()
    assert free_all(sim)
    with pytest.raises(KernelBugError):
        k.mmdrop(mm)


def test_trace_release_records_every_teardown():
    sim = vmsim.Simulator(memory="64MiB")
    sim.trace_release(True)
    p = sim.spawn()
    p.exit()
    events = sim.release_events()
    assert names(events)[:3] == ["do_exit", "exit_mm", "mmput"] and names(events)[-1] == "free_mm"
    assert sim.release_events() == []
    sim.trace_release(False)
    sim.spawn().exit()
    assert sim.release_events() == []


def test_meminfo_totals():
    sim = vmsim.Simulator(memory="16MiB")
    k = sim.kernel
    base = k.meminfo()
    assert base["MemTotal"] == (4096 - 1) * 4
    v = k.vmalloc(8 * PAGE_SIZE)
    p = k.alloc_pages(1)
    m = k.meminfo()
    assert m["VmallocUsed"] - base["VmallocUsed"] == 32
    assert m["AllocPages"] - base["AllocPages"] == 8
    assert base["MemFree"] - m["MemFree"] == 40
    k.vfree(v)
    k.free_pages(p, 1)


def test_bad_cache_ids_are_errors_not_crashes():
    sim = vmsim.Simulator(memory="16MiB")
    k = sim.kernel
    p = k.kmalloc(64)
    for call in (lambda: k.kmem_cache_free(999, p), lambda: k.kmem_cache_alloc(999), lambda: k.kmem_cache_destroy(999)):
        with pytest.raises(ValueError, match="no slab cache"):
            call()
    with pytest.raises(ValueError):
        k.kmem_cache_destroy(0)  # kmalloc-8 belongs to the kernel
    k.kfree(p)
    sim.check()
