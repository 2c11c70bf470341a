"""What `vmsim run --plot` draws: the data on each line, labels and titles
(read from the matplotlib figure, not from pixels)."""

from __future__ import annotations

import numpy as np
import pytest

import vmsim
from vmsim import cli, plots
from vmsim.workloads import TIMELINE_POINTS, Workload

pytest.importorskip("matplotlib")
plots.to_files()


def _run(spec: str, **config) -> tuple[vmsim.Simulator, object]:
    sim = vmsim.Simulator(**config)
    return sim, Workload.parse(spec).run(sim)


@pytest.mark.parametrize("count", [300, 100_000, 3_000_000])
def test_timeline_has_at_least_200_points_at_any_length(count):
    sim, result = _run(f"zipf:pages=4096,count={count}", memory="256MiB")
    fig = plots.timeline_figure(result, plots.describe(sim))
    rss_ax, fault_ax = fig.axes
    (rss_line,) = rss_ax.get_lines()
    (fault_line,) = fault_ax.get_lines()
    xs = rss_line.get_xdata()
    assert min(count, TIMELINE_POINTS) <= len(xs) <= 2 * TIMELINE_POINTS + 1 and len(xs) >= min(count, 200)
    assert xs[-1] == count and np.all(np.diff(xs) > 0)
    # The last point is the run's end: every fault, and RSS in MiB.
    assert fault_line.get_ydata()[-1] == result.min_flt + result.maj_flt
    assert rss_line.get_ydata()[-1] == pytest.approx(result.timeline[-1][1] * vmsim.PAGE_SIZE / 2**20)
    assert rss_ax.get_ylabel() == "RSS (MiB)" and fault_ax.get_ylabel() == "page faults so far"
    assert fault_ax.get_xlabel() == "accesses"
    title = fig.texts[0].get_text()
    assert result.name in title and "memory 256 MiB" in title and "maple index" in title


def test_timeline_points_are_evenly_spaced():
    _, result = _run("sequential:pages=5000,passes=3", memory="256MiB")
    xs = [p[0] for p in result.timeline[:-1]]
    steps = set(np.diff(xs))
    assert len(steps) == 1


def test_opt_keeps_its_batches_so_the_plot_does_not_change_the_result():
    spec = "zipf:pages=2048,count=50000,seed=4"
    config = {"memory": "64MiB", "swap": "64MiB", "resident_limit": 256, "policy": "opt"}
    _, result = _run(spec, **config)
    direct = vmsim.Simulator(**config)
    p = direct.spawn(layout="default")
    base = p.mmap(2048 * vmsim.PAGE_SIZE)
    addrs, ops = vmsim.workloads.zipf(base, 2048, 50000, 1.1, 0.3, int(np.random.default_rng(4).integers(1 << 31)))
    codes = p.access_batch(addrs, ops)
    assert [result.outcomes[o.name] for o in vmsim.Outcome] == vmsim._core.count_outcomes(codes)


def test_mix_chart_titles_config_and_keeps_the_legend_off_the_bars():
    runs = []
    for policy in ("fifo", "lru"):
        sim, result = _run(
            "zipf:pages=2048,count=20000", memory="64MiB", swap="64MiB", resident_limit=256, policy=policy
        )
        runs.append((policy, result))
    fig = plots.mix_figure(runs, plots.describe(sim, with_policy=False))
    (ax,) = fig.axes
    title = ax.get_title()
    assert "swap 64 MiB" in title and "resident limit 256 pages" in title and "policy" not in title.split("\n")[1]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["fifo", "lru"]
    assert ax.get_ylabel() and ax.get_xlabel() == "replacement policy"
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    axes_box = ax.get_window_extent()
    assert legend.x0 >= axes_box.x1  # beside the axes, over no bar
    heights = [bar.get_height() + bar.get_y() for bar in ax.patches]
    assert max(heights) == max(r.accesses - r.outcomes["HIT"] for _, r in runs)


def test_cli_plot_says_where_it_wrote(tmp_path, capsys):
    path = tmp_path / "z.png"
    assert cli.main(["run", "zipf:pages=512,count=5000", "--plot", str(path)]) == 0
    assert f"wrote {path}" in capsys.readouterr().err and path.stat().st_size > 10_000


def test_linux_runs_plot_the_lru_lists_and_refaults():
    config = {"memory": "16MiB", "swap": "64MiB", "policy": "linux"}
    sim, result = _run("zipf:pages=8192,count=200000,skew=0.8", **config)
    fig = plots.timeline_figure(result, plots.describe(sim))
    lru_ax, refault_ax = fig.axes[2:4]
    assert lru_ax.get_ylabel() == "LRU lists (MiB)" and refault_ax.get_ylabel() == "refaults so far"
    # The stacked lists at the end add up to what vmstat says is on them.
    v = sim.vmstat()
    last = result.reclaim[-1]
    assert last[0] == 200_000 and len(result.reclaim) == len(result.timeline)
    lists = ("nr_inactive_anon", "nr_active_anon", "nr_inactive_file", "nr_active_file", "nr_unevictable")
    # (The workload's process has exited since: its anon pages left the lists.)
    assert sum(last[1:6]) >= sum(v[k] for k in lists)
    refaults, activated = refault_ax.get_lines()
    assert refaults.get_ydata()[-1] == v["workingset_refault_anon"] + v["workingset_refault_file"] > 0
    assert activated.get_ydata()[-1] == v["workingset_activate_anon"] + v["workingset_activate_file"]
    top = lru_ax.collections[-1].get_paths()[0].vertices[:, 1].max()
    assert 0 < top <= 16, "the lists never hold more than the memory"


def test_the_plot_does_not_change_a_linux_run():
    spec = "zipf:pages=4096,count=60000,seed=2"
    config = {"memory": "8MiB", "swap": "64MiB", "policy": "linux"}
    _, watched = _run(spec, **config)
    sim = vmsim.Simulator(**config)
    plain = vmsim.workloads.RunResult("plain")
    p = sim.spawn(layout="default")
    base = p.mmap(4096 * vmsim.PAGE_SIZE)
    addrs, ops = vmsim.workloads.zipf(base, 4096, 60000, 1.1, 0.3, int(np.random.default_rng(2).integers(1 << 31)))
    plain.play(p, addrs, ops)
    assert watched.outcomes == plain.outcomes and not plain.reclaim
