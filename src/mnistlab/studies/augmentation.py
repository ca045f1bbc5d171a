"""The few-shot augmentation study (brief 003, tasks 4 and 5, and one question beyond it).

For each target digit and each training-set size N: train an autoencoder on N examples of that
digit, make synthetic digits by sampling a Gaussian fitted to the N latents and by perturbing the
latents with growing noise, and measure how many of them the judge recognises, how diverse they
are (mean pairwise distance and Vendi score in the judge's feature space) and how new they are
against the N training examples. Task 5: how far must a latent be pushed before the judge stops
recognising the digit? Beyond the brief: does adding synthetic digits to N real examples per
class help a classifier?

The study's shape is ``scaffold``'s: ``run(config, context)`` returns an ``AugmentationResult``
(numbers only), ``verdicts`` answers the questions, ``numbers``/``tables`` are metrics.json and the
CSV files, and ``report`` lays out report.html. The scoring (``metrics.FewShotScorer``) and the
Gaussian (``generators.LatentGaussian``) are library code.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from scipy.spatial.distance import pdist

from mnistlab import data as mdata
from mnistlab import models, store
from mnistlab.errors import DataError
from mnistlab.flow import FlowConfig
from mnistlab.generators import LatentFlow, LatentGaussian
from mnistlab.images import as_images, to_uint8
from mnistlab.metrics import FewShotScorer, SetScores
from mnistlab.progress import bar as progress_bar
from mnistlab.report import Report
from mnistlab.studies import scaffold
from mnistlab.studies.scaffold import Context, Verdict, model_history, model_summary
from mnistlab.training import TrainConfig

# report.html and the CSV tables beside it, declared below with @PAGE
PAGE = scaffold.Page("mnistlab: few-shot digits from an autoencoder")
report, tables = PAGE.render, PAGE.tables

# Noise scales of the latent perturbation, in units of the per-dimension spread of the N latents.
SCALES = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
RECOGNITION_THRESHOLD = 0.5  # task 5: "no longer recognised" = fewer than half the samples
BLOB_INK = 2.0  # images with over twice the ink of real digits of the class are blobs, not digits
# Task 5 wants the distance where recognition breaks: past the last scale, the scale doubles until
# it does or reaches this cap (a decoder that only ever saw one digit may draw it at any code).
MAX_SCALE = 128.0
AE_BATCH = 128  # the few-shot autoencoders' batch size
CLASSIFIER_BATCH = 64
FLOW_BATCH = FlowConfig.batch_size  # the velocity network's batch size
FLOW_ARM = "real + flow"  # issue 11's third arm
GRID_PER_CLASS = 10  # synthetic digits of each class shown per arm and N
REAL_PER_DIGIT = 1000  # real test digits of the class: the reference row and novelty's scale


@dataclass(frozen=True)
class AugmentationConfig(scaffold.Quick):
    """Settings of the augmentation study; saved beside every output."""

    quick: bool = False
    digits: tuple[int, ...] = (2, 3, 8)  # brief 003's examples
    shots: tuple[int | None, ...] = (10, 100, 1000, None)  # None: every training image
    seed: int = 0
    # A small code: a Gaussian fitted to 10 latents has at most 9 directions of spread.
    latent_dim: int = 8
    # Optimiser steps per autoencoder whatever N: 10 images need hundreds of epochs.
    ae_steps: int = 600
    samples: int = 500  # synthetic digits per generator and per perturbation scale
    scales: tuple[float, ...] = SCALES
    # Beyond the brief: a classifier on N real digits per class, with and without synthetic ones.
    classifier_shots: tuple[int, ...] = (10, 100)
    classifier_seeds: tuple[int, ...] = (0, 1, 2)
    synthetic_ratio: int = 5  # synthetic digits per real one, per class
    classifier_ae_steps: int = 300  # the 10 x seeds per-class generators: half the steps, for time
    classifier_channels: tuple[int, ...] = (16, 32)  # a smaller judge: fast, and N is small
    classifier_steps: int = 300  # the same optimiser steps with and without synthetic digits
    # Issue 11's third arm: one autoencoder on the same N x 10 real digits and a class-conditional
    # latent flow (mnistlab.flow) on their codes, sampled per class at the guidance that
    # `mnistlab sample flow` uses. Neither ever sees the judge.
    flow_arm: bool = True
    flow_latent_dim: int = 16
    flow_ae_steps: int = 1_000  # one autoencoder for ten classes (the Gaussian arm: 10 x 300)
    flow_steps: int = 2_000  # optimiser steps of the velocity network, whatever N
    flow_hidden: int = 256
    flow_guidance: float = 1.5
    n_test: int | None = None  # test images for the classifier's accuracy (None: all)
    retrain: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "digits", tuple(int(d) for d in self.digits))
        object.__setattr__(self, "shots", tuple(None if s is None else int(s) for s in self.shots))
        object.__setattr__(self, "scales", tuple(float(s) for s in self.scales))
        object.__setattr__(self, "classifier_shots", tuple(int(s) for s in self.classifier_shots))
        object.__setattr__(self, "classifier_seeds", tuple(int(s) for s in self.classifier_seeds))
        object.__setattr__(
            self, "classifier_channels", tuple(int(c) for c in self.classifier_channels)
        )
        if any(not 0 <= d <= 9 for d in self.digits):
            raise ValueError("digits must lie in 0..9")
        if any(s is not None and s < 2 for s in (*self.shots, *self.classifier_shots)):
            raise ValueError("every N must be at least 2 (a Gaussian needs two latents)")
        if self.synthetic_ratio < 1:
            raise ValueError("synthetic_ratio must be at least 1 synthetic digit per real one")

    # The --quick preset: small enough for the tests (at most 90 s on 2 cores).
    QUICK: ClassVar[dict[str, Any]] = {
        "digits": (2,),
        "shots": (10, 100),
        "ae_steps": 200,
        "samples": 200,
        "scales": (0.0, 0.5, 1.0, 2.0, 4.0, 8.0),
        "classifier_shots": (10,),
        "classifier_seeds": (0,),
        "classifier_steps": 100,
        "classifier_ae_steps": 120,
        "flow_ae_steps": 300,
        "flow_steps": 300,
        "flow_hidden": 128,
        "n_test": 2_000,
    }


def shot_label(n: int | None) -> str:
    return "all" if n is None else str(n)


# ---------------------------------------------------------------------------------------------
# Few-shot subsets, their autoencoders, and the latent perturbation.


def few_shot_indices(labels: np.ndarray, digit: int, n: int | None, seed: int) -> np.ndarray:
    """Indices (n,) of exactly ``n`` images of ``digit`` in labels (N,), sorted; seeded.

    n=None gives every image of the digit. Raises DataError when fewer than n exist. The draw is a
    seeded permutation of the digit's images, so the same (digit, n, seed) gives the same subset.
    """
    pool = np.flatnonzero(np.asarray(labels) == digit)
    if n is None:
        return pool
    if n > len(pool):
        raise DataError(f"asked for {n} images of digit {digit}, but the data hold {len(pool)}")
    rng = np.random.default_rng([int(seed), int(digit), int(n)])
    return np.sort(rng.choice(pool, size=n, replace=False))


def perturb(z: np.ndarray, scale: float, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n perturbed copies of rows of z (N, d): z_i + scale * sigma * eps, eps ~ N(0, I).

    sigma (d,) is the per-dimension standard deviation of z, so a scale means the same for every
    autoencoder. Returns (latents (n, d), index of each one's source row (n,)).
    """
    rng = np.random.default_rng(seed)
    src = rng.integers(0, len(z), size=n)
    sigma = z.std(0)  # (d,)
    eps = rng.standard_normal((n, z.shape[1]))
    return (z[src] + scale * sigma * eps).astype(np.float32), src


