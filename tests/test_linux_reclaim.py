"""policy="linux": Linux's own reclaim over physical pages (vmscan.c, workingset.c).

Each test drives a workload under memory pressure and reads what the kernel
would show: /proc/vmstat's counters, /proc/meminfo's LRU lists, and whether
pages stayed resident (a later access is a HIT, not a SWAP_IN).
"""

import numpy as np
import pytest

import vmsim
from vmsim import Outcome

PAGE = 4096


def pages(base, n):
    return np.arange(base, base + n * PAGE, PAGE, dtype=np.uint64)


def linux_sim(memory="16MiB", **kw):
    kw.setdefault("swap", "64MiB")
    kw.setdefault("policy", "linux")
    return vmsim.Simulator(memory=memory, **kw)


def anon(p, n):
    return p.mmap(n * PAGE, prot="rw", flags="private|anonymous")


def all_hits(p, addrs, op="r"):
    codes = p.access_batch(addrs, op)
    return bool(np.all(codes == int(Outcome.HIT)))


def stream_file(sim, f, npages, times=1):
    for _ in range(times):
        for i in range(npages):
            assert f.read(i * PAGE, PAGE) == PAGE


def test_linux_is_a_policy():
    assert "linux" in vmsim.policies()
    sim = linux_sim()
    assert sim.policy == "linux"
    sim.check()


def test_a_page_read_twice_through_the_file_is_activated():
    sim = linux_sim()
    f = sim.create_file(16 * PAGE, name="/data")
    assert f.read(0, PAGE) == PAGE
    m = sim.meminfo()
    assert (m["Inactive(file)"], m["Active(file)"]) == (4, 0), "read once: inactive, PG_referenced"
    f.read(0, PAGE)
    m = sim.meminfo()
    assert (m["Inactive(file)"], m["Active(file)"]) == (4, 0), "read again where the last read ended: not counted"
    f.read(PAGE, PAGE)
    f.read(0, PAGE)
    m = sim.meminfo()
    assert (m["Inactive(file)"], m["Active(file)"]) == (4, 4), "page 0 read twice: activated"
    assert sim.vmstat()["pgactivate"] == 1
    assert sim.kernel.meminfo()["Active(file)"] == 4, "kernel.meminfo() stays an alias"
    sim.check()


def test_reads_are_short_at_the_end_and_writes_dirty_and_grow_the_file():
    sim = linux_sim()
    f = sim.create_file(PAGE + 100, name="/short")
    assert f.read(PAGE, 10 * PAGE) == 100
    assert f.read(5 * PAGE, PAGE) == 0
    assert f.write(3 * PAGE, 2 * PAGE) == 2 * PAGE
    assert f.size == 5 * PAGE
    assert sim.meminfo()["Dirty"] == 8
    sim.check()


def test_a_page_referenced_at_two_scans_is_activated_and_a_hot_set_survives_a_stream():
    sim = linux_sim()
    p = sim.spawn()
    hot = pages(anon(p, 256), 256)
    p.access_batch(hot, "w")
    cold = anon(p, 12288)
    for chunk in range(0, 12288, 512):
        p.access_batch(pages(cold + chunk * PAGE, 512), "w")  # 48 MiB streamed through 16 MiB
        p.access_batch(hot, "r")
    v = sim.vmstat()
    assert v["pswpout"] > 8000 and v["pgactivate"] >= 256
    assert v["nr_active_anon"] >= 256
    assert all_hits(p, hot), "the hot set was referenced at every scan: it stayed resident"
    sim.check()


def test_a_recent_refault_is_activated_and_counted():
    sim = linux_sim()
    p = sim.spawn()
    p.access_batch(pages(anon(p, 1024), 1024), "w")  # anon the refault competes with (swap is free)
    a = sim.create_file(PAGE, name="/a")
    b = sim.create_file(16384 * PAGE, name="/b")
    a.read(0, PAGE)
    i = 0
    while a.cached_pages:
        b.read(i * PAGE, PAGE)
        i += 1
    before = sim.vmstat()
    a.read(0, PAGE)  # read back soon after its eviction: a short refault distance
    v = sim.vmstat()
    assert v["workingset_refault_file"] == before["workingset_refault_file"] + 1
    assert v["workingset_activate_file"] == before["workingset_activate_file"] + 1
    assert v["workingset_restore_file"] == before["workingset_restore_file"], "it was never active"
    assert sim.meminfo()["Active(file)"] >= 4
    sim.check()


