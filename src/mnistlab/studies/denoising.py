"""The denoising study (brief 003, tasks 1 to 3).

Train one denoising autoencoder per noise factor (the noise model is ``data.add_noise``:
``clip(x + f * N(0, 1), 0, 1)``), then measure on the test set, for every level, how far the noisy
and the denoised images are from the clean ones (BCE, MSE, PSNR, SSIM) and whether the judge can
still read them. A cross-level table evaluates the model trained at level a on noise of level b.

The study's shape is ``scaffold``'s: ``run(config, context)`` returns a ``DenoisingResult``
(numbers only), ``verdicts`` answers the brief's questions, ``numbers``/``tables`` are
metrics.json and the CSV files, and ``report`` lays out report.html.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from mnistlab import data as mdata
from mnistlab import metrics, models, spread, store
from mnistlab.images import as_images
from mnistlab.progress import bar as progress_bar
from mnistlab.report import Report
from mnistlab.studies import scaffold
from mnistlab.studies.scaffold import Context, Verdict, model_history, model_summary
from mnistlab.training import default_train_config

# report.html and the CSV tables beside it, declared below with @PAGE
PAGE = scaffold.Page("mnistlab: denoising digits with an autoencoder")
report, tables = PAGE.render, PAGE.tables

# Brief 003's reported per-pixel BCE of its denoised test images, the figures to beat.
BRIEF_BCE = {0.5: 0.10, 0.9: 0.15}
RECON_KEYS = ("bce", "mse", "psnr", "ssim")


@dataclass(frozen=True)
class DenoisingConfig(scaffold.Quick):
    """Settings of the denoising study; saved beside every output."""

    quick: bool = False
    noise_factors: tuple[float, ...] = (0.5, 0.7, 0.9)  # brief 003's three levels
    seed: int = 0
    # A wide bottleneck: brief 003's model keeps a 7x7x16 = 784-d code. A 16-d code cannot hold
    # the strokes' detail and stalls near BCE 0.12 at noise 0.5; 128 dimensions clear 0.10.
    latent_dim: int = 128
    epochs: int = 8
    n_train: int | None = None  # training images (None: all)
    n_test: int | None = None  # test images evaluated (None: all)
    retrain: bool = False

    def __post_init__(self) -> None:
        factors = tuple(sorted(dict.fromkeys(float(f) for f in self.noise_factors)))
        if not factors or any(not 0 < f <= 5 for f in factors):
            raise ValueError("noise factors must lie in (0, 5]")
        object.__setattr__(self, "noise_factors", factors)

    @property
    def eval_levels(self) -> tuple[float, ...]:
        """Levels of the cross-level table's columns: clean images, then every trained level."""
        return (0.0, *self.noise_factors)

    # The --quick preset: small enough for the tests (at most 90 s on 2 cores).
    QUICK: ClassVar[dict[str, Any]] = {"epochs": 4, "n_train": 8_000, "n_test": 1_000}


@dataclass
class LevelResult:
    """One noise factor: its model, and the test figures of the noisy and denoised images."""

    noise_factor: float
    model: dict[str, Any]  # the saved model's summary: config, test figures, cache path
    history: list[dict[str, float]]  # one row per epoch, as training.fit logs it
    noisy: dict[str, float]  # bce, mse, psnr, ssim of the noisy images, judge_accuracy
    denoised: dict[str, float]  # the same for the denoised images
    # Test images the judge reads right only when noisy, and only when denoised: the discordant
    # pairs of McNemar's test (the same images, seen twice)
    judge_flips: dict[str, int] = field(default_factory=dict)


@dataclass
class DenoisingResult:
    config: DenoisingConfig
    data_source: str
    data_checksum: str
    judge: dict[str, Any]
    n_test: int
    clean_accuracy: float  # the judge's accuracy on the clean test images
    levels: list[LevelResult]
    cross: list[dict[str, float]]  # trained_at, evaluated_at, bce, mse, psnr, ssim, judge_accuracy
    grid_clean: np.ndarray  # (10, 28, 28) float32: one test digit of each class, 0 to 9
    grid_noisy: dict[float, np.ndarray]  # level -> (10, 28, 28)
    grid_denoised: dict[float, np.ndarray]  # level -> (10, 28, 28), by the model of that level
    # The other judge's accuracy on the same images: {"version", "judge_id", "rows": [{"images",
    # "accuracy"}]}, rows "clean", "noisy 0.5", "denoised 0.5", ...; None where not compared.
    judge_comparison: dict[str, Any] | None = None
    seconds: float = 0.0


