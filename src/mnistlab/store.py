"""Saved models: safetensors weights plus a JSON sidecar; the cache of trained models; the judge.

``save_model("ae.safetensors", model, meta)`` writes ``ae.safetensors`` and ``ae.json``. The JSON
holds the model name and config (enough to rebuild it), the SHA-256 of the weights (checked on
load), and whatever ``meta`` adds: data checksum, seed, training curve, test figures. No pickle.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import platform
import sys
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from mnistlab import data as data_mod
from mnistlab import models, training
from mnistlab.errors import ModelFileError
from mnistlab.fileio import atomic_write, check_writable_folder, entry_lock

MODEL_FORMAT = "mnistlab-model/1"
CACHE_VERSION = 2


def sidecar(path: str | Path) -> Path:
    """The JSON file that goes with weights file ``path``."""
    return Path(path).with_suffix(".json")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in ("mnistlab", "torch", "numpy", "safetensors"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "unknown"
    return versions


def write_weights(path: str | Path, module: nn.Module, info: dict[str, Any]) -> Path:
    """Write ``module``'s weights to ``path`` (safetensors), then ``info`` with the weights'
    SHA-256 to its JSON sidecar, each atomically; returns ``path``. Every mnistlab model file
    (the registry's models, the flow's velocity network) is written here."""
    path = Path(path)
    tensors = {k: v.detach().contiguous().clone() for k, v in module.state_dict().items()}
    digest = ""

    def write(tmp: Path) -> None:
        nonlocal digest
        save_file(tensors, str(tmp))
        digest = hashlib.sha256(tmp.read_bytes()).hexdigest()

    try:
        atomic_write(path, write)
    except SafetensorError as exc:  # safetensors reports a full disk or a denied write this way
        raise ModelFileError(f"cannot write {path}: {exc}") from None
    info = {**info, "weights_sha256": digest}
    atomic_write(sidecar(path), (json.dumps(info, indent=2) + "\n").encode())
    return path


def save_model(path: str | Path, model: nn.Module, meta: dict[str, Any] | None = None) -> Path:
    """Write ``path`` (safetensors) and its JSON sidecar atomically; returns ``path``."""
    info = {
        "format": MODEL_FORMAT,
        "model": model.model_name,
        "config": dataclasses.asdict(model.config),
        "versions": package_versions(),
    }
    info |= {k: v for k, v in (meta or {}).items() if k not in info}
    return write_weights(path, model, info)


def load_model(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model saved at ``path``; returns (model in eval mode, its JSON meta).

    Raises ``ModelFileError`` when a file is missing, corrupt, or does not fit its config.
    """
    path = Path(path)
    side = sidecar(path)
    for p in (path, side):
        if not p.is_file():
            raise ModelFileError(f"model file not found: {p}")
    try:
        meta = json.loads(side.read_text())
        name, config = meta["model"], meta["config"]
        _check_meta(meta)
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelFileError(f"{side} is not a mnistlab model description: {exc}") from None
    if name not in models.list_models():
        raise ModelFileError(f"{side}: unknown model {name!r}")
    raw = path.read_bytes()
    if meta.get("weights_sha256") not in (None, hashlib.sha256(raw).hexdigest()):
        raise ModelFileError(f"{path} is corrupt: its SHA-256 does not match {side.name}")
    try:
        model = models.get_model(name, **config)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{side}: config does not fit model {name!r}: {exc}") from None
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise ModelFileError(f"cannot read weights {path}: {exc}") from None
    try:
        model.load_state_dict(tensors)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = first[1].strip() if len(first) > 1 else first[0]
        raise ModelFileError(
            f"{path}: weights do not fit the config in {side.name}: {detail}"
        ) from None
    model.to(models.device()).eval()
    return model, meta


def _check_meta(meta: Any) -> None:
    """The fields that commands print must hold what they promise (a ``ValueError`` if not):
    a config dict, test figures that are numbers, a training curve of rows of numbers."""
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
        raise ValueError("no config")
    numbers_only = [meta.get("test") or {}, *(meta.get("history") or [])]
    for row in numbers_only:
        if not isinstance(row, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in row.values()
        ):
            raise ValueError("test figures or training curve are not numbers")
    for key in ("best_epoch", "seed"):
        if key in meta and (isinstance(meta[key], bool) or not isinstance(meta[key], int)):
            raise ValueError(f"{key} is not an integer")


