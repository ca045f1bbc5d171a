"""``mnistlab study ...``: run a study and write its report.

The commands are built from the registry (``mnistlab.studies.STUDIES``): every study gets the
common options and its own settings, parses them, calls ``scaffold.execute`` and prints what it
returned. A new study needs no code here.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any

import typer

from mnistlab.commands import options

study_app = typer.Typer(
    help="Run a study and write report.html, metrics.json, CSV tables and figures.",
    invoke_without_command=True,
)

DataOpt = options.Data
OutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out",
        help="Output folder (default: runs/<timestamp>-<study>/). Written whole at the end: a "
        "failed run leaves it as it was.",
    ),
]
QuickOpt = Annotated[bool, typer.Option("--quick", help="A small, fast version (about a minute).")]
SeedOpt = options.Seed
ProgressOpt = options.Progress
RetrainOpt = options.Retrain

QUICK_LINE = (
    "quick mode: under-trained models and few samples; numbers and answers can differ from a "
    "full run (run without --quick to rely on them)"
)


@study_app.callback()
def _default(
    ctx: typer.Context,
    data: DataOpt = None,
    out: OutOpt = None,
    quick: QuickOpt = False,
    seed: SeedOpt = 0,
) -> None:
    """With no study name, run the generation study (the main job); ``mnistlab study --quick``
    works as ``mnistlab study generation --quick``."""
    if ctx.invoked_subcommand is None:
        run_command("generation", data=data, out=out, quick=quick, seed=seed)
    elif quick or data is not None or out is not None or seed != 0:
        raise typer.BadParameter(
            f"put the options after the study name: mnistlab study {ctx.invoked_subcommand} ..."
        )


def parse_settings(name: str, given: dict[str, str | None]) -> dict[str, Any]:
    """The study's settings from their command-line text (None: not given); usage errors."""
    from mnistlab.studies import STUDIES

    values: dict[str, Any] = {}
    for setting in STUDIES[name].settings:
        text = given.get(setting.field)
        if text is None:
            continue
        try:
            values[setting.field] = setting.parse(text)
        except ValueError as e:
            raise typer.BadParameter(str(e), param_hint=setting.flag) from None
    return values


def run_command(
    name: str,
    *,
    data: Path | None = None,
    out: Path | None = None,
    quick: bool = False,
    seed: int = 0,
    retrain: bool = False,
    progress: bool = True,
    device: str = "auto",
    judge: str = "v2",
    **settings: str | None,
) -> None:
    """``mnistlab study NAME ...``: parse, run the study, print its summary and where it went."""
    from mnistlab.studies import config_for
    from mnistlab.studies.scaffold import execute

    options.use_device(device)
    values = parse_settings(name, settings)
    module, config = config_for(name, quick=quick, seed=seed, retrain=retrain, **values)
    outcome = execute(name, config, data, out, progress=progress, judge=judge)
    if quick:
        typer.echo(QUICK_LINE)
    for line in summary_lines(module, outcome):
        typer.echo(line)
    typer.echo(f"report: {outcome.report}")
    typer.echo(f"metrics: {outcome.folder / 'metrics.json'}")


def summary_lines(module: Any, outcome: Any) -> list[str]:
    """What the terminal shows of a finished study: its summary table, then its findings."""
    lines = list(module.summary(outcome.result)) if hasattr(module, "summary") else []
    lines += [f"{v.question} {v.finding}" for v in outcome.verdicts]
    return lines


def _common_parameters() -> list[inspect.Parameter]:
    kw = inspect.Parameter.KEYWORD_ONLY
    return [
        inspect.Parameter("data", kw, default=None, annotation=DataOpt),
        inspect.Parameter("out", kw, default=None, annotation=OutOpt),
        inspect.Parameter("quick", kw, default=False, annotation=QuickOpt),
        inspect.Parameter("seed", kw, default=0, annotation=SeedOpt),
        inspect.Parameter("retrain", kw, default=False, annotation=RetrainOpt),
        inspect.Parameter("progress", kw, default=True, annotation=ProgressOpt),
        inspect.Parameter("device", kw, default="auto", annotation=options.Device),
        inspect.Parameter("judge", kw, default="v2", annotation=options.Judge),
    ]


def _add_study_command(entry: Any) -> None:
    """Register ``mnistlab study <entry.name>`` with the common options and its settings."""

    def command(**kwargs: Any) -> None:
        run_command(entry.name, **kwargs)

    params = _common_parameters()
    for s in entry.settings:
        option = typer.Option(s.flag, help=s.help, metavar=s.metavar)
        annotation = Annotated[str | None, option]
        params.append(
            inspect.Parameter(
                s.field, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation
            )
        )
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = entry.summary
    study_app.command(name=entry.name)(command)


def _register_studies() -> None:
    from mnistlab.studies import STUDIES

    for entry in STUDIES.values():
        _add_study_command(entry)


_register_studies()


@study_app.command(name="all")
def all_studies(
    data: DataOpt = None,
    out: OutOpt = None,
    quick: QuickOpt = False,
    seed: SeedOpt = 0,
    retrain: RetrainOpt = False,
    progress: ProgressOpt = True,
    device: options.Device = "auto",
    judge: options.Judge = "v2",
) -> None:
    """Run every study into subfolders of --out and write index.html linking the reports."""
    options.use_device(device)
    from mnistlab.fileio import OutputFolder
    from mnistlab.report import write_index
    from mnistlab.studies import STUDIES, config_for
    from mnistlab.studies.scaffold import execute

    links = []
    folder = OutputFolder(out, "all")
    with folder as tmp:
        for name, entry in STUDIES.items():
            _, config = config_for(name, quick=quick, seed=seed, retrain=retrain)
            typer.echo(f"[all] {name}", err=True)
            done = execute(name, config, data, tmp / name, progress=progress, judge=judge)
            first = done.verdicts[0].answer if done.verdicts else ""
            summary = f"{done.result.seconds:.0f} s. " + (
                first.split(". ")[0] + "." if first else ""
            )
            links.append((entry.title, f"{name}/{done.report.name}", summary))
        index = folder.final(
            write_index(
                tmp,
                links,
                subtitle=f"Seed {seed}{', quick mode' if quick else ''}; "
                f"data: {data or 'bundled MNIST'}.",
            )
        )
    for _, link, _ in links:  # printed once they exist: the folder moves in whole at the end
        typer.echo(f"{link.split('/')[0]}: {index.parent / link}")
    typer.echo(f"index: {index}")


def register(app: typer.Typer) -> None:
    app.add_typer(study_app, name="study")