def noise_seed(seed: int, factor: float) -> np.random.Generator:
    """The generator of the test noise at one level: same seed and level, same noise."""
    return np.random.default_rng([int(seed), int(round(1000 * factor))])


def noisy_test_images(images: np.ndarray, factor: float, seed: int) -> np.ndarray:
    """images (N, 28, 28) uint8 -> float32 (N, 28, 28) in [0, 1], seeded by (seed, factor)."""
    if factor == 0:
        return as_images(images)
    return mdata.add_noise(images, factor, random_state=noise_seed(seed, factor))


def denoise(model: Any, images: np.ndarray) -> np.ndarray:
    """The autoencoder's output for images (N, 28, 28) in [0, 1] -> float32 (N, 28, 28)."""
    return models.decode(model, models.encode(model, images))


def one_of_each_digit(labels: np.ndarray) -> np.ndarray:
    """Index of the first image of each class 0..9 in labels (N,) -> (10,) (classes present)."""
    return np.array([int(np.flatnonzero(labels == d)[0]) for d in range(10) if (labels == d).any()])


# ---------------------------------------------------------------------------------------------
# The computation: train, then evaluate every model at every level.


def run(config: DenoisingConfig, context: Context) -> DenoisingResult:
    """Train (or load) the denoisers, evaluate them at every level; writes only the model cache."""
    data = context.data
    data_fit = (
        data.subset(config.n_train, config.n_test) if config.n_train or config.n_test else data
    )
    judge = context.judge
    x, y = data_fit.x_test, data_fit.y_test  # (N, 28, 28) uint8, (N,)
    clean = as_images(x)  # (N, 28, 28) float32
    noisy = {b: noisy_test_images(x, b, config.seed) for b in config.eval_levels}
    show = one_of_each_digit(y)
    trained = train_denoisers(config, data_fit, context)
    context.log("evaluating every model at every level")
    cross, levels, grid_denoised = evaluate(trained, clean, noisy, y, judge, show, context)
    other = context.other_judge  # judge v1 beside v2, on the bundled MNIST only
    return DenoisingResult(
        config=config,
        data_source=data.source,
        data_checksum=data_fit.checksum,
        judge=context.judge_meta,
        n_test=len(x),
        clean_accuracy=metrics.judge_accuracy(judge, clean, y),
        levels=levels,
        cross=cross,
        grid_clean=clean[show],
        grid_noisy={a: noisy[a][show] for a in config.noise_factors},
        grid_denoised=grid_denoised,
        judge_comparison=(
            None if other is None else judge_comparison(other, trained, clean, noisy, y)
        ),
    )


def judge_comparison(
    other: tuple[Any, dict[str, Any]],
    trained: dict[float, tuple[Any, dict[str, Any]]],
    clean: np.ndarray,
    noisy: dict[float, np.ndarray],
    y: np.ndarray,
) -> dict[str, Any]:
    """The other judge's accuracy on the clean test images and, at every level, on the noisy
    and the denoised ones (the same images as this run's judge reads)."""
    model, meta = other
    rows = [{"images": "clean", "accuracy": metrics.judge_accuracy(model, clean, y)}]
    for a, (denoiser, _) in trained.items():
        for name, images in (("noisy", noisy[a]), ("denoised", denoise(denoiser, noisy[a]))):
            accuracy = metrics.judge_accuracy(model, images, y)
            rows.append({"images": f"{name} {a:g}", "accuracy": accuracy})
    return {"version": meta["judge_version"], "judge_id": meta["judge_id"], "rows": rows}


def train_denoisers(
    config: DenoisingConfig, data: mdata.Dataset, context: Context
) -> dict[float, tuple[Any, dict[str, Any]]]:
    """noise factor -> (the autoencoder trained at it, its metadata); cached by ``store``."""
    trained = {}
    for a in config.noise_factors:
        context.log(f"denoiser at noise {a}: training or loading from the cache")
        train_config = default_train_config(
            "ae", epochs=config.epochs, noise_factor=a, seed=config.seed
        )
        trained[a] = store.get_trained(
            "ae",
            data,
            {"latent_dim": config.latent_dim},
            train_config,
            retrain=config.retrain,
            progress=context.progress,
        )
    return trained