def test_a_distant_refault_is_not_activated():
    sim = linux_sim(swap=0)
    a = sim.create_file(PAGE, name="/a")
    b = sim.create_file(16384 * PAGE, name="/b")
    a.read(0, PAGE)
    stream_file(sim, b, 16384)  # far more evictions since than the workingset (no active pages)
    assert not a.cached_pages
    a.read(0, PAGE)
    v = sim.vmstat()
    assert v["workingset_refault_file"] >= 1
    assert v["workingset_activate_file"] == 0
    sim.check()


def test_anonymous_refaults_come_through_the_swap_slot():
    sim = linux_sim(memory="8MiB")
    p = sim.spawn()
    base = anon(p, 4096)
    for _ in range(2):
        p.access_batch(pages(base, 4096), "w")  # twice memory, cyclically
    v = sim.vmstat()
    assert v["workingset_refault_anon"] > 0
    assert v["workingset_activate_anon"] <= v["workingset_refault_anon"]
    assert v["pswpin"] >= v["workingset_refault_anon"]
    sim.check()


def test_swappiness_0_reclaims_only_file_while_there_is_file_to_reclaim():
    sim = linux_sim(swappiness=0)
    p = sim.spawn()
    hot = pages(anon(p, 1024), 1024)
    p.access_batch(hot, "w")
    stream_file(sim, sim.create_file(16384 * PAGE, name="/big"), 16384)
    v = sim.vmstat()
    assert v["pgsteal_file"] > 10000
    assert v["pswpout"] == 0 and v["pgscan_anon"] == 0
    assert all_hits(p, hot)
    sim.check()


def test_swappiness_0_swaps_anon_once_file_is_tiny():
    sim = linux_sim(swappiness=0)
    p = sim.spawn()
    p.access_batch(pages(anon(p, 6000), 6000), "w")  # more anon than memory, no file at all
    assert sim.vmstat()["pswpout"] > 1000, "file + free under the high watermarks: anon is scanned"
    sim.check()


def test_swappiness_0_never_swaps_in_cgroup_reclaim():
    sim = linux_sim(memory="64MiB", swappiness=0)
    cg = sim.cgroup("nosw", max=1000 * PAGE)
    p = sim.spawn(cgroup=cg)
    with pytest.raises(vmsim.ProcessExitedError, match=r"OOM killer: memory cgroup /nosw at memory\.max"):
        p.access_batch(pages(anon(p, 2000), 2000), "w")
    assert sim.vmstat()["pswpout"] == 0, "swap was free, but swappiness 0 keeps group reclaim off anon"
    assert cg.events()["oom_kill"] == 1 and cg.current == 0
    sim.check()


def test_the_resident_limit_is_oom_for_an_unkillable_process():
    # The OOM outcome stays for when nothing can be killed.
    sim = linux_sim(memory="64MiB", swappiness=0, resident_limit=1000)
    p = sim.spawn()
    p.oom_score_adj = -1000
    codes = p.access_batch(pages(anon(p, 2000), 2000), "w")
    assert sim.vmstat()["pswpout"] == 0 and sim.vmstat()["oom_kill"] == 0
    assert np.count_nonzero(codes == int(Outcome.OOM)) > 0, "nothing reclaimable at the limit"
    sim.check()


@pytest.mark.parametrize("policy", ["linux", "mglru"])
def test_a_file_scan_does_not_evict_an_anonymous_hot_set(policy):
    for swappiness in (60, 200):
        sim = linux_sim(swappiness=swappiness, policy=policy)
        p = sim.spawn()
        hot = pages(anon(p, 1024), 1024)
        p.access_batch(hot, "w")
        big = sim.create_file(8192 * PAGE, name="/scan")
        for rnd in range(4):
            stream_file(sim, big, 8192)
            p.access_batch(hot, "r")
            del rnd
        assert all_hits(p, hot), f"swappiness {swappiness}: the scan pushed the hot set out"
        sim.check()


