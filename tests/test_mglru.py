"""policy="mglru": the multi-gen LRU (Documentation/mm/multigen_lru.rst).

Generations per type, aged by walking the page tables, evicted oldest
first; tiers for pages read often through file descriptors, protected when
their refaults say so; what /sys/kernel/debug/lru_gen would list.
"""

import numpy as np
import pytest

import vmsim
from test_linux_reclaim import PAGE, all_hits, anon, linux_sim, pages, stream_file


def mglru_sim(memory="16MiB", **kw):
    return linux_sim(memory, policy="mglru", **kw)


def gens(sim):
    return [(g["seq"], g["anon"], g["file"]) for g in sim.lru_gen()]


def test_mglru_is_a_policy_with_four_generations_to_begin_with():
    assert "mglru" in vmsim.policies()
    sim = mglru_sim()
    assert gens(sim) == [(0, 0, 0), (1, 0, 0), (2, 0, 0), (3, 0, 0)]
    sim.check()


def test_faulted_pages_start_youngest_and_read_pages_old():
    sim = mglru_sim()
    p = sim.spawn()
    p.access_batch(pages(anon(p, 100), 100), "w")
    f = sim.create_file(50 * PAGE)
    f.read(0, 50 * PAGE)
    # A page fault puts its folio in the youngest generation (lru_gen_in_fault);
    # read(2) puts a file folio in the second oldest.
    assert gens(sim) == [(0, 0, 0), (1, 0, 50), (2, 0, 0), (3, 100, 0)]
    m = sim.meminfo()
    assert m["Active(anon)"] == 400 and m["Inactive(file)"] == 200, "the two youngest generations are active"
    sim.check()


def test_the_aging_walks_page_tables_and_keeps_the_hot_set():
    sim = mglru_sim()
    p = sim.spawn()
    hot = pages(anon(p, 512), 512)
    p.access_batch(hot, "w")
    cold = anon(p, 8000)
    for r in range(32):  # 2x memory of pages written once, the hot set read between
        p.access_batch(pages(cold + r * 250 * PAGE, 250), "w")
        p.access_batch(hot, "r")
    assert all_hits(p, hot), "pages found young by the page-table walk were promoted"
    seqs = [s for s, _, _ in gens(sim)]
    assert seqs[-1] > 3 and 2 <= len(seqs) <= 4, "the aging opened new generations, two to four live"
    assert sim.vmstat()["pswpout"] > 0
    sim.check()


def test_tiers_protect_file_pages_read_often_once_they_refault():
    sim = mglru_sim(memory="8MiB")
    hot = sim.create_file(512 * PAGE, name="/hot")
    stream = sim.create_file(30000 * PAGE, name="/stream")
    refaults = []
    for rnd in range(6):
        before = sim.vmstat()["workingset_refault_file"]
        for _ in range(3):  # tier 2: PG_referenced, PG_workingset, one ref more
            hot.read(0, 512 * PAGE)
        refaults.append(sim.vmstat()["workingset_refault_file"] - before)
        for i in range(2000):
            stream.read((rnd * 2000 + i) * PAGE, PAGE)
    # The first stream evicts the hot file too (no refaults yet to learn from);
    # its refaults at tier 2 make the controller protect that tier from then on.
    assert refaults[0] == 0 and refaults[1] == 512 and refaults[2:] == [0] * 4
    assert sim.vmstat()["workingset_activate_file"] >= 512, "protection counts as activation"
    sim.check()


def test_lru_gen_shows_each_tiers_refault_feedback_as_lru_gen_full_does():
    sim = mglru_sim(memory="8MiB")
    hot = sim.create_file(512 * PAGE, name="/hot")
    stream = sim.create_file(30000 * PAGE, name="/stream")

    def file_tiers():
        listed = sim.lru_gen()
        assert all(len(g["tiers"]) == 4 for g in listed)
        return [[t["file"] for t in g["tiers"]] for g in listed]

    for rnd in range(2):
        for _ in range(3):
            hot.read(0, 512 * PAGE)
        for i in range(2000):
            stream.read((rnd * 2000 + i) * PAGE, PAGE)
        oldest, *middle, youngest = file_tiers()
        # The youngest generation shows the controller's running averages,
        # the oldest what its tiers refaulted, lost and kept since it became
        # the oldest; the generations between show nothing.
        assert all(set(t) == {"avg_refaulted", "avg_total"} for t in youngest)
        assert all(t == {} for g in middle for t in g)
        stream_pages, hot_tier = oldest[0], oldest[2]
        assert stream_pages["evicted"] > 0 and stream_pages["refaulted"] == 0, "read once: tier 0"
        if rnd == 0:
            assert hot_tier == {"refaulted": 0, "evicted": 512, "protected": 0}
        else:
            # The hot file's refaults at tier 2 outweigh tier 0's: tier 2 is
            # protected from then on, so its pages stay.
            assert hot_tier == {"refaulted": 512, "evicted": 512, "protected": 512}
    sim.check()


def test_swappiness_0_never_swaps_while_file_pages_remain():
    sim = mglru_sim(swappiness=0)
    p = sim.spawn()
    hot = pages(anon(p, 1024), 1024)
    p.access_batch(hot, "w")
    stream_file(sim, sim.create_file(8192 * PAGE, name="/scan"), 8192)
    assert sim.vmstat()["pswpout"] == 0 and all_hits(p, hot)
    sim.check()


def test_mlocked_pages_stay_off_the_generations():
    sim = mglru_sim(memlock_rlimit="8MiB")
    p = sim.spawn()
    locked = anon(p, 512)
    p.mlock(locked, 512 * PAGE)
    p.access_batch(pages(locked, 512), "w")
    p.access_batch(pages(anon(p, 8000), 8000), "w")
    assert sim.meminfo()["Unevictable"] == 512 * 4 and all_hits(p, pages(locked, 512))
    in_gens = sum(a for _, a, _ in gens(sim))
    assert in_gens + 512 == p.counters()["rss_anon"], "the locked pages are on no generation"
    sim.check()


def test_memory_cgroups_work_under_mglru():
    sim = mglru_sim(memory="64MiB", swap=0)
    cg = sim.cgroup("job", max=1000 * PAGE)
    p = sim.spawn(cgroup=cg)
    with pytest.raises(vmsim.ProcessExitedError, match="OOM killer"):
        p.access_batch(pages(anon(p, 2000), 2000), "w")
    assert cg.events()["oom_kill"] == 1 and cg.current == 0
    assert {g["memcg"] for g in sim.lru_gen()} == {"/", "/job"}
    sim.check()


def test_mglru_runs_the_same_every_time():
    def run():
        sim = mglru_sim(memory="8MiB")
        p = sim.spawn()
        a, o = vmsim.workloads.zipf(anon(p, 8192), 8192, 100_000, skew=0.8, write_ratio=0.3, seed=5)
        codes = p.access_batch(a, o)
        return np.bincount(codes, minlength=16).tolist(), gens(sim)

    assert run() == run()


def test_lru_gen_needs_mglru():
    with pytest.raises(ValueError, match='policy="mglru"'):
        vmsim.Simulator(memory="16MiB", policy="linux").lru_gen()
