"""The generation study (brief 000, with briefs 001 and 002's generators).

Fit every generator over its settings, draw samples, score them with the judge's Quality, Novelty
and the metrics beyond the brief, calibrate against real data, interpolate between digits, and
answer the brief's questions from the numbers.

``run(config)`` returns a ``GenerationResult`` (data only); ``write(result, out_dir)`` renders
report.html, metrics.json, CSV tables and the figures.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mnistlab import data as mdata
from mnistlab import generators as gen
from mnistlab import metrics, models, store
from mnistlab.catalog import FLOW_AE
from mnistlab.images import as_images
from mnistlab.progress import bar as progress_bar
from mnistlab.progress import log as progress_log
from mnistlab.training import TrainConfig, default_train_config

# Pairs of test digits to interpolate between (brief 000: "transform a 0 into a 1").
INTERPOLATION_PAIRS = ((0, 1), (4, 9), (3, 8), (7, 2))
# Dips of judge quality (0-1 scale) within this of each other read as "about equal".
INTERPOLATION_MARGIN = 0.05


@dataclass(frozen=True)
class GenerationConfig:
    """Settings of the generation study; saved beside every output."""

    quick: bool = False
    samples: int = 10_000  # brief 000: 10,000 samples per generator and setting
    seed: int = 0
    latent_dim: int = 16
    pca_components: int = 50  # keeps 82% of MNIST's pixel variance (32 keep 74%)
    n_bandwidths: int = 10  # brief 000's sweep: about 10 values on a log grid
    gmm_components: int = 10
    interpolation_steps: int = 11
    conditional_samples: int = 500  # brief 001's conditional sampling: "500 eights"
    # Random pairs of test digits of two different classes behind the interpolation figures: the
    # four strips in the report are examples, these pairs are the measurement.
    interpolation_pairs: int = 200
    # The flow (issue 11): guidance scales swept like the KDE bandwidth, and the size of its
    # velocity network; it lives on the codes of FLOW_AE, its own sharper autoencoder.
    guidance_scales: tuple[float, ...] = (1.0, 1.5, 2.0)
    flow_hidden: int = 512
    flow_epochs: int = 40
    retrain: bool = False

    def __post_init__(self) -> None:
        if self.interpolation_steps < 3:
            raise ValueError("interpolation_steps must be at least 3: two ends and a midpoint")
        if self.samples < 10 or self.interpolation_pairs < 1 or self.conditional_samples < 1:
            raise ValueError("samples must be at least 10, the pair and sample counts positive")

    @property
    def fit_images(self) -> int | None:
        """How many training images the generators and autoencoders see (None: all)."""
        return 5_000 if self.quick else None

    @classmethod
    def for_quick(cls, **overrides: Any) -> GenerationConfig:
        """The ``--quick`` preset: small enough for the tests (at most 90 s on 2 cores)."""
        base = {
            "quick": True,
            "samples": 1_000,
            "n_bandwidths": 3,
            "interpolation_steps": 7,
            "conditional_samples": 50,
            "interpolation_pairs": 40,
            "guidance_scales": (1.0, 2.0),
            "flow_hidden": 128,
            "flow_epochs": 4,
        }
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)


@dataclass
class SettingResult:
    """One generator at one setting: its scores and what the report shows of it."""

    generator: str
    setting: str
    bandwidth: float | None
    scores: dict[str, float]
    loglik: float | None
    seconds: float
    grid: np.ndarray  # (n_show, 28, 28) float32: the first samples
    nearest: np.ndarray  # (n_show, 28, 28) uint8: each one's nearest training digit
    automatic: str | None = None  # "scott", "silverman" or "cv" when chosen by a rule


@dataclass
class GenerationResult:
    config: GenerationConfig
    data_source: str
    data_checksum: str
    judge: dict[str, Any]
    models: dict[str, dict[str, Any]]
    calibration: dict[str, dict[str, float]]
    settings: list[SettingResult]
    interpolation: list[dict[str, Any]]
    verdicts: dict[str, str]
    seconds: float
    extras: dict[str, Any] = field(default_factory=dict)


# The autoencoder whose decoder makes each latent generator's images.
RECONSTRUCTIONS_OF = {
    "AE latent + KDE": "ae",
    "AE latent + GMM": "ae",
    "AE latent + class Gaussians": "ae",
    "VAE prior": "vae",
    "VAE latent + GMM": "vae",
    "AE latent + flow": "flow_ae",
}
FLOW = "AE latent + flow"


@dataclass(frozen=True)
class UserGenerator:
    """A generator of the user's, swept, scored and reported beside the built-in ones."""

    label: str
    factory: Callable[[mdata.Dataset, Any], Any]  # (fit data, setting) -> fitted, with sample()
    settings: tuple[Any, ...] = (None,)


USER_GENERATORS: dict[str, UserGenerator] = {}


def register_generator(
    label: str, factory: Callable[[mdata.Dataset, Any], Any], settings: Sequence[Any] = (None,)
) -> None:
    """Add a generator of your own to the generation study (and ``mnistlab study generation``
    run from the same Python process).

    factory(data, setting) gets the training data set (``data.x_train``, ``data.y_train``) and
    one of ``settings``; it returns a fitted object whose ``sample(n, random_state)`` gives
    images in any layout ``mnistlab.images.as_images`` takes. Each setting is a row of the
    study, like a KDE bandwidth. ``unregister_generator(label)`` takes it out again.
    """
    if not label or label in RECONSTRUCTIONS_OF or label == FLOW:
        raise ValueError(f"choose another label than {label!r}: it is empty or built in")
    USER_GENERATORS[label] = UserGenerator(label, factory, tuple(settings) or (None,))


def unregister_generator(label: str) -> None:
    USER_GENERATORS.pop(label, None)


def _user_rows(fit_data: mdata.Dataset) -> list[tuple]:
    """Plan rows of the users' generators (their own sample() gives float32 (n, 28, 28))."""
    rows = []
    for g in USER_GENERATORS.values():
        for setting in g.settings:
            rows.append(
                (
                    g.label,
                    "" if setting is None else str(setting),
                    None,
                    None,
                    lambda g=g, setting=setting: _Checked(g.factory(fit_data, setting)),
                    None,
                )
            )
    return rows


