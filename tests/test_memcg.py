"""Memory cgroups (v2 semantics) and the OOM killer under policy="linux".

What a group's files would show (memory.current, memory.peak, memory.stat,
memory.events, memory.swap.current) after workloads that press on it, on
its siblings or on the machine; which process the OOM killer takes.
"""

import numpy as np
import pytest

import vmsim
from test_linux_reclaim import PAGE, all_hits, anon, linux_sim, pages
from vmsim import Outcome


def write(p, n):
    """n fresh anonymous pages written; returns their addresses."""
    addrs = pages(anon(p, n), n)
    codes = p.access_batch(addrs, "w")
    assert not np.any(codes == int(Outcome.OOM))
    return addrs


def test_a_group_at_max_reclaims_only_its_own_pages_then_kills_its_largest():
    sim = linux_sim(memory="64MiB", swap=0)
    # Outside the group: a process and page cache of the root's.
    outsider = sim.spawn()
    outside = write(outsider, 1000)
    shared = sim.create_file(500 * PAGE, name="/root-cache")
    shared.read(0, 500 * PAGE)
    cache_before = sim.meminfo()["Inactive(file)"] + sim.meminfo()["Active(file)"]
    cg = sim.cgroup("job", max=2000 * PAGE)
    mine = sim.create_file(400 * PAGE, name="/job-cache")
    mine.read(0, 400 * PAGE, cgroup=cg)
    assert cg.stat()["file"] == 400 * PAGE
    big, small = sim.spawn(cgroup=cg), sim.spawn(cgroup=cg)
    big_pages = write(big, 1700)
    assert cg.stat()["pgsteal"] > 0, "the group's own page cache made room"
    write(small, 500)  # the group is full of anon that cannot be swapped: big goes
    ev = cg.events()
    assert ev["max"] > 0 and ev["oom"] == 1 and ev["oom_kill"] == 1
    assert not big.alive and small.alive
    with pytest.raises(vmsim.ProcessExitedError, match=r"OOM killer: memory cgroup /job at memory\.max"):
        big.access(int(big_pages[0]))
    assert all_hits(outsider, outside), "the group's pressure never touched the root's pages"
    cache_after = sim.meminfo()["Inactive(file)"] + sim.meminfo()["Active(file)"]
    assert cache_after - cg.stat()["file"] // 1024 == cache_before, "nor the root's page cache"
    assert sim.vmstat()["oom_kill"] == 1
    sim.check()


def test_high_reclaims_the_group_back_under_it():
    sim = linux_sim(memory="64MiB")
    cg = sim.cgroup("batch", high=1000 * PAGE)
    p = sim.spawn(cgroup=cg)
    write(p, 3000)
    assert cg.events()["high"] > 0 and cg.events()["oom"] == 0
    assert cg.swap_current > 0 and sim.vmstat()["pgsteal_direct"] > 0
    assert cg.peak <= cg.high + 8 * PAGE, "each charge over high is reclaimed at once"
    assert cg.current <= cg.high + 8 * PAGE and cg.throttled == 0
    sim.check()


def test_low_protects_a_group_from_the_machines_reclaim():
    sim = linux_sim(memory="16MiB")
    guarded = sim.cgroup("guarded", low="4MiB")
    other = sim.cgroup("other")
    g = sim.spawn(cgroup=guarded)
    hot = write(g, 800)
    o = sim.spawn(cgroup=other)
    write(o, 6000)  # the machine is short: kswapd and direct reclaim pass over the guarded group
    assert all_hits(g, hot), "a group within memory.low keeps its pages"
    assert guarded.swap_current == 0 and other.swap_current > 0
    assert guarded.events()["low"] == 0
    sim.check()


def test_low_gives_way_when_nothing_else_can_go():
    sim = linux_sim(memory="16MiB")
    guarded = sim.cgroup("guarded", low="32MiB")
    g = sim.spawn(cgroup=guarded)
    write(g, 6000)  # only the protected group has pages: reclaim takes them anyway
    assert guarded.events()["low"] > 0 and guarded.swap_current > 0
    sim.check()


def test_swap_max_caps_the_groups_swap():
    sim = linux_sim(memory="64MiB")
    cg = sim.cgroup("capped", max=500 * PAGE, swap_max=200 * PAGE)
    p = sim.spawn(cgroup=cg)
    write(p, 600)
    assert 0 < cg.swap_current <= 200 * PAGE
    with pytest.raises(vmsim.ProcessExitedError, match="/capped"):
        p.access_batch(pages(anon(p, 400), 400), "w")  # 500 resident + 200 in swap is all it may have
    assert cg.swap_peak <= 200 * PAGE and cg.events()["oom_kill"] == 1
    assert cg.current == 0 and cg.swap_current == 0, "the victim's memory and swap came back"
    sim.check()


def test_charges_stay_with_the_old_group_after_a_move():
    sim = linux_sim(memory="64MiB")
    a, b = sim.cgroup("a"), sim.cgroup("b")
    p = sim.spawn(cgroup=a)
    write(p, 100)
    p.move_to(b)
    assert p.cgroup == b and p.cgroup != a
    write(p, 50)
    assert a.stat()["anon"] == 100 * PAGE and b.stat()["anon"] == 50 * PAGE
    assert a.stat()["pagetables"] > 0, "its page tables were charged where they were made"
    p.move_to(None)
    assert p.cgroup is None
    p.exit()
    assert a.current == 0 and b.current == 0, "every charge went with the process"
    sim.check()


