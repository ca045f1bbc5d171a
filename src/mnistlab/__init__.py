"""mnistlab: generate handwritten digits with density models; measure how good and how new.

In a notebook, the library in one hand::

    import mnistlab
    mnistlab.evaluate(samples)            # any array or tensor of digits -> dict of metrics
    scorer = mnistlab.Scorer.for_data()   # the bundled MNIST and its shipped judge
    scorer.score(samples)                 # Scores, with per-image arrays
    mnistlab.set_device("cuda")           # models loaded or trained from now on run there
    mnistlab.run_study("generation", quick=True)   # a study, as `mnistlab study` runs it
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = [
    "Scorer",
    "best_setting",
    "evaluate",
    "read_images",
    "register_generator",
    "run_study",
    "run_sweep",
    "set_device",
]

if TYPE_CHECKING:
    from pathlib import Path

    from mnistlab.data import Dataset
    from mnistlab.metrics import Scorer


def evaluate(
    samples: Any,
    data: Dataset | str | Path | None = None,
    *,
    judge: str = "v2",
    value_range: str = "0,1",
    progress: bool = False,
) -> dict[str, Any]:
    """Score digits from any source: quality, novelty, diversity, FID, precision, recall,
    density, coverage and near-copy rate, as ``mnistlab evaluate --json`` prints them.

    samples : array-like or tensor of (N, 28, 28), (N, 784), (N, 1, 28, 28) or (N, 28, 28, 1),
        integers in [0, 255] or floats in [0, 1] (``value_range="-1,1"`` for tanh outputs), or the
        path of a .npy / .npz / .safetensors file or a folder of PNGs.
    data : the reference data set (default: the bundled MNIST); judge : "v2" or "v1".
    """
    from pathlib import Path

    from mnistlab import images
    from mnistlab.metrics import MIN_IMAGES, Scorer

    if isinstance(samples, str | Path):
        x = images.read_images(samples, value_range=value_range, min_count=MIN_IMAGES)
    else:
        x = images.as_images(samples, value_range=value_range, min_count=MIN_IMAGES)
    scorer = Scorer.for_data(data, judge=judge, progress=progress)
    return scorer.score(x).as_dict()


def __getattr__(name: str) -> Any:
    # Lazily: importing mnistlab stays cheap; torch and friends load on first use.
    if name == "Scorer":
        from mnistlab.metrics import Scorer

        return Scorer
    if name == "read_images":
        from mnistlab.images import read_images

        return read_images
    if name == "run_study":
        from mnistlab.studies import run_study

        return run_study
    if name == "register_generator":
        from mnistlab.studies.generation import register_generator

        return register_generator
    if name == "best_setting":
        from mnistlab.analysis.selection import best_setting

        return best_setting
    if name == "run_sweep":
        from mnistlab.sweep import run_sweep

        return run_sweep
    if name == "set_device":
        from mnistlab.models import set_device

        return set_device
    raise AttributeError(f"module 'mnistlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*__all__, "__version__"})