class _Checked:
    """A user's generator whose samples pass through the one image normaliser."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def sample(self, n: int, random_state: int) -> np.ndarray:
        return as_images(self.inner.sample(n, random_state=random_state), "samples", min_count=n)

    def loglik(self, x: np.ndarray) -> float | None:
        fn = getattr(self.inner, "loglik", None) or getattr(self.inner, "score", None)
        return None if fn is None else fn(x)


def _train_config(name: str, config: GenerationConfig) -> TrainConfig | None:
    if not config.quick:
        return None  # the model's default, tuned to meet the speed targets
    # Small batches: more steps in the two quick epochs (batch 128 leaves the models untrained).
    return default_train_config(name, epochs=2, batch_size=32, seed=config.seed)


def run(
    config: GenerationConfig, data_dir: str | Path | None = None, *, progress: bool = True
) -> GenerationResult:
    """Run the whole study and return its results; writes nothing but the model cache."""
    t0 = time.perf_counter()
    data = mdata.load(data_dir)
    fit_data = data.subset(n_train=config.fit_images) if config.fit_images else data
    log = _logger(progress)

    log("judge: loading")
    judge, judge_meta = store.load_judge(data, progress=progress)
    scorer = metrics.Scorer(judge, data, judge_id=judge_meta["judge_id"], progress=progress)
    log("calibration on real data")
    calibration = scorer.calibration_summary(n=min(10_000, max(2_000, config.samples)))

    trained = {}
    for key, name, model_config in (
        ("ae", "ae", {"latent_dim": config.latent_dim}),
        ("vae", "vae", {"latent_dim": config.latent_dim}),
        ("flow_ae", "ae", FLOW_AE),
    ):
        log(f"{key}: training or loading from the cache")
        model, meta = store.get_trained(
            name,
            fit_data,
            model_config,
            _train_config(name, config),
            retrain=config.retrain,
            progress=progress,
        )
        trained[key] = (model, meta)
    ae, vae, flow_ae = trained["ae"][0], trained["vae"][0], trained["flow_ae"][0]

    x_fit, y_fit = fit_data.x_train, fit_data.y_train
    # Held-out log-likelihoods are measured on test digits: neither the generators (fitted on
    # the training set) nor the autoencoders (trained on it) ever saw them.
    x_val = data.x_test[: 500 if config.quick else 1_000]

    settings: list[SettingResult] = []
    z_ae = gen.encode(ae, x_fit)  # (n_train, latent_dim): the AE generators' shared codes
    # A latent generator can at best return its decoder's reconstructions of the training digits:
    # each one's samples are also compared with those (Chadebec et al. 2022 report both).
    log("reconstructions of the training digits")
    z_flow = gen.encode(flow_ae, x_fit)
    recon_refs = {
        "ae": scorer.descriptors(models.decode(ae, z_ae)),
        "vae": scorer.descriptors(models.decode(vae, gen.encode(vae, x_fit))),
        "flow_ae": scorer.descriptors(models.decode(flow_ae, z_flow)),
    }
    # The floor of the flow: its decoder's reconstructions of the test digits, scored as samples.
    floor = scorer.score(models.decode(flow_ae, gen.encode(flow_ae, data.x_test))).as_dict()
    log("flow: training or loading from the cache")
    flow_base = gen.LatentFlow(
        flow_ae,
        guidance=1.0,
        hidden=config.flow_hidden,
        epochs=config.flow_epochs,
        random_state=config.seed,
    ).fit_latents(z_flow, y_fit)
    plan = _plan(config, ae, vae, z_ae, x_fit, y_fit, x_val)
    plan += [
        (FLOW, f"w={w:g}", None, None, lambda w=w: flow_base.with_guidance(w), None)
        for w in config.guidance_scales
    ]
    plan += _user_rows(fit_data)
    bar = progress_bar(total=len(plan), desc="generators", unit="setting", enabled=progress)
    done: dict[tuple[str, float], SettingResult] = {}
    for name, setting, bandwidth, automatic, make, loglik in plan:
        if bandwidth is not None and (name, bandwidth) in done:
            # A rule that picks a grid value (cross-validation chooses from the grid) gives the
            # same samples as that grid setting, with the same seed: reuse its scores.
            twin = done[(name, bandwidth)]
            settings.append(
                dataclasses.replace(twin, setting=setting, automatic=automatic, seconds=0.0)
            )
            bar.update()
            continue
        start = time.perf_counter()
        generator = make()
        images = generator.sample(config.samples, random_state=config.seed)
        own = RECONSTRUCTIONS_OF.get(name)
        scores = scorer.score(images, copies_of=recon_refs[own] if own else None)
        if loglik is None:
            loglik = _loglik(generator, x_val)
        settings.append(
            SettingResult(
                generator=name,
                setting=setting,
                bandwidth=bandwidth,
                scores=scores.as_dict(),
                loglik=loglik,
                seconds=time.perf_counter() - start,
                grid=images[:40],
                nearest=data.x_train[scores.per_image["nn_index"][:10]],
                automatic=automatic,
            )
        )
        if bandwidth is not None:
            done[(name, bandwidth)] = settings[-1]
        bar.set_postfix_str(f"{name} {setting} Q={scores.quality:.2f} N={scores.novelty:.2f}")
        bar.update()
    bar.close()

    # Brief 001's conditional sampling ("500 eights"): ten samples of each digit, and how many
    # of them the judge reads as the digit asked for.
    class_gen = gen.ClassConditionalGaussian(ae).fit_latents(z_ae, y_fit)
    per_digit = np.stack(
        [class_gen.sample(config.conditional_samples, config.seed, digit=k) for k in range(10)]
    )  # (10, n, 28, 28)
    probs, _ = models.judge_outputs(judge, per_digit.reshape(-1, 28, 28))
    asked = np.repeat(np.arange(10), config.conditional_samples)
    conditional = {
        "grid": per_digit[:, :10],
        "accuracy_per_digit": [
            float(v) for v in (probs.argmax(1) == asked).reshape(10, -1).mean(1)
        ],
        "samples_per_digit": config.conditional_samples,
    }
    conditional_flow = {}
    for w in config.guidance_scales:
        flow_digits = np.stack(
            [
                flow_base.with_guidance(w).sample(config.conditional_samples, config.seed, digit=k)
                for k in range(10)
            ]
        )
        probs, _ = models.judge_outputs(judge, flow_digits.reshape(-1, 28, 28))
        conditional_flow[f"w={w:g}"] = {
            "grid": flow_digits[:, :10],
            "accuracy_per_digit": [
                float(v) for v in (probs.argmax(1) == asked).reshape(10, -1).mean(1)
            ],
            "samples_per_digit": config.conditional_samples,
        }

    log("interpolation")
    interpolation = _interpolate(data, ae, vae, judge, config)
    interp_stats = interpolation_stats(data, ae, vae, judge, config)
    result = GenerationResult(
        config=config,
        data_source=data.source,
        data_checksum=data.checksum,
        judge=judge_meta,
        models={k: _model_summary(m) for k, (_, m) in trained.items()},
        calibration=calibration,
        settings=settings,
        interpolation=interpolation,
        verdicts={},
        seconds=0.0,
        extras={
            "conditional": conditional,
            "conditional_flow": conditional_flow,
            "flow": {
                "floor": floor,
                "autoencoder": dict(FLOW_AE),
                "train_seconds": float(flow_base.train_seconds_),
                "hidden": config.flow_hidden,
                "epochs": config.flow_epochs,
                "final_loss": float(flow_base.losses_[-1]),
            },
            "interpolation_stats": interp_stats,
        },
    )
    result.verdicts = verdicts(result)
    result.seconds = time.perf_counter() - t0
    return result


def _logger(progress: bool):
    def log(message: str) -> None:
        if progress:
            progress_log(f"[generation] {message}")

    return log


def _model_summary(meta: dict[str, Any]) -> dict[str, Any]:
    keep = ("model", "config", "test", "seed", "path", "train_seconds", "cached")
    return {k: meta[k] for k in keep if k in meta}


def _loglik(generator: Any, x_val: np.ndarray) -> float | None:
    try:
        value = generator.loglik(x_val)
    except (NotImplementedError, AttributeError):  # a flow's density needs an ODE trace
        return None
    return None if value is None else float(value)


def _plan(config, ae, vae, z_ae, x_fit, y_fit, x_val) -> list[tuple]:
    """Every (generator, setting, bandwidth, rule, factory, held-out log-likelihood) to run; the
    factories take no argument and return fitted generators.

    Each density model is fitted once (the PCA, the encodings); a bandwidth sweep reuses the fit
    through ``with_bandwidth``, which shares the fitted arrays, and gets its held-out
    log-likelihoods from one ``loglik_sweep`` (the distances to the centres computed once:
    ``make bench`` measured 1.6 s for ten bandwidths in pixel space, against 0.57 s for each).
    The other generators' log-likelihood is None here, computed after sampling.
    """
    seed = config.seed
    plan: list[tuple] = []

    def kde_rows(name: str, base) -> None:
        points = base.points_  # (n_train, d): the points the KDE lives on
        grid = [float(h) for h in gen.bandwidth_grid(points, n=config.n_bandwidths)]
        rules = {"scott": gen.scott(points), "silverman": gen.silverman(points)}
        if not config.quick:
            rules["cv"] = gen.cv_bandwidth(points, grid, random_state=seed)
        rules = {rule: float(h) for rule, h in rules.items()}
        every = grid + list(rules.values())
        lls = dict(zip(every, base.loglik_sweep(x_val, every), strict=True))
        for bw in grid:
            plan.append(
                (name, f"h={bw:.3g}", bw, None, lambda bw=bw: base.with_bandwidth(bw), lls[bw])
            )
        for rule, bw in rules.items():
            plan.append(
                (
                    name,
                    f"{rule} (h={bw:.3g})",
                    bw,
                    rule,
                    lambda bw=bw: base.with_bandwidth(bw),
                    lls[bw],
                )
            )

    kde_rows("pixel KDE", gen.PixelKDE().fit(x_fit))  # the lecture's baseline
    kde_rows("PCA + KDE", gen.PCAKDE(n_components=config.pca_components).fit(x_fit))  # brief 000
    kde_rows("AE latent + KDE", gen.LatentKDE(ae).fit_latents(z_ae))  # brief 000

    k = config.gmm_components
    z_vae = gen.encode(vae, x_fit)  # posterior means
    plan += [
        (
            "AE latent + GMM",
            f"{k} components",
            None,
            None,
            lambda: gen.LatentGMM(ae, n_components=k, random_state=seed).fit_latents(z_ae),
            None,
        ),
        (
            "AE latent + class Gaussians",
            "10 classes",
            None,
            None,
            lambda: gen.ClassConditionalGaussian(ae).fit_latents(z_ae, y_fit),
            None,
        ),
        ("VAE prior", "N(0, I)", None, None, lambda: gen.VAEPrior(vae).fit(), None),
        (
            "VAE latent + GMM",
            f"{k} components",
            None,
            None,
            lambda: gen.LatentGMM(vae, n_components=k, random_state=seed).fit_latents(z_vae),
            None,
        ),
    ]
    return plan


def _slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation between latents a and b (d,) at times t (T,) -> (T, d)."""
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    cos = np.clip(np.dot(a / na, b / nb), -1.0, 1.0)
    omega = np.arccos(cos)
    if omega < 1e-6:
        return (1 - t)[:, None] * a + t[:, None] * b
    so = np.sin(omega)
    return (np.sin((1 - t) * omega) / so)[:, None] * a + (np.sin(t * omega) / so)[:, None] * b