def _as_config(name: str, config: Any) -> Any:
    cls = models.config_class(name)
    if config is None:
        return cls()
    if isinstance(config, dict):
        return cls(**config)
    if type(config) is not cls:  # a subclass (SAEConfig for "ae") would not build the model
        raise TypeError(f"{name} takes a {cls.__name__}, not {type(config).__name__}")
    return config


def cache_key(name: str, data: data_mod.Dataset, model_config: Any, train_config: Any) -> str:
    """16 hex digits of SHA-256 over (model name and config, train config, data checksum).

    ``CACHE_VERSION`` changes when the same key would train different weights (version 2: the
    seed fixes the initial weights), so a cache from before is not served as current.
    """
    blob = json.dumps(
        {
            "version": CACHE_VERSION,
            "model": name,
            "config": dataclasses.asdict(model_config),
            "train": dataclasses.asdict(train_config),  # holds the seed
            "data": data.checksum,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cache_path(name: str, data: data_mod.Dataset, model_config: Any, train_config: Any) -> Path:
    """Where ``get_trained`` keeps this model: ``cache_dir()/models/<name>-<key>.safetensors``."""
    key = cache_key(name, data, model_config, train_config)
    return data_mod.cache_dir() / "models" / f"{name}-{key}.safetensors"


def checkpoint_path(path: Path) -> Path:
    """The epoch checkpoint of a model being trained into ``path``."""
    return path.with_name(path.stem + ".ckpt.safetensors")


def train_and_save(
    name: str,
    data: data_mod.Dataset,
    model_config: Any,
    train_config: training.TrainConfig,
    path: Path,
    *,
    progress: bool = True,
) -> tuple[nn.Module, dict[str, Any]]:
    """Train model ``name`` (resuming from ``path``'s checkpoint if any) and save it to ``path``."""
    # The seed covers the initial weights too: the same (config, data, seed) gives the same model
    # whatever ran before in this process.
    torch.manual_seed(train_config.seed)
    model = models.get_model(name, **dataclasses.asdict(model_config)).to(models.device())
    ckpt = checkpoint_path(path)
    result = training.fit(model, data, train_config, checkpoint=ckpt, progress=progress)
    meta = {
        "data": {"checksum": data.checksum, "source": data.source, "name": data.name},
        "seed": train_config.seed,
        "train_config": dataclasses.asdict(train_config),
        "history": result.history,
        "best_epoch": result.best_epoch,
        "test": result.test,
        "train_seconds": result.seconds,
    }
    save_model(path, model, meta)
    ckpt.unlink(missing_ok=True)
    meta = json.loads(sidecar(path).read_text())
    meta["resumed_from"] = result.resumed_from  # not saved: how this call got its weights
    return model, meta


def get_trained(
    name: str,
    data: data_mod.Dataset,
    model_config: Any = None,
    train_config: training.TrainConfig | None = None,
    *,
    retrain: bool = False,
    progress: bool = True,
) -> tuple[nn.Module, dict[str, Any]]:
    """The model ``name`` trained on ``data``: from the cache, or trained once and cached.

    The cache key is (model config, train config with its seed, data checksum); ``retrain=True``
    trains afresh. Besides the saved JSON, the returned meta says ``path``, ``cached`` (loaded,
    not trained) and, after training, ``resumed_from`` (epochs taken from a checkpoint).
    An interrupted training resumes from its last epoch checkpoint.
    model_config : the model's config dataclass, a dict of its fields, or None for the defaults.
    train_config : None gives ``training.default_train_config(name)``.
    """
    model_config = _as_config(name, model_config)
    train_config = train_config or training.default_train_config(name)
    path = cache_path(name, data, model_config, train_config)
    if not retrain and (cached := _load_cached(path)) is not None:
        return cached
    check_writable_folder(path.parent, "model cache (MNISTLAB_CACHE sets another)")
    # One process trains an entry; another that needs it meanwhile waits, then loads the result.
    with entry_lock(path):
        if not retrain and (cached := _load_cached(path, quiet=True)) is not None:
            return cached
        if retrain:
            checkpoint_path(path).unlink(missing_ok=True)
        model, meta = train_and_save(
            name, data, model_config, train_config, path, progress=progress
        )
    meta |= {"path": str(path), "cached": False}
    return model, meta


def _load_cached(path: Path, quiet: bool = False) -> tuple[nn.Module, dict[str, Any]] | None:
    """The model cached at ``path``, or None if there is none or it is damaged (said on stderr).

    Any entry that cannot be built into a model counts as damaged, whatever the reason: a bad
    checksum, a config no model accepts, weights that do not fit. It is trained again.
    """
    if not path.is_file():
        return None
    try:
        model, meta = load_model(path)
    except (ModelFileError, ValueError, TypeError, RuntimeError, MemoryError, OSError) as exc:
        if not quiet:
            print(
                f"mnistlab: cache entry {path} is damaged ({exc}); training it again",
                file=sys.stderr,
            )
        return None
    meta |= {"path": str(path), "cached": True}
    return model, meta


# ---- the judge ---------------------------------------------------------------------------------

# v1: the plain classifier (sure of a class on anything, blind to copies), kept loadable so old
# results can be compared; v2: the judge trained with outlier exposure and a copy descriptor.
JUDGES = {"v1": ("classifier", "classifier.safetensors"), "v2": ("judge", "judge-v2.safetensors")}
DEFAULT_JUDGE = "v2"


def check_judge_version(version: str) -> str:
    """``version`` if it names a judge ("v1", "v2"); a ``ModelFileError`` naming them otherwise."""
    if version not in JUDGES:
        raise ModelFileError(f"unknown judge {version!r}; known: {', '.join(JUDGES)}")
    return version


def judge_path(version: str = DEFAULT_JUDGE) -> Path:
    """The shipped judge weights for the bundled MNIST."""
    _, filename = JUDGES[check_judge_version(version)]
    return Path(str(resources.files("mnistlab") / "judge" / filename))


def judge_id(meta: dict[str, Any], data_name: str) -> str:
    """e.g. ``judge-mnist-1a2b3c4d5e6f``: the model, the data and the first 12 digits of the
    weights' SHA-256 (v1 ids read ``classifier-mnist-...``)."""
    return f"{meta.get('model', 'classifier')}-{data_name}-{meta['weights_sha256'][:12]}"


def judge_train_config(
    data: data_mod.Dataset, version: str = DEFAULT_JUDGE
) -> training.TrainConfig:
    """The judge's defaults, with at least ~300 optimiser steps on a small data set.

    BatchNorm's running statistics lag the weights for the first few dozen steps; a few hundred
    training images at batch 128 would stop there with a useless judge.
    """
    name, _ = JUDGES[check_judge_version(version)]
    cfg = training.default_train_config(name)
    n = round(len(data.x_train) * (1 - cfg.val_fraction))
    batch = cfg.batch_size if n >= 20_000 else 32
    epochs = max(cfg.epochs, min(60, math.ceil(300 / math.ceil(n / batch))))
    return dataclasses.replace(
        cfg, batch_size=batch, epochs=epochs, patience=max(cfg.patience, epochs // 4)
    )


def load_judge(
    data: data_mod.Dataset, *, version: str = DEFAULT_JUDGE, progress: bool = True
) -> tuple[nn.Module, dict[str, Any]]:
    """The judge for ``data`` and its meta; ``meta["judge_id"]`` names it in results.

    The bundled MNIST gets the shipped weights; another data set gets a judge trained on first
    use with the judge's default settings, then cached. version : "v2" (default) or "v1".
    """
    name, _ = JUDGES[check_judge_version(version)]
    # Every use of a judge is scoring: refuse a data set too small for it before training one.
    from mnistlab.metrics import MIN_IMAGES  # here: training and loading models need no metrics

    data.require(MIN_IMAGES, "scoring with the judge (k-NN radii of PRDC)")
    if data.is_mnist and judge_path(version).is_file():
        model, meta = load_model(judge_path(version))
    else:
        model, meta = get_trained(
            name, data, train_config=judge_train_config(data, version), progress=progress
        )
    meta["judge_id"] = judge_id(meta, data.name)
    meta["judge_version"] = version
    return model, meta
