"""``mnistlab sweep STUDY --seeds 0-4``: a study over seeds and data sets, on Dask, with spreads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mnistlab.commands import options


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep)


def _seeds(text: str) -> tuple[int, ...]:
    from mnistlab.sweep import parse_seeds

    try:
        return parse_seeds(text)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


def sweep(
    study: Annotated[str, typer.Argument(help="generation, latent, denoising or augmentation.")],
    seeds: Annotated[
        str,
        typer.Option("--seeds", metavar="SEEDS", help="Seeds, e.g. 0-4 or 0,2,7 (one run each)."),
    ] = "0-4",
    data: Annotated[
        list[Path] | None,
        typer.Option(
            "--data",
            metavar="DIR",
            help="MNIST-format folder; repeat for several data sets (default: the bundled MNIST).",
        ),
    ] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Each run in quick mode.")] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Output folder (default: runs/<timestamp>-sweep-<study>/). Runs that finished "
            "there before are reused.",
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="A Dask scheduler's address, e.g. tcp://HOST:8786 (default: a LocalCluster on "
            "this machine).",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", min=1, max=256, help="LocalCluster workers (default: one per core)."
        ),
    ] = None,
    progress: options.Progress = True,
    device: options.Device = "cpu",
) -> None:
    """Run a study once per seed (and data set) as Dask tasks, then report every number's mean,
    standard deviation and 95% interval, and how many runs gave each answer."""
    from mnistlab.report.sweep_report import headline_lines, verdict_lines
    from mnistlab.studies import STUDIES
    from mnistlab.sweep import run_sweep

    if study not in STUDIES:
        raise typer.BadParameter(f"unknown study {study!r}; known: {', '.join(STUDIES)}")
    if workers and scheduler:
        raise typer.BadParameter("--workers sizes a LocalCluster; not with --scheduler")
    done = run_sweep(
        study,
        _seeds(seeds),
        tuple(data) if data else (None,),
        out,
        quick=quick,
        scheduler=scheduler,
        workers=workers,
        device=device,
        progress=progress,
    )
    for s in done.sweeps:
        if len(done.sweeps) > 1:
            typer.echo(f"== {s.label}")
        for line in headline_lines(s) + verdict_lines(s):
            typer.echo(line)
    typer.echo(f"report: {done.report}")
    typer.echo(f"metrics: {done.report.parent / 'metrics.json'}")