def _paths(xa: np.ndarray, xb: np.ndarray, ae, vae, t: np.ndarray) -> dict[str, np.ndarray]:
    """The four interpolation paths between uint8 digits xa and xb (P, 28, 28) at times t (T,):
    each (P, T, 28, 28) float32 in [0, 1]."""
    p, n_t = len(xa), len(t)
    fa, fb = mdata.to_float(xa).reshape(p, 1, 28, 28), mdata.to_float(xb).reshape(p, 1, 28, 28)
    tt = t[None, :, None, None]
    out = {"pixel": ((1 - tt) * fa + tt * fb).astype(np.float32)}
    za, zb = models.encode(ae, xa), models.encode(ae, xb)  # (P, d)
    z = (1 - t)[None, :, None] * za[:, None] + t[None, :, None] * zb[:, None]  # (P, T, d)
    out["AE latent"] = models.decode(ae, z.reshape(p * n_t, -1)).reshape(p, n_t, 28, 28)
    va, vb = models.encode(vae, xa), models.encode(vae, xb)
    v = (1 - t)[None, :, None] * va[:, None] + t[None, :, None] * vb[:, None]
    out["VAE latent (linear)"] = models.decode(vae, v.reshape(p * n_t, -1)).reshape(p, n_t, 28, 28)
    sv = np.stack([_slerp(a, b, t) for a, b in zip(va, vb, strict=True)]).astype(np.float32)
    out["VAE latent (spherical)"] = models.decode(vae, sv.reshape(p * n_t, -1)).reshape(
        p, n_t, 28, 28
    )
    return out