def perturbation_sweep(
    scales: tuple[float, ...], measure: Callable[[int, float], dict[str, Any]]
) -> list[dict[str, Any]]:
    """``measure(i, scale)`` at every scale, then at doubling scales (up to MAX_SCALE) while the
    last row's ``"recognised"`` share stays at or above the threshold: task 5 asks where
    recognition breaks, so the sweep goes on until it does."""
    grid, rows = list(scales), []
    while len(rows) < len(grid):
        s = grid[len(rows)]
        rows.append(measure(len(rows), s))
        last = len(rows) == len(grid)
        if last and rows[-1]["recognised"] >= RECOGNITION_THRESHOLD and 0 < s < MAX_SCALE:
            grid.append(min(2 * s, MAX_SCALE))
    return rows


def breaking_point(scales: list[float], recognised: list[float]) -> float | None:
    """The first scale where recognition falls below the threshold, linearly interpolated
    between that grid point and the one before; None when it never does."""
    for i, (s, r) in enumerate(zip(scales, recognised, strict=True)):
        if r < RECOGNITION_THRESHOLD:
            if i == 0:
                return float(s)
            s0, r0 = scales[i - 1], recognised[i - 1]
            return float(s0 + (r0 - RECOGNITION_THRESHOLD) / (r0 - r) * (s - s0))
    return None


def _dataset(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, source: str
) -> mdata.Dataset:
    """A Dataset keyed by the SHA-256 of its arrays, so the model cache knows it again."""
    h = hashlib.sha256()
    for a in (x_train, y_train, x_test, y_test):
        h.update(np.ascontiguousarray(a).tobytes())
    return mdata.Dataset(x_train, y_train, x_test, y_test, h.hexdigest(), source)


def steps_per_epoch(n_images: int, batch_size: int) -> int:
    """Optimiser steps per epoch of training.fit on n_images (all of them: no validation split)."""
    return math.ceil(n_images / batch_size)


def _ae_train_config(n_train: int, steps: int, seed: int) -> TrainConfig:
    """Epochs that give about ``steps`` optimiser steps on n_train images. No validation split:
    the autoencoder trains on all N images, keeps its last epoch, and never stops early (N = 10
    has no image to spare)."""
    epochs = max(1, math.ceil(steps / steps_per_epoch(n_train, AE_BATCH)))
    return TrainConfig(
        epochs=epochs, batch_size=AE_BATCH, lr=3e-3, seed=seed, recon_loss="bce", val_fraction=0.0
    )


def train_few_shot_ae(
    data: mdata.Dataset,
    digit: int,
    n: int | None,
    config: AugmentationConfig,
    seed: int,
    steps: int,
) -> tuple[Any, dict[str, Any], np.ndarray]:
    """The autoencoder of ``n`` training images of ``digit``; cached. Returns (model, meta, idx)."""
    idx = few_shot_indices(data.y_train, digit, n, seed)
    test_idx = np.flatnonzero(data.y_test == digit)[:500]  # the trainer's test figures
    what = f"{len(idx)} images of digit {digit}"
    model, meta = _small_ae(
        data, idx, test_idx, what, config.latent_dim, steps, seed, config.retrain
    )
    return model, meta, idx


def _small_ae(
    data: mdata.Dataset,
    idx: np.ndarray,
    test_idx: np.ndarray,
    what: str,
    latent_dim: int,
    steps: int,
    seed: int,
    retrain: bool,
) -> tuple[Any, dict[str, Any]]:
    """An autoencoder of about ``steps`` optimiser steps on the training images ``idx`` (all of
    them, no validation split), with the test images ``test_idx`` for its test figures; cached."""
    ds = _dataset(
        data.x_train[idx], data.y_train[idx], data.x_test[test_idx], data.y_test[test_idx],
        f"{data.source}: {what}",
    )  # fmt: skip
    return store.get_trained(
        "ae",
        ds,
        {"latent_dim": latent_dim},
        _ae_train_config(len(idx), steps, seed),
        retrain=retrain,
        progress=False,  # hundreds of tiny epochs: the study's own bar reports progress
    )


