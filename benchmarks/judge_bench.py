"""The judge: `mnistlab evaluate`'s work on 10,000 samples with the new judge (v2) against the old
(v1), in the same run, and the judge's outputs alone, in the channels-last copy that
``models.judge_all`` runs beside the default memory layout. The target: v2 within 1.5x of v1.
And the largest part of scoring after the judge itself: precision/recall/density/coverage of
10,000 samples' features against the 10,000 test digits', ours beside the ``prdc`` package.
And the command as a user runs it, `mnistlab evaluate FILE.npy --json` with each judge, start to
end (Python, imports, the judge, the scoring): what the target names. Each on two workloads:
training digits (exact copies, which the descriptor finds at once) and the test digits (fresh
ones, on which tangent distance does all its work)."""

from __future__ import annotations

import contextlib
import functools
import io
import subprocess
import sys
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from gen_bench import N
from timing import best, best_of_each  # benchmarks/ is on the path (run.py, or this file)

from mnistlab import data, metrics, models, store


def run() -> list[dict]:
    mnist = data.load()
    samples = mnist.x_train[np.random.default_rng(0).choice(len(mnist.x_train), N, replace=False)]
    rows, judges = [], {}
    for version in ("v1", "v2"):
        judge, meta = store.load_judge(mnist, version=version, progress=False)
        # The data set's features are cached on disk after the first Scorer; evaluate pays the
        # cached start-up and the scoring.
        metrics.Scorer(judge, mnist, judge_id=meta["judge_id"], progress=False)
        judges[version] = judge, meta
        channels_last = best(lambda judge=judge: models.judge_all(judge, samples))
        # The plain way: the judge in PyTorch's default memory layout (no channels-last copy).
        with mock.patch.object(models, "_for_inference", lambda judge: judge):
            default_layout = best(lambda judge=judge: models.judge_all(judge, samples))
        rows.append(
            {
                "what": f"judge {version} outputs, 10,000 images: channels-last copy",
                "s": channels_last,
                "default_layout_s": default_layout,
                "ratio": channels_last / default_layout,
            }
        )
    # The samples are training digits, which the descriptor finds exactly (tangent distance's
    # second step is skipped at distance 0); the test digits, fresh ones, show its cost on
    # digits that are not copies.
    for what, images in (("samples", samples), ("fresh digits (the test digits)", mnist.x_test)):
        evaluate_s = best_of_each(
            {v: functools.partial(_scored, mnist, *judges[v], images[:N]) for v in judges}
        )
        rows.append(
            {
                "what": f"evaluate 10,000 {what} (cached data features): v2 against v1",
                "v1_s": evaluate_s["v1"],
                "v2_s": evaluate_s["v2"],
                "ratio": evaluate_s["v2"] / evaluate_s["v1"],
                "target_ratio": 1.5,
            }
        )
    rows.append(_command_row(samples, "samples"))
    rows.append(_command_row(mnist.x_test[:N], "fresh digits (the test digits)"))
    rows.append(_prdc_row(mnist, samples))
    return rows


def _scored(mnist, judge, meta, images) -> None:
    """A Scorer started from the cache, as `mnistlab evaluate` starts it, and its scores."""
    scorer = metrics.Scorer(judge, mnist, judge_id=meta["judge_id"], progress=False)
    scorer.score(images)


def _command_row(samples, what: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "samples.npy"
        np.save(path, samples)
        start = {}
        for version in ("v1", "v2"):
            command = [sys.executable, "-m", "mnistlab", "evaluate", str(path), "--json"]
            command += ["--judge", version, "--no-progress"]
            start[version] = functools.partial(
                subprocess.run, command, check=True, stdout=subprocess.DEVNULL
            )
        seconds = best_of_each(start)
    return {
        "what": f"`mnistlab evaluate` 10,000 {what}, start to end: v2 against v1",
        "v1_s": seconds["v1"],
        "v2_s": seconds["v2"],
        "ratio": seconds["v2"] / seconds["v1"],
        "target_ratio": 1.5,
    }


def _prdc_row(mnist, samples) -> dict:
    import prdc as prdc_package  # a test dependency, the reference of tests/test_metrics.py

    scorer = metrics.Scorer.for_data(mnist, progress=False)
    real, fake = scorer.test_features_, models.judge_all(scorer.judge, samples)[1]  # (N, 128)
    ours = best(lambda: metrics.prdc(real, fake))

    def package() -> None:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints the sizes
            prdc_package.compute_prdc(real, fake, nearest_k=metrics.PRDC_K)

    theirs = best(package, repeat=1)
    return {
        "what": "precision/recall/density/coverage, 10,000 x 10,000 features (128-d)",
        "s": ours,
        "prdc_package_s": theirs,
        "ratio": ours / theirs,
    }


if __name__ == "__main__":
    torch.set_num_threads(2)
    for row in run():
        print(row)