def _interpolate(data, ae, vae, judge, config: GenerationConfig) -> list[dict[str, Any]]:
    """Pixel, AE-latent and VAE-latent (linear and spherical) paths between test digits: the
    first test digit of each class of INTERPOLATION_PAIRS, shown as strips in the report."""
    t = np.linspace(0.0, 1.0, config.interpolation_steps)
    rows = []
    for a_digit, b_digit in INTERPOLATION_PAIRS:
        ia = int(np.flatnonzero(data.y_test == a_digit)[0])
        ib = int(np.flatnonzero(data.y_test == b_digit)[0])
        paths = _paths(data.x_test[[ia]], data.x_test[[ib]], ae, vae, t)
        for path, images in paths.items():
            probs, _ = models.judge_outputs(judge, images[0])
            rows.append(
                {
                    "pair": f"{a_digit}->{b_digit}",
                    "path": path,
                    "t": t.tolist(),
                    "images": np.asarray(images[0], dtype=np.float32),
                    "quality": metrics.quality(probs).tolist(),
                    "predicted": probs.argmax(1).tolist(),
                }
            )
    return rows


def interpolation_stats(data, ae, vae, judge, config: GenerationConfig) -> dict[str, dict]:
    """The judge along every path, over ``config.interpolation_pairs`` seeded random pairs of
    test digits from two different classes.

    For each path: ``end_quality``, the mean quality of the weaker endpoint; ``min_quality``, the
    mean of the lowest quality between the endpoints; ``dip``, the mean of (weaker endpoint -
    lowest in between), how far the path sinks below its own ends; ``third_digit``, the share of
    in-between images the judge reads as neither end's digit.
    """
    rng = np.random.default_rng([config.seed, 17])
    n = config.interpolation_pairs
    ia = rng.integers(0, len(data.y_test), size=4 * n)
    ib = rng.integers(0, len(data.y_test), size=4 * n)
    keep = data.y_test[ia] != data.y_test[ib]
    ia, ib = ia[keep][:n], ib[keep][:n]
    t = np.linspace(0.0, 1.0, config.interpolation_steps)
    ya, yb = data.y_test[ia].astype(np.int64), data.y_test[ib].astype(np.int64)
    out = {}
    for path, images in _paths(data.x_test[ia], data.x_test[ib], ae, vae, t).items():
        probs, _ = models.judge_outputs(judge, images.reshape(-1, 28, 28))
        q = metrics.quality(probs).reshape(len(ia), len(t))  # (P, T)
        pred = probs.argmax(1).reshape(len(ia), len(t))
        ends = q[:, [0, -1]].min(1)
        inner = q[:, 1:-1].min(1)
        third = (pred[:, 1:-1] != ya[:, None]) & (pred[:, 1:-1] != yb[:, None])
        out[path] = {
            "pairs": len(ia),
            "end_quality": float(ends.mean()),
            "min_quality": float(inner.mean()),
            "dip": float((ends - inner).mean()),
            "third_digit": float(third.mean()),
        }
    return out


# ---------------------------------------------------------------------------------------------
# Verdicts: each answers one question of brief 000 from the numbers of this run.


def balance(quality: float, novelty: float, novelty_ref: float) -> float:
    """Harmonic mean of quality and novelty relative to real test digits, capped at 1.

    A sample as new as a fresh real digit (novelty >= novelty_ref) counts as fully new: novelty
    beyond that of real digits is not rewarded, it only means the samples leave the digits'
    manifold. 1 = as sure and as new as real digits; 0 = unreadable or copies.
    """
    rel = min(novelty / novelty_ref, 1.0) if novelty_ref > 0 else 0.0
    return 0.0 if quality + rel == 0 else 2 * quality * rel / (quality + rel)


def novelty_ref(result: GenerationResult) -> float:
    """The novelty of real test digits against the training set (about 0.5 by construction)."""
    return float(result.calibration.get("test vs train", {}).get("novelty", 0.5))


def best_setting(result: GenerationResult, generator: str) -> SettingResult | None:
    """The setting with the highest ``balance`` of quality and novelty."""
    rows = [s for s in result.settings if s.generator == generator]
    if not rows:
        return None
    ref = novelty_ref(result)
    return max(rows, key=lambda s: balance(s.scores["quality"], s.scores["novelty"], ref))


