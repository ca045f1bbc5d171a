"""``mnistlab judge check``: what the judge can tell apart, printed and written as a report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from mnistlab.commands import options

judge_app = typer.Typer(help="The judge behind every metric: check what it can tell apart.")

JudgeOpt = options.Judge


@judge_app.command("check")
def check(
    data_dir: Annotated[
        Path | None, typer.Option("--data", help="MNIST-format folder (default: bundled MNIST).")
    ] = None,
    judge: JudgeOpt = "v2",
    n: Annotated[
        int,
        typer.Option(
            "--n",
            "-n",
            min=10,  # judge_check.MIN_IMAGES (imported when the command runs)
            max=options.SAMPLES_MAX,
            help="Images per set (non-digits: <= 1000).",
        ),
    ] = 2000,
    seed: options.Seed = 0,
    out: Annotated[
        Path | None, typer.Option("--out", help="Report folder (default: runs/<time>-judge-check).")
    ] = None,
    autoencoder: Annotated[
        bool,
        typer.Option(
            "--autoencoder/--no-autoencoder",
            help="Include copies reconstructed by the 16-d autoencoder (trained once, cached).",
        ),
    ] = True,
    with_sweep: Annotated[
        bool,
        typer.Option(
            "--strength-sweep/--no-strength-sweep",
            help="Also sweep five changes over rising strengths, copies against fresh digits "
            "(n/4 digits a point; about 40 s at the default n).",
        ),
    ] = True,
    held_out: Annotated[
        bool,
        typer.Option(
            "--held-out/--no-held-out",
            help="Also score copies and fresh digits under 36 changes the targets do not list "
            "and the judge was not tuned on, but for three (JPEG, grey levels, salt and pepper, "
            "other warps, an erased patch, ...): whether it recognises copies beyond the changes "
            "it was tuned to.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    progress: options.Progress = True,
    device: options.Device = "auto",
) -> None:
    """Score real test digits, training digits under changes that keep them the same digit,
    fresh digits under the same changes, and kinds of non-digit; compare with the targets."""
    from mnistlab import data, judge_check, metrics, store
    from mnistlab.fileio import OutputFolder
    from mnistlab.report import judge_report
    from mnistlab.report.writers import to_jsonable

    store.check_judge_version(judge)
    options.use_device(device)
    folder = OutputFolder(out, "judge-check")
    with folder as tmp:
        dataset = data.load(data_dir)
        model, meta = store.load_judge(dataset, version=judge, progress=progress)
        scorer = metrics.Scorer(model, dataset, judge_id=meta["judge_id"], progress=progress)
        ae = None
        if autoencoder:
            ae, _ = store.get_trained(
                "ae", dataset, {"latent_dim": judge_check.AE_LATENT_DIM}, progress=progress
            )
        result = judge_check.check(
            scorer, n=n, seed=seed, autoencoder=ae, with_sweep=with_sweep, held_out=held_out
        )
        report = folder.final(judge_report.write(result, meta, tmp))
    if as_json:  # as metrics.json holds it: strict JSON, a figure not defined is null
        typer.echo(json.dumps(to_jsonable(result.as_dict()), allow_nan=False))
        return
    typer.echo(f"judge {meta['judge_id']} on {dataset.name}, {n} images per set, seed {seed}")
    typer.echo("\n".join(judge_check.summary_lines(result)))
    verdict = "meets every target" if result.passed else "misses a target (MISS above)"
    typer.echo(f"the judge {verdict}")
    typer.echo(f"report: {report}")


def register(app: typer.Typer) -> None:
    app.add_typer(judge_app, name="judge")