def _figures(
    judge: Any, clean: np.ndarray, images: np.ndarray, y: np.ndarray
) -> tuple[dict[str, float], np.ndarray]:
    """(bce, mse, psnr, ssim of images (N, 28, 28) against clean ones and the judge's accuracy;
    which images (N,) the judge reads right)."""
    right = metrics.judge_correct(judge, images, y)
    return {**metrics.reconstruction(clean, images), "judge_accuracy": float(right.mean())}, right


def evaluate(
    trained: dict[float, tuple[Any, dict[str, Any]]],
    clean: np.ndarray,
    noisy: dict[float, np.ndarray],
    y: np.ndarray,
    judge: Any,
    show: np.ndarray,
    context: Context,
) -> tuple[list[dict[str, float]], list[LevelResult], dict[float, np.ndarray]]:
    """Every model (trained at a) on every level's noisy images (b): the cross-level rows, one
    ``LevelResult`` per a == b, and the denoised ``show`` images of each level's own model."""
    cross, levels, grid_denoised = [], [], {}
    bar = progress_bar(
        total=len(trained) * len(noisy), desc="cross-level", enabled=context.progress
    )
    for a, (model, meta) in trained.items():
        for b, xb in noisy.items():
            out = denoise(model, xb)  # (N, 28, 28)
            figures, right = _figures(judge, clean, out, y)
            cross.append({"trained_at": a, "evaluated_at": b, **figures})
            if a == b:
                grid_denoised[a] = out[show]
                noisy_figures, noisy_right = _figures(judge, clean, xb, y)
                levels.append(
                    LevelResult(
                        noise_factor=a,
                        model=model_summary(meta),
                        history=model_history(meta),
                        noisy=noisy_figures,
                        denoised={k: figures[k] for k in (*RECON_KEYS, "judge_accuracy")},
                        judge_flips={
                            "noisy_only": int((noisy_right & ~right).sum()),
                            "denoised_only": int((right & ~noisy_right).sum()),
                        },
                    )
                )
            bar.update()
    bar.close()
    return cross, levels, grid_denoised


# ---------------------------------------------------------------------------------------------
# Verdicts: one function per question, each from the numbers alone.


def brief_rows(result: DenoisingResult) -> list[dict[str, Any]]:
    """Brief 003's BCE beside ours at the levels where the brief gives one."""
    rows = []
    for lv in result.levels:
        brief = BRIEF_BCE.get(round(lv.noise_factor, 3))
        if brief is None:
            continue
        ours = lv.denoised["bce"]
        rows.append(
            {
                "noise_factor": lv.noise_factor,
                "brief_003_bce": brief,
                "mnistlab_bce": ours,
                "at_least_as_good": bool(ours <= brief),
            }
        )
    return rows


def brief_verdict(result: DenoisingResult) -> Verdict | None:
    """Do we do at least as well as brief 003? None where the brief gives no figure."""
    rows = brief_rows(result)
    if not rows:
        return None
    beats = all(r["at_least_as_good"] for r in rows)
    txt = "; ".join(
        f"at noise {r['noise_factor']:g} our denoised test BCE is {r['mnistlab_bce']:.4f} "
        f"against the brief's {r['brief_003_bce']:.2f}"
        for r in rows
    )
    quick = (
        " (Quick mode: small models trained briefly on a subset; not the real figure.)"
        if result.config.quick
        else ""
    )
    return Verdict(
        "Do we do at least as well as brief 003?",
        "yes" if beats else "no",
        f"{'Yes' if beats else 'No'}: {txt} (per-pixel binary cross-entropy between the "
        f"denoised output and the clean image, averaged over {result.n_test:,} test images)."
        + quick,
    )


def recovery(clean: float, noisy: float, denoised: float, flips: dict[str, int]) -> tuple[str, str]:
    """(finding, sentence): the share of the accuracy lost to noise that denoising wins back.

    flips: how many test images the judge reads right only noisy, and only denoised. The two
    accuracies are measured on the same images, so whether their difference is larger than its
    spread is McNemar's exact test on those pairs (two-sided, 5%): "too close to tell" otherwise.
    Without them (a result from before they were kept) the point values decide alone.
    """
    lost = clean - noisy
    if lost <= 0:
        return "noise costs nothing", "The noise costs the judge nothing here."
    share = (denoised - noisy) / lost
    tested = ""
    if flips:
        only_noisy, only_denoised = flips["noisy_only"], flips["denoised_only"]
        p = spread.mcnemar(only_noisy, only_denoised)
        tested = (
            f" ({only_denoised:,} test digits read right only once denoised, {only_noisy:,} only "
            f"while noisy: McNemar's p = {p:.2g})"
        )
        if p >= 1 - spread.LEVEL:
            return "too close to tell", (
                f"Denoising changes the judge's accuracy by {100 * (denoised - noisy):+.1f} "
                f"points, within its spread{tested}."
            )
    if share <= 0:
        return "denoising does not help", f"Denoising does not help the judge here{tested}."
    return (
        "denoising helps",
        f"Denoising wins back {100 * share:.0f}% of the accuracy the noise took{tested}.",
    )


