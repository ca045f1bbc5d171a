"""The generation study (brief 000, with briefs 001 and 002's generators).

Fit every generator over its settings, draw samples, score them with the judge's Quality, Novelty
and the metrics beyond the brief, calibrate against real data, sample digits on demand,
interpolate between digits, and answer the brief's questions from the numbers.

The study's shape is ``scaffold``'s: ``run(config, context)`` returns a ``GenerationResult``
(numbers only), ``verdicts`` answers the brief's questions (one function per question),
``numbers``/``tables`` are metrics.json and the CSV files, and ``report`` lays out report.html.
The generators are typed entries (``GeneratorSpec``; ``register_generator`` adds a user's own);
interpolation is library code (``mnistlab.analysis.interpolation``), and so is the rule that
picks a generator's best setting (``mnistlab.analysis.selection``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from mnistlab import data as mdata
from mnistlab import generators as gen
from mnistlab import metrics, models, spread, store
from mnistlab.analysis import interpolation as interp
from mnistlab.analysis import selection
from mnistlab.catalog import FLOW_AE, FLOW_DIGIT_GUIDANCE
from mnistlab.images import as_images
from mnistlab.progress import bar as progress_bar
from mnistlab.report import Report
from mnistlab.studies import scaffold
from mnistlab.studies.scaffold import Context, Verdict, model_summary
from mnistlab.training import TrainConfig, default_train_config

# report.html and the CSV tables beside it, declared below with @PAGE
PAGE = scaffold.Page("mnistlab: how good and how new are generated digits?")
report, tables = PAGE.render, PAGE.tables

# Pairs of test digits to interpolate between (brief 000: "transform a 0 into a 1").
INTERPOLATION_PAIRS = ((0, 1), (4, 9), (3, 8), (7, 2))
# Dips of judge quality (0-1 scale) within this of each other read as "about equal".
INTERPOLATION_MARGIN = 0.05


@dataclass(frozen=True)
class GenerationConfig(scaffold.Quick):
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
    guidance_scales: tuple[float, ...] = (1.0, 1.3, 1.5, 2.0)
    flow_hidden: int = 512
    # 120 epochs on the 96-d codes (measured, seed 0, w=1.25): FID 0.50 against 0.57 after 80
    # (on the earlier 64-d codes, w=1: 0.82 after 40, 0.64 after 80, 0.51 after 160).
    flow_epochs: int = 120
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

    # The --quick preset: small enough for the tests (at most 90 s on 2 cores).
    QUICK: ClassVar[dict[str, Any]] = {
        "samples": 1_000,
        "n_bandwidths": 3,
        "interpolation_steps": 7,
        "conditional_samples": 50,
        "interpolation_pairs": 40,
        "guidance_scales": (1.0, 2.0),
        "flow_hidden": 128,
        "flow_epochs": 4,
    }


# ---------------------------------------------------------------------------------------------
# The generators: typed entries, looked up by the verdicts as objects, never by their labels.


@dataclass(frozen=True)
class GeneratorSpec:
    """One generator of the study, swept over its settings (a group of rows in every table).

    ``key`` is stable (for the built-ins, the name ``mnistlab sample`` knows them by); ``label``
    is how the tables and the report name it; ``decoder`` names the autoencoder ("ae", "vae" or
    "flow_ae") whose reconstructions of the training digits its samples are also compared with
    (None: a model in pixel or PCA space, or a user's generator).
    """

    key: str
    label: str
    family: str  # "kde" (swept over bandwidths), "mixture", "prior", "flow" or "user"
    decoder: str | None = None


PIXEL_KDE = GeneratorSpec("pixel-kde", "pixel KDE", "kde")  # the lecture's baseline
PCA_KDE = GeneratorSpec("pca-kde", "PCA + KDE", "kde")  # brief 000
AE_KDE = GeneratorSpec("ae-kde", "AE latent + KDE", "kde", "ae")  # brief 000
AE_GMM = GeneratorSpec("ae-gmm", "AE latent + GMM", "mixture", "ae")
AE_CLASS_GAUSSIANS = GeneratorSpec(
    "ae-class-gaussians", "AE latent + class Gaussians", "mixture", "ae"
)  # brief 001
VAE_PRIOR = GeneratorSpec("vae-prior", "VAE prior", "prior", "vae")  # brief 002
VAE_GMM = GeneratorSpec("vae-gmm", "VAE latent + GMM", "mixture", "vae")
FLOW = GeneratorSpec("flow", "AE latent + flow", "flow", "flow_ae")  # issue 11
BUILT_IN = (PIXEL_KDE, PCA_KDE, AE_KDE, AE_GMM, AE_CLASS_GAUSSIANS, VAE_PRIOR, VAE_GMM, FLOW)
GENERATORS = {g.key: g for g in BUILT_IN}
KDES = tuple(g for g in BUILT_IN if g.family == "kde")


@dataclass(frozen=True)
class UserGenerator:
    """A generator of the user's, swept, scored and reported beside the built-in ones."""

    label: str
    factory: Callable[[mdata.Dataset, Any], Any]  # (fit data, setting) -> fitted, with sample()
    settings: tuple[Any, ...] = (None,)

    @property
    def spec(self) -> GeneratorSpec:
        return GeneratorSpec(f"user:{self.label}", self.label, "user")


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
    taken = {g.label for g in BUILT_IN} | set(GENERATORS)
    if not label or label in taken:
        raise ValueError(f"choose another label than {label!r}: it is empty or built in")
    USER_GENERATORS[label] = UserGenerator(label, factory, tuple(settings) or (None,))


def unregister_generator(label: str) -> None:
    USER_GENERATORS.pop(label, None)


class _Checked:
    """A user's generator whose samples pass through the one image normaliser."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def sample(self, n: int, random_state: int) -> np.ndarray:
        return as_images(self.inner.sample(n, random_state=random_state), "samples", min_count=n)

    def loglik(self, x: np.ndarray) -> float | None:
        fn = getattr(self.inner, "loglik", None) or getattr(self.inner, "score", None)
        return None if fn is None else fn(x)


# ---------------------------------------------------------------------------------------------
# The result: numbers and the images the report shows, no prose.


@dataclass
class SettingResult:
    """One generator at one setting: its scores and what the report shows of it."""

    spec: GeneratorSpec
    setting: str
    bandwidth: float | None
    scores: dict[str, float]
    loglik: float | None
    seconds: float
    grid: np.ndarray  # (n_show, 28, 28) float32: the first samples
    nearest: np.ndarray  # (n_show, 28, 28) uint8: each one's nearest training digit
    automatic: str | None = None  # "scott", "silverman" or "cv" when chosen by a rule

    @property
    def generator(self) -> str:
        """The generator's label, as the tables print it."""
        return self.spec.label


@dataclass
class Conditional:
    """Digits on demand: samples of each digit asked for, and how many the judge reads as it."""

    grid: np.ndarray  # (10, n_show, 28, 28) float32: the first samples of each digit
    accuracy_per_digit: list[float]  # (10,): the share read as the digit asked for
    samples_per_digit: int

    def numbers(self) -> dict[str, Any]:
        return {
            "accuracy_per_digit": self.accuracy_per_digit,
            "samples_per_digit": self.samples_per_digit,
        }


@dataclass
class FlowFit:
    """The flow's training, and its floor: its decoder's reconstructions of the test digits,
    scored as samples (no latent generator's samples can be sharper than its decoder)."""

    floor: dict[str, float] | None = None
    autoencoder: dict[str, Any] = field(default_factory=dict)
    train_seconds: float = 0.0
    hidden: int = 0
    epochs: int = 0
    final_loss: float | None = None


@dataclass
class BestSamples:
    """Each generator's samples at its best setting so far (the highest ``balance``, the first
    on a tie, as ``best_setting`` chooses), kept while the sweep runs so that the other judge
    scores the very images this run's judge scored instead of drawing them again."""

    novelty_ref: float
    kept: dict[GeneratorSpec, tuple[float, str, np.ndarray]] = field(default_factory=dict)

    def offer(self, setting: SettingResult, images: np.ndarray) -> None:
        score = selection.balance(
            setting.scores["quality"], setting.scores["novelty"], self.novelty_ref
        )
        if setting.spec not in self.kept or score > self.kept[setting.spec][0]:
            self.kept[setting.spec] = (score, setting.setting, images)

    def images(self, spec: GeneratorSpec, setting: str) -> np.ndarray | None:
        """The kept samples of ``spec`` at ``setting``; None where others were kept."""
        _, kept_setting, images = self.kept.get(spec, (0.0, None, None))
        return images if kept_setting == setting else None


@dataclass
class JudgeComparison:
    """The headline rows' images scored by the other judge: the same samples (each generator's
    best setting under this run's judge), and real digits."""

    version: str  # the other judge's version ("v1" beside a v2 run)
    judge_id: str
    rows: list[dict[str, Any]]  # images, setting and the other judge's HEADLINE_COLUMNS


@dataclass
class GenerationResult:
    config: GenerationConfig
    data_source: str
    data_checksum: str
    judge: dict[str, Any]
    calibration: dict[str, dict[str, float]]  # real images' scores: "test vs train", ...
    settings: list[SettingResult]
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    interpolation: list[dict[str, Any]] = field(default_factory=list)  # the example strips
    interpolation_stats: dict[str, dict[str, Any]] = field(default_factory=dict)  # path -> stats
    conditional: Conditional | None = None  # the AE's class Gaussians
    conditional_flow: dict[str, Conditional] = field(default_factory=dict)  # "w=1" -> ...
    flow: FlowFit = field(default_factory=FlowFit)
    judge_comparison: JudgeComparison | None = None
    seconds: float = 0.0


def generators_in(result: GenerationResult) -> list[GeneratorSpec]:
    """The generators of a result, in the order of its rows."""
    return list(dict.fromkeys(s.spec for s in result.settings))


def settings_of(result: GenerationResult, generator: GeneratorSpec | str) -> list[SettingResult]:
    """Every setting of ``generator`` (a spec, or its label), in the order run."""
    if isinstance(generator, str):
        return [s for s in result.settings if s.generator == generator]
    return [s for s in result.settings if s.spec == generator]


def sweep_of(result: GenerationResult, generator: GeneratorSpec) -> list[SettingResult]:
    """The grid settings of ``generator`` (not those a rule chose), by bandwidth."""
    rows = [s for s in settings_of(result, generator) if s.automatic is None]
    return sorted(rows, key=lambda s: s.bandwidth or 0.0)


def novelty_ref(result: GenerationResult) -> float:
    """The novelty of real test digits against the training set (about 0.5 by construction)."""
    return real_novelty(result.calibration)


def real_novelty(calibration: dict[str, dict[str, float]]) -> float:
    """``novelty_ref`` from the calibration rows alone (before the result exists)."""
    return float(calibration.get("test vs train", {}).get("novelty", 0.5))


def best_setting(result: GenerationResult, generator: GeneratorSpec | str) -> SettingResult | None:
    """The setting of ``generator`` (a spec, or its label) with the highest ``balance`` of
    quality and novelty (``selection.best_setting``); None where the run has none."""
    rows = settings_of(result, generator)
    best = selection.best_setting({i: s.scores for i, s in enumerate(rows)}, novelty_ref(result))
    return None if best is None else rows[best]


# ---------------------------------------------------------------------------------------------
# The computation: fit the models, sweep every generator's settings, then digits on demand and
# interpolation.


@dataclass(frozen=True)
class PlanRow:
    """One setting to run: ``make()`` returns the fitted generator."""

    spec: GeneratorSpec
    setting: str
    make: Callable[[], Any]
    bandwidth: float | None = None
    automatic: str | None = None  # the rule that chose the bandwidth, if one did
    loglik: float | None = None  # held-out log-likelihood, where known before sampling (KDEs)


def run(config: GenerationConfig, context: Context) -> GenerationResult:
    """Run the whole study and return its numbers; writes nothing but the model cache."""
    data = context.data
    fit_data = data.subset(n_train=config.fit_images) if config.fit_images else data
    judge = context.judge
    scorer = metrics.Scorer(
        judge, data, judge_id=context.judge_meta["judge_id"], progress=context.progress
    )
    context.log("calibration on real data")
    calibration = scorer.calibration_summary(n=min(10_000, max(2_000, config.samples)))
    coders = fit_autoencoders(config, fit_data, context)
    ae, vae, flow_ae = (coders[k][0] for k in ("ae", "vae", "flow_ae"))
    x_fit, y_fit = fit_data.x_train, fit_data.y_train
    # Held-out log-likelihoods are measured on test digits: neither the generators (fitted on
    # the training set) nor the autoencoders (trained on it) ever saw them.
    x_val = data.x_test[: 500 if config.quick else 1_000]
    z_ae = gen.encode(ae, x_fit)  # (n_train, latent_dim): the AE generators' shared codes
    context.log("reconstructions of the training digits")
    z_flow = gen.encode(flow_ae, x_fit)
    refs, floor = decoder_references(scorer, coders, fit_data, z_ae, z_flow, data.x_test)
    flow_base = fit_flow(config, flow_ae, z_flow, y_fit, context)
    plan = build_plan(config, ae, vae, z_ae, fit_data, x_val, flow_base)
    # Each generator's best samples, for the other judge to score (none without one to ask).
    best = BestSamples(real_novelty(calibration)) if context.other_judge is not None else None
    settings = sweep_settings(plan, config, scorer, refs, data.x_train, x_val, context, best)
    conditional, conditional_flow = conditional_sampling(config, ae, z_ae, y_fit, flow_base, judge)
    strips, stats = interpolation(config, data, ae, vae, judge, context)
    result = GenerationResult(
        config=config,
        data_source=data.source,
        data_checksum=data.checksum,
        judge=context.judge_meta,
        models={k: _model_row(meta) for k, (_, meta) in coders.items()},
        calibration=calibration,
        settings=settings,
        interpolation=strips,
        interpolation_stats=stats,
        conditional=conditional,
        conditional_flow=conditional_flow,
        flow=FlowFit(
            floor=floor,
            autoencoder=dict(FLOW_AE),
            train_seconds=float(flow_base.train_seconds_),
            hidden=config.flow_hidden,
            epochs=config.flow_epochs,
            final_loss=float(flow_base.losses_[-1]),
        ),
    )
    result.judge_comparison = judge_comparison(result, plan, context, best)
    return result


def judge_comparison(
    result: GenerationResult,
    plan: list[PlanRow],
    context: Context,
    best_samples: BestSamples | None = None,
) -> JudgeComparison | None:
    """The headline rows scored by the other judge (v1 beside v2, v2 beside v1): real digits'
    calibration rows, then each generator's best setting under this run's judge: the samples
    the sweep kept (``best_samples``), or drawn again with the same seed. None where the data
    set is not the bundled MNIST (only there is the other judge shipped; elsewhere it would
    have to be trained)."""
    config = result.config
    if context.other_judge is None:
        return None
    model, meta = context.other_judge
    scorer = metrics.Scorer(
        model, context.data, judge_id=meta["judge_id"], progress=context.progress, bootstrap=0
    )
    calibration = scorer.calibration_summary(n=min(10_000, max(2_000, config.samples)))
    rows = [
        {"images": f"real: {name}", "setting": "", **{k: sc.get(k) for k in HEADLINE_COLUMNS}}
        for name, sc in calibration.items()
    ]
    makers = {(row.spec, row.setting): row.make for row in plan}
    for spec in generators_in(result):
        best = best_setting(result, spec)
        if best is None or (spec, best.setting) not in makers:
            continue
        images = best_samples.images(spec, best.setting) if best_samples else None
        if images is None:
            images = makers[(spec, best.setting)]().sample(config.samples, config.seed)
        if not np.array_equal(as_images(images[: len(best.grid)]), best.grid):
            # A user's generator that does not follow its seed: not the same images.
            context.log(f"{spec.label}: not drawn again identically, left out of the side by side")
            continue
        scores = scorer.score(images).as_dict()
        rows.append(
            {
                "images": spec.label,
                "setting": best.setting,
                **{k: scores.get(k) for k in HEADLINE_COLUMNS},
            }
        )
    return JudgeComparison(version=meta["judge_version"], judge_id=meta["judge_id"], rows=rows)


def _train_config(name: str, config: GenerationConfig) -> TrainConfig | None:
    if not config.quick:
        return None  # the model's default, tuned to meet the speed targets
    # Small batches: more steps in the two quick epochs (batch 128 leaves the models untrained).
    return default_train_config(name, epochs=2, batch_size=32, seed=config.seed)


def _model_row(meta: dict[str, Any]) -> dict[str, Any]:
    """A model's summary for metrics.json (this study's has never carried the train config)."""
    return {k: v for k, v in model_summary(meta).items() if k != "train_config"}


def fit_autoencoders(
    config: GenerationConfig, fit_data: mdata.Dataset, context: Context
) -> dict[str, tuple[Any, dict[str, Any]]]:
    """ "ae", "vae" (the briefs' 16-d codes) and "flow_ae" (the flow's sharper 96-d one) ->
    (model, metadata), trained or loaded from the cache."""
    trained = {}
    for key, name, model_config in (
        ("ae", "ae", {"latent_dim": config.latent_dim}),
        ("vae", "vae", {"latent_dim": config.latent_dim}),
        ("flow_ae", "ae", FLOW_AE),
    ):
        context.log(f"{key}: training or loading from the cache")
        trained[key] = store.get_trained(
            name,
            fit_data,
            model_config,
            _train_config(name, config),
            retrain=config.retrain,
            progress=context.progress,
        )
    return trained


RECON_KEPT = 1  # raise when decoding changes: the kept reconstruction descriptors are made again


def decoder_references(
    scorer: metrics.Scorer,
    coders: dict[str, tuple[Any, dict[str, Any]]],
    fit_data: mdata.Dataset,
    z_ae: np.ndarray,
    z_flow: np.ndarray,
    x_test: np.ndarray,
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """(decoder -> copy descriptors of its reconstructions of the training digits, the flow's
    floor: its decoder's reconstructions of the test digits scored as samples).

    A latent generator can at best return its decoder's reconstructions of the training digits:
    each one's samples are also compared with those (Chadebec et al. 2022 report both). The
    descriptors are kept on disk per decoder's weights and training digits (``kept_descriptors``).
    """
    codes = {
        "ae": lambda: z_ae,
        "vae": lambda: gen.encode(coders["vae"][0], fit_data.x_train),
        "flow_ae": lambda: z_flow,
    }
    refs = {}
    for name, code in codes.items():
        model, meta = coders[name]

        def reconstructions(model=model, code=code) -> np.ndarray:
            return models.decode(model, code())

        weights = meta.get("weights_sha256")
        if weights:
            key = f"recon{RECON_KEPT}-{weights[:16]}-{fit_data.checksum[:16]}"
            refs[name] = scorer.kept_descriptors(key, reconstructions, len(fit_data.x_train))
        else:
            refs[name] = scorer.descriptors(reconstructions())
    flow_ae = coders["flow_ae"][0]
    floor = scorer.score(models.decode(flow_ae, gen.encode(flow_ae, x_test))).as_dict()
    return refs, floor


def fit_flow(
    config: GenerationConfig,
    flow_ae: Any,
    z_flow: np.ndarray,
    y_fit: np.ndarray,
    context: Context,
) -> gen.LatentFlow:
    """The flow on the flow autoencoder's codes (guidance 1; ``with_guidance`` sweeps it)."""
    context.log("flow: training or loading from the cache")
    return gen.LatentFlow(
        flow_ae,
        guidance=1.0,
        hidden=config.flow_hidden,
        epochs=config.flow_epochs,
        random_state=config.seed,
    ).fit_latents(z_flow, y_fit)


def build_plan(
    config: GenerationConfig,
    ae: Any,
    vae: Any,
    z_ae: np.ndarray,
    fit_data: mdata.Dataset,
    x_val: np.ndarray,
    flow_base: gen.LatentFlow,
) -> list[PlanRow]:
    """Every setting of every generator, in the tables' order: the KDEs, the mixtures and the
    VAE's prior, the flow over its guidance scales, then the users' generators."""
    x_fit, y_fit = fit_data.x_train, fit_data.y_train
    plan = kde_plan(config, ae, z_ae, x_fit, x_val)
    plan += mixture_plan(config, ae, vae, z_ae, x_fit, y_fit)
    plan += [
        PlanRow(FLOW, f"w={w:g}", lambda w=w: flow_base.with_guidance(w))
        for w in config.guidance_scales
    ]
    return plan + user_plan(fit_data)


def kde_plan(
    config: GenerationConfig, ae: Any, z_ae: np.ndarray, x_fit: np.ndarray, x_val: np.ndarray
) -> list[PlanRow]:
    """The three KDEs over the bandwidth grid and the rules' bandwidths.

    Each density model is fitted once (the PCA, the encodings); a bandwidth sweep reuses the fit
    through ``with_bandwidth``, which shares the fitted arrays, and gets its held-out
    log-likelihoods from one ``loglik_sweep`` (the distances to the centres computed once:
    ``make bench`` measured 1.6 s for ten bandwidths in pixel space, against 0.57 s for each).
    """
    return (
        _kde_rows(PIXEL_KDE, gen.PixelKDE().fit(x_fit), config, x_val)
        + _kde_rows(
            PCA_KDE, gen.PCAKDE(n_components=config.pca_components).fit(x_fit), config, x_val
        )
        + _kde_rows(AE_KDE, gen.LatentKDE(ae).fit_latents(z_ae), config, x_val)
    )


def _kde_rows(spec: GeneratorSpec, base: Any, config: GenerationConfig, x_val: np.ndarray):
    points = base.points_  # (n_train, d): the points the KDE lives on
    grid = [float(h) for h in gen.bandwidth_grid(points, n=config.n_bandwidths)]
    rules = {"scott": gen.scott(points), "silverman": gen.silverman(points)}
    if not config.quick:
        rules["cv"] = gen.cv_bandwidth(points, grid, random_state=config.seed)
    rules = {rule: float(h) for rule, h in rules.items()}
    every = grid + list(rules.values())
    lls = dict(zip(every, base.loglik_sweep(x_val, every), strict=True))

    def row(label: str, bw: float, rule: str | None) -> PlanRow:
        return PlanRow(spec, label, lambda: base.with_bandwidth(bw), bw, rule, lls[bw])

    return [row(f"h={bw:.3g}", bw, None) for bw in grid] + [
        row(f"{rule} (h={bw:.3g})", bw, rule) for rule, bw in rules.items()
    ]


def mixture_plan(
    config: GenerationConfig,
    ae: Any,
    vae: Any,
    z_ae: np.ndarray,
    x_fit: np.ndarray,
    y_fit: np.ndarray,
) -> list[PlanRow]:
    """The mixtures and the VAE's prior, one setting each."""
    k, seed = config.gmm_components, config.seed
    z_vae = gen.encode(vae, x_fit)  # posterior means
    return [
        PlanRow(
            AE_GMM,
            f"{k} components",
            lambda: gen.LatentGMM(ae, n_components=k, random_state=seed).fit_latents(z_ae),
        ),
        PlanRow(
            AE_CLASS_GAUSSIANS,
            "10 classes",
            lambda: gen.ClassConditionalGaussian(ae).fit_latents(z_ae, y_fit),
        ),
        PlanRow(VAE_PRIOR, "N(0, I)", lambda: gen.VAEPrior(vae).fit()),
        PlanRow(
            VAE_GMM,
            f"{k} components",
            lambda: gen.LatentGMM(vae, n_components=k, random_state=seed).fit_latents(z_vae),
        ),
    ]


def user_plan(fit_data: mdata.Dataset) -> list[PlanRow]:
    """The users' generators, each over its own settings."""
    return [
        PlanRow(
            g.spec,
            "" if setting is None else str(setting),
            lambda g=g, setting=setting: _Checked(g.factory(fit_data, setting)),
        )
        for g in USER_GENERATORS.values()
        for setting in g.settings
    ]


def sweep_settings(
    plan: list[PlanRow],
    config: GenerationConfig,
    scorer: metrics.Scorer,
    refs: dict[str, np.ndarray],
    x_train: np.ndarray,
    x_val: np.ndarray,
    context: Context,
    best: BestSamples | None = None,
) -> list[SettingResult]:
    """Sample and score every row of the plan, in order (``best`` keeps each generator's best
    samples)."""
    settings: list[SettingResult] = []
    done: dict[tuple[GeneratorSpec, float], SettingResult] = {}
    bar = progress_bar(total=len(plan), desc="generators", unit="setting", enabled=context.progress)
    for row in plan:
        twin = done.get((row.spec, row.bandwidth)) if row.bandwidth is not None else None
        if twin is not None:
            # A rule that picks a grid value (cross-validation chooses from the grid) gives the
            # same samples as that grid setting, with the same seed: reuse its scores.
            settings.append(
                dataclasses.replace(twin, setting=row.setting, automatic=row.automatic, seconds=0.0)
            )
        else:
            settings.append(measure_setting(row, config, scorer, refs, x_train, x_val, best))
            if row.bandwidth is not None:
                done[(row.spec, row.bandwidth)] = settings[-1]
            sc = settings[-1].scores
            bar.set_postfix_str(
                f"{row.spec.label} {row.setting} Q={sc['quality']:.2f} N={sc['novelty']:.2f}"
            )
        bar.update()
    bar.close()
    return settings


def measure_setting(
    row: PlanRow,
    config: GenerationConfig,
    scorer: metrics.Scorer,
    refs: dict[str, np.ndarray],
    x_train: np.ndarray,
    x_val: np.ndarray,
    best: BestSamples | None = None,
) -> SettingResult:
    """Fit one row's generator, draw ``config.samples`` and score them (and offer them to
    ``best``)."""
    start = time.perf_counter()
    generator = row.make()
    images = generator.sample(config.samples, random_state=config.seed)
    own = row.spec.decoder
    scores = scorer.score(images, copies_of=refs[own] if own else None)
    setting = SettingResult(
        spec=row.spec,
        setting=row.setting,
        bandwidth=row.bandwidth,
        scores=scores.as_dict(),
        loglik=_loglik(generator, x_val) if row.loglik is None else row.loglik,
        seconds=time.perf_counter() - start,
        grid=images[:40],
        nearest=x_train[scores.per_image["nn_index"][:10]],
        automatic=row.automatic,
    )
    if best is not None:
        best.offer(setting, images)
    return setting


def _loglik(generator: Any, x_val: np.ndarray) -> float | None:
    try:
        value = generator.loglik(x_val)
    except (NotImplementedError, AttributeError):  # a flow's density needs an ODE trace
        return None
    return None if value is None else float(value)


def digits_on_demand(generator: Any, judge: Any, n: int, seed: int) -> Conditional:
    """``n`` samples of each digit from a generator that takes ``digit=``, and the share of
    each digit's that the judge reads as the digit asked for."""
    per_digit = np.stack([generator.sample(n, seed, digit=k) for k in range(10)])  # (10, n, 28, 28)
    probs, _ = models.judge_outputs(judge, per_digit.reshape(-1, 28, 28))
    asked = np.repeat(np.arange(10), n)
    right = (probs.argmax(1) == asked).reshape(10, -1).mean(1)  # (10,)
    return Conditional(per_digit[:, :10], [float(v) for v in right], n)


def conditional_sampling(
    config: GenerationConfig,
    ae: Any,
    z_ae: np.ndarray,
    y_fit: np.ndarray,
    flow_base: gen.LatentFlow,
    judge: Any,
) -> tuple[Conditional, dict[str, Conditional]]:
    """Brief 001's conditional sampling ("500 eights"): digits on demand from the AE's class
    Gaussians, and from the flow at every guidance scale ("w=1" -> ...)."""
    class_gen = gen.ClassConditionalGaussian(ae).fit_latents(z_ae, y_fit)
    n, seed = config.conditional_samples, config.seed
    conditional = digits_on_demand(class_gen, judge, n, seed)
    conditional_flow = {
        f"w={w:g}": digits_on_demand(flow_base.with_guidance(w), judge, n, seed)
        for w in config.guidance_scales
    }
    return conditional, conditional_flow


def interpolation(
    config: GenerationConfig,
    data: mdata.Dataset,
    ae: Any,
    vae: Any,
    judge: Any,
    context: Context,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """(the example strips between INTERPOLATION_PAIRS, the statistics over random pairs) of
    the test digits (``mnistlab.analysis.interpolation``)."""
    context.log("interpolation")
    x, y, steps = data.x_test, data.y_test, config.interpolation_steps
    strips = interp.interpolate(x, y, INTERPOLATION_PAIRS, ae, vae, judge, steps)
    stats = interp.interpolation_stats(
        x, y, ae, vae, judge, pairs=config.interpolation_pairs, steps=steps, seed=config.seed
    )
    return strips, stats


# ---------------------------------------------------------------------------------------------
# Verdicts: one function per question of brief 000, each from the numbers of this run. A
# question whose generators (or measurements) the run lacks is answered "not measured".

NOT_MEASURED = "not measured"


def not_measured(question: str, missing: str) -> Verdict:
    """The answer to a question the run has no numbers for: says what is missing."""
    return Verdict(question, NOT_MEASURED, f"Not measured: this run has no {missing}.")


def _missing(result: GenerationResult, *needed: GeneratorSpec) -> str:
    """The labels of the ``needed`` generators that the result has no setting of ("" if none)."""
    return " and ".join(g.label for g in needed if not settings_of(result, g))


def _real(result: GenerationResult) -> tuple[float, float]:
    """Real test digits' (quality, novelty) against the training set; NaN where not measured."""
    ref = result.calibration.get("test vs train", {})
    return ref.get("quality", float("nan")), ref.get("novelty", float("nan"))


def _balance_of(s: SettingResult, n_ref: float) -> float:
    return selection.balance(s.scores["quality"], s.scores["novelty"], n_ref)


def copy_verdict(result: GenerationResult) -> Verdict:
    """Does the KDE copy? Read off the pixel KDE at its smallest bandwidth."""
    question = "Does the KDE copy?"
    if not sweep_of(result, PIXEL_KDE):
        return not_measured(question, f"{PIXEL_KDE.label} bandwidth sweep")
    q_ref, n_ref = _real(result)
    lines = []
    for spec in (PIXEL_KDE, PCA_KDE):
        r = sweep_of(result, spec)
        if not r:
            continue
        lo, hi = r[0], r[-1]
        lines.append(
            f"{spec.label}: at the smallest bandwidth (h={lo.bandwidth:.3g}) novelty is "
            f"{lo.scores['novelty']:.3f} with {100 * lo.scores['near_copy_rate']:.1f}% near-copies "
            f"and quality {lo.scores['quality']:.3f}; at the largest (h={hi.bandwidth:.3g}) "
            f"novelty rises to {hi.scores['novelty']:.3f} while quality falls to "
            f"{hi.scores['quality']:.3f}."
        )
    r = sweep_of(result, AE_KDE)
    if r and "recon_near_copy_rate" in r[0].scores:
        lo = r[0]
        lines.append(
            f"{AE_KDE.label}: at the smallest bandwidth (h={lo.bandwidth:.3g}) "
            f"{100 * lo.scores['recon_near_copy_rate']:.1f}% of its samples are near-copies of the "
            f"autoencoder's own reconstructions of training digits "
            f"({100 * lo.scores['near_copy_rate']:.1f}% of the training digits themselves)."
        )
    copies = sweep_of(result, PIXEL_KDE)[0].scores["novelty"] < 0.5 * n_ref
    lead = (
        "Yes: at small bandwidths the KDE mostly returns its training digits with a little noise."
        if copies
        else "Not at the bandwidths tried: even the smallest ones move away from the training set."
    )
    return Verdict(
        question,
        "yes" if copies else "no",
        f"{lead} Real test digits score quality {q_ref:.3f} and novelty {n_ref:.3f}. "
        + " ".join(lines),
    )


def autoencoder_verdict(result: GenerationResult) -> Verdict:
    """Does the autoencoder help? The AE's latent KDE against the PCA KDE, each at its best."""
    question = "Does the autoencoder help?"
    missing = _missing(result, PCA_KDE, AE_KDE)
    if missing:
        return not_measured(question, missing)
    _, n_ref = _real(result)
    p, a = best_setting(result, PCA_KDE), best_setting(result, AE_KDE)
    bp, ba = _balance_of(p, n_ref), _balance_of(a, n_ref)
    better_balance, better_fid = ba > bp, a.scores["fid"] < p.scores["fid"]
    if better_balance and better_fid:
        finding, lead = "yes", "Yes, on both counts"
    elif not better_balance and not better_fid:
        finding, lead = "no", "No, on both counts"
    elif better_balance:
        finding = "mixed: better balance, worse FID"
        lead = "Mixed: better on the balance of quality and novelty, worse on FID"
    else:
        finding = "mixed: better FID, worse balance"
        lead = "Mixed: better on FID, worse on the balance of quality and novelty"
    return Verdict(
        question,
        finding,
        f"{lead}: at its best setting ({a.setting}) the autoencoder's latent KDE reaches "
        f"quality {a.scores['quality']:.3f} and novelty {a.scores['novelty']:.3f} (balance "
        f"{ba:.3f}, FID {a.scores['fid']:.1f}), against {p.scores['quality']:.3f} / "
        f"{p.scores['novelty']:.3f} (balance {bp:.3f}, FID {p.scores['fid']:.1f}) for the PCA "
        f"KDE at its best ({p.setting})."
        + _lead_spread(a, p, "quality", "quality")
        + _lead_spread(a, p, "novelty", "novelty"),
    )


def bandwidth_trend(sweeps: dict[GeneratorSpec, list[SettingResult]]) -> tuple[str, str]:
    """(finding, sentence): how quality and novelty move as the bandwidth grows, read off the
    sweeps (the sign of Spearman's rank correlation with the bandwidth, pooled over the KDEs);
    ("no trend measured", "") where no sweep has three settings that differ."""
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
        return "no trend measured", ""
    q, n = float(np.mean(rho["quality"])), float(np.mean(rho["novelty"]))

    def word(r: float, up: str, down: str) -> str:
        return up if r > 0.5 else down if r < -0.5 else "does not move steadily"

    q_word, n_word = word(q, "rises", "falls"), word(n, "rises", "falls")
    trade = q < -0.5 and n > 0.5
    return f"quality {q_word}, novelty {n_word}", (
        f"As the bandwidth grows, quality {q_word} and novelty {n_word} (mean rank correlation "
        f"with the bandwidth: {q:+.2f} and {n:+.2f})"
        + ("; the choice is a trade-off. " if trade else ". ")
    )


def _edge_note(best: SettingResult, sweep: list[SettingResult], n_ref: float) -> str:
    """Where the best setting is an end of the grid: whether the sweep has gone flat there."""
    if (
        len(sweep) <= 2
        or best.automatic is not None
        or (best is not sweep[0] and best is not sweep[-1])
    ):
        return ""
    end = "smallest" if best is sweep[0] else "largest"
    inner = sweep[1] if best is sweep[0] else sweep[-2]
    gap = abs(_balance_of(best, n_ref) - _balance_of(inner, n_ref))
    same = "the same to three decimals" if gap < 0.0005 else f"within {gap:.3f}"
    if gap < 0.002:
        return (
            f" (the {end} bandwidth of the grid, where the sweep has gone flat: the next "
            f"bandwidth scores {same})"
        )
    return f" (the {end} bandwidth of the grid: the optimum may lie beyond it)"


def bandwidth_verdict(result: GenerationResult) -> Verdict:
    """Which bandwidth? Each KDE's best setting, the rules' picks, and the trend."""
    question = "Which bandwidth?"
    present = [g for g in KDES if settings_of(result, g)]
    if not present:
        return not_measured(question, " or ".join(g.label for g in KDES))
    _, n_ref = _real(result)
    parts = []
    for spec in present:
        b = best_setting(result, spec)
        autos = {s.automatic: s for s in settings_of(result, spec) if s.automatic}
        auto_txt = ", ".join(
            f"{k} picks h={s.bandwidth:.3g} (Q {s.scores['quality']:.2f}, N "
            f"{s.scores['novelty']:.2f})"
            for k, s in autos.items()
        )
        edge = _edge_note(b, sweep_of(result, spec), n_ref)
        parts.append(
            f"{spec.label}: the best balance of quality and novelty is at {b.setting}{edge} "
            f"(Q {b.scores['quality']:.2f}, N {b.scores['novelty']:.2f})"
            + (f"; {auto_txt}" if auto_txt else "")
            + "."
        )
    finding, trend = bandwidth_trend({g: sweep_of(result, g) for g in KDES})
    return Verdict(question, finding, trend + " ".join(parts))


def closest_verdict(result: GenerationResult) -> Verdict:
    """Which generator comes closest to real digits? The lowest FID among the best settings."""
    question = "Which generator is closest to real digits?"
    if not result.settings:
        return not_measured(question, "generator")
    ranked = sorted(
        (best_setting(result, g) for g in generators_in(result)), key=lambda s: s.scores["fid"]
    )
    top = ranked[0]
    return Verdict(
        question,
        top.generator,
        f"By FID in the judge's feature space, {top.generator} ({top.setting}) with FID "
        f"{top.scores['fid']:.1f}, precision {top.scores['precision']:.2f}, recall "
        f"{top.scores['recall']:.2f}, diversity {top.scores['diversity']:.2f}. The ranking: "
        + ", ".join(f"{s.generator} {s.scores['fid']:.1f}" for s in ranked)
        + "."
        + (_lead_spread(top, ranked[1], "fid", "FID") if len(ranked) > 1 else ""),
    )


def _lead_spread(a: SettingResult, b: SettingResult, key: str, label: str) -> str:
    """Whether a and b differ on ``key`` by more than one run's spread: their 95% bootstrap
    intervals (``Scores.intervals``) apart, or overlapping ("" without intervals)."""
    ia, ib = a.scores.get("ci", {}).get(key), b.scores.get("ci", {}).get(key)
    if not ia or not ib:
        return ""
    apart = not spread.intervals_overlap(tuple(ia), tuple(ib))
    return (
        f" {a.generator}'s {label} ({ia[0]:.2f} to {ia[1]:.2f}, 95% "
        f"bootstrap interval) and {b.generator}'s ({ib[0]:.2f} to {ib[1]:.2f}) "
        + (
            "do not overlap: the difference is larger than the spread of one run."
            if apart
            else "overlap: one run cannot tell these two apart."
        )
    )


def _interpolation_lead(gaps: list[float]) -> tuple[str, str]:
    """(finding, lead) from the pixel path's dip minus each latent path's (> 0: deeper)."""
    m = INTERPOLATION_MARGIN
    if min(gaps) > m:
        return "yes", (
            "Yes: the pixel cross-fade sinks further below its own endpoints than every "
            f"latent path (by at least {min(gaps):.2f}), which the decoder keeps on "
            "digit-like images"
        )
    if max(gaps) < -m:
        return "no", (
            "Not by this judge: the pixel cross-fade sinks less below its endpoints than "
            "every latent path. The judge reads a superposition of two digits surely as one "
            "of them, while a decoded midpoint can be a blurred shape it is unsure of"
        )
    if all(abs(g) <= m for g in gaps):
        return "about equally", (
            "About equally, by this judge: the dips of the cross-fade and of the latent paths "
            f"differ by {min(gaps):+.2f} to {max(gaps):+.2f}, within the {m:.2f} this study "
            "counts as equal. The judge reads a superposition of two digits fairly surely as "
            "one of them; the strips show what the number hides, a cross-fade that is two "
            "digits at once"
        )
    return "mixed", (
        "Mixed: the pixel cross-fade dips deeper than some latent paths and less than others"
    )


def interpolation_verdict(result: GenerationResult) -> Verdict:
    """Can we interpolate in latent space? Does the pixel cross-fade dip deeper midway?"""
    question = "Can we interpolate in latent space?"
    stats = result.interpolation_stats
    if interp.PIXEL not in stats or len(stats) < 2:
        return not_measured(question, "interpolation statistics of pixel and latent paths")
    latent = {k: v for k, v in stats.items() if k != interp.PIXEL}
    px = stats[interp.PIXEL]
    txt = "; ".join(
        f"{k}: lowest quality {v['min_quality']:.2f}, dip {v['dip']:.2f}, "
        f"{100 * v['third_digit']:.0f}% read as a third digit"
        for k, v in stats.items()
    )
    finding, lead = _interpolation_lead([px["dip"] - v["dip"] for v in latent.values()])
    third = max(latent.values(), key=lambda v: v["third_digit"])["third_digit"]
    if third > 2 * px["third_digit"] and third > 0.05:
        lead += (
            f". The latent paths pass through a third digit more often (up to "
            f"{100 * third:.0f}% of the in-between images, against "
            f"{100 * px['third_digit']:.0f}% for the cross-fade): they cross other classes' "
            "regions of the code, as a morph from 7 to 2 may pass a 3"
        )
    return Verdict(
        question,
        finding,
        f"{lead}. Over {px['pairs']} random pairs of test digits from different classes "
        f"({result.config.interpolation_steps} steps; the dip is the weaker endpoint's "
        f"quality minus the lowest one in between): {txt}.",
    )


def flow_targets(result: GenerationResult, scores: dict[str, float]) -> list[tuple[str, bool]]:
    """Issue 11's targets for one setting's scores: (what was measured against what, met)."""
    real = result.calibration.get("test vs train", {})
    half = result.calibration.get("half vs half", {})
    fid_floor = half.get("fid", float("nan"))
    return [
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


def _flow_floor_text(
    result: GenerationResult, rows: list[SettingResult], best: SettingResult
) -> str:
    """The flow's sharpest setting against the FID target and its decoder's reconstructions:
    what stands in the way of FID at the best setting ("" without a floor)."""
    floor = result.flow.floor
    if not floor:
        return ""
    sharpest = min(rows, key=lambda r: r.scores["fid"])
    fid = sharpest.scores["fid"]
    text = (
        f" Its decoder's own reconstructions of the test digits reach FID {floor['fid']:.2f}"
        f" (precision {floor['precision']:.3f}, recall {floor['recall']:.3f}); the flow's "
        f"lowest FID is {fid:.2f} ({sharpest.setting}). "
    )
    target = 5 * result.calibration.get("half vs half", {}).get("fid", float("nan"))
    if fid <= target:
        if sharpest is best:
            return text + "The FID target is met."
        return text + (
            f"The FID target is met at {sharpest.setting} but not at {best.setting}: guidance "
            "trades FID (and recall) for precision and quality; no setting meets both."
        )
    if fid <= 1.25 * floor["fid"]:
        return text + (
            "The flow is already as close to real digits as its decoder's reconstructions: "
            "the FID target needs a sharper decoder, not a better flow."
        )
    return text + "The flow is still short of its decoder: a better flow would gain here."


def _on_demand_text(result: GenerationResult) -> str:
    """The lowest guidance at which the judge reads >= 98% of every asked-for digit as asked
    (the target of digits on demand), or that none does ("" without conditional samples)."""
    by_scale = sorted(
        (float(setting.removeprefix("w=")), setting, min(c.accuracy_per_digit))
        for setting, c in result.conditional_flow.items()
    )
    if not by_scale:
        return ""
    first = next((i for i, (_, _, low) in enumerate(by_scale) if low >= 0.98), None)
    if first is None:
        _, setting, low = max(by_scale, key=lambda t: t[2])
        return (
            f" No guidance scale reaches 98% for every digit (best: {100 * low:.1f}% for the "
            f"hardest digit at {setting})."
        )
    _, setting, low = by_scale[first]
    onwards = " on" if all(t[2] >= 0.98 for t in by_scale[first:]) else ""
    return (
        f" Digits on demand reach the target from {setting}{onwards} ({100 * low:.1f}% for the "
        f"hardest digit). `mnistlab sample flow --digit D` uses w={FLOW_DIGIT_GUIDANCE:g} unless "
        "--setting is given: the scale that met it in every seed the README reports."
    )


def flow_verdict(result: GenerationResult) -> Verdict:
    """Does a flow pass for real? Whether the flow's best setting meets every target of issue
    11; where not, what stands in the way."""
    question = "Does a flow pass for real?"
    rows = settings_of(result, FLOW)
    if not rows:
        return not_measured(question, FLOW.label)
    best = max(rows, key=lambda r: sum(ok for _, ok in flow_targets(result, r.scores)))
    checks = flow_targets(result, best.scores)
    missed = [text for text, ok in checks if not ok]
    met = [text for text, ok in checks if ok]
    head = "Yes" if not missed else f"Not yet: {len(missed)} of {len(checks)} targets missed"
    text = f"{head} at its best setting ({best.setting}). Missed: {'; '.join(missed) or 'none'}."
    if met:
        text += f" Met: {'; '.join(met)}."
    text += _flow_floor_text(result, rows, best)
    cf = result.conditional_flow.get(best.setting)
    if cf:
        acc = cf.accuracy_per_digit
        text += (
            f" Asked for one digit at {best.setting}, the judge reads {100 * min(acc):.1f}% to "
            f"{100 * max(acc):.1f}% of the samples as the digit asked for (target >= 98%)."
        )
    text += _on_demand_text(result)
    return Verdict(question, "meets all targets" if not missed else "misses some targets", text)


def verdicts(result: GenerationResult) -> list[Verdict]:
    """Short answers to brief 000's questions (and issue 11's), in the report's order."""
    return [
        copy_verdict(result),
        autoencoder_verdict(result),
        bandwidth_verdict(result),
        closest_verdict(result),
        interpolation_verdict(result),
        flow_verdict(result),
    ]


# ---------------------------------------------------------------------------------------------
# metrics.json, the CSV tables, the terminal's summary and the page.

SCORE_COLUMNS = tuple(k for k in metrics.SCORE_KEYS if k != "n")
HEADLINE_COLUMNS = ("quality", "novelty", "fid", "precision", "recall", "near_copy_rate")


@PAGE.csv("settings")
def settings_rows(result: GenerationResult) -> list[dict[str, Any]]:
    """One flat row per generator and setting: every number the tables show."""
    rows = []
    for s in result.settings:
        row = {"generator": s.generator, "setting": s.setting, "bandwidth": s.bandwidth}
        row.update({k: s.scores[k] for k in SCORE_COLUMNS})
        if "recon_near_copy_rate" in s.scores:  # latent generators only
            row["recon_near_copy_rate"] = s.scores["recon_near_copy_rate"]
        row["balance"] = _balance_of(s, novelty_ref(result))
        row["held_out_loglik"] = s.loglik
        row["rule"] = s.automatic or ""
        row["seconds"] = s.seconds
        rows.append(row)
    return rows


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
    floor = result.flow.floor
    if floor:
        rows.append(
            {
                "images": "floor: the flow decoder's reconstructions",
                "setting": "test digits",
                **{k: floor.get(k) for k in HEADLINE_COLUMNS},
            }
        )
    return rows


@PAGE.csv("calibration")
def calibration_rows(result: GenerationResult) -> list[dict[str, Any]]:
    return [
        {"reference": name, **{k: scores[k] for k in SCORE_COLUMNS if k in scores}}
        for name, scores in result.calibration.items()
    ]


@PAGE.csv("interpolation")
def interpolation_rows(result: GenerationResult) -> list[dict[str, Any]]:
    """One row per image of every example strip: its pair, path, time, quality and class."""
    return [
        {"pair": r["pair"], "path": r["path"], "t": t, "quality": q, "predicted": p}
        for r in result.interpolation
        for t, q, p in zip(r["t"], r["quality"], r["predicted"], strict=True)
    ]


def numbers(result: GenerationResult) -> dict[str, Any]:
    """The study's own part of metrics.json: every number of the report."""
    return {
        "models": result.models,
        "calibration": result.calibration,
        "settings": settings_rows(result),
        "interpolation": [
            {k: v for k, v in row.items() if k != "images"} for row in result.interpolation
        ],
        "interpolation_stats": result.interpolation_stats,
        "conditional_sampling": result.conditional.numbers() if result.conditional else {},
        "conditional_flow": {k: c.numbers() for k, c in result.conditional_flow.items()},
        "flow": dataclasses.asdict(result.flow),
        "judge_comparison": (
            dataclasses.asdict(result.judge_comparison) if result.judge_comparison else None
        ),
    }


def headline(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The headline rows of one run's metrics.json ``results`` (for ``mnistlab sweep``): real
    digits, then each generator at its best setting (``selection.best_setting`` on the rows)."""
    calibration = results.get("calibration", {})
    ref = calibration.get("test vs train", {}).get("novelty", selection.REAL_NOVELTY)
    rows = [
        {"images": f"real: {name}", **{k: sc.get(k) for k in HEADLINE_COLUMNS}}
        for name, sc in calibration.items()
    ]
    by_generator: dict[str, dict[int, dict[str, Any]]] = {}
    for i, row in enumerate(results.get("settings", [])):
        by_generator.setdefault(row["generator"], {})[i] = row
    for name, runs in by_generator.items():
        best = runs[selection.best_setting(runs, ref)]
        rows.append({"images": name, **{k: best.get(k) for k in HEADLINE_COLUMNS}})
    return rows


def _num(value: float | None) -> str:
    """A FID for the summary table; n/a where it is not defined (the test set against itself)."""
    return "n/a" if value is None or value != value else f"{value:.2f}"


def summary(result: GenerationResult) -> list[str]:
    """The terminal's table: real digits, then each generator at its best setting."""
    lines = [f"{'generator':<30} {'setting':<22} {'quality':>8} {'novelty':>8} {'FID':>8}"]
    for name, s in result.calibration.items():
        lines.append(
            f"{'real: ' + name:<30} {'':<22} {s['quality']:>8.3f} {s['novelty']:>8.3f} "
            f"{_num(s.get('fid')):>8}"
        )
    for spec in generators_in(result):
        b = best_setting(result, spec)
        lines.append(
            f"{spec.label:<30} {b.setting:<22} {b.scores['quality']:>8.3f} "
            f"{b.scores['novelty']:>8.3f} {b.scores['fid']:>8.2f}"
        )
    return lines


@PAGE.section("At a glance")
def _glance_section(rep: Report, result: GenerationResult) -> None:
    from mnistlab.report import figures

    best = _best_of(result)
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


@PAGE.section("Quality against novelty")
def _scatter_section(rep: Report, result: GenerationResult) -> None:
    from mnistlab.report import figures

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


@PAGE.answers("Answers")
def _answers_section(rep: Report, verdicts: list[Verdict]) -> None:
    rep.text("The questions of brief 000; click an answer for the numbers behind it.")
    for v in verdicts:
        rep.answer(v.question, v.answer)
    rep.fold(
        "How the metrics read",
        "**Quality** is how sure the judge classifier is of one class: 1 minus the entropy of its "
        "softmax divided by log 10 (1 = one class at probability 1, 0 = all ten equally likely). "
        "**Novelty** is the distance from a sample to its nearest training digit between the "
        "judge's copy descriptors (which place a moved, blurred or faded training digit next "
        "to its source), in units of that training digit's distance to its 5th-nearest other "
        "training digit (a step means more among rare shapes than among crowded ones), "
        "calibrated on real test digits: the share of them that lie closer, measured the same "
        "way. 0 for a copy, 0.5 on average for fresh real digits, 1 farther than "
        "any. A second opinion, tangent distance (Simard et al. 1993: the distance left once "
        "both images may move, turn, scale, shear and thicken a little, taken again after "
        "one such step where it comes close) to 5 candidate training digits (the descriptor's "
        "3 nearest and the nearest of the sample's class drawn thinner and thicker), each "
        "drawn in the stroke width whose ink matches the sample's, lowers the novelty of what "
        "it recognises as a copy; so does a third, the distance to the nearest training digit "
        "of the sample's class on the training digits' first 16 and 32 principal components "
        "(which recognises a training digit that lost its detail: projected on a few "
        "components, or through an autoencoder). Neither ever raises novelty. A latent "
        "generator's samples are also compared with its own decoder's "
        "reconstructions of the training digits. **Diversity** is the entropy of the predicted "
        "classes over log 10. **FID**, "
        "**precision/recall/density/coverage** (k = 5) compare the samples with the real test "
        "digits in the same feature space (without the few real digits' k-NN balls that reach "
        "the features' origin, where the judge puts what is not a digit); the **near-copy "
        "rate** is the share of samples closer "
        "to a training digit than 99% of real test digits are.",
    )


@PAGE.section("The bandwidth sweeps")
def _sweeps_section(rep: Report, result: GenerationResult) -> None:
    from mnistlab.report import figures

    for metric in ("quality", "novelty", "fid"):
        series = {}
        for spec in generators_in(result):
            pts = [s for s in settings_of(result, spec) if s.automatic is None]
            if len(pts) > 1 and pts[0].bandwidth is not None:
                series[spec.label] = ([p.bandwidth for p in pts], [p.scores[metric] for p in pts])
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


@PAGE.section("Every generator and setting")
def _settings_section(rep: Report, result: GenerationResult) -> None:
    rep.table(
        settings_rows(result),
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


@PAGE.section("Samples at every setting")
def _samples_section(rep: Report, result: GenerationResult) -> None:
    from mnistlab.report import figures

    for spec in generators_in(result):
        pts = settings_of(result, spec)
        grid = np.concatenate([p.grid[:10] for p in pts])
        fig = figures.sample_grid(
            grid, ncols=10, row_labels=[p.setting for p in pts], title=spec.label
        )
        rep.figure(fig, caption=f"{spec.label}: ten samples per setting.")


@PAGE.section("Conditional sampling: digits on demand")
def _conditional_section(rep: Report, result: GenerationResult) -> None:
    cond = result.conditional
    if cond is None and not result.conditional_flow:
        rep.text("No generator that samples a chosen digit ran.")
    if cond is not None:
        _digits_figure(
            rep,
            cond,
            0,
            "AE latent + class Gaussians: ten samples of each digit",
            "Brief 001's class-conditional Gaussians sample a chosen digit "
            "(ClassConditionalGaussian.sample(n, seed, digit=8)). Beside each row: the share "
            f"of {cond.samples_per_digit:,} samples of that digit that the judge reads as "
            f"it (mean {100 * float(np.mean(cond.accuracy_per_digit)):.1f}%).",
            "ten class-conditional samples of each digit",
        )
    for setting, cf in result.conditional_flow.items():
        acc = cf.accuracy_per_digit
        _digits_figure(
            rep,
            cf,
            1,
            f"AE latent + flow, guidance {setting}: ten samples of each digit",
            "The flow asked for each digit (LatentFlow.sample(n, seed, digit=8)). Beside each "
            f"row: the share of {cf.samples_per_digit:,} samples that the judge reads as "
            f"the digit asked for (mean {100 * float(np.mean(acc)):.1f}%, lowest "
            f"{100 * min(acc):.1f}%).",
            f"ten flow samples of each digit at guidance {setting}",
        )


def _digits_figure(
    rep: Report, cond: Conditional, decimals: int, title: str, caption: str, alt: str
) -> None:
    """One row of samples per digit, each labelled with the share the judge reads as it."""
    from mnistlab.report import figures

    rep.figure(
        figures.sample_grid(
            np.asarray(cond.grid).reshape(-1, 28, 28),
            ncols=10,
            row_labels=[
                f"{k} ({100 * a:.{decimals}f}%)" for k, a in enumerate(cond.accuracy_per_digit)
            ],
            title=title,
        ),
        caption=caption,
        alt=alt,
    )


@PAGE.section("Generated digits beside their nearest training digit")
def _neighbours_section(rep: Report, result: GenerationResult) -> None:
    from mnistlab.report import figures

    rep.text(
        "The visual proof of novelty: left of each pair a sample, right the training digit "
        "nearest to it in the judge's feature space."
    )
    for spec in generators_in(result):
        pts = [s for s in settings_of(result, spec) if s.automatic is None]
        shown = [pts[0]] if len(pts) == 1 else [pts[0], pts[-1]]
        for s in shown:
            fig = figures.pairs_with_neighbours(
                s.grid[:10], s.nearest[:10], ncols=5, title=f"{spec.label}, {s.setting}"
            )
            rep.figure(fig, caption=f"{spec.label}, {s.setting}")


@PAGE.section("Interpolation: pixel space against latent space")
def _interpolation_section(rep: Report, result: GenerationResult) -> None:
    from mnistlab.report import figures

    stats = result.interpolation_stats
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
        rows = [r for r in result.interpolation if r["pair"] == pair]
        fig = figures.strip(
            {r["path"]: r["images"] for r in rows},
            {r["path"]: r["quality"] for r in rows},
            title=f"{pair}",
        )
        rep.figure(fig, caption=f"Interpolation {pair}.")


@PAGE.csv("judges")
def judge_rows(result: GenerationResult) -> list[dict[str, Any]]:
    """The headline rows under both judges: the other judge's number beside this run's."""
    comparison = result.judge_comparison
    if comparison is None:
        return []
    this, other = result.judge.get("judge_version", "this"), comparison.version
    mine = {(r["images"], r["setting"]): r for r in headline_rows(result, _best_of(result))}
    rows = []
    for theirs in comparison.rows:
        row = {"images": theirs["images"], "setting": theirs["setting"]}
        own = mine.get((theirs["images"], theirs["setting"]), {})
        for key in HEADLINE_COLUMNS:
            row[f"{key} {other}"] = theirs.get(key)
            row[f"{key} {this}"] = own.get(key)
        rows.append(row)
    return rows


@PAGE.section("The old judge beside the new")
def _judges_section(rep: Report, result: GenerationResult) -> None:
    comparison = result.judge_comparison
    this = result.judge.get("judge_version", "this")
    scaffold.judges_table(
        rep,
        judge_rows(result),
        lambda: (
            f"The same images scored by both judges: real digits, and each generator's best "
            f"setting under judge {this} (its samples drawn again with the same seed). Judge "
            f"{comparison.version} is {comparison.judge_id}. Novelty is on the calibrated scale "
            "for both (the share of real test digits whose nearest training digit is closer). "
            "Judge v1 called a blank page a convincing digit and a training digit moved by one "
            "pixel new; v2's classifier is trained to be unsure on non-digits and its novelty "
            "uses a copy descriptor (`mnistlab judge check` shows what each can tell apart)."
        ),
    )


def _best_of(result: GenerationResult) -> dict[str, SettingResult | None]:
    return {g.label: best_setting(result, g) for g in generators_in(result)}


@PAGE.section("Models")
def _models_section(rep: Report, result: GenerationResult) -> None:
    scaffold.models_table(
        rep,
        {"judge": result.judge, **result.models},
        "Test-set figures of the judge and the autoencoders used here.",
    )


@PAGE.subtitle
def _what(result: GenerationResult) -> str:
    return (
        f"Generation study on {result.data_source}: {result.config.samples:,} samples per "
        "generator and setting"
    )
