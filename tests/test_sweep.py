"""Spreads: bootstrap intervals within a run, and ``mnistlab sweep`` over seeds on Dask."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

from mnistlab import metrics, spread, sweep

# ---- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seeds"),
    [("0-4", (0, 1, 2, 3, 4)), ("3", (3,)), ("0,2,7-8", (0, 2, 7, 8)), ("1,1,0-1", (1, 0))],
)
def test_seeds_parse(text, seeds):
    assert sweep.parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["", "4-1", "a", "-1", "0-", "0-5000", "1,,2"])
def test_bad_seeds_are_refused(text):
    with pytest.raises(ValueError):
        sweep.parse_seeds(text)


# ---- across runs --------------------------------------------------------------------------------


def test_summarise_gives_the_t_interval():
    s = spread.summarise([1.0, 2.0, 3.0, 4.0])
    assert s["n"] == 4 and s["mean"] == 2.5
    assert math.isclose(s["sd"], np.std([1, 2, 3, 4], ddof=1))
    half = 3.182446305284263 * s["sd"] / 2  # t(0.975, 3)
    assert math.isclose(s["hi"] - s["mean"], half, rel_tol=1e-9)
    assert spread.summarise([float("nan"), 1.0])["n"] == 1  # non-finite runs are left out


def test_t_interval_covers_the_mean_95_percent_of_the_time(rng):
    hits = 0
    for _ in range(2000):
        s = spread.summarise(rng.normal(1.0, 2.0, size=5))
        hits += s["lo"] <= 1.0 <= s["hi"]
    assert 0.93 < hits / 2000 < 0.97


def test_clearly_different_needs_a_difference_beyond_its_spread(rng):
    a = 0.90 + rng.normal(0, 0.01, 5)
    assert spread.clearly_different(a + 0.05, a)  # paired: the same shift every seed
    assert not spread.clearly_different(a, a[::-1])  # shuffled pairs: no consistent difference
    assert not spread.clearly_different([1.0], [0.0])  # one pair says nothing


# ---- within one run -----------------------------------------------------------------------------


def test_mean_intervals_cover_and_shrink(rng):
    small, large = rng.random(200), rng.random(20_000)
    i_small = spread.mean_intervals({"x": small}, spread.resample_counts(200, 400))["x"]
    i_large = spread.mean_intervals({"x": large}, spread.resample_counts(20_000, 400))["x"]
    assert i_small[0] < small.mean() < i_small[1]
    assert i_large[0] < large.mean() < i_large[1]
    assert i_large[1] - i_large[0] < (i_small[1] - i_small[0]) / 5  # ~ 1 / sqrt(n)
    # The spread of the mean of n uniforms is 1 / sqrt(12 n): 95% is about +- 1.96 of it.
    expected = 2 * 1.96 / math.sqrt(12 * 200)
    assert 0.8 * expected < i_small[1] - i_small[0] < 1.2 * expected


def test_fid_interval_holds_the_estimate_and_the_spread_of_fresh_draws(rng):
    d = 16
    ref = rng.normal(size=(4000, d))
    stats = metrics.gaussian_stats(ref)
    x = rng.normal(size=(2000, d)) * 1.2
    lo, hi = spread.fid_interval(x, stats, spread.resample_counts(2000, 100))
    estimate = metrics.frechet_distance(metrics.gaussian_stats(x), stats)
    assert lo < estimate < hi
    fresh = [
        metrics.frechet_distance(metrics.gaussian_stats(rng.normal(size=(2000, d)) * 1.2), stats)
        for _ in range(30)
    ]
    # The interval's width is about 4 standard deviations of the FID of fresh draws.
    assert 2 * np.std(fresh) < hi - lo < 8 * np.std(fresh)


def test_scores_carry_intervals_around_every_headline_number(mnist):
    from mnistlab import store

    judge, meta = store.load_judge(mnist, progress=False)
    scorer = metrics.Scorer(judge, mnist, judge_id=meta["judge_id"], progress=False)
    s = scorer.score(mnist.x_test[:600])
    for key in ("quality", "novelty", "near_copy_rate", "fid", "precision", "recall", "density"):
        lo, hi = s.intervals[key]
        assert lo <= getattr(s, key) <= hi, key
    assert s.as_dict()["ci"]["quality"] == list(s.intervals["quality"])
    # Half the samples: the intervals widen.
    half = scorer.score(mnist.x_test[:150])
    width = lambda sc, k: sc.intervals[k][1] - sc.intervals[k][0]  # noqa: E731
    assert width(half, "novelty") > width(s, "novelty")


# ---- the sweep end to end -----------------------------------------------------------------------

TINY = {"noise_factors": (0.5,), "epochs": 1, "n_train": 1000, "n_test": 200}


@pytest.mark.timeout(600)
def test_a_quick_sweep_of_two_seeds_on_two_workers(tmp_path, mnist):
    """The tests' end-to-end sweep: 2 seeds, a LocalCluster of 2 workers, then a rerun that reuses
    both runs."""
    out = tmp_path / "sweep"
    done = sweep.run_sweep(
        "denoising", (0, 1), out=out, quick=True, workers=2, progress=False, **TINY
    )
    assert done.report == out / "report.html" and done.report.is_file()
    runs = sorted(out.glob("runs/mnist/seed-*/metrics.json"))
    assert [p.parent.name for p in runs] == ["seed-0", "seed-1"]
    seeds = [json.loads(p.read_text())["config"]["seed"] for p in runs]
    assert seeds == [0, 1]
    m = json.loads((out / "metrics.json").read_text())
    assert m["schema"] == sweep.SCHEMA and m["data"][0]["seeds"] == [0, 1]
    numbers = m["data"][0]["numbers"]
    bce = [k for k in numbers if k.endswith("denoised/bce")]
    assert bce and all(numbers[k]["n"] == 2 for k in bce)
    one = [json.loads(p.read_text()) for p in runs]
    path = bce[0].split("/")
    vals = []
    for r in one:
        node = r["results"]
        for part in path:
            node = node[int(part)] if isinstance(node, list) else node[part]
        vals.append(node)
    assert math.isclose(numbers[bce[0]]["mean"], np.mean(vals))
    verdicts = m["data"][0]["verdicts"]
    assert verdicts and all(v["runs"] == 2 and 1 <= v["runs_agreeing"] <= 2 for v in verdicts)
    page = done.report.read_text()
    assert "Do the answers hold across seeds?" in page and "<img" in page
    assert (out / "spread.csv").read_text().startswith("data,number,n,mean,sd,lo,hi")

    # A rerun into the same folder reuses both runs: nothing is trained or scored again.
    stamps = [p.stat().st_mtime_ns for p in runs]
    again = sweep.run_sweep("denoising", (1, 0), out=out, quick=True, progress=False, **TINY)
    assert [p.stat().st_mtime_ns for p in runs] == stamps
    assert again.sweeps[0].seeds == [1, 0]
    assert json.loads((out / "metrics.json").read_text())["data"][0]["numbers"] == numbers


def test_a_run_scored_by_other_metrics_is_not_reused(tmp_path):
    from mnistlab import metrics

    task = sweep.Task("denoising", 0, None, "mnist", quick=True, overrides=tuple(TINY.items()))
    path = tmp_path / task.folder / "metrics.json"
    path.parent.mkdir(parents=True)
    config = sweep._expected_config(task)
    for fmt, reused in (
        (metrics.CALIBRATION_FORMAT, True),
        (metrics.CALIBRATION_FORMAT - 1, False),
    ):
        path.write_text(json.dumps({"config": config, "metrics_format": fmt}))
        assert sweep.finished(task, tmp_path) is reused
    path.write_text(json.dumps({"config": config}))  # written before runs named their metrics
    assert not sweep.finished(task, tmp_path)


def test_a_task_gives_numpy_its_share_of_the_cores_as_torch(tmp_path, monkeypatch):
    """Dask's nanny starts workers with OPENBLAS_NUM_THREADS=1; the task lifts that to its share."""
    import torch
    from threadpoolctl import threadpool_info, threadpool_limits

    from mnistlab.studies import scaffold

    seen = {}

    def fake_execute(study, config, data, out, progress):
        seen["blas"] = {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}
        seen["torch"] = torch.get_num_threads()
        seen["env"] = {os.environ[name] for name in sweep.THREAD_VARIABLES}  # for later loads

    monkeypatch.setattr(scaffold, "execute", fake_execute)
    for name in sweep.THREAD_VARIABLES:
        monkeypatch.setenv(name, "1")  # as a Dask worker starts; restored after the test
    task = sweep.Task("denoising", 0, None, "mnist", quick=True, threads=2)
    torch_before = torch.get_num_threads()
    try:
        with threadpool_limits(limits=1):  # as a Dask worker starts
            sweep.run_task(task, str(tmp_path))
    finally:
        torch.set_num_threads(torch_before)
    assert seen == {"blas": {2}, "torch": 2, "env": {"2"}}


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_a_task_undoes_dasks_malloc_trim_threshold(tmp_path, monkeypatch):
    """Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536 (1.8x slower scoring)."""
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    assert sweep.keep_freed_memory() is False  # nothing to undo
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    assert sweep.keep_freed_memory() is True
    calls = []
    monkeypatch.setattr(sweep, "keep_freed_memory", lambda: calls.append(1))
    from mnistlab.studies import scaffold

    monkeypatch.setattr(scaffold, "execute", lambda *a, **k: None)
    for name in sweep.THREAD_VARIABLES:
        monkeypatch.setenv(name, os.environ.get(name, "2"))  # run_task sets them; restored after
    task = sweep.Task("denoising", 0, None, "mnist", quick=True, threads=1)
    import torch

    torch_before = torch.get_num_threads()
    try:
        sweep.run_task(task, str(tmp_path))
    finally:
        torch.set_num_threads(torch_before)
    assert calls == [1]


def test_a_failing_run_names_itself_and_keeps_the_finished_ones(tmp_path):
    bad = tmp_path / "not-mnist"
    bad.mkdir()
    with pytest.raises(Exception, match="seed 0"):
        sweep.run_sweep(
            "denoising",
            (0,),
            (bad,),
            out=tmp_path / "s",
            quick=True,
            workers=1,
            progress=False,
            **TINY,
        )
    assert not (tmp_path / "s" / "report.html").exists()


def test_the_cli_refuses_bad_input_in_one_line(tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    for args, needle in [
        (["sweep", "nosuch"], "unknown study"),
        (["sweep", "denoising", "--seeds", "4-1"], "backwards"),
        (["sweep", "denoising", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "--workers"),
    ]:
        done = subprocess.run(
            [sys.executable, "-m", "mnistlab", *args], capture_output=True, text=True, env=env
        )
        assert done.returncode == 2, (args, done.stderr)
        assert needle in done.stderr and len(done.stderr.strip().splitlines()) == 1
