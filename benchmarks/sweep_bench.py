"""``mnistlab sweep`` (issue 13): a quick sweep of 4 seeds run one after another, then on a
2-worker LocalCluster, in the same run, each on an empty model cache of its own.

The study is the denoising study in quick mode (each run trains its own denoiser, about 15 s
alone on 2 cores): the ratio measures the sweep, not the cache. On 2 cores the two workers share
them (one torch thread each against two for the run alone), so about 1x to 2x is expected.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from mnistlab import sweep

SEEDS = (0, 1, 2, 3)
STUDY = "denoising"


def _timed(workers: int | None, folder: Path) -> float:
    old = os.environ.get("MNISTLAB_CACHE")
    os.environ["MNISTLAB_CACHE"] = str(folder / "cache")
    try:
        t0 = time.perf_counter()
        if workers is None:  # one after another, in this process, all the cores for each run
            for task in sweep.plan(STUDY, SEEDS, quick=True, workers=1):
                sweep.run_task(task, str(folder / "out"))
        else:
            sweep.run_sweep(
                STUDY, SEEDS, out=folder / "out", quick=True, workers=workers, progress=False
            )
        return time.perf_counter() - t0
    finally:
        if old is None:
            os.environ.pop("MNISTLAB_CACHE", None)
        else:
            os.environ["MNISTLAB_CACHE"] = old


def run() -> list[dict]:
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        one_by_one = _timed(None, Path(a))
        on_dask = _timed(2, Path(b))
    return [
        {"what": f"quick {STUDY} sweep, {len(SEEDS)} seeds, one after another",
         "seconds": one_by_one},
        {"what": f"quick {STUDY} sweep, {len(SEEDS)} seeds, LocalCluster of 2 workers",
         "seconds": on_dask, "speed-up": one_by_one / on_dask},
    ]  # fmt: skip
