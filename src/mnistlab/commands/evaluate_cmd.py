"""``mnistlab evaluate SAMPLES``: score images from any source with the judge's metrics."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from mnistlab import data, images, spread
from mnistlab.commands import options

_HELP = (
    "Score generated digits: quality, novelty, diversity, FID, precision, recall, density, "
    "coverage and near-copy rate, measured with the judge classifier against the data set. "
    "SAMPLES is a .npy file, an .npz or .safetensors file with one array or an array named "
    "'images' or 'samples', or a folder of 28x28 PNG/JPEG files (colour is turned grey). Arrays "
    "may be (N, 28, 28), (N, 784), (N, 1, 28, 28) or (N, 28, 28, 1), integers in [0, 255] or "
    "float in [0, 1] (in [-1, 1] with --range -1,1)."
)


def register(root: typer.Typer) -> None:
    """Mount the ``evaluate`` command on the ``mnistlab`` app."""
    root.command("evaluate", help=_HELP)(evaluate)


def evaluate(
    samples: Annotated[
        Path, typer.Argument(help="The images: .npy, .npz, .safetensors or a folder of PNGs.")
    ],
    data_dir: Annotated[
        Path | None,
        typer.Option("--data", help="Folder of the four IDX files (default: the bundled MNIST)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    judge_version: options.Judge = "v2",
    value_range: Annotated[
        str,
        typer.Option(
            "--range",
            help="Range of float pixel values: 0,1 or -1,1 (as tanh gives); never guessed.",
        ),
    ] = "0,1",
    device: options.Device = "auto",
    progress: options.Progress = True,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Also write a report folder: the samples, each beside its nearest training "
            "digit, quality against novelty, the numbers beside real digits.",
        ),
    ] = None,
) -> None:
    from mnistlab import metrics, store  # here: they import torch, which --help needs not
    from mnistlab.fileio import OutputFolder

    options.use_device(device)
    store.check_judge_version(judge_version)
    if value_range not in images.RANGES:
        raise typer.BadParameter(
            f"expected one of {', '.join(images.RANGES)}", param_hint="--range"
        )
    x = read_samples(samples, value_range)
    folder = OutputFolder(report, "evaluate") if report is not None else None
    with folder or contextlib.nullcontext() as tmp:  # claimed before the work, filled after it
        dataset = data.load(data_dir)
        judge, meta = _load_judge(dataset, judge_version)
        scorer = metrics.Scorer(judge, dataset, judge_id=meta["judge_id"], progress=progress)
        result = scorer.score(x)
        scores = result.as_dict()
        note = metrics.sample_note(x, scorer, judge_version)
        if folder is not None:
            from mnistlab.report import samples_report

            page = samples_report.write(result, x, scorer, tmp, source=str(samples), note=note)
            page = folder.final(page)
    if note is not None:
        typer.echo(f"note: {note}", err=True)
    if as_json:
        typer.echo(json.dumps(scores))
        return
    lines = [f"{'samples':15} {samples}", f"{'judge':15} {meta['judge_id']}"]
    ci = scores.pop("ci", {})
    lines += [
        f"{key:15} {_fmt(value)}"
        + (f"  95% interval {ci[key][0]:.4f} - {ci[key][1]:.4f}" if key in ci else "")
        for key, value in scores.items()
    ]
    if ci:
        lines.append(
            f"(bootstrap intervals: {spread.BOOTSTRAP} resamples, FID {spread.FID_BOOTSTRAP})"
        )
    if folder is not None:
        lines.append(f"{'report':15} {page}")
    typer.echo("\n".join(lines))


def _fmt(value: Any) -> str:
    return str(value) if isinstance(value, int) else f"{value:.4f}"


def _load_judge(dataset: data.Dataset, version: str = "v2") -> tuple[Any, dict[str, Any]]:
    """The judge for ``dataset`` and its metadata (``store.load_judge``; tests replace it)."""
    from mnistlab import store

    return store.load_judge(dataset, version=version)


def read_samples(path: Path, value_range: str = "0,1") -> np.ndarray:
    """The images of ``path`` for scoring (``images.read_images``, at least ``MIN_IMAGES``)."""
    from mnistlab.metrics import MIN_IMAGES

    return images.read_images(path, value_range=value_range, min_count=MIN_IMAGES)