def verdicts(result: GenerationResult) -> dict[str, str]:
    """Short answers to brief 000's questions, written from the numbers."""
    ref = result.calibration.get("test vs train", {})
    q_ref, n_ref = ref.get("quality", float("nan")), ref.get("novelty", float("nan"))
    out = {}

    def rows(name):
        return sorted(
            (s for s in result.settings if s.generator == name and s.automatic is None),
            key=lambda s: s.bandwidth or 0.0,
        )

    # 1. Does the KDE copy its training digits?
    lines = []
    for name in ("pixel KDE", "PCA + KDE"):
        r = rows(name)
        if not r:
            continue
        lo, hi = r[0], r[-1]
        lines.append(
            f"{name}: at the smallest bandwidth (h={lo.bandwidth:.3g}) novelty is "
            f"{lo.scores['novelty']:.3f} with {100 * lo.scores['near_copy_rate']:.1f}% near-copies "
            f"and quality {lo.scores['quality']:.3f}; at the largest (h={hi.bandwidth:.3g}) "
            f"novelty rises to {hi.scores['novelty']:.3f} while quality falls to "
            f"{hi.scores['quality']:.3f}."
        )
    r = rows("AE latent + KDE")
    if r and "recon_near_copy_rate" in r[0].scores:
        lo = r[0]
        lines.append(
            f"AE latent + KDE: at the smallest bandwidth (h={lo.bandwidth:.3g}) "
            f"{100 * lo.scores['recon_near_copy_rate']:.1f}% of its samples are near-copies of the "
            f"autoencoder's own reconstructions of training digits "
            f"({100 * lo.scores['near_copy_rate']:.1f}% of the training digits themselves)."
        )
    copies = any(r[0].scores["novelty"] < 0.5 * n_ref for r in map(rows, ("pixel KDE",)) if r)
    lead = (
        "Yes: at small bandwidths the KDE mostly returns its training digits with a little noise."
        if copies
        else "Not at the bandwidths tried: even the smallest ones move away from the training set."
    )
    out["Does the KDE copy?"] = (
        f"{lead} Real test digits score quality {q_ref:.3f} and novelty {n_ref:.3f}. "
        + " ".join(lines)
    )

    # 2. Does the autoencoder help?
    best = {n: best_setting(result, n) for n in ("PCA + KDE", "AE latent + KDE", "pixel KDE")}
    if best["PCA + KDE"] and best["AE latent + KDE"]:
        p, a = best["PCA + KDE"], best["AE latent + KDE"]
        bp = balance(p.scores["quality"], p.scores["novelty"], n_ref)
        ba = balance(a.scores["quality"], a.scores["novelty"], n_ref)
        better_balance, better_fid = ba > bp, a.scores["fid"] < p.scores["fid"]
        if better_balance and better_fid:
            lead = "Yes, on both counts"
        elif not better_balance and not better_fid:
            lead = "No, on both counts"
        else:
            lead = (
                "Mixed: better on the balance of quality and novelty, worse on FID"
                if better_balance
                else "Mixed: better on FID, worse on the balance of quality and novelty"
            )
        out["Does the autoencoder help?"] = (
            f"{lead}: at its best setting ({a.setting}) the autoencoder's latent KDE reaches "
            f"quality {a.scores['quality']:.3f} and novelty {a.scores['novelty']:.3f} (balance "
            f"{ba:.3f}, FID {a.scores['fid']:.1f}), against {p.scores['quality']:.3f} / "
            f"{p.scores['novelty']:.3f} (balance {bp:.3f}, FID {p.scores['fid']:.1f}) for the PCA "
            f"KDE at its best ({p.setting})."
        )

    # 3. Which bandwidth?
    parts = []
    for name in ("pixel KDE", "PCA + KDE", "AE latent + KDE"):
        b = best[name] if name in best else best_setting(result, name)
        if b is None:
            continue
        autos = {s.automatic: s for s in result.settings if s.generator == name and s.automatic}
        auto_txt = ", ".join(
            f"{k} picks h={s.bandwidth:.3g} (Q {s.scores['quality']:.2f}, N "
            f"{s.scores['novelty']:.2f})"
            for k, s in autos.items()
        )
        sweep = rows(name)
        edge = ""
        if len(sweep) > 2 and b.automatic is None and (b is sweep[0] or b is sweep[-1]):
            end = "smallest" if b is sweep[0] else "largest"
            inner = sweep[1] if b is sweep[0] else sweep[-2]
            gap = abs(
                balance(b.scores["quality"], b.scores["novelty"], n_ref)
                - balance(inner.scores["quality"], inner.scores["novelty"], n_ref)
            )
            same = "the same to three decimals" if gap < 0.0005 else f"within {gap:.3f}"
            edge = (
                f" (the {end} bandwidth of the grid, where the sweep has gone flat: the next "
                f"bandwidth scores {same})"
                if gap < 0.002
                else f" (the {end} bandwidth of the grid: the optimum may lie beyond it)"
            )
        parts.append(
            f"{name}: the best balance of quality and novelty is at {b.setting}{edge} "
            f"(Q {b.scores['quality']:.2f}, N {b.scores['novelty']:.2f})"
            + (f"; {auto_txt}" if auto_txt else "")
            + "."
        )
    out["Which bandwidth?"] = _bandwidth_trend(
        {n: rows(n) for n in ("pixel KDE", "PCA + KDE", "AE latent + KDE")}
    ) + " ".join(parts)

    # 4. Which generator comes closest to real digits?
    ranked = sorted(
        (best_setting(result, n) for n in dict.fromkeys(s.generator for s in result.settings)),
        key=lambda s: s.scores["fid"],
    )
    top = ranked[0]
    out["Which generator is closest to real digits?"] = (
        f"By FID in the judge's feature space, {top.generator} ({top.setting}) with FID "
        f"{top.scores['fid']:.1f}, precision {top.scores['precision']:.2f}, recall "
        f"{top.scores['recall']:.2f}, diversity {top.scores['diversity']:.2f}. The ranking: "
        + ", ".join(f"{s.generator} {s.scores['fid']:.1f}" for s in ranked)
        + "."
    )

    # 5. Interpolation: does pixel space dip midway?
    stats = result.extras.get("interpolation_stats") or {}
    if "pixel" in stats and len(stats) > 1:
        latent = {k: v for k, v in stats.items() if k != "pixel"}
        px = stats["pixel"]
        txt = "; ".join(
            f"{k}: lowest quality {v['min_quality']:.2f}, dip {v['dip']:.2f}, "
            f"{100 * v['third_digit']:.0f}% read as a third digit"
            for k, v in stats.items()
        )
        gaps = [px["dip"] - v["dip"] for v in latent.values()]  # > 0: the cross-fade dips deeper
        m = INTERPOLATION_MARGIN
        if min(gaps) > m:
            lead = (
                "Yes: the pixel cross-fade sinks further below its own endpoints than every "
                f"latent path (by at least {min(gaps):.2f}), which the decoder keeps on "
                "digit-like images"
            )
        elif max(gaps) < -m:
            lead = (
                "Not by this judge: the pixel cross-fade sinks less below its endpoints than "
                "every latent path. The judge reads a superposition of two digits surely as one "
                "of them, while a decoded midpoint can be a blurred shape it is unsure of"
            )
        elif all(abs(g) <= m for g in gaps):
            lead = (
                "About equally, by this judge: the dips of the cross-fade and of the latent paths "
                f"differ by {min(gaps):+.2f} to {max(gaps):+.2f}, within the {m:.2f} this study "
                "counts as equal. The judge reads a superposition of two digits fairly surely as "
                "one of them; the strips show what the number hides, a cross-fade that is two "
                "digits at once"
            )
        else:
            lead = (
                "Mixed: the pixel cross-fade dips deeper than some latent paths and less than "
                "others"
            )
        third = max(latent.values(), key=lambda v: v["third_digit"])["third_digit"]
        if third > 2 * px["third_digit"] and third > 0.05:
            lead += (
                f". The latent paths pass through a third digit more often (up to "
                f"{100 * third:.0f}% of the in-between images, against "
                f"{100 * px['third_digit']:.0f}% for the cross-fade): they cross other classes' "
                "regions of the code, as a morph from 7 to 2 may pass a 3"
            )
        out["Can we interpolate in latent space?"] = (
            f"{lead}. Over {px['pairs']} random pairs of test digits from different classes "
            f"({result.config.interpolation_steps} steps; the dip is the weaker endpoint's "
            f"quality minus the lowest one in between): {txt}."
        )
    flow_answer = flow_verdict(result)
    if flow_answer:
        out["Does a flow pass for real?"] = flow_answer
    return out


