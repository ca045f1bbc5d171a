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
    Samples on a page lighter than the data set's digits (by ``metrics.HAZE``), which judge v2
    reads as less sure, or binary ones (``metrics.binary_note``), draw a warning.
    """
    import warnings
    from pathlib import Path

    from mnistlab import images
    from mnistlab.metrics import MIN_IMAGES, Scorer, sample_note

    if isinstance(samples, str | Path):
        x = images.read_images(samples, value_range=value_range, min_count=MIN_IMAGES)
    else:
        x = images.as_images(samples, value_range=value_range, min_count=MIN_IMAGES)
    scorer = Scorer.for_data(data, judge=judge, progress=progress)
    note = sample_note(x, scorer, judge)
    if note is not None:
        warnings.warn(note, stacklevel=2)
    return scorer.score(x).as_dict()


# Loaded on first use (PEP 562), so that importing mnistlab stays cheap: name -> its module.
_LAZY = {
    "Scorer": "mnistlab.metrics",
    "read_images": "mnistlab.images",
    "run_study": "mnistlab.studies",
    "register_generator": "mnistlab.studies.generation",
    "best_setting": "mnistlab.analysis.selection",
    "run_sweep": "mnistlab.sweep",
    "set_device": "mnistlab.models",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mnistlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*__all__, "__version__"})
