"""``mnistlab evaluate SAMPLES``: score images from any source with the judge's metrics."""

from __future__ import annotations

import json
import math
import os
import zipfile
from pathlib import Path
from typing import IO, Annotated, Any

import numpy as np
import typer

from mnistlab import data, metrics
from mnistlab.errors import DataError

NPZ_KEYS = ("images", "samples")  # tried in this order when an .npz holds several arrays
DEFAULT_MAX_IMAGES = 1_000_000

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


def max_images() -> int:
    """The most images a samples file may hold: ``MNISTLAB_MAX_IMAGES`` or 1,000,000 (3 GB as
    float32). A header that asks for more is refused before anything is allocated."""
    raw = os.environ.get("MNISTLAB_MAX_IMAGES", "")
    if not raw:
        return DEFAULT_MAX_IMAGES
    if not raw.isdigit() or int(raw) < 1:
        raise DataError(f"MNISTLAB_MAX_IMAGES must be a positive integer, got {raw!r}")
    return int(raw)


def read_samples(path: Path, limit: int | None = None) -> np.ndarray:
    """Load and check the images in a .npy / .npz file: float32 (N, 28, 28) in [0, 1].

    Never unpickles (``allow_pickle=False``). The array's header is read first and checked
    against the bytes that follow it and against ``limit`` images (default ``max_images()``), so
    a small file that claims a huge shape costs nothing. Raises ``DataError`` with one line for a
    missing or unreadable file, an .npz without a clear image array, or images that
    ``check_images`` refuses.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir():
        raise DataError(f"{path} is a folder; expected a .npy or .npz file")
    if not path.is_file():
        raise DataError(f"samples file not found: {path}")
    if suffix not in (".npy", ".npz"):
        raise DataError(f"{path}: expected a .npy or .npz file")
    limit = max_images() if limit is None else limit
    # np.load takes any file without the right magic for a pickle: check the format first.
    with path.open("rb") as f:
        head = f.read(6)
    if (suffix == ".npy" and head != b"\x93NUMPY") or (
        suffix == ".npz" and not zipfile.is_zipfile(path)
    ):
        raise DataError(f"{path}: not a {suffix} file")
    try:
        if suffix == ".npy":
            with path.open("rb") as f:
                _check_header(f, path.stat().st_size, path.name, limit)
            array = np.load(path, allow_pickle=False)
        else:
            with zipfile.ZipFile(path) as archive:
                key = _pick_key(path, [n.removesuffix(".npy") for n in archive.namelist()])
                member = key + ".npy" if key + ".npy" in archive.namelist() else key
                with archive.open(member) as f:
                    name = f"{path.name}[{key}]"
                    _check_header(f, archive.getinfo(member).file_size, name, limit)
            with np.load(path, allow_pickle=False) as archive:
                array = archive[key]
    except DataError:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DataError(f"{path}: holds pickled Python objects, not a numeric array") from None
        raise DataError(f"{path}: not a valid {suffix} file ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise DataError(f"{path}: not a valid {suffix} file ({exc})") from None
    return metrics.check_images(array, name=path.name, min_count=metrics.MIN_IMAGES)


def _check_header(f: IO[bytes], file_size: int, name: str, limit: int) -> None:
    """Read a .npy header from ``f`` and refuse, before any allocation, an array that the file
    cannot hold (a petabyte claimed by a 100-byte file), pickled objects, or more than ``limit``
    images."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise DataError(f"{name}: unsupported .npy format version {version[0]}.{version[1]}")
    if dtype.hasobject:
        raise DataError(f"{name}: holds pickled Python objects, not a numeric array")
    count = shape[0] if shape else 1
    if count > limit:
        raise DataError(
            f"{name}: {count:,} images, more than the limit of {limit:,} "
            "(MNISTLAB_MAX_IMAGES raises it)"
        )
    need = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    have = file_size - f.tell()
    if need > have:
        raise DataError(
            f"{name}: truncated: its header promises shape {shape} ({need:,} bytes of "
            f"{dtype}), the file holds {max(have, 0):,}"
        )


def _pick_key(path: Path, keys: list[str]) -> str:
    if len(keys) == 1:
        return keys[0]
    for key in NPZ_KEYS:
        if key in keys:
            return key
    found = ", ".join(keys) or "none"
    raise DataError(f"{path}: expected one array or one named 'images' or 'samples'; found {found}")