def flow_targets(result: GenerationResult, scores: dict[str, float]) -> list[tuple[str, bool]]:
    """Issue 11's targets for one setting's scores: (what was measured against what, met)."""
    real = result.calibration.get("test vs train", {})
    half = result.calibration.get("half vs half", {})
    fid_floor = half.get("fid", float("nan"))
    checks = [
        (f"precision {scores['precision']:.3f} (target >= 0.9)", scores["precision"] >= 0.9),
        (f"recall {scores['recall']:.3f} (>= 0.85)", scores["recall"] >= 0.85),
        (
            f"FID {scores['fid']:.2f} (<= 5 x real half vs half {fid_floor:.2f})",
            scores["fid"] <= 5 * fid_floor,
        ),
        (
            f"quality {scores['quality']:.3f} (>= real {real.get('quality', 0):.3f} - 0.01)",
            scores["quality"] >= real.get("quality", 1) - 0.01,
        ),
        (
            f"novelty {scores['novelty']:.3f} (within 0.05 of real {real.get('novelty', 0):.3f})",
            abs(scores["novelty"] - real.get("novelty", 0.5)) <= 0.05,
        ),
        (
            f"near-copy rate {scores['near_copy_rate']:.3f} (<= 2 x real "
            f"{real.get('near_copy_rate', 0):.3f})",
            scores["near_copy_rate"] <= 2 * real.get("near_copy_rate", 0),
        ),
    ]
    return checks


def flow_verdict(result: GenerationResult) -> str:
    """Whether the flow's best setting meets every target; where not, what stands in the way."""
    rows = [s for s in result.settings if s.generator == FLOW]
    if not rows:
        return ""
    best = max(rows, key=lambda r: sum(ok for _, ok in flow_targets(result, r.scores)))
    checks = flow_targets(result, best.scores)
    missed = [text for text, ok in checks if not ok]
    met = [text for text, ok in checks if ok]
    head = "Yes" if not missed else f"Not yet: {len(missed)} of {len(checks)} targets missed"
    text = f"{head} at its best setting ({best.setting}). Missed: {'; '.join(missed) or 'none'}."
    if met:
        text += f" Met: {'; '.join(met)}."
    floor = result.extras.get("flow", {}).get("floor")
    if floor:
        sharpest = min(rows, key=lambda r: r.scores["fid"])
        text += (
            f" Its decoder's own reconstructions of the test digits reach FID {floor['fid']:.2f}"
            f" (precision {floor['precision']:.3f}, recall {floor['recall']:.3f}); the flow's "
            f"lowest FID is {sharpest.scores['fid']:.2f} ({sharpest.setting}). "
        )
        if sharpest.scores["fid"] <= 1.25 * floor["fid"]:
            text += (
                "The flow is already as close to real digits as its decoder's reconstructions: "
                "the FID target needs a sharper decoder, not a better flow."
            )
        else:
            text += "The flow is still short of its decoder: a better flow would gain here."
    cf = result.extras.get("conditional_flow", {}).get(best.setting)
    if cf:
        acc = cf["accuracy_per_digit"]
        text += (
            f" Asked for one digit at {best.setting}, the judge reads {100 * min(acc):.1f}% to "
            f"{100 * max(acc):.1f}% of the samples as the digit asked for (target >= 98%)."
        )
    return text


def _bandwidth_trend(sweeps: dict[str, list[SettingResult]]) -> str:
    """One sentence on how quality and novelty move as the bandwidth grows, read off the sweeps
    (the sign of Spearman's rank correlation with the bandwidth, pooled over the KDEs)."""
    from scipy.stats import spearmanr

    rho = {"quality": [], "novelty": []}
    for sweep in sweeps.values():
        if len(sweep) < 3:
            continue
        h = [s.bandwidth for s in sweep]
        for key in rho:
            values = [s.scores[key] for s in sweep]
            if max(values) > min(values):  # a constant metric has no rank correlation
                rho[key].append(float(spearmanr(h, values).statistic))
    if not rho["quality"] or not rho["novelty"]:
        return ""
    q, n = float(np.mean(rho["quality"])), float(np.mean(rho["novelty"]))

    def word(r: float, up: str, down: str) -> str:
        return up if r > 0.5 else down if r < -0.5 else "does not move steadily"

    q_word, n_word = word(q, "rises", "falls"), word(n, "rises", "falls")
    trade = q < -0.5 and n > 0.5
    return (
        f"As the bandwidth grows, quality {q_word} and novelty {n_word} (mean rank correlation "
        f"with the bandwidth: {q:+.2f} and {n:+.2f})"
        + ("; the choice is a trade-off. " if trade else ". ")
    )


# ---------------------------------------------------------------------------------------------
# Output: report.html, metrics.json, CSV tables and the figures.