def readable_verdict(result: DenoisingResult) -> Verdict:
    """Can the judge still read the digits at the highest noise level, noisy and denoised?"""
    lv = max(result.levels, key=lambda lv: lv.noise_factor)
    top, noisy, denoised = (
        lv.noise_factor,
        lv.noisy["judge_accuracy"],
        lv.denoised["judge_accuracy"],
    )
    finding, sentence = recovery(result.clean_accuracy, noisy, denoised, lv.judge_flips)
    return Verdict(
        f"Can you still read it at noise {top:g}?",
        finding,
        f"The judge reads {100 * result.clean_accuracy:.1f}% of the clean test digits, "
        f"{100 * noisy:.1f}% of the noisy ones at noise {top:g} and "
        f"{100 * denoised:.1f}% of the denoised ones. " + sentence,
    )


def level_verdict(result: DenoisingResult) -> Verdict:
    """How does the noise level matter: do the denoised images get steadily worse?"""
    lines = [
        f"noise {lv.noise_factor:g}: PSNR {lv.noisy['psnr']:.1f} -> {lv.denoised['psnr']:.1f} "
        f"dB, SSIM {lv.noisy['ssim']:.2f} -> {lv.denoised['ssim']:.2f}"
        for lv in result.levels
    ]
    levels = sorted(result.levels, key=lambda lv: lv.noise_factor)
    first, last = levels[0], levels[-1]
    bces = [lv.denoised["bce"] for lv in levels]
    if len(levels) < 2:
        finding, lead = "one level", f"One level only, noise {first.noise_factor:g}: "
    elif all(a < b for a, b in zip(bces, bces[1:], strict=False)):
        finding, lead = "steadily worse", "The more noise, the worse the denoised images: "
    else:
        finding = "not steadily worse"
        lead = "The denoised images do not get steadily worse with more noise: "
    return Verdict(
        "How does the noise level matter?",
        finding,
        lead
        + "; ".join(lines)
        + f". The denoised BCE goes from {first.denoised['bce']:.4f} at noise "
        f"{first.noise_factor:g} to {last.denoised['bce']:.4f} at {last.noise_factor:g}.",
    )


def cross_verdict(result: DenoisingResult) -> Verdict:
    """Does a denoiser trained at one level work at another? The best model at every level."""
    factors = result.config.noise_factors
    cross = {(r["trained_at"], r["evaluated_at"]): r for r in result.cross}
    best = {b: min(factors, key=lambda a, b=b: cross[(a, b)]["bce"]) for b in factors}
    parts = [f"at noise {b:g} the best model is the one trained at {a:g}" for b, a in best.items()]
    hi, lo = max(factors), min(factors)
    if hi != lo:
        parts.append(
            f"the model trained at {hi:g} scores BCE {cross[(hi, lo)]['bce']:.4f} at {lo:g} "
            f"(the {lo:g} model: {cross[(lo, lo)]['bce']:.4f}); the model trained at {lo:g} "
            f"scores {cross[(lo, hi)]['bce']:.4f} at {hi:g} (the {hi:g} model: "
            f"{cross[(hi, hi)]['bce']:.4f})"
        )
    own = all(a == b for b, a in best.items())
    return Verdict(
        "Does a denoiser trained at one level work at another?",
        "each level's own model is best" if own else "another level's model is best somewhere",
        "; ".join(parts) + ".",
    )


def verdicts(result: DenoisingResult) -> list[Verdict]:
    """Short answers to brief 003's questions, in the report's order."""
    found = [brief_verdict(result), readable_verdict(result), level_verdict(result)]
    return [v for v in found if v is not None] + [cross_verdict(result)]


# ---------------------------------------------------------------------------------------------
# metrics.json, the CSV tables and the page.


