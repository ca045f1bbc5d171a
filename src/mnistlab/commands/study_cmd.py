"""``mnistlab study ...``: run a study and write its report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
        generation(data=data, out=out, quick=quick, samples=None, seed=seed, retrain=False)
    elif quick or data is not None or out is not None or seed != 0:
        raise typer.BadParameter(
            f"put the options after the study name: mnistlab study {ctx.invoked_subcommand} ..."
        )


@study_app.command()
def generation(
    data: DataOpt = None,
    out: OutOpt = None,
    quick: QuickOpt = False,
    samples: Annotated[
        int | None,
        typer.Option(
            "--samples",
            min=10,
            max=options.SAMPLES_MAX,
            help="Samples per generator and setting [default: 10,000; with --quick 1,000].",
        ),
    ] = None,
    seed: SeedOpt = 0,
    retrain: RetrainOpt = False,
    progress: ProgressOpt = True,
    device: options.Device = "auto",
) -> None:
    """Brief 000: KDE, PCA, autoencoder and VAE generators scored for quality and novelty."""
    options.use_device(device)
    from mnistlab.studies import generation as study

    overrides = {"seed": seed, "retrain": retrain, "samples": samples}
    if quick:
        config = study.GenerationConfig.for_quick(**overrides)
    else:
        config = study.GenerationConfig(**{k: v for k, v in overrides.items() if v is not None})
    result, report = run_and_write(study, config, data, out, "generation", progress)
    typer.echo(_summary_table(result))
    typer.echo(f"report: {report}")
    typer.echo(f"metrics: {report.parent / 'metrics.json'}")


def run_and_write(study, config, data, out, name: str, progress: bool) -> tuple[object, Path]:
    """Claim the output folder, run the study, write its files; (result, final report path).

    The folder is claimed before the work (a file or unwritable --out fails at once) and filled
    in a hidden folder beside it, renamed into place at the end: a failed run leaves nothing.
    """
    from mnistlab.fileio import OutputFolder

    folder = OutputFolder(out, name)
    with folder as tmp:
        result = study.run(config, data, progress=progress)
        report = study.write(result, tmp)
    if getattr(config, "quick", False):
        typer.echo(QUICK_LINE)
    return result, folder.final(report)


QUICK_LINE = (
    "quick mode: under-trained models and few samples; numbers and answers can differ from a "
    "full run (run without --quick to rely on them)"
)


def _summary_table(result) -> str:
    from mnistlab.studies.generation import best_setting

    lines = [f"{'generator':<30} {'setting':<22} {'quality':>8} {'novelty':>8} {'FID':>8}"]
    for name, s in result.calibration.items():
        lines.append(
            f"{'real: ' + name:<30} {'':<22} {s['quality']:>8.3f} {s['novelty']:>8.3f} "
            f"{_num(s['fid']):>8}"
        )
    for name in dict.fromkeys(s.generator for s in result.settings):
        b = best_setting(result, name)
        lines.append(
            f"{name:<30} {b.setting:<22} {b.scores['quality']:>8.3f} {b.scores['novelty']:>8.3f} "
            f"{b.scores['fid']:>8.2f}"
        )
    return "\n".join(lines)


def _num(value: float | None) -> str:
    """A FID for the summary table; n/a where it is not defined (the test set against itself)."""
    return "n/a" if value is None or value != value else f"{value:.2f}"


def _float_list(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise typer.BadParameter(f"expected numbers separated by commas, got {text!r}") from None


def _shot_list(text: str) -> tuple[int | None, ...]:
    out: list[int | None] = []
    for v in (v.strip() for v in text.split(",")):
        if v.lower() == "all":
            out.append(None)
        elif v.isdigit() and int(v) >= 2:
            out.append(int(v))
        elif v:
            raise typer.BadParameter(f"each N must be an integer >= 2 or 'all', got {v!r}")
    return tuple(out)


def _digit_list(text: str) -> tuple[int, ...]:
    digits = tuple(int(v) for v in text.split(",") if v.strip().isdigit())
    if not digits or len(digits) != len([v for v in text.split(",") if v.strip()]):
        raise typer.BadParameter(f"expected digits 0-9 separated by commas, got {text!r}")
    if any(d > 9 for d in digits):
        raise typer.BadParameter(f"digits must lie in 0-9, got {text!r}")
    return digits


@study_app.command()
def denoising(
    data: DataOpt = None,
    out: OutOpt = None,
    quick: QuickOpt = False,
    noise: Annotated[
        str | None, typer.Option("--noise", help="Noise factors, e.g. 0.5,0.7,0.9.")
    ] = None,
    seed: SeedOpt = 0,
    retrain: RetrainOpt = False,
    progress: ProgressOpt = True,
    device: options.Device = "auto",
) -> None:
    """Brief 003: denoising autoencoders at several noise levels, judged by BCE/PSNR/SSIM."""
    options.use_device(device)
    from mnistlab.studies import denoising as study

    factors = _float_list(noise) if noise else None
    if factors is not None and any(not 0 < f <= 5 for f in factors):
        raise typer.BadParameter("noise factors must lie in (0, 5]", param_hint="--noise")
    overrides = {"seed": seed, "retrain": retrain, "noise_factors": factors}
    if quick:
        config = study.DenoisingConfig.for_quick(**overrides)
    else:
        config = study.DenoisingConfig(**{k: v for k, v in overrides.items() if v is not None})
    result, report = run_and_write(study, config, data, out, "denoising", progress)
    for lv in result.levels:
        typer.echo(
            f"noise {lv.noise_factor:g}: denoised BCE {lv.denoised['bce']:.4f}, "
            f"PSNR {lv.denoised['psnr']:.1f} dB, SSIM {lv.denoised['ssim']:.3f}, judge accuracy "
            f"{100 * lv.noisy['judge_accuracy']:.1f}% noisy -> "
            f"{100 * lv.denoised['judge_accuracy']:.1f}% denoised"
        )
    typer.echo(f"report: {report}")
    typer.echo(f"metrics: {report.parent / 'metrics.json'}")


@study_app.command()
def augmentation(
    data: DataOpt = None,
    out: OutOpt = None,
    quick: QuickOpt = False,
    digits: Annotated[
        str | None, typer.Option("--digits", help="Target digits, e.g. 2,3,8.")
    ] = None,
    shots: Annotated[
        str | None, typer.Option("--shots", help="Training-set sizes N, e.g. 10,100,1000,all.")
    ] = None,
    seed: SeedOpt = 0,
    retrain: RetrainOpt = False,
    progress: ProgressOpt = True,
    device: options.Device = "auto",
) -> None:
    """Brief 003: few-shot autoencoders as digit generators, and whether they help a classifier."""
    options.use_device(device)
    from mnistlab.studies import augmentation as study

    overrides = {
        "seed": seed,
        "retrain": retrain,
        "digits": _digit_list(digits) if digits else None,
        "shots": _shot_list(shots) if shots else None,
    }
    if quick:
        config = study.AugmentationConfig.for_quick(**overrides)
    else:
        config = study.AugmentationConfig(**{k: v for k, v in overrides.items() if v is not None})
    result, report = run_and_write(study, config, data, out, "augmentation", progress)
    for s in result.shots:
        brk = "never" if s.breaking_scale is None else f"{s.breaking_scale:.2f} sigma"
        typer.echo(
            f"digit {s.digit}, N={study.shot_label(s.shots)}: recognised "
            f"{100 * s.gaussian.recognised:.0f}%, Vendi {s.gaussian.vendi:.1f}, novelty "
            f"{s.gaussian.novelty:.2f}, breaks at {brk}"
        )
    for r in study.classifier_summary(result):
        typer.echo(
            f"classifier N={r['shots']}: {100 * r['real_only_mean']:.1f}% real only, "
            f"{100 * r['with_synthetic_mean']:.1f}% with synthetic (gain "
            f"{100 * r['gain_mean']:+.1f} points over {r['seeds']} seeds)"
        )
    typer.echo(f"report: {report}")
    typer.echo(f"metrics: {report.parent / 'metrics.json'}")


def _int_list(text: str) -> tuple[int, ...]:
    parts = [v.strip() for v in text.split(",") if v.strip()]
    if not parts or not all(v.isdigit() and 1 <= int(v) <= 256 for v in parts):
        raise typer.BadParameter(f"expected integers 1-256 separated by commas, got {text!r}")
    return tuple(int(v) for v in parts)


@study_app.command()
def latent(
    data: DataOpt = None,
    out: OutOpt = None,
    quick: QuickOpt = False,
    latent_dims: Annotated[
        str | None,
        typer.Option("--latent-dims", help="Latent dimensions, e.g. 2,7,16,32 (quick: 2,16)."),
    ] = None,
    seed: SeedOpt = 0,
    retrain: RetrainOpt = False,
    progress: ProgressOpt = True,
    device: options.Device = "auto",
) -> None:
    """Briefs 001, 002, 004: reconstruction, projections, clusters and probes of the latents."""
    options.use_device(device)
    from mnistlab.studies import latent as study

    dims = _int_list(latent_dims) if latent_dims else None
    overrides = {"seed": seed, "retrain": retrain, "latent_dims": dims}
    if quick:
        config = study.LatentConfig.for_quick(**overrides)
    else:
        config = study.LatentConfig(**{k: v for k, v in overrides.items() if v is not None})
    result, report = run_and_write(study, config, data, out, "latent", progress)
    typer.echo(
        f"{'space':<10} {'MSE':>8} {'SSIM':>6} {'probe LR':>9} {'SVM':>6} {'k-means ARI':>12} "
        f"{'cond. acc':>9}"
    )
    for s in result.spaces:
        typer.echo(
            f"{s.key:<10} {s.recon['mse']:>8.4f} {s.recon['ssim']:>6.3f} "
            f"{s.probes['logreg'].accuracy:>9.4f} {s.probes['linear_svm'].accuracy:>6.4f} "
            f"{s.clusters['k-means'].ari:>12.3f} {s.conditional['accuracy']:>9.3f}"
        )
    for name, p in result.baselines.items():
        typer.echo(f"{name}: accuracy {p.accuracy:.4f}")
    typer.echo(f"{result.seconds:.0f} s")
    typer.echo(f"report: {report}")
    typer.echo(f"metrics: {report.parent / 'metrics.json'}")


# (title, module under mnistlab.studies, config class) of each study that `study all` runs.
def _all_studies():
    from mnistlab.studies import STUDIES

    return [(title, name, config) for name, (title, config) in STUDIES.items()]


@study_app.command(name="all")
def all_studies(
    data: DataOpt = None,
    out: OutOpt = None,
    quick: QuickOpt = False,
    seed: SeedOpt = 0,
    retrain: RetrainOpt = False,
    progress: ProgressOpt = True,
    device: options.Device = "auto",
) -> None:
    """Run the four studies into subfolders of --out and write index.html linking the reports."""
    options.use_device(device)
    import dataclasses
    import importlib

    from mnistlab.fileio import OutputFolder
    from mnistlab.report import write_index

    links = []
    folder = OutputFolder(out, "all")
    with folder as tmp:
        for title, name, config_name in _all_studies():
            study = importlib.import_module(f"mnistlab.studies.{name}")  # lazily: heavy imports
            config_cls = getattr(study, config_name)
            fields = {f.name for f in dataclasses.fields(config_cls)}
            overrides = {k: v for k, v in {"seed": seed, "retrain": retrain}.items() if k in fields}
            config = config_cls.for_quick(**overrides) if quick else config_cls(**overrides)
            typer.echo(f"[all] {name}", err=True)
            result = study.run(config, data, progress=progress)
            report = study.write(result, tmp / name)
            verdicts = getattr(result, "verdicts", None) or getattr(result, "verdict", None) or {}
            first = next(iter(verdicts.values()), "")
            summary = f"{result.seconds:.0f} s. " + (first.split(". ")[0] + "." if first else "")
            links.append((title, f"{name}/{Path(report).name}", summary))
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
