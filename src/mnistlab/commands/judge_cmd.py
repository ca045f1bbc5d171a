"""``mnistlab judge check``: what the judge can tell apart, printed and written as a report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

judge_app = typer.Typer(help="The judge behind every metric: check what it can tell apart.")

JudgeOpt = Annotated[
    str, typer.Option("--judge", help="v2 (default: outlier exposure + copy descriptor) or v1.")
]


@judge_app.command("check")
def check(
    data_dir: Annotated[
        Path | None, typer.Option("--data", help="MNIST-format folder (default: bundled MNIST).")
    ] = None,
    judge: JudgeOpt = "v2",
    n: Annotated[
        int, typer.Option("--n", min=10, help="Images per set (non-digits: <= 1000).")
    ] = 2000,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of every set.")] = 0,
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
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Score real test digits, training digits under changes that keep them the same digit,
    fresh digits under the same changes, and kinds of non-digit; compare with the targets."""
    from mnistlab import data, judge_check, metrics, store
    from mnistlab.report import judge_report
    from mnistlab.studies import default_out_dir

    store.check_judge_version(judge)
    out_dir = Path(out) if out is not None else default_out_dir("judge-check")
    judge_report.check_writable(out_dir)
    dataset = data.load(data_dir)
    model, meta = store.load_judge(dataset, version=judge, progress=progress)
    scorer = metrics.Scorer(model, dataset, judge_id=meta["judge_id"], progress=progress)
    ae = None
    if autoencoder:
        ae, _ = store.get_trained(
            "ae", dataset, {"latent_dim": judge_check.AE_LATENT_DIM}, progress=progress
        )
    result = judge_check.check(scorer, n=n, seed=seed, autoencoder=ae)
    report = judge_report.write(result, meta, out_dir)
    if as_json:
        typer.echo(json.dumps(result.as_dict()))
        return
    typer.echo(f"judge {meta['judge_id']} on {dataset.name}, {n} images per set, seed {seed}")
    typer.echo("\n".join(judge_check.summary_lines(result)))
    verdict = "meets every target" if result.passed else "misses a target (MISS above)"
    typer.echo(f"the judge {verdict}")
    typer.echo(f"report: {report}")


def register(app: typer.Typer) -> None:
    app.add_typer(judge_app, name="judge")