@PAGE.csv("levels")
def level_rows(result: DenoisingResult) -> list[dict[str, Any]]:
    """One row per noise factor: the noisy and denoised figures side by side."""
    rows = []
    for lv in result.levels:
        row: dict[str, Any] = {"noise_factor": lv.noise_factor}
        for k in (*RECON_KEYS, "judge_accuracy"):
            row[f"noisy_{k}"] = lv.noisy[k]
            row[f"denoised_{k}"] = lv.denoised[k]
        row["clean_judge_accuracy"] = result.clean_accuracy
        rows.append(row)
    return rows


def cross_pivot(result: DenoisingResult, key: str) -> list[dict[str, Any]]:
    """The cross-level table for one metric: a row per training level, a column per test level."""
    rows = []
    for a in result.config.noise_factors:
        row: dict[str, Any] = {"trained at": a}
        for r in result.cross:
            if r["trained_at"] == a:
                name = "clean" if r["evaluated_at"] == 0 else f"noise {r['evaluated_at']:g}"
                row[name] = r[key]
        rows.append(row)
    return rows


@PAGE.csv("judges")
def judge_rows(result: DenoisingResult) -> list[dict[str, Any]]:
    """What each judge reads right of the same images: clean, then noisy and denoised per level."""
    comparison = result.judge_comparison
    if comparison is None:
        return []
    this, other = result.judge.get("judge_version", "this"), comparison["version"]
    mine = {"clean": result.clean_accuracy}
    for lv in result.levels:
        mine[f"noisy {lv.noise_factor:g}"] = lv.noisy["judge_accuracy"]
        mine[f"denoised {lv.noise_factor:g}"] = lv.denoised["judge_accuracy"]
    return [
        {
            "images": r["images"],
            f"judge {other} accuracy": r["accuracy"],
            f"judge {this} accuracy": mine.get(r["images"]),
        }
        for r in comparison["rows"]
    ]


@PAGE.csv("cross_level")
def cross_rows(result: DenoisingResult) -> list[dict[str, Any]]:
    return result.cross


@PAGE.csv("history")
def history_rows(result: DenoisingResult) -> list[dict[str, Any]]:
    return [{"noise_factor": lv.noise_factor, **h} for lv in result.levels for h in lv.history]


def numbers(result: DenoisingResult) -> dict[str, Any]:
    """The study's own part of metrics.json: every number of the report."""
    return {
        "n_test": result.n_test,
        "clean_judge_accuracy": result.clean_accuracy,
        "levels": [
            {
                "noise_factor": lv.noise_factor,
                "noisy": lv.noisy,
                "denoised": lv.denoised,
                "judge_flips": lv.judge_flips,
                "model": lv.model,
                "history": lv.history,
            }
            for lv in result.levels
        ],
        "brief_003": brief_rows(result),
        "cross_level": result.cross,
        "judge_comparison": result.judge_comparison,
    }


