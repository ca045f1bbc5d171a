"""The generators by name: what ``mnistlab sample NAME`` builds, fitted on a data set.

Each entry says how to fit one generator on a data set's training digits (training or loading
its autoencoder from the cache), which hyperparameter ``--setting`` sets, and whether it makes
digits on demand (``--digit``). Names are short and stable: ``pixel-kde``, ``pca-kde``,
``ae-kde``, ``ae-gmm``, ``ae-class-gaussians``, ``vae-prior``, ``vae-gmm``, ``flow``.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mnistlab import data as mdata
from mnistlab.errors import MnistlabError

if TYPE_CHECKING:
    from mnistlab import generators as gen

LATENT_DIM = 16  # the generation study's autoencoders for the briefs' generators
# The flow's autoencoder: a 96-d code instead of the briefs' 16, so that its decoder's
# reconstructions (the floor of every latent generator) come close to real digits (measured on
# the test digits, judge v2: reconstruction FID 0.26 for 96-d, 0.14 for 128-d, 0.66 for 64-d,
# 1.83 for 32-d, 3.96 for 16-d). 96-d is where the flow's trade-off was best in the time budget:
# on 128-d codes the flow needs more guidance for the same precision and loses recall; see the
# README's decoder trade-off.
FLOW_AE = {"latent_dim": 96, "channels": (16, 32)}
# The flow's guidance when none is given, from the default generation study and its flow trained
# with seeds 0-4 (README): w=1.3 is the scale at which every target of issue 11 was met in all
# five (precision >= 0.9 with recall >= 0.85, FID <= 5x the real floor, quality, novelty); asked
# for one digit, w=2 is the lowest scale at which the judge read >= 98% of every digit as asked
# in all five (99.0% for the hardest; 97.0% at w=1.5).
FLOW_GUIDANCE = 1.3
FLOW_DIGIT_GUIDANCE = 2.0


@dataclass(frozen=True)
class Entry:
    name: str
    label: str  # as the generation study's tables name it
    setting: str  # what --setting sets ("" where nothing)
    default: float | str | None
    conditional: bool  # takes --digit
    build: Callable[[mdata.Dataset, Any, int, bool], gen.Generator]
    digit_default: float | str | None = None  # the setting with --digit (None: ``default``)

    def default_for(self, digit: int | None) -> float | str | None:
        """The setting used when none is given: ``digit_default`` for digits on demand."""
        if digit is not None and self.digit_default is not None:
            return self.digit_default
        return self.default


def _gen() -> types.ModuleType:
    """``mnistlab.generators``, imported when an entry is built: it loads scikit-learn and
    scipy (~1.5 s on 2 cores), which listing the entries (every CLI command's start, through
    ``mnistlab sample``'s help) does not need."""
    from mnistlab import generators

    return generators


def _model(name: str, data: mdata.Dataset, progress: bool, config: dict | None = None):
    from mnistlab import store

    config = config or {"latent_dim": LATENT_DIM}
    return store.get_trained(name, data, config, progress=progress)[0]


def _bandwidth(value: Any) -> float | str:
    if isinstance(value, str) and value in _gen().BANDWIDTH_RULES:
        return value
    return _positive(value, "bandwidth")


def _positive(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise MnistlabError(f"{what} must be a number, got {value!r}") from None
    if not number > 0 or number != number or number == float("inf"):
        raise MnistlabError(f"{what} must be a positive number, got {value!r}")
    return number


def _latent_gmm(model: str) -> Callable[[mdata.Dataset, Any, int, bool], gen.Generator]:
    """The build step of a GMM on the codes of autoencoder ``model`` ("ae" or "vae")."""
    return lambda d, s, seed, p: (
        _gen()
        .LatentGMM(_model(model, d, p), n_components=_components(s), random_state=seed)
        .fit(d.x_train)
    )


def _components(value: Any) -> int:
    number = _positive(value, "components")
    if number != int(number) or number > 1000:
        raise MnistlabError(f"components must be an integer in [1, 1000], got {value!r}")
    return int(number)


ENTRIES = (
    Entry(
        "pixel-kde",
        "pixel KDE",
        "bandwidth (or scott, silverman)",
        "scott",
        False,
        lambda d, s, seed, p: _gen().PixelKDE(bandwidth=_bandwidth(s)).fit(d.x_train),
    ),
    Entry(
        "pca-kde",
        "PCA + KDE",
        "bandwidth (or scott, silverman)",
        "scott",
        False,
        lambda d, s, seed, p: (
            _gen().PCAKDE(n_components=50, bandwidth=_bandwidth(s)).fit(d.x_train)
        ),
    ),
    Entry(
        "ae-kde",
        "AE latent + KDE",
        "bandwidth (or scott, silverman)",
        "scott",
        False,
        lambda d, s, seed, p: (
            _gen().LatentKDE(_model("ae", d, p), bandwidth=_bandwidth(s)).fit(d.x_train)
        ),
    ),
    Entry("ae-gmm", "AE latent + GMM", "components", 10, False, _latent_gmm("ae")),
    Entry(
        "ae-class-gaussians",
        "AE latent + class Gaussians",
        "",
        None,
        True,
        lambda d, s, seed, p: (
            _gen().ClassConditionalGaussian(_model("ae", d, p)).fit(d.x_train, d.y_train)
        ),
    ),
    Entry(
        "vae-prior",
        "VAE prior",
        "scale of the prior",
        1.0,
        False,
        lambda d, s, seed, p: (
            _gen().VAEPrior(_model("vae", d, p), scale=_positive(s, "scale")).fit()
        ),
    ),
    Entry("vae-gmm", "VAE latent + GMM", "components", 10, False, _latent_gmm("vae")),
    Entry(
        "flow",
        "AE latent + flow",
        "guidance scale w (1: plain conditional; default 1.3, 2 with --digit)",
        FLOW_GUIDANCE,
        True,
        lambda d, s, seed, p: (
            _gen()
            .LatentFlow(
                _model("ae", d, p, FLOW_AE), guidance=_positive(s, "guidance"), random_state=seed
            )
            .fit(d.x_train, d.y_train)
        ),
        FLOW_DIGIT_GUIDANCE,
    ),
)
CATALOG = {e.name: e for e in ENTRIES}


def entry(name: str) -> Entry:
    """The entry called ``name``; a one-line error naming the known ones otherwise."""
    if name not in CATALOG:
        raise MnistlabError(f"unknown generator {name!r}; known: {', '.join(CATALOG)}")
    return CATALOG[name]


def fitted(
    name: str,
    data: mdata.Dataset,
    setting: Any = None,
    *,
    seed: int = 0,
    progress: bool = True,
    digit: int | None = None,
) -> gen.Generator:
    """Generator ``name`` at ``setting`` (None: its default, for ``digit`` when one is asked
    for), fitted on ``data``'s training set."""
    e = entry(name)
    if setting is not None and not e.setting:
        raise MnistlabError(f"{name} has no setting to choose")
    return e.build(data, e.default_for(digit) if setting is None else setting, seed, progress)