SCORE_COLUMNS = (
    "quality",
    "novelty",
    "diversity",
    "fid",
    "precision",
    "recall",
    "density",
    "coverage",
    "near_copy_rate",
)


def settings_rows(result: GenerationResult) -> list[dict[str, Any]]:
    """One flat row per generator and setting: every number the tables show."""
    rows = []
    for s in result.settings:
        row = {"generator": s.generator, "setting": s.setting, "bandwidth": s.bandwidth}
        row.update({k: s.scores[k] for k in SCORE_COLUMNS})
        if "recon_near_copy_rate" in s.scores:  # latent generators only
            row["recon_near_copy_rate"] = s.scores["recon_near_copy_rate"]
        row["balance"] = balance(s.scores["quality"], s.scores["novelty"], novelty_ref(result))
        row["held_out_loglik"] = s.loglik
        row["rule"] = s.automatic or ""
        row["seconds"] = s.seconds
        rows.append(row)
    return rows


HEADLINE_COLUMNS = ("quality", "novelty", "fid", "precision", "recall", "near_copy_rate")


def headline_rows(
    result: GenerationResult, best: dict[str, SettingResult | None]
) -> list[dict[str, Any]]:
    """Real digits first, then each generator at its best setting: the report's first table."""
    rows = [
        {"images": f"real: {name}", "setting": "", **{k: sc.get(k) for k in HEADLINE_COLUMNS}}
        for name, sc in result.calibration.items()
    ]
    rows += [
        {"images": name, "setting": b.setting, **{k: b.scores.get(k) for k in HEADLINE_COLUMNS}}
        for name, b in best.items()
        if b is not None
    ]
    floor = result.extras.get("flow", {}).get("floor")
    if floor:
        rows.append(
            {
                "images": "floor: the flow decoder's reconstructions",
                "setting": "test digits",
                **{k: floor.get(k) for k in HEADLINE_COLUMNS},
            }
        )
    return rows


def calibration_rows(result: GenerationResult) -> list[dict[str, Any]]:
    return [
        {"reference": name, **{k: scores[k] for k in SCORE_COLUMNS if k in scores}}
        for name, scores in result.calibration.items()
    ]


def to_json(result: GenerationResult) -> dict[str, Any]:
    """Every number of the report, for metrics.json."""
    return {
        "study": "generation",
        "config": dataclasses.asdict(result.config),
        "data": {"source": result.data_source, "checksum": result.data_checksum},
        "judge": result.judge,
        "models": result.models,
        "calibration": result.calibration,
        "settings": settings_rows(result),
        "interpolation": [
            {k: v for k, v in row.items() if k != "images"} for row in result.interpolation
        ],
        "interpolation_stats": result.extras.get("interpolation_stats", {}),
        "conditional_sampling": {
            k: v for k, v in result.extras.get("conditional", {}).items() if k != "grid"
        },
        "conditional_flow": {
            setting: {k: v for k, v in c.items() if k != "grid"}
            for setting, c in result.extras.get("conditional_flow", {}).items()
        },
        "flow": result.extras.get("flow", {}),
        "verdicts": result.verdicts,
        "seconds": result.seconds,
    }