def test_mlocked_pages_are_unevictable():
    sim = linux_sim(memlock_rlimit="8MiB")
    p = sim.spawn()
    locked = anon(p, 512)
    p.mlock(locked, 512 * PAGE)
    m = sim.meminfo()
    assert m["Unevictable"] == m["Mlocked"] == 512 * 4
    p.access_batch(pages(anon(p, 8192), 8192), "w")  # twice memory
    assert all_hits(p, pages(locked, 512))
    p.munlock(locked, 512 * PAGE)
    assert sim.meminfo()["Unevictable"] == 0
    assert sim.vmstat()["unevictable_pgs_munlocked"] == 512
    sim.check()


def test_a_shared_page_is_unmapped_from_every_process():
    sim = linux_sim()
    parent = sim.spawn()
    base = anon(parent, 1024)
    parent.access_batch(pages(base, 1024), "w")
    child = parent.fork()
    filler = anon(parent, 16384)
    parent.access_batch(pages(filler, 16384), "w")
    # The shared pages went to swap once, from both page tables at once.
    rss = [sum(1 for e in q.pagemap(base, 1024 * PAGE) if e >> 63) for q in (parent, child)]
    assert rss[0] < 1024 and rss[0] == rss[1]
    codes = child.access_batch(pages(base, 1024), "r")
    assert np.count_nonzero(codes == int(Outcome.SWAP_IN)) == 1024 - rss[1]
    sim.check()
    child.exit()
    parent.exit()
    sim.check()
    c = sim.counters()
    assert c["frames_free"] == c["frames_total"]


def test_kswapd_keeps_free_memory_between_the_watermarks():
    sim = linux_sim()
    p = sim.spawn()
    p.access_batch(pages(anon(p, 8192), 8192), "w")
    v = sim.vmstat()
    assert v["pgscan_kswapd"] > 0 and v["pgsteal_kswapd"] > 0 and v["pageoutrun"] > 0
    assert v["allocstall_normal"] == 0, "kswapd kept ahead: no allocation found less than min"
    # 16 MiB: min_free_kbytes 512 -> min 128 pages, gap 32: low 160, high 192.
    assert v["nr_free_pages"] >= 160


def test_direct_reclaim_when_free_is_at_min_then_oom():
    # No swap: kswapd can free only the page cache; once anon has taken the
    # rest, allocations find free pages at min, reclaim directly, and fail.
    sim = linux_sim(memory="8MiB", swap=0, overcommit=1)
    f = sim.create_file(512 * PAGE, name="/cache")
    stream_file(sim, f, 512)
    p = sim.spawn()
    p.oom_score_adj = -1000  # never OOM-killed: its faults fail instead
    codes = p.access_batch(pages(anon(p, 4096), 4096), "w")
    v = sim.vmstat()
    assert v["pgsteal_kswapd"] > 0, "kswapd dropped the page cache first"
    assert v["allocstall_normal"] > 0
    assert np.count_nonzero(codes == int(Outcome.OOM)) > 0
    # 8 MiB: min_free_kbytes 362 -> min 90 pages. User pages never take the
    # reserve; page tables, not held to the watermarks here, may dip a little.
    assert 80 <= v["nr_free_pages"] <= 100
    sim.check()


def test_lists_are_exact_after_exit_and_shadows_stay_bounded():
    sim = linux_sim(memory="4MiB")
    p = sim.spawn()
    f = sim.create_file(65536 * PAGE, name="/huge")
    stream_file(sim, f, 65536)
    p.access_batch(pages(anon(p, 4096), 4096), "w")
    sim.check()  # the shadow nodes are within present pages / 8
    p.exit()
    f.unlink()
    del f
    sim.check()
    m = sim.meminfo()
    assert m["Active(anon)"] == m["Inactive(anon)"] == 0


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"swappiness": 201}, "swappiness"),
        ({"watermark_scale_factor": 0}, "watermark_scale_factor"),
        ({"watermark_scale_factor": 3001}, "watermark_scale_factor"),
    ],
)
def test_knobs_out_of_range_are_refused(kw, message):
    with pytest.raises((ValueError, OverflowError), match=message):
        linux_sim(**kw)


def test_textbook_policies_are_untouched_by_the_new_lists():
    sim = vmsim.Simulator(memory="16MiB", swap="64MiB", policy="clock")
    p = sim.spawn()
    p.access_batch(pages(anon(p, 8192), 8192), "w")
    v = sim.vmstat()
    assert v["pswpout"] > 0 and v["nr_inactive_anon"] == 0 and v["pgscan_kswapd"] == 0
    sim.check()