def gaussian_digits(model: Any, z: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n digits float32 (n, 28, 28) decoded from a Gaussian fitted to the codes z (N, d)."""
    return LatentGaussian(model).fit_latents(z).sample(n, seed)


# ---------------------------------------------------------------------------------------------
# Results.


@dataclass
class ShotResult:
    """One target digit and one training-set size N."""

    digit: int
    shots: int | None
    n_train: int  # images the autoencoder saw (N)
    model: dict[str, Any]
    history: list[dict[str, float]]
    steps_per_epoch: int
    training_set: SetScores  # the N training digits themselves
    gaussian: SetScores
    perturbation: list[dict[str, Any]]  # one row per scale: scale, distance, SetScores fields
    breaking_scale: float | None  # task 5: first scale where recognition < 50% (interpolated)
    breaking_distance: float | None  # the mean latent displacement at that scale
    latent_spread: float  # median pairwise distance between the N latents
    gaussian_grid: np.ndarray  # (20, 28, 28)
    train_grid: np.ndarray  # (<=10, 28, 28)
    path_images: np.ndarray  # (3, n_scales, 28, 28): three latents pushed along one direction
    path_p_digit: np.ndarray  # (3, n_scales) judge probability of the digit along the paths
    other_gaussian: SetScores | None = None  # the other judge (v1 beside v2) on the same samples


@dataclass
class AugmentationResult:
    config: AugmentationConfig
    data_source: str
    data_checksum: str
    judge: dict[str, Any]
    real: dict[int, SetScores]  # real test digits of each target digit (the reference)
    shots: list[ShotResult]
    classifier: list[dict[str, Any]]  # shots, seed, arm, accuracy, n_real, n_synthetic
    seconds: float = 0.0
    # "arm, N=n" -> the first seed's synthetic digits, up to ten a class: (10, k, 28, 28) uint8
    classifier_grids: dict[str, np.ndarray] = field(default_factory=dict)
    # The other judge beside this one: its version and judge_id, and its scores of the real test
    # digits (each ShotResult holds its Gaussian samples'); None where it is not shipped.
    other_judge: dict[str, Any] | None = None
    other_real: dict[int, SetScores] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# The computation: the few-shot settings, then the classifier with and without synthetic digits.


def run(config: AugmentationConfig, context: Context) -> AugmentationResult:
    """Run the whole study and return its results; writes nothing but the model cache."""
    data = context.data
    check_sizes(config, data)
    real, shots, other_real = few_shot_settings(config, data, context)
    context.log("classifier with and without synthetic digits")
    classifier, grids = classifier_experiment(data, config, context.progress)
    return AugmentationResult(
        config=config,
        data_source=data.source,
        data_checksum=data.checksum,
        judge=context.judge_meta,
        real=real,
        shots=shots,
        classifier=classifier,
        classifier_grids=grids,
        other_judge=context.other_judge_id,
        other_real=other_real,
    )


def check_sizes(config: AugmentationConfig, data: mdata.Dataset) -> None:
    """Fail early, with one clear line, when a digit has fewer images than asked for."""
    for digit in config.digits:
        for n in config.shots:
            few_shot_indices(data.y_train, digit, n, config.seed)
    for digit in range(10):
        for n in config.classifier_shots:
            few_shot_indices(data.y_train, digit, n, config.seed)


def few_shot_settings(
    config: AugmentationConfig, data: mdata.Dataset, context: Context
) -> tuple[dict[int, SetScores], list[ShotResult], dict[int, SetScores]]:
    """(the real test digits' scores per digit, one ``ShotResult`` per digit and N, the other
    judge's scores of the real test digits: empty where there is no other judge)."""
    real: dict[int, SetScores] = {}
    other_real: dict[int, SetScores] = {}
    other_judge = context.other_judge[0] if context.other_judge else None  # v1 beside v2
    shots: list[ShotResult] = []
    bar = progress_bar(
        total=len(config.digits) * len(config.shots), desc="few-shot autoencoders",
        enabled=context.progress,
    )  # fmt: skip
    for digit in config.digits:
        x_real = data.x_test[data.y_test == digit][:REAL_PER_DIGIT]  # (M, 28, 28) real test digits
        for n in config.shots:
            bar.set_postfix_str(f"digit {digit}, N={shot_label(n)}")
            model, meta, idx = train_few_shot_ae(
                data, digit, n, config, config.seed, config.ae_steps
            )
            scorer = FewShotScorer(context.judge, digit, data.x_train[idx], x_real)
            other = None
            if other_judge is not None:
                other = FewShotScorer(other_judge, digit, data.x_train[idx], x_real)
            if n == config.shots[0]:  # the reference row, scored against the smallest training set
                real[digit] = scorer.score(x_real)
                if other is not None:
                    other_real[digit] = other.score(x_real)
            shots.append(one_shot_setting(config, n, model, meta, data.x_train[idx], scorer, other))
            bar.update()
    bar.close()
    return real, shots, other_real


def one_shot_setting(
    config: AugmentationConfig,
    n: int | None,
    model: Any,
    meta: dict[str, Any],
    x_train: np.ndarray,
    scorer: FewShotScorer,
    other: FewShotScorer | None = None,
) -> ShotResult:
    """The Gaussian samples, the perturbation sweep and the paths of one few-shot autoencoder,
    trained on x_train (N, 28, 28) uint8, all scored by ``scorer`` against those N digits (and
    the Gaussian samples also by ``other``, the other judge's scorer, where given)."""
    z = models.encode(model, x_train)  # (N, d)
    gauss = gaussian_digits(model, z, config.samples, config.seed)  # (S, 28, 28)
    rows = sweep(config, model, z, scorer)
    scales = [r["scale"] for r in rows]
    brk = breaking_point(scales, [r["recognised"] for r in rows])
    brk_dist = None
    if brk is not None:  # the displacement grows linearly with the scale: interpolate it too
        brk_dist = float(np.interp(brk, scales, [r["latent_distance"] for r in rows]))
    path, p_digit = paths(model, z, scales, scorer, config.seed)
    return ShotResult(
        digit=scorer.digit,
        shots=n,
        n_train=len(x_train),
        model=model_summary(meta),
        history=model_history(meta),
        steps_per_epoch=steps_per_epoch(len(x_train), AE_BATCH),
        training_set=scorer.score(x_train, exclude_self=True),
        gaussian=scorer.score(gauss),
        perturbation=rows,
        breaking_scale=brk,
        breaking_distance=brk_dist,
        latent_spread=latent_spread(z, config.seed, scorer.digit),
        gaussian_grid=gauss[:20],
        train_grid=as_images(x_train[:10]),
        path_images=path,
        path_p_digit=p_digit,
        other_gaussian=None if other is None else other.score(gauss),
    )


def latent_spread(z: np.ndarray, seed: int, digit: int) -> float:
    """Median pairwise distance between the codes z (N, d); a seeded 2,000-code sample bounds the
    memory for N = all (~6,000 codes)."""
    pick = np.random.default_rng([seed, digit, 3]).permutation(len(z))[:2000]
    pair = pdist(z[pick])
    return float(np.median(pair)) if len(pair) else float("nan")


def sweep(
    config: AugmentationConfig, model: Any, z: np.ndarray, scorer: FewShotScorer
) -> list[dict[str, Any]]:
    """Task 5's rows: the perturbed codes' digits scored at every scale until recognition breaks."""

    def measure(i: int, s: float) -> dict[str, Any]:
        zp, src = perturb(z, s, config.samples, config.seed + 1 + i)
        scores = scorer.score(models.decode(model, zp))
        distance = float(np.linalg.norm(zp - z[src], axis=1).mean())
        return {"scale": s, "latent_distance": distance, **scores.as_dict()}

    return perturbation_sweep(config.scales, measure)


def paths(
    model: Any, z: np.ndarray, scales: list[float], scorer: FewShotScorer, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Images on the way: three training codes pushed along one fixed random direction each.
    Returns (images (3, K, 28, 28), the judge's probability of the digit (3, K)), K scales."""
    rng = np.random.default_rng([seed, scorer.digit, 7])
    picks = rng.choice(len(z), size=min(3, len(z)), replace=False)
    direction = rng.standard_normal((len(picks), z.shape[1])) * z.std(0)  # (3, d)
    s = np.asarray(scales, dtype=np.float32)
    path_z = z[picks][:, None, :] + s[None, :, None] * direction[:, None, :]  # (3, K, d)
    path = models.decode(model, path_z.reshape(-1, z.shape[1]).astype(np.float32))
    probs, _ = models.judge_outputs(scorer.judge, path)
    shape = (len(picks), len(s))
    return path.reshape(*shape, 28, 28), probs[:, scorer.digit].reshape(shape)


def classifier_experiment(
    data: mdata.Dataset, config: AugmentationConfig, progress: bool
) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """Test accuracy of a small classifier on N real digits per class, with and without
    ``synthetic_ratio * N`` synthetic digits per class from that class's few-shot generator
    (an autoencoder on the N digits, and a Gaussian fitted to their latents).

    Each seed draws its own N digits per class, its own synthetic digits and its own
    initialisation; every arm takes the same number of optimiser steps. Returns the runs, and
    ten synthetic digits of each class per arm and N (the first seed's) for the page.
    """
    x_test, y_test = data.x_test[: config.n_test], data.y_test[: config.n_test]
    rows, grids = [], {}
    plan = [(n, s) for n in config.classifier_shots for s in config.classifier_seeds]
    bar = progress_bar(total=len(plan), desc="classifiers", enabled=progress)
    for n, seed in plan:
        arms = classifier_arms(data, config, n, seed)
        n_real = len(arms["real only"][0])
        for arm, (x, _) in arms.items():
            if arm != "real only" and f"{arm}, N={n}" not in grids:
                per_class = x[n_real:].reshape(10, -1, 28, 28)[:, :GRID_PER_CLASS]
                grids[f"{arm}, N={n}"] = per_class
        for arm, (x, y) in arms.items():
            ds = _dataset(x, y, x_test, y_test, f"{data.source}: {arm}, N={n}, seed {seed}")
            accuracy, epochs = train_classifier(ds, config, seed)
            rows.append(
                {
                    "shots": n,
                    "seed": seed,
                    "arm": arm,
                    "accuracy": accuracy,
                    "n_real": n_real,
                    "n_synthetic": len(x) - n_real,
                    "epochs": epochs,
                }
            )
        bar.update()
    bar.close()
    return rows, grids


def classifier_arms(
    data: mdata.Dataset, config: AugmentationConfig, n: int, seed: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """arm -> (images uint8, labels): N real digits per class ("real only"), and the same plus
    ``synthetic_ratio * N`` Gaussian samples of each class's few-shot autoencoder."""
    idxs, xs, ys, xg, yg = [], [], [], [], []
    for digit in range(10):
        model, _, idx = train_few_shot_ae(data, digit, n, config, seed, config.classifier_ae_steps)
        idxs.append(idx)
        xs.append(data.x_train[idx])
        ys.append(np.full(len(idx), digit, dtype=np.uint8))
        z = models.encode(model, data.x_train[idx])
        k = config.synthetic_ratio * n
        xg.append(to_uint8(gaussian_digits(model, z, k, seed + 100 + digit)))
        yg.append(np.full(k, digit, dtype=np.uint8))
    x_real, y_real = np.concatenate(xs), np.concatenate(ys)
    arms = {
        "real only": (x_real, y_real),
        "real + synthetic": (np.concatenate([x_real, *xg]), np.concatenate([y_real, *yg])),
    }
    if config.flow_arm:
        xf = flow_digits(data, np.concatenate(idxs), config, n, seed)
        yf = np.repeat(np.arange(10, dtype=np.uint8), config.synthetic_ratio * n)
        arms[FLOW_ARM] = (np.concatenate([x_real, xf]), np.concatenate([y_real, yf]))
    return arms


def flow_digits(
    data: mdata.Dataset, idx: np.ndarray, config: AugmentationConfig, n: int, seed: int
) -> np.ndarray:
    """``synthetic_ratio * n`` digits of each class, uint8 (10 k, 28, 28) in class order, from a
    latent flow on the codes of one autoencoder trained on the real digits ``idx`` (n of each
    class) alone; both cached."""
    test_idx = np.arange(min(1_000, len(data.x_test)))  # the trainer's test figures
    what = f"{n} images of each digit, seed {seed}"
    model, _ = _small_ae(
        data,
        idx,
        test_idx,
        what,
        config.flow_latent_dim,
        config.flow_ae_steps,
        seed,
        config.retrain,
    )
    x_real, y_real = data.x_train[idx], data.y_train[idx]
    batches = math.ceil(len(x_real) / FLOW_BATCH)  # the velocity network's steps per epoch
    flow = LatentFlow(
        model,
        guidance=config.flow_guidance,
        hidden=config.flow_hidden,
        epochs=max(1, math.ceil(config.flow_steps / batches)),
        random_state=seed,
        cache=not config.retrain,
    ).fit(x_real, y_real.astype(np.int64))
    k = config.synthetic_ratio * n
    return np.concatenate(
        [to_uint8(flow.sample(k, seed + 200 + digit, digit=digit)) for digit in range(10)]
    )


def train_classifier(ds: mdata.Dataset, config: AugmentationConfig, seed: int) -> tuple[float, int]:
    """(test accuracy, epochs) of the small classifier trained for about ``classifier_steps``."""
    epochs = max(
        1, math.ceil(config.classifier_steps / steps_per_epoch(len(ds.x_train), CLASSIFIER_BATCH))
    )
    # Both arms train on every image they are given (the same real ones) and keep their last
    # epoch: a validation split would hold out different real digits in each arm.
    tc = TrainConfig(
        epochs=epochs, batch_size=CLASSIFIER_BATCH, lr=3e-3, seed=seed, val_fraction=0.0
    )
    _, meta = store.get_trained(
        "classifier",
        ds,
        {"channels": config.classifier_channels, "feature_dim": 64},
        tc,
        retrain=config.retrain,
        progress=False,
    )
    return float(meta["test"]["accuracy"]), epochs


# ---------------------------------------------------------------------------------------------
# Verdicts: one function per question, each from the numbers alone.


def _sd(values: np.ndarray) -> float:
    """Sample standard deviation; NaN for fewer than two values."""
    return float(values.std(ddof=1)) if len(values) > 1 else float("nan")


def classifier_summary(result: AugmentationResult) -> list[dict[str, Any]]:
    """Mean and spread of the test accuracy per N and arm, and the paired gain of each arm with
    synthetic digits over real digits alone, on the seeds the two share (``gain_*`` for the
    Gaussian arm, ``flow_gain_*`` for the flow's, where it ran)."""
    out = []
    for n in dict.fromkeys(r["shots"] for r in result.classifier):
        acc: dict[str, dict[int, float]] = {}
        for r in result.classifier:
            if r["shots"] == n:
                acc.setdefault(r["arm"], {})[r["seed"]] = r["accuracy"]
        row: dict[str, Any] = {"shots": n}
        for arm, name, prefix in (
            ("real + synthetic", "with_synthetic", ""),
            (FLOW_ARM, "with_flow", "flow_"),
        ):
            if arm not in acc:
                continue
            seeds = sorted(set(acc["real only"]) & set(acc[arm]))
            real = np.array([acc["real only"][s] for s in seeds])
            b = np.array([acc[arm][s] for s in seeds])
            gain = b - real
            if arm == "real + synthetic":
                row |= {
                    "seeds": len(seeds),
                    "real_only_mean": float(real.mean()),
                    "real_only_sd": _sd(real),
                }
            row |= {
                f"{name}_mean": float(b.mean()),
                f"{name}_sd": _sd(b),
                f"{prefix}gain_mean": float(gain.mean()),
                f"{prefix}gain_sd": _sd(gain),
                f"{prefix}gain_min": float(gain.min()),
                f"{prefix}gain_max": float(gain.max()),
            }
            if prefix:
                row[f"{prefix}seeds"] = len(seeds)
        out.append(row)
    return out


def _share(flags: list[bool], yes: str = "yes", no: str = "no", some: str = "partly") -> str:
    """A finding from one flag per setting: all true, none true, or some."""
    return yes if all(flags) else no if not any(flags) else some


def recognition_verdict(result: AugmentationResult) -> Verdict:
    """Does the judge recognise the Gaussian samples (at least half of them, per setting)?"""
    parts = []
    for digit in result.config.digits:
        rows = [s for s in result.shots if s.digit == digit]
        parts.append(
            f"digit {digit}: "
            + ", ".join(f"N={shot_label(s.shots)} {100 * s.gaussian.recognised:.0f}%" for s in rows)
        )
    flags = [s.gaussian.recognised >= RECOGNITION_THRESHOLD for s in result.shots]
    return Verdict(
        "Does the judge recognise the synthetic digits?",
        _share(flags),
        "Share of the Gaussian-latent samples that the judge labels as the target digit: "
        + "; ".join(parts)
        + ".",
    )


def diversity_verdict(result: AugmentationResult) -> Verdict:
    """How diverse are the Gaussian samples, against as many real test digits of the class?"""
    parts = []
    for digit in result.config.digits:
        rows = [s for s in result.shots if s.digit == digit]
        ref = result.real.get(digit)
        parts.append(
            f"digit {digit}: Vendi "
            + ", ".join(f"{s.gaussian.vendi:.1f} (N={shot_label(s.shots)})" for s in rows)
            + (f" against {ref.vendi:.1f} for {ref.n} real test digits" if ref else "")
        )
    flags = [
        s.gaussian.vendi >= result.real[s.digit].vendi
        for s in result.shots
        if s.digit in result.real
    ]
    finding = (
        _share(flags, "as diverse as real digits", "less diverse than real digits", "mixed")
        if flags
        else "no real reference"
    )
    return Verdict(
        "How diverse are they?",
        finding,
        "The Vendi score is an effective number of distinct digits in the judge's feature space "
        "(1 = all alike). " + "; ".join(parts) + ".",
    )


def _clearly_newer(gaussian: SetScores, recon: dict[str, Any]) -> bool:
    """Whether the Gaussian samples' novelty is above the plain reconstructions' by more than
    the spread: their 95% bootstrap intervals apart (the point values where either has none)."""
    lo_hi = gaussian.ci.get("novelty"), (recon.get("ci") or {}).get("novelty")
    if None in lo_hi:
        return gaussian.novelty > recon["novelty"]
    (g_lo, _), (_, r_hi) = lo_hi
    return g_lo > r_hi


def novelty_verdict(result: AugmentationResult) -> Verdict:
    """Are the Gaussian samples newer than the autoencoder's plain reconstructions (scale 0), by
    more than the spread of either?"""
    parts = []
    for s in result.shots:
        recon = s.perturbation[0] if s.perturbation and s.perturbation[0]["scale"] == 0 else None
        ref = result.real.get(s.digit)
        txt = f"digit {s.digit}, N={shot_label(s.shots)}: {s.gaussian.novelty:.2f}"
        if "novelty" in s.gaussian.ci:
            lo, hi = s.gaussian.ci["novelty"]
            txt += f" ({lo:.2f}-{hi:.2f})"
        if recon is not None:
            txt += f" against {recon['novelty']:.2f}"
            if "novelty" in (recon.get("ci") or {}):
                lo, hi = recon["ci"]["novelty"]
                txt += f" ({lo:.2f}-{hi:.2f})"
            txt += " for the plain reconstructions"
        if ref is not None and s.shots == result.config.shots[0]:
            txt += f" and {ref.novelty:.2f} for real test digits"
        parts.append(txt)
    newer = [
        _clearly_newer(s.gaussian, s.perturbation[0])
        for s in result.shots
        if s.perturbation and s.perturbation[0]["scale"] == 0
    ]
    finding = _share(newer) if newer else "not measured"
    lead = {
        "yes": "Yes: the Gaussian samples lie further from the N training digits than the "
        "autoencoder's plain reconstructions of them do, by more than the spread",
        "no": "No: the Gaussian samples lie no further from the N training digits than the plain "
        "reconstructions do, or not by more than the spread",
    }.get(finding, "Only for some settings")
    return Verdict(
        "Are the synthetic digits new?",
        finding,
        f"{lead}. Novelty against the N training digits (0 = a copy, 0.5 = as far as a fresh "
        "real digit of the class), with 95% bootstrap intervals over the samples: "
        + "; ".join(parts)
        + ".",
    )


def _breaking_part(result: AugmentationResult, s: ShotResult) -> tuple[str, str]:
    """(finding, clause) of task 5 for one setting."""
    label = f"digit {s.digit}, N={shot_label(s.shots)}"
    first, last = s.perturbation[0], s.perturbation[-1]
    if first["recognised"] < RECOGNITION_THRESHOLD:
        return "not applicable", (
            f"{label}: not applicable, even the unperturbed reconstructions are recognised only "
            f"{100 * first['recognised']:.0f}% of the time"
        )
    if s.breaking_scale is None:
        ref = result.real.get(s.digit)
        txt = (
            f"{label}: still recognised by at least half at the largest scale tried "
            f"({last['scale']:g} sigma, a latent displacement of {last['latent_distance']:.1f})"
        )
        if ref is not None and last["ink"] > BLOB_INK * ref.ink:
            return "never breaks (blobs)", txt + (
                f", but there the images carry {last['ink']:.2f} mean ink against "
                f"{ref.ink:.2f} for real {s.digit}s: they are saturated blobs (see the "
                f"strips) that the judge still labels {s.digit}. Past a few sigma "
                "'recognised' stops meaning readable, and this judge cannot say where this "
                "autoencoder's digits end"
            )
        return (
            "never breaks",
            txt + ": a decoder that has only seen this digit draws it from any code",
        )
    ratio = (
        s.breaking_distance / s.latent_spread
        if s.breaking_distance is not None and s.latent_spread > 0
        else float("nan")
    )
    return "breaks", (
        f"{label}: {s.breaking_scale:.2f} sigma, a latent displacement of "
        f"{s.breaking_distance:.2f} ({ratio:.1f} times the median distance between two training "
        "latents)"
    )


def breaking_verdict(result: AugmentationResult) -> Verdict:
    """Task 5: the perturbation scale where recognition breaks, per setting."""
    found = [_breaking_part(result, s) for s in result.shots if s.perturbation]
    return Verdict(
        "How far must the latents be pushed before the judge stops recognising the digit?",
        ", ".join(sorted({f for f, _ in found})),
        "The noise scale (in units of the latents' per-dimension spread) at which fewer than "
        "half of the perturbed samples are recognised: " + "; ".join(p for _, p in found) + ".",
    )


def _gain_word(row: dict[str, Any], prefix: str) -> str:
    """helps (every seed gained), hurts (every seed lost) or unclear, for one N and arm."""
    lo, hi, mean = (row[f"{prefix}gain_{k}"] for k in ("min", "max", "mean"))
    if row["seeds"] > 1:
        return "helps" if lo > 0 else "hurts" if hi < 0 else "unclear"
    return "helps" if mean > 0 else "hurts" if mean < 0 else "unclear"


def _says(word: str) -> str:
    return "unclear" if word == "unclear" else f"it {word}"


def _lead(words: list[str]) -> str:
    return (
        "Yes"
        if all(w == "helps" for w in words)
        else "No"
        if all(w == "hurts" for w in words)
        else "Not clearly"
    )


def classifier_verdict(result: AugmentationResult) -> Verdict | None:
    """Beyond the brief: does augmentation with the few-shot Gaussians help a classifier, seed by
    seed? None without runs."""
    summary = classifier_summary(result)
    if not summary:
        return None
    parts, helps = [], []
    for r in summary:
        helps.append(_gain_word(r, ""))
        seeds = f"{r['seeds']} seed{'s' if r['seeds'] > 1 else ''}"
        parts.append(
            f"N={r['shots']} per class: {100 * r['real_only_mean']:.1f}% "
            f"(sd {100 * r['real_only_sd']:.1f}) with real digits only, "
            f"{100 * r['with_synthetic_mean']:.1f}% (sd {100 * r['with_synthetic_sd']:.1f}) "
            f"with Gaussian samples added; paired gain {100 * r['gain_mean']:+.1f} points "
            f"(from {100 * r['gain_min']:+.1f} to {100 * r['gain_max']:+.1f} over "
            f"{seeds}): {_says(helps[-1])}"
        )
    lead = _lead(helps)
    return Verdict(
        "Does augmentation help a classifier?",
        lead.lower(),
        f"{lead}. " + "; ".join(parts) + ". 'Helps' means every seed gained; 'hurts' means "
        "every seed lost.",
    )


def flow_classifier_verdict(result: AugmentationResult) -> Verdict | None:
    """Issue 11: does augmentation with the latent flow's digits help the same classifier, seed
    by seed? None where the flow arm did not run."""
    summary = [r for r in classifier_summary(result) if "flow_gain_mean" in r]
    if not summary:
        return None
    parts, helps = [], []
    for r in summary:
        helps.append(_gain_word({**r, "seeds": r["flow_seeds"]}, "flow_"))
        versus = (
            f"; the Gaussian samples' gain: {100 * r['gain_mean']:+.1f}" if "gain_mean" in r else ""
        )
        parts.append(
            f"N={r['shots']} per class: {100 * r['with_flow_mean']:.1f}% "
            f"(sd {100 * r['with_flow_sd']:.1f}) with flow samples added, paired gain over real "
            f"digits alone {100 * r['flow_gain_mean']:+.1f} points (from "
            f"{100 * r['flow_gain_min']:+.1f} to {100 * r['flow_gain_max']:+.1f} over "
            f"{r['flow_seeds']} seed{'s' if r['flow_seeds'] > 1 else ''}): "
            f"{_says(helps[-1])}{versus}"
        )
    lead = _lead(helps)
    return Verdict(
        "Does augmentation with the latent flow help a classifier?",
        lead.lower(),
        f"{lead}. The flow is fitted on the same N real digits per class (one autoencoder on "
        "all of them, a class-conditional flow on their codes). " + "; ".join(parts) + ".",
    )


def verdicts(result: AugmentationResult) -> list[Verdict]:
    """Short answers to brief 003's questions and to the one beyond it, in the report's order."""
    found = [
        recognition_verdict(result),
        diversity_verdict(result),
        novelty_verdict(result),
        breaking_verdict(result),
        classifier_verdict(result),
        flow_classifier_verdict(result),
    ]
    return [v for v in found if v is not None]


# ---------------------------------------------------------------------------------------------
# metrics.json, the CSV tables and the page.


@PAGE.csv("sets")
def shot_rows(result: AugmentationResult) -> list[dict[str, Any]]:
    """One row per digit, N and image set (training digits, Gaussian samples, real test digits)."""
    rows = []
    for digit, ref in result.real.items():
        rows.append({"digit": digit, "N": "", "set": "real test digits", **_flat(ref.as_dict())})
    for s in result.shots:
        for name, sc in (("training digits", s.training_set), ("Gaussian samples", s.gaussian)):
            rows.append({**_shot_key(s), "set": name, **_flat(sc.as_dict())})
    rows.sort(key=lambda r: (r["digit"], r["set"] != "real test digits"))
    return rows


def _shot_key(s: ShotResult) -> dict[str, Any]:
    """The columns that name one digit and N in every per-shot table."""
    return {"digit": s.digit, "N": shot_label(s.shots)}


@PAGE.csv("judges")
def judge_rows(result: AugmentationResult) -> list[dict[str, Any]]:
    """Both judges' view of the same sets: each digit's real test digits and, for each N, its
    Gaussian samples (recognised and novelty, each judge against the same N training digits)."""
    if result.other_judge is None:
        return []
    this, other = result.judge.get("judge_version", "this"), result.other_judge["judge_version"]

    def row(key: dict[str, Any], name: str, mine: SetScores, theirs: SetScores | None):
        out = {**key, "set": name}
        for score in ("recognised", "novelty"):
            out[f"judge {other} {score}"] = getattr(theirs, score, None)
            out[f"judge {this} {score}"] = getattr(mine, score)
        return out

    rows = [
        row({"digit": d, "N": ""}, "real test digits", sc, result.other_real.get(d))
        for d, sc in result.real.items()
    ]
    rows += [
        row(_shot_key(s), "Gaussian samples", s.gaussian, s.other_gaussian) for s in result.shots
    ]
    rows.sort(key=lambda r: (r["digit"], r["set"] != "real test digits"))
    return rows


@PAGE.csv("perturbation")
def perturbation_rows(result: AugmentationResult) -> list[dict[str, Any]]:
    return [{**_shot_key(s), **_flat(row)} for s in result.shots for row in s.perturbation]


def _flat(scores: dict[str, Any]) -> dict[str, Any]:
    """A row of scores for a table: the 95% intervals as ``<score>_lo`` and ``<score>_hi``."""
    row = {k: v for k, v in scores.items() if k != "ci"}
    for key, (lo, hi) in (scores.get("ci") or {}).items():
        row |= {f"{key}_lo": lo, f"{key}_hi": hi}
    return row


@PAGE.csv("breaking_point")
def breaking_rows(result: AugmentationResult) -> list[dict[str, Any]]:
    return [
        _shot_key(s)
        | {
            "breaking_scale_sigma": s.breaking_scale,
            "breaking_latent_distance": s.breaking_distance,
            "median_distance_between_training_latents": s.latent_spread,
        }
        for s in result.shots
    ]


@PAGE.csv("classifier")
def classifier_rows(result: AugmentationResult) -> list[dict[str, Any]]:
    return result.classifier


@PAGE.csv("history")
def history_rows(result: AugmentationResult) -> list[dict[str, Any]]:
    return [
        {**_shot_key(s), "step": h.get("epoch", 0) * s.steps_per_epoch, **h}
        for s in result.shots
        for h in s.history
    ]


def numbers(result: AugmentationResult) -> dict[str, Any]:
    """The study's own part of metrics.json: every number of the report."""
    return {
        "real_test_digits": {str(d): s.as_dict() for d, s in result.real.items()},
        "settings": [
            {
                "digit": s.digit,
                "N": shot_label(s.shots),
                "n_train": s.n_train,
                "training_set": s.training_set.as_dict(),
                "gaussian": s.gaussian.as_dict(),
                "perturbation": s.perturbation,
                "path_p_digit": s.path_p_digit.tolist(),
                "breaking_scale_sigma": s.breaking_scale,
                "breaking_latent_distance": s.breaking_distance,
                "latent_spread": s.latent_spread,
                "model": s.model,
                "history": s.history,
            }
            for s in result.shots
        ],
        "classifier": {"runs": result.classifier, "summary": classifier_summary(result)},
        "judge_comparison": (
            None
            if result.other_judge is None
            else {**result.other_judge, "rows": judge_rows(result)}
        ),
    }


def headline(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The headline rows of one run's metrics.json ``results`` (for ``mnistlab sweep``): each
    digit and N's synthetic digits, then the classifier's accuracy with and without them."""
    rows: list[dict[str, Any]] = [
        {
            "set": f"digit {s['digit']}, N={s['N']}",
            "recognised": s["gaussian"]["recognised"],
            "novelty": s["gaussian"]["novelty"],
            "Vendi": s["gaussian"]["vendi"],
            "breaks at (sigma)": s["breaking_scale_sigma"],
        }
        for s in results["settings"]
    ]
    rows += [
        {
            "set": f"classifier, N={r['shots']}",
            "accuracy, real only": r["real_only_mean"],
            "accuracy, with synthetic": r["with_synthetic_mean"],
            "gain": r["gain_mean"],
            "accuracy, with flow": r.get("with_flow_mean"),
            "flow gain": r.get("flow_gain_mean"),
        }
        for r in results["classifier"]["summary"]
    ]
    return rows


def summary(result: AugmentationResult) -> list[str]:
    """The terminal's lines: each set's synthetic digits, then the classifier experiment."""
    lines = []
    for s in result.shots:
        brk = "never" if s.breaking_scale is None else f"{s.breaking_scale:.2f} sigma"
        lines.append(
            f"digit {s.digit}, N={shot_label(s.shots)}: recognised "
            f"{100 * s.gaussian.recognised:.0f}%, Vendi {s.gaussian.vendi:.1f}, novelty "
            f"{s.gaussian.novelty:.2f}, breaks at {brk}"
        )
    for r in classifier_summary(result):
        lines.append(
            f"classifier N={r['shots']}: {100 * r['real_only_mean']:.1f}% real only, "
            f"{100 * r['with_synthetic_mean']:.1f}% with Gaussian samples (gain "
            f"{100 * r['gain_mean']:+.1f} points over {r['seeds']} seeds)"
            + (
                f", {100 * r['with_flow_mean']:.1f}% with flow samples (gain "
                f"{100 * r['flow_gain_mean']:+.1f})"
                if "with_flow_mean" in r
                else ""
            )
        )
    return lines


@PAGE.section("The set-up")
def _setup_section(rep: Report, result: AugmentationResult) -> None:
    rep.text(_setup_text(result.config))


def _setup_text(cfg: AugmentationConfig) -> str:
    return (
        f"For each digit and N, an autoencoder (`ae`, latent dimension {cfg.latent_dim}) is "
        f"trained for about {cfg.ae_steps} optimiser steps on exactly N training images of the "
        "digit, drawn by a seeded permutation, all of them used for training (no validation "
        "split: with ten digits every one counts). **Gaussian**: a Gaussian fitted to the N "
        "latents, sampled and decoded. "
        "**Perturbation**: a training latent plus scale x sigma x N(0, I), sigma the "
        "per-dimension spread of the N latents. **Recognised**: the share the judge labels as "
        "the digit. **Diversity**: the mean pairwise distance of the judge's features; "
        "**Vendi**: exp of the entropy of the eigenvalues of K/n, K the cosine similarity of the "
        "features (an effective number of distinct digits, between 1 and n). **Novelty**: "
        "the distance d to the nearest of the N training digits between the judge's copy "
        "descriptors, calibrated on real test digits of the class: the share of them that lie "
        "closer to the N training digits than d (0 for a copy, 0.5 on average for fresh real "
        "digits, 1 farther than any)."
    )


@PAGE.section("Synthetic digits by N")
def _sets_section(rep: Report, result: AugmentationResult) -> None:
    rep.table(shot_rows(result), caption="The judge's view of each set of images.")
    for digit in result.config.digits:
        _digit_section(rep, digit, [s for s in result.shots if s.digit == digit])


def _digit_section(rep: Report, digit: int, rows: list[ShotResult]) -> None:
    """One digit: its training digits and Gaussian samples for each N, and the loss curves."""
    from mnistlab.report import figures

    rep.section(f"Digit {digit}", level=3)
    blocks, row_labels = [], []  # each N: ten training digits, then ten Gaussian samples
    for s in rows:
        blocks += [_pad10(s.train_grid[:10]), _pad10(s.gaussian_grid[:10])]
        row_labels += [f"train N={shot_label(s.shots)}", f"Gauss N={shot_label(s.shots)}"]
    rep.figure(
        figures.sample_grid(np.concatenate(blocks), ncols=10, row_labels=row_labels),
        caption=f"Digit {digit}: training digits and Gaussian-latent samples for each N.",
        alt=f"samples of digit {digit}",
    )
    series = _loss_series(rows)
    if not series:
        return
    rep.plotly(
        figures.line_plot(
            series,
            title=f"Digit {digit}: autoencoder loss by N",
            xlabel="optimiser steps",
            ylabel="per-pixel BCE",
            log_y=True,
        ),
        caption=(
            "Brief 003's loss curves, one per N: the training loss (each autoencoder "
            "trains on all of its N digits and keeps its last epoch). The legend gives "
            "the loss on unseen test digits of the class: the gap between the two is "
            "what a small N memorises."
        ),
    )


def _loss_series(rows: list[ShotResult]) -> dict[str, tuple[list, list]]:
    """Curve name -> (optimiser steps, loss) of each N's training (and validation) loss."""
    series = {}
    for s in rows:
        if not s.history:
            continue
        name = f"N={shot_label(s.shots)}"
        steps = [h.get("epoch", i + 1) * s.steps_per_epoch for i, h in enumerate(s.history)]
        test_bce = s.model.get("test", {}).get("bce")
        if test_bce is not None:
            name += f" (test BCE {test_bce:.3f})"
        series[f"{name} train"] = (steps, [h["train_loss"] for h in s.history])
        if "val_loss" in s.history[0]:
            series[f"N={shot_label(s.shots)} val"] = (steps, [h["val_loss"] for h in s.history])
    return series


def _by_scale(result: AugmentationResult, key: str) -> dict[str, tuple[list, list]]:
    """Curve per setting -> (perturbation scales, the SetScores field ``key`` at each)."""
    return {
        f"digit {s.digit}, N={shot_label(s.shots)}": (
            [r["scale"] for r in s.perturbation],
            [r[key] for r in s.perturbation],
        )
        for s in result.shots
    }


@PAGE.section("Pushing the latents until the judge gives up")
def _push_section(rep: Report, result: AugmentationResult) -> None:
    """Task 5: where recognition breaks, recognition and Vendi by scale, the paths' strips."""
    from mnistlab.report import figures

    rep.table(breaking_rows(result), caption="Where recognition falls below 50%.")
    for key, title, xlabel, ylabel, caption in (
        (
            "recognised",
            "Share recognised against the perturbation scale",
            "noise scale (x per-dimension sigma of the N latents)",
            "recognised as the target digit",
            "Each curve: perturbed training latents of one autoencoder.",
        ),
        (
            "vendi",
            "Vendi score against the perturbation scale",
            "noise scale (x sigma)",
            "Vendi score",
            "Pushing the latents further makes the samples more varied, then unreadable.",
        ),
    ):
        curves = _by_scale(result, key)
        rep.plotly(figures.line_plot(curves, title=title, xlabel=xlabel, ylabel=ylabel), caption)
    for s in result.shots:
        label = f"{s.digit}, N={shot_label(s.shots)}"
        fig = figures.strip(
            {f"path {i + 1}": s.path_images[i] for i in range(len(s.path_images))},
            {f"path {i + 1}": s.path_p_digit[i].tolist() for i in range(len(s.path_images))},
            title=f"digit {label}: scales " + ", ".join(f"{r['scale']:g}" for r in s.perturbation),
        )
        rep.figure(
            fig,
            caption=(
                f"Digit {label}: three training latents pushed along one direction each; under "
                "each image the judge's probability of the digit."
            ),
            alt=f"perturbation path digit {s.digit} N {shot_label(s.shots)}",
        )
    rep.table(perturbation_rows(result), caption="Every perturbation scale.")


@PAGE.section("Does augmentation help a classifier?")
def _classifier_section(rep: Report, result: AugmentationResult) -> None:
    from mnistlab.report import figures

    rep.text(_classifier_setup(result.config))
    rep.table(classifier_summary(result), caption="Test accuracy, mean and sd over seeds.")
    for name, grid in result.classifier_grids.items():  # (10, k, 28, 28): k digits a class
        rep.figure(
            figures.sample_grid(
                grid.reshape(-1, 28, 28),
                ncols=grid.shape[1],
                row_labels=[str(d) for d in range(10)],
            ),
            caption=f"{name}: ten of the synthetic digits of each class added to the real ones "
            "(first seed).",
            alt=f"synthetic digits {name}",
        )
    rep.table(result.classifier, caption="Every run.")


def _classifier_setup(cfg: AugmentationConfig) -> str:
    return (
        f"A small CNN (`classifier`, channels {cfg.classifier_channels}) trained for about "
        f"{cfg.classifier_steps} optimiser steps on N real digits per class, or on the same "
        f"digits plus {cfg.synthetic_ratio} x N synthetic ones per class (Gaussian samples of "
        f"that class's few-shot autoencoder, {cfg.classifier_ae_steps} steps)"
        + (
            f", or plus as many from a class-conditional latent flow (one autoencoder with a "
            f"{cfg.flow_latent_dim}-d code trained {cfg.flow_ae_steps} steps on the same N x 10 "
            f"real digits, a velocity network trained {cfg.flow_steps} steps on their codes, "
            f"guidance {cfg.flow_guidance:g})"
            if cfg.flow_arm
            else ""
        )
        + ". Each seed draws its own real digits; test accuracy on the test set. The "
        "synthetic digits are not filtered by the judge, which has seen all of MNIST and would "
        "leak labels, and no generator is trained with it."
    )


@PAGE.section("The old judge beside the new")
def _judges_section(rep: Report, result: AugmentationResult) -> None:
    other = result.other_judge or {}
    scaffold.judges_table(
        rep,
        judge_rows(result),
        lambda: (
            f"The same real test digits and Gaussian samples scored by both judges, each against "
            f"the same N training digits (judge {other['judge_version']} is "
            f"{other['judge_id']}). Judge v2 was also trained on changed digits and taught that "
            "non-digits are no digit (outlier exposure), and its copy descriptor was trained to "
            "find a training digit under small changes: novelty is measured in it."
        ),
    )


@PAGE.subtitle
def _what(result: AugmentationResult) -> str:
    cfg = result.config
    return (
        f"Augmentation study (brief 003) on {result.data_source}: digits "
        f"{', '.join(map(str, cfg.digits))}, N = {', '.join(map(shot_label, cfg.shots))}, "
        f"{cfg.samples} samples per generator"
    )


def _pad10(images: np.ndarray) -> np.ndarray:
    """images (k, 28, 28), k <= 10 -> (10, 28, 28), black cells after them."""
    out = np.zeros((10, 28, 28), dtype=np.float32)
    out[: len(images)] = images[:10]
    return out
