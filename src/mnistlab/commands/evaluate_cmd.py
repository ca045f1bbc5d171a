"""``mnistlab evaluate SAMPLES``: score images from any source with the judge's metrics."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from mnistlab import data, metrics
from mnistlab.errors import DataError

NPZ_KEYS = ("images", "samples")  # tried in this order when an .npz holds several arrays

_HELP = (
    "Score generated digits: quality, novelty, diversity, FID, precision, recall, density, "
    "coverage and near-copy rate, measured with the judge classifier against the data set. "
    "SAMPLES is a .npy file, or an .npz with one array or an array named 'images' or 'samples', "
    "of shape (N, 28, 28) or (N, 784), uint8 in [0, 255] or float in [0, 1]."
)


def register(root: typer.Typer) -> None:
    """Mount the ``evaluate`` command on the ``mnistlab`` app."""
    root.command("evaluate", help=_HELP)(evaluate)


def evaluate(
    samples: Annotated[Path, typer.Argument(help="The images: .npy or .npz.")],
    data_dir: Annotated[
        Path | None,
        typer.Option("--data", help="Folder of the four IDX files (default: the bundled MNIST)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    judge_version: Annotated[
        str, typer.Option("--judge", help="v2 (default) or v1, the judge of earlier results.")
    ] = "v2",
) -> None:
    from mnistlab import store

    store.check_judge_version(judge_version)
    images = read_samples(samples)
    dataset = data.load(data_dir)
    judge, meta = _load_judge(dataset, judge_version)
    scorer = metrics.Scorer(judge, dataset, judge_id=meta["judge_id"])
    scores = scorer.score(images).as_dict()
    if as_json:
        typer.echo(json.dumps(scores))
        return
    lines = [f"{'samples':15} {samples}", f"{'judge':15} {meta['judge_id']}"]
    lines += [f"{key:15} {_fmt(value)}" for key, value in scores.items()]
    typer.echo("\n".join(lines))


def _fmt(value: Any) -> str:
    return str(value) if isinstance(value, int) else f"{value:.4f}"


def _load_judge(dataset: data.Dataset, version: str = "v2") -> tuple[Any, dict[str, Any]]:
    """The judge for ``dataset`` and its metadata (``store.load_judge``; tests replace it)."""
    from mnistlab import store

    return store.load_judge(dataset, version=version)


def read_samples(path: Path) -> np.ndarray:
    """Load and check the images in a .npy / .npz file: float32 (N, 28, 28) in [0, 1].

    Never unpickles (``allow_pickle=False``). Raises ``DataError`` with one line for a missing or
    unreadable file, an .npz without a clear image array, or images that ``check_images`` refuses.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"samples file not found: {path}")
    if path.suffix not in (".npy", ".npz"):
        raise DataError(f"{path}: expected a .npy or .npz file")
    # np.load takes any file without the right magic for a pickle: check the format first.
    with path.open("rb") as f:
        head = f.read(6)
    if (path.suffix == ".npy" and head != b"\x93NUMPY") or (
        path.suffix == ".npz" and not zipfile.is_zipfile(path)
    ):
        raise DataError(f"{path}: not a {path.suffix} file")
    try:
        if path.suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as archive:
                array = archive[_pick_key(path, archive.files)]
    except DataError:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DataError(f"{path}: holds pickled Python objects, not a numeric array") from None
        raise DataError(f"{path}: not a valid {path.suffix} file ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a valid {path.suffix} file ({exc})") from None
    return metrics.check_images(array, name=path.name, min_count=metrics.MIN_IMAGES)


def _pick_key(path: Path, keys: list[str]) -> str:
    if len(keys) == 1:
        return keys[0]
    for key in NPZ_KEYS:
        if key in keys:
            return key
    found = ", ".join(keys) or "none"
    raise DataError(f"{path}: expected one array or one named 'images' or 'samples'; found {found}")