def headline(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The headline rows of one run's metrics.json ``results`` (for ``mnistlab sweep``)."""
    return [
        {
            "noise factor": f"{lv['noise_factor']:g}",
            "denoised BCE": lv["denoised"]["bce"],
            "denoised PSNR": lv["denoised"]["psnr"],
            "denoised SSIM": lv["denoised"]["ssim"],
            "judge reads noisy": lv["noisy"]["judge_accuracy"],
            "judge reads denoised": lv["denoised"]["judge_accuracy"],
        }
        for lv in results["levels"]
    ]


def summary(result: DenoisingResult) -> list[str]:
    """The terminal's lines: each level's denoised figures and what the judge reads."""
    return [
        f"noise {lv.noise_factor:g}: denoised BCE {lv.denoised['bce']:.4f}, "
        f"PSNR {lv.denoised['psnr']:.1f} dB, SSIM {lv.denoised['ssim']:.3f}, judge accuracy "
        f"{100 * lv.noisy['judge_accuracy']:.1f}% noisy -> "
        f"{100 * lv.denoised['judge_accuracy']:.1f}% denoised"
        for lv in result.levels
    ]


@PAGE.section("The set-up")
def _setup_section(rep: Report, result: DenoisingResult) -> None:
    rep.text(
        "**Noise model**: x_noisy = clip(x + f * N(0, 1), 0, 1) per pixel, with f the noise "
        "factor, as in brief 003. The test noise is seeded by (seed, f): the same run gives the "
        "same noisy images. **Model**: the registry's convolutional autoencoder (`ae`, latent "
        f"dimension {result.config.latent_dim}), one per noise factor, trained for at most "
        f"{result.config.epochs} epochs to map noisy digits to clean ones with a per-pixel binary "
        "cross-entropy loss. **Metrics** compare each image with its clean original: BCE (per "
        "pixel, the brief's loss), MSE, PSNR in dB and SSIM. The BCE of a noisy image is large "
        "because clipped pixels at exactly 0 or 1 meet a log clamped at -100. **Judge accuracy** "
        "is the share of test digits that the judge classifier labels correctly: can you still "
        "read it?"
    )
    rep.section("The figures the brief asked for, beside ours")
    rep.table(brief_rows(result), float_format="{:.4f}")


@PAGE.section("Every noise level")
def _levels_section(rep: Report, result: DenoisingResult) -> None:
    from mnistlab.report import figures

    rep.table(
        level_rows(result),
        caption=(
            f"Test figures of the noisy and the denoised images; the judge reads "
            f"{100 * result.clean_accuracy:.2f}% of the clean test digits."
        ),
        float_format="{:.4f}",
    )
    levels = [lv.noise_factor for lv in result.levels]
    rep.plotly(
        figures.line_plot(
            {
                "clean": (levels, [result.clean_accuracy] * len(levels)),
                "noisy": (levels, [lv.noisy["judge_accuracy"] for lv in result.levels]),
                "denoised": (levels, [lv.denoised["judge_accuracy"] for lv in result.levels]),
            },
            title="Can the judge still read it?",
            xlabel="noise factor",
            ylabel="judge accuracy",
        ),
        caption="The judge's test accuracy on clean, noisy and denoised digits.",
    )


@PAGE.section("The ten digits, clean, noisy and denoised")
def _grid_section(rep: Report, result: DenoisingResult) -> None:
    from mnistlab.report import figures

    grid, labels = [result.grid_clean], ["clean"]
    for a in result.config.noise_factors:
        grid += [result.grid_noisy[a], result.grid_denoised[a]]
        labels += [f"noisy {a:g}", f"denoised {a:g}"]
    rep.figure(
        figures.sample_grid(np.concatenate(grid), ncols=len(result.grid_clean), row_labels=labels),
        caption="One test digit of each class; each level's denoiser cleans its own noise.",
        alt="grid of clean, noisy and denoised digits",
    )


@PAGE.section("Loss curves")
def _loss_section(rep: Report, result: DenoisingResult) -> None:
    from mnistlab.report import figures

    histories = {f"noise {lv.noise_factor:g}": lv.history for lv in result.levels if lv.history}
    if not histories:
        rep.text("The cached models carry no training curve.")
        return
    rep.figure(
        figures.loss_curves(
            histories, keys=["train_loss", "val_loss"], title="Per-pixel BCE while training"
        ),
        caption="Training (solid) and validation (dashed) loss, per epoch.",
        alt="loss curves",
    )


@PAGE.section("Cross-level: trained at one level, evaluated at another")
def _cross_section(rep: Report, result: DenoisingResult) -> None:
    for key, caption, fmt in (
        ("bce", "Per-pixel BCE of the denoised test images (rows: training level).", "{:.4f}"),
        ("ssim", "SSIM of the denoised test images.", "{:.3f}"),
        ("judge_accuracy", "The judge's accuracy on the denoised test images.", "{:.4f}"),
    ):
        rep.table(cross_pivot(result, key), caption=caption, float_format=fmt)


@PAGE.section("The old judge beside the new")
def _judges_section(rep: Report, result: DenoisingResult) -> None:
    comparison = result.judge_comparison or {}
    scaffold.judges_table(
        rep,
        judge_rows(result),
        lambda: (
            f"The share of the same test images each judge reads as their true digit. Judge "
            f"{comparison['version']} is {comparison['judge_id']}. Both share one architecture; "
            "v2 was also trained on changed digits and taught that non-digits are no digit "
            "(outlier exposure)."
        ),
    )


@PAGE.section("Models")
def _models_section(rep: Report, result: DenoisingResult) -> None:
    denoisers = {lv.noise_factor: lv.model for lv in result.levels}
    caption = "The trainer's own test figures of each denoiser (its own seeded noise)."
    scaffold.models_table(rep, denoisers, caption, key="noise_factor", float_format="{:.4f}")


@PAGE.subtitle
def _what(result: DenoisingResult) -> str:
    factors = ", ".join(f"{f:g}" for f in result.config.noise_factors)
    return (
        f"Denoising study (brief 003) on {result.data_source}: noise factors {factors}, "
        f"{result.n_test:,} test images"
    )
