"""Option types shared by the commands, each with its range, checked when the line is parsed.

A value out of range is a usage error (exit 2, one line) before any data is read or any model
trained: a negative or 65-bit seed, a latent size that would need gigabytes, a sample count of
zero.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mnistlab.studies import LATENT_MAX as LATENT_MAX
from mnistlab.studies import NOISE_MAX as NOISE_MAX
from mnistlab.studies import SAMPLES_MAX as SAMPLES_MAX

SEED_MAX = 2**32 - 1  # numpy's legacy seeding and torch.manual_seed both take this range
EPOCHS_MAX = 1000

Seed = Annotated[
    int,
    typer.Option("--seed", min=0, max=SEED_MAX, help=f"Seed of every random step (0-{SEED_MAX})."),
]
Data = Annotated[
    Path | None, typer.Option("--data", help="MNIST-format folder (default: the bundled MNIST).")
]
Progress = Annotated[
    bool,
    typer.Option(
        "--progress/--no-progress",
        " /--quiet",
        help="Progress on stderr: bars in a terminal, one line per stage in a log file.",
    ),
]
Retrain = Annotated[bool, typer.Option("--retrain", help="Retrain cached models.")]
JUDGES = ("v1", "v2")  # store.JUDGES' names, without importing torch to parse a line


def _judge_version(value: str) -> str:
    if value not in JUDGES:
        raise typer.BadParameter(f"expected one of {', '.join(JUDGES)}, got {value!r}")
    return value


Judge = Annotated[
    str,
    typer.Option(
        "--judge",
        callback=_judge_version,
        help="v2 (default: outlier exposure + copy descriptor) or v1, the earlier judge.",
    ),
]
Device = Annotated[
    str,
    typer.Option(
        "--device",
        help="Where models run: auto (a GPU when there is one, else the CPU), cpu, cuda[:N], mps.",
    ),
]


def use_device(name: str) -> None:
    """Send every model this command loads or trains to device ``name`` (one line if absent)."""
    from mnistlab import models

    models.set_device(name)