def test_kernel_memory_counts_in_current():
    sim = linux_sim(memory="64MiB")
    cg = sim.cgroup("k")
    p = sim.spawn(cgroup=cg)
    write(p, 1000)
    st = cg.stat()
    assert st["pagetables"] >= 3 * PAGE and st["slab"] > 0
    assert st["kernel"] == st["pagetables"] + st["slab"]
    assert cg.current >= st["anon"] + st["kernel"]
    assert cg.current - (st["anon"] + st["kernel"]) < PAGE, "kernel memory is counted in whole pages"
    sim.check()


def test_a_child_group_counts_in_its_parent_and_is_held_by_its_max():
    sim = linux_sim(memory="64MiB", swap=0)
    parent = sim.cgroup("parent", max=1000 * PAGE)
    child = sim.cgroup("child", parent=parent)
    assert child.path == "/parent/child"
    p = sim.spawn(cgroup=child)
    write(p, 300)
    assert parent.current == child.current > 300 * PAGE
    with pytest.raises(vmsim.ProcessExitedError, match=r"/parent at memory\.max"):
        p.access_batch(pages(anon(p, 800), 800), "w")
    assert parent.events()["oom_kill"] == 1 and child.events()["oom_kill"] == 1
    sim.check()


def test_fork_keeps_the_group_and_oom_score_adj():
    sim = linux_sim(memory="64MiB")
    cg = sim.cgroup("forked")
    p = sim.spawn(cgroup=cg)
    p.oom_score_adj = 300
    c = p.fork()
    assert c.cgroup == cg and c.oom_score_adj == 300
    sim.check()


def test_the_machines_oom_killer_takes_the_largest_process():
    sim = linux_sim(memory="16MiB", swap=0)
    large, medium = sim.spawn(), sim.spawn()
    write(large, 2000)
    write(medium, 1000)
    newcomer = sim.spawn()
    write(newcomer, 1500)  # the machine is out: the largest goes, the allocation goes through
    assert not large.alive and medium.alive and newcomer.alive
    assert sim.vmstat()["oom_kill"] == 1
    with pytest.raises(vmsim.ProcessExitedError, match="killed by the OOM killer: out of memory"):
        large.counters()
    sim.check()


def test_oom_score_adj_steers_the_choice():
    sim = linux_sim(memory="16MiB", swap=0)
    large, medium = sim.spawn(), sim.spawn()
    large.oom_score_adj = -1000
    medium.oom_score_adj = 500
    write(large, 2000)
    write(medium, 1000)
    write(sim.spawn(), 1500)
    assert large.alive and not medium.alive
    sim.check()


def test_with_nothing_to_kill_the_fault_is_oom():
    sim = linux_sim(memory="16MiB", swap=0, overcommit=1)
    p = sim.spawn()
    p.oom_score_adj = -1000
    codes = p.access_batch(pages(anon(p, 5000), 5000), "w")
    assert np.count_nonzero(codes == int(Outcome.OOM)) > 0
    assert sim.vmstat()["oom_kill"] == 0 and p.alive
    sim.check()


def test_the_killed_processes_threads_die_with_it():
    sim = linux_sim(memory="16MiB", swap=0)
    victim = sim.spawn()
    thread = victim.clone_thread()
    write(victim, 2500)
    write(sim.spawn(), 1500)
    assert not victim.alive and not thread.alive
    with pytest.raises(vmsim.ProcessExitedError, match="OOM killer"):
        thread.access(0x1000)
    sim.check()


def test_limits_can_be_read_and_changed():
    sim = linux_sim(memory="64MiB")
    cg = sim.cgroup("knobs", max="8MiB", high=1 << 20, low="512KiB", swap_max=0)
    assert (cg.max, cg.high, cg.low, cg.swap_max) == (8 << 20, 1 << 20, 512 << 10, 0)
    cg.max, cg.high, cg.swap_max = "max", None, 5000  # bytes round down to pages
    assert (cg.max, cg.high, cg.swap_max) == (None, None, 4096)
    assert cg.events() == {"low": 0, "high": 0, "max": 0, "oom": 0, "oom_kill": 0}
    assert 'Cgroup("/knobs"' in repr(cg)
    sim.check()


def test_bad_cgroup_use_is_a_clear_error():
    with pytest.raises(ValueError, match='need policy="linux"'):
        vmsim.Simulator(memory="16MiB", policy="clock").cgroup("x")
    with pytest.raises(ValueError, match='need policy="linux"'):
        vmsim.Simulator(memory="16MiB").cgroup("x")
    sim = linux_sim()
    cg = sim.cgroup("x")
    with pytest.raises(OSError, match="exists already"):
        sim.cgroup("x")
    for bad in ("", "a/b", ".", ".."):
        with pytest.raises(ValueError, match="one non-empty path component"):
            sim.cgroup(bad)
    with pytest.raises(ValueError):
        sim.cgroup("neg", max=-1)
    with pytest.raises(TypeError, match=r"Cgroup from Simulator\.cgroup"):
        sim.spawn(cgroup="x")
    other = linux_sim().cgroup("y")
    with pytest.raises(ValueError, match="another Simulator"):
        sim.spawn(cgroup=other)
    p = sim.spawn(cgroup=cg)
    with pytest.raises(ValueError, match="between -1000 and 1000"):
        p.oom_score_adj = 1001
    with pytest.raises(TypeError):
        p.oom_score_adj = "high"
    assert p.oom_score_adj == 0
    sim.check()
