"""The studies, by name: generation, latent, denoising, augmentation.

Every study has the same shape (see ``scaffold``): a frozen config, ``run(config, context)`` that
returns numbers, ``verdicts(result)``, ``numbers``/``tables`` for metrics.json and the CSV files,
and ``report(result, verdicts)`` for the page. ``STUDIES`` is the registry: the CLI's ``study``
commands, ``study all``, the index page, ``mnistlab sweep`` and ``mnistlab.run_study`` read it.
Adding a study is one module and one line here.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from mnistlab.studies.settings import Setting, floats, integer, integers, shots

# The range of values the command line accepts (models of these sizes fit in memory).
SAMPLES_MAX = 1_000_000
LATENT_MAX = 1024
NOISE_MAX = 5.0


@dataclass(frozen=True)
class Study:
    """A registry entry: the study's name, its title, and its config class's name."""

    name: str
    title: str
    config: str
    summary: str  # one line for the CLI's help
    settings: tuple[Setting, ...] = ()  # what the command line can set besides the common options

    @property
    def module(self) -> ModuleType:
        return importlib.import_module(f"mnistlab.studies.{self.name}")  # lazily: heavy imports

    @property
    def config_class(self) -> type:
        return getattr(self.module, self.config)


STUDIES: dict[str, Study] = {
    s.name: s
    for s in (
        Study(
            "generation",
            "Generation: how good and how new are generated digits?",
            "GenerationConfig",
            "Brief 000: KDE, PCA, autoencoder, VAE and flow generators scored for quality and "
            "novelty.",
            (
                Setting(
                    "samples",
                    "--samples",
                    "Samples per generator and setting (default: 10,000; with --quick 1,000).",
                    integer(10, SAMPLES_MAX),
                    "N",
                ),
            ),
        ),
        Study(
            "latent",
            "Latent spaces of autoencoders and VAEs",
            "LatentConfig",
            "Briefs 001, 002 and 004: reconstruction, projections, clustering and probes of "
            "autoencoder and VAE latent spaces.",
            (
                Setting(
                    "latent_dims",
                    "--latent-dims",
                    "Latent dimensions, e.g. 2,7,16,32 (quick: 2,16).",
                    integers(1, 256),
                ),
            ),
        ),
        Study(
            "denoising",
            "Denoising",
            "DenoisingConfig",
            "Brief 003: denoising autoencoders at several noise factors, judged by BCE, PSNR, "
            "SSIM and the judge.",
            (
                Setting(
                    "noise_factors",
                    "--noise",
                    "Noise factors, e.g. 0.5,0.7,0.9.",
                    floats(0, NOISE_MAX),
                ),
            ),
        ),
        Study(
            "augmentation",
            "Few-shot augmentation",
            "AugmentationConfig",
            "Brief 003: few-shot autoencoders, synthetic digits, and whether they help a "
            "classifier.",
            (
                Setting("digits", "--digits", "Target digits, e.g. 2,3,8.", integers(0, 9)),
                Setting("shots", "--shots", "Training-set sizes N, e.g. 10,100,1000,all.", shots),
            ),
        ),
    )
}


def study_entry(name: str) -> Study:
    from mnistlab.errors import MnistlabError

    if name not in STUDIES:
        raise MnistlabError(f"unknown study {name!r}; known: {', '.join(STUDIES)}")
    return STUDIES[name]


def module_of(name: str) -> ModuleType:
    """The module of study ``name``."""
    return study_entry(name).module


def config_for(name: str, *, quick: bool = False, **overrides: Any) -> tuple[ModuleType, Any]:
    """(the study's module, its config with ``overrides``; the quick preset with ``quick``)."""
    from mnistlab.errors import MnistlabError

    entry = study_entry(name)
    cls = entry.config_class
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(overrides) - fields
    if unknown:
        raise MnistlabError(f"{name} has no setting {', '.join(sorted(unknown))}")
    given = {k: v for k, v in overrides.items() if v is not None}
    return entry.module, cls.for_quick(**given) if quick else cls(**given)


def run_study(
    name: str,
    out: str | Path | None = None,
    *,
    data: str | Path | None = None,
    quick: bool = False,
    progress: bool = True,
    judge: str = "v2",
    **overrides: Any,
) -> Path:
    """Run study ``name`` and write its report; returns the report's path.

    ``mnistlab.run_study("generation", quick=True, seed=1)`` is ``mnistlab study generation
    --quick --seed 1``; ``out`` None writes to ``runs/<time>-<name>/``.
    """
    from mnistlab.studies.scaffold import execute

    _, config = config_for(name, quick=quick, **overrides)
    return execute(name, config, data, out, progress=progress, judge=judge).report