def write(result: GenerationResult, out_dir: str | Path) -> Path:
    """Write report.html, metrics.json, settings.csv, calibration.csv and figures/ into out_dir."""
    from mnistlab import __version__
    from mnistlab.report import Report, figures, write_csv, write_json
    from mnistlab.report.html import QUICK_BANNER

    out = Path(out_dir)
    cfg = result.config
    rows = settings_rows(result)

    rep = Report(
        "mnistlab: how good and how new are generated digits?",
        banner=QUICK_BANNER if cfg.quick else "",
        subtitle=(
            f"Generation study on {result.data_source}: {cfg.samples:,} samples per generator and "
            f"setting, seed {cfg.seed}{', quick mode' if cfg.quick else ''}. Judge: "
            f"{result.judge.get('judge_id', '?')}. mnistlab {__version__}, "
            f"{result.seconds:.0f} s."
        ),
    )

    generators = list(dict.fromkeys(s.generator for s in result.settings))
    best = {name: best_setting(result, name) for name in generators}
    rep.section("At a glance")
    rep.table(
        headline_rows(result, best),
        caption="The best setting of each generator (the best balance of quality and novelty) "
        "beside real digits, which set the bar.",
    )
    shown = [b for b in best.values() if b is not None]
    rep.figure(
        figures.sample_grid(
            np.concatenate([b.grid[:10] for b in shown]),
            ncols=10,
            row_labels=[f"{b.generator} ({b.setting})" for b in shown],
        ),
        caption="Ten samples of each generator at its best setting.",
        alt="ten samples of each generator",
    )

    rep.section("Quality against novelty")
    refs = {k: (v["quality"], v["novelty"]) for k, v in result.calibration.items()}
    curves: dict[str, list] = {}
    for s in result.settings:
        if s.automatic is None:
            curves.setdefault(s.generator, []).append(
                (s.scores["quality"], s.scores["novelty"], f"{s.generator} {s.setting}")
            )
    rep.plotly(
        figures.scatter_quality_novelty(curves, refs),
        caption="Each KDE is a curve over its bandwidth sweep; stars are real data. Hover a point "
        "for its setting.",
    )

    rep.section("Answers")
    rep.text("The questions of brief 000; click an answer for the numbers behind it.")
    for question, answer in result.verdicts.items():
        rep.answer(question, answer)
    rep.fold(
        "How the metrics read",
        "**Quality** is how sure the judge classifier is of one class: 1 minus the entropy of its "
        "softmax divided by log 10 (1 = one class at probability 1, 0 = all ten equally likely). "
        "**Novelty** is the distance from a sample to its nearest training digit between the "
        "judge's copy descriptors (which place a moved, blurred or faded training digit next "
        "to its source), calibrated on real test digits: the share of them that lie closer "
        "to the training set. 0 for a copy, 0.5 on average for fresh real digits, 1 farther than "
        "any. A latent generator's samples are also compared with its own decoder's "
        "reconstructions of the training digits. **Diversity** is the entropy of the predicted "
        "classes over log 10. **FID**, "
        "**precision/recall/density/coverage** (k = 5) compare the samples with the real test "
        "digits in the same feature space; the **near-copy rate** is the share of samples closer "
        "to a training digit than 99% of real test digits are.",
    )

    rep.section("The bandwidth sweeps")
    sweeps = {}
    for metric in ("quality", "novelty", "fid"):
        series = {}
        for name in dict.fromkeys(s.generator for s in result.settings):
            pts = [s for s in result.settings if s.generator == name and s.automatic is None]
            if len(pts) > 1 and pts[0].bandwidth is not None:
                series[name] = ([p.bandwidth for p in pts], [p.scores[metric] for p in pts])
        sweeps[metric] = series
    for metric, series in sweeps.items():
        if series:
            rep.plotly(
                figures.line_plot(
                    series,
                    title=f"{metric} against the KDE bandwidth",
                    xlabel="bandwidth (in each KDE's own space)",
                    ylabel=metric,
                    log_x=True,
                    log_y=metric == "fid",
                ),
                caption=f"{metric} over the bandwidth sweep.",
            )

    rep.section("Every generator and setting")
    rep.table(
        rows,
        columns=[
            "generator",
            "setting",
            *SCORE_COLUMNS,
            "recon_near_copy_rate",
            "balance",
            "held_out_loglik",
        ],
        caption=(
            "recon_near_copy_rate: the share of a latent generator's samples that are near-copies "
            "of its own decoder's reconstructions of the training digits. "
            "balance = harmonic mean of quality and novelty / (real digits' novelty), capped at 1: "
            "1 means as sure and as new as real test digits. Held-out log-likelihood per image, in "
            "each model's own space (pixels, PCA or latent), so comparable only within a generator."
        ),
    )

    rep.section("Samples at every setting")
    for name in dict.fromkeys(s.generator for s in result.settings):
        pts = [s for s in result.settings if s.generator == name]
        grid = np.concatenate([p.grid[:10] for p in pts])
        fig = figures.sample_grid(grid, ncols=10, row_labels=[p.setting for p in pts], title=name)
        rep.figure(fig, caption=f"{name}: ten samples per setting.")

    cond = result.extras.get("conditional")
    if cond is not None:
        rep.section("Conditional sampling: digits on demand")
        acc = cond["accuracy_per_digit"]
        rep.figure(
            figures.sample_grid(
                np.asarray(cond["grid"]).reshape(-1, 28, 28),
                ncols=10,
                row_labels=[f"{k} ({100 * a:.0f}%)" for k, a in enumerate(acc)],
                title="AE latent + class Gaussians: ten samples of each digit",
            ),
            caption=(
                "Brief 001's class-conditional Gaussians sample a chosen digit "
                "(ClassConditionalGaussian.sample(n, seed, digit=8)). Beside each row: the share "
                f"of {cond['samples_per_digit']:,} samples of that digit that the judge reads as "
                f"it (mean {100 * float(np.mean(acc)):.1f}%)."
            ),
            alt="ten class-conditional samples of each digit",
        )

    for setting, cf in (result.extras.get("conditional_flow") or {}).items():
        acc = cf["accuracy_per_digit"]
        rep.figure(
            figures.sample_grid(
                np.asarray(cf["grid"]).reshape(-1, 28, 28),
                ncols=10,
                row_labels=[f"{k} ({100 * a:.1f}%)" for k, a in enumerate(acc)],
                title=f"AE latent + flow, guidance {setting}: ten samples of each digit",
            ),
            caption=(
                "The flow asked for each digit (LatentFlow.sample(n, seed, digit=8)). Beside each "
                f"row: the share of {cf['samples_per_digit']:,} samples that the judge reads as "
                f"the digit asked for (mean {100 * float(np.mean(acc)):.1f}%, lowest "
                f"{100 * min(acc):.1f}%)."
            ),
            alt=f"ten flow samples of each digit at guidance {setting}",
        )

    rep.section("Generated digits beside their nearest training digit")
    rep.text(
        "The visual proof of novelty: left of each pair a sample, right the training digit "
        "nearest to it in the judge's feature space."
    )
    for name in dict.fromkeys(s.generator for s in result.settings):
        pts = [s for s in result.settings if s.generator == name and s.automatic is None]
        shown = [pts[0]] if len(pts) == 1 else [pts[0], pts[-1]]
        for s in shown:
            fig = figures.pairs_with_neighbours(
                s.grid[:10], s.nearest[:10], ncols=5, title=f"{name}, {s.setting}"
            )
            rep.figure(fig, caption=f"{name}, {s.setting}")

    rep.section("Interpolation: pixel space against latent space")
    stats = result.extras.get("interpolation_stats") or {}
    if stats:
        rep.table(
            [{"path": k, **v} for k, v in stats.items()],
            caption=(
                "The judge along each kind of path, averaged over random pairs of test digits "
                "from different classes: the weaker endpoint's quality, the lowest quality in "
                "between, the dip (their difference) and the share of in-between images read "
                "as a third digit."
            ),
        )
    rep.text(
        "Each strip goes from one test digit to another; the number under each image is the "
        "judge's quality."
    )
    for pair in dict.fromkeys(r["pair"] for r in result.interpolation):
        rows_i = [r for r in result.interpolation if r["pair"] == pair]
        fig = figures.strip(
            {r["path"]: r["images"] for r in rows_i},
            {r["path"]: r["quality"] for r in rows_i},
            title=f"{pair}",
        )
        rep.figure(fig, caption=f"Interpolation {pair}.")

    rep.section("Models")
    rep.table(
        [
            {"model": k, **{f"test {m}": v for m, v in (meta.get("test") or {}).items()}}
            for k, meta in {"judge": result.judge, **result.models}.items()
        ],
        caption="Test-set figures of the judge and the autoencoders used here.",
    )

    write_json(out / "metrics.json", to_json(result))
    write_csv(out / "settings.csv", rows)
    write_csv(out / "calibration.csv", calibration_rows(result))
    write_csv(
        out / "interpolation.csv",
        [
            {"pair": r["pair"], "path": r["path"], "t": t, "quality": q, "predicted": p}
            for r in result.interpolation
            for t, q, p in zip(r["t"], r["quality"], r["predicted"], strict=True)
        ],
    )
    return rep.write(out, save_figures=True)
