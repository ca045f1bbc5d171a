"""One module per study: generation, latent, denoising, augmentation.

Each study has a frozen config, a ``run(...)`` that returns its results as data (no files written),
and a ``write(results, out_dir)`` that renders report.html, metrics.json, CSV tables and figures.
``STUDIES`` names them (title, module, config class): the CLI's ``study all`` and
``mnistlab.run_study`` read it.
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Any

STUDIES = {
    "generation": ("Generation: how good and how new are generated digits?", "GenerationConfig"),
    "latent": ("Latent spaces of autoencoders and VAEs", "LatentConfig"),
    "denoising": ("Denoising", "DenoisingConfig"),
    "augmentation": ("Few-shot augmentation", "AugmentationConfig"),
}


def config_for(name: str, *, quick: bool = False, **overrides: Any) -> tuple[Any, Any]:
    """(the study's module, its config with ``overrides``; the quick preset with ``quick``)."""
    from mnistlab.errors import MnistlabError

    if name not in STUDIES:
        raise MnistlabError(f"unknown study {name!r}; known: {', '.join(STUDIES)}")
    module = importlib.import_module(f"mnistlab.studies.{name}")  # lazily: heavy imports
    cls = getattr(module, STUDIES[name][1])
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(overrides) - fields
    if unknown:
        raise MnistlabError(f"{name} has no setting {', '.join(sorted(unknown))}")
    given = {k: v for k, v in overrides.items() if v is not None}
    return module, cls.for_quick(**given) if quick else cls(**given)


def run_study(
    name: str,
    out: str | Path | None = None,
    *,
    data: str | Path | None = None,
    quick: bool = False,
    progress: bool = True,
    **overrides: Any,
) -> Path:
    """Run study ``name`` and write its report; returns the report's path.

    ``mnistlab.run_study("generation", quick=True, seed=1)`` is ``mnistlab study generation
    --quick --seed 1``; ``out`` None writes to ``runs/<time>-<name>/``.
    """
    from mnistlab.fileio import OutputFolder

    module, config = config_for(name, quick=quick, **overrides)
    folder = OutputFolder(out, name)
    with folder as tmp:
        result = module.run(config, data, progress=progress)
        report = module.write(result, tmp)
    return folder.final(report)
