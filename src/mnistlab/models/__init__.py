"""The model zoo: a registry of builders by name, and numpy helpers to run a model in batches.

``get_model("ae", latent_dim=8)`` builds the model from its frozen config dataclass. Every model
has ``.config`` and ``.model_name``, takes x float32 (N, 1, 28, 28) in [0, 1], and returns its own
loss terms ``loss_terms(x_in, target, y) -> {"loss": ..., ...}``; the trainer knows nothing else.
"""

from __future__ import annotations

import copy
import dataclasses
import operator
import typing
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from mnistlab import data

_BUILDERS: dict[str, Callable[[Any], nn.Module]] = {}
_CONFIGS: dict[str, type] = {}
_TRAIN_DEFAULTS: dict[str, dict[str, Any]] = {}


def register_model(
    name: str, *, train_defaults: dict[str, Any] | None = None
) -> Callable[[Callable[[Any], nn.Module]], Callable[[Any], nn.Module]]:
    """Decorate a builder ``fn(config) -> nn.Module``; its ``config`` annotation gives the config.

    ``train_defaults`` are the TrainConfig fields that make this model meet its speed and quality
    targets (``training.default_train_config(name)`` applies them).
    """

    def decorate(fn: Callable[[Any], nn.Module]) -> Callable[[Any], nn.Module]:
        if name in _BUILDERS:
            raise ValueError(f"model {name!r} is already registered")
        config_cls = typing.get_type_hints(fn)["config"]
        if not (dataclasses.is_dataclass(config_cls) and config_cls.__dataclass_params__.frozen):
            raise TypeError(f"{name}: the builder's config must be a frozen dataclass")
        _BUILDERS[name] = fn
        _CONFIGS[name] = config_cls
        _TRAIN_DEFAULTS[name] = dict(train_defaults or {})
        return fn

    return decorate


# The largest sizes a config may ask for: far beyond anything useful on 28x28 digits, small
# enough that a damaged or mistyped config fails at once instead of allocating gigabytes.
MAX_WIDTH = 1024  # latent size, feature size, channels of one block


def check_size(model: str, field: str, value: int, lo: int = 1, hi: int = MAX_WIDTH) -> int:
    """``value`` as an int if it lies in [lo, hi]; a ``ValueError`` naming the field otherwise."""
    try:
        number = operator.index(value)  # ints and numpy ints; not floats, strings or None
    except TypeError:
        number = None
    if isinstance(value, bool) or number is None or not lo <= number <= hi:
        raise ValueError(f"{model} {field} must be an integer in [{lo}, {hi}], got {value!r}")
    return number


def check_channels(model: str, field: str, channels: Any, max_blocks: int) -> tuple[int, ...]:
    """Channels of 1 to ``max_blocks`` conv blocks, each in [1, MAX_WIDTH], as a tuple."""
    if isinstance(channels, str | bytes) or not hasattr(channels, "__iter__"):
        raise ValueError(f"{model} {field} must be a list of integers, got {channels!r}")
    out = tuple(channels)
    if not 1 <= len(out) <= max_blocks:
        raise ValueError(f"{model} {field} needs 1 to {max_blocks} blocks, got {len(out)}")
    return tuple(check_size(model, field, c) for c in out)


def list_models() -> list[str]:
    """Names of the registered models, sorted."""
    _load_builtin()
    return sorted(_BUILDERS)


def config_class(name: str) -> type:
    """The frozen config dataclass of model ``name``."""
    _check(name)
    return _CONFIGS[name]


def train_defaults(name: str) -> dict[str, Any]:
    """The TrainConfig fields registered for model ``name`` (a copy)."""
    _check(name)
    return dict(_TRAIN_DEFAULTS[name])


def get_model(name: str, **config: Any) -> nn.Module:
    """Build model ``name``; keyword arguments override its config's defaults.

    Raises ``TypeError`` for a keyword the config does not have.
    """
    _check(name)
    cfg = _CONFIGS[name](**config)
    model = _BUILDERS[name](cfg)
    model.config = cfg
    model.model_name = name
    return model


def _check(name: str) -> None:
    _load_builtin()
    if name not in _BUILDERS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(_BUILDERS))}")


def _load_builtin() -> None:
    # Imported lazily: the modules register themselves with the decorator above.
    from mnistlab.models import autoencoder, classifier, vae  # noqa: F401


# ---- devices ---------------------------------------------------------------------------------

DEVICES = ("auto", "cpu", "cuda", "mps")
_device = torch.device("cpu")


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``"auto"`` (a CUDA GPU, else Apple's MPS, else the CPU), ``"cpu"``, ``"cuda"``,
    ``"cuda:1"`` or ``"mps"`` as a ``torch.device``; a one-line error for one this machine lacks."""
    from mnistlab.errors import MnistlabError

    if isinstance(name, torch.device):
        name = str(name)
    kind = name.split(":", 1)[0]
    if kind not in DEVICES or (kind == "auto" and name != "auto"):
        raise MnistlabError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if kind == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if kind == "cuda" and not cuda:
        raise MnistlabError("--device cuda: this torch sees no CUDA GPU (torch.cuda.is_available)")
    if kind == "mps" and not mps:
        raise MnistlabError("--device mps: this torch sees no Apple GPU (torch.backends.mps)")
    return torch.device(name)


def set_device(name: str | torch.device = "auto") -> torch.device:
    """Where models loaded or trained from now on run (default: the CPU); returns the device."""
    global _device
    _device = resolve_device(name)
    return _device


def device() -> torch.device:
    """The device set by ``set_device`` (the CPU unless changed)."""
    return _device


def device_of(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (the CPU for a model without parameters)."""
    params = getattr(model, "parameters", None)  # a duck-typed model (PCA) has none
    first = next(iter(params()), None) if callable(params) else None
    return first.device if first is not None else torch.device("cpu")


# ---- running a model over numpy arrays ------------------------------------------------------


def infer(
    fn: Callable[[torch.Tensor], torch.Tensor], array: np.ndarray, batch_size: int = 2048
) -> np.ndarray:
    """Apply ``fn`` to ``array`` in batches under ``torch.inference_mode``; results as numpy.

    array : array of shape (N, ...); each batch reaches ``fn`` as a tensor of shape (B, ...).
    Returns float32 array of shape (N, ...) where ``...`` is what ``fn`` returns per row.
    """
    array = np.asarray(array)
    outs = []
    with torch.inference_mode():
        for start in range(0, len(array), batch_size):
            batch = torch.from_numpy(np.array(array[start : start + batch_size]))  # a writable copy
            outs.append(fn(batch).float().cpu().numpy())
        if not outs:  # an empty array still gives the right trailing shape
            outs.append(fn(torch.from_numpy(np.array(array))).float().cpu().numpy())
    return np.concatenate(outs)


def _images(batch: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """uint8 or float images (B, 28, 28) / (B, 784) -> float32 (B, 1, 28, 28) in [0, 1], on
    ``model``'s device."""
    return torch.from_numpy(data.to_float(batch.numpy())).to(device_of(model))


class _EvalMode:
    """Put a model in eval mode for a block, then restore its train/eval flag."""

    def __init__(self, model: nn.Module) -> None:
        self.model, self.was_training = model, model.training

    def __enter__(self) -> nn.Module:
        self.model.eval()
        return self.model

    def __exit__(self, *exc: object) -> None:
        self.model.train(self.was_training)


def encode(model: nn.Module, images: np.ndarray, batch_size: int = 2048) -> np.ndarray:
    """Latent codes of ``images`` (uint8 or float, (N, 28, 28) or (N, 784)) -> (N, latent_dim)."""
    with _EvalMode(model):
        return infer(lambda b: model.encode(_images(b, model)), images, batch_size)


def decode(model: nn.Module, z: np.ndarray, batch_size: int = 2048) -> np.ndarray:
    """Images from latent codes z (N, latent_dim) -> float32 (N, 28, 28) in [0, 1]."""
    z = np.asarray(z, dtype=np.float32)
    with _EvalMode(model):
        dev = device_of(model)
        out = infer(lambda b: model.decode(b.to(dev)), z, batch_size)  # (N, 1, 28, 28)
    return out.reshape(len(z), data.IMAGE_SIZE, data.IMAGE_SIZE)


# The judge's first block makes 16 x 28 x 28 floats per image: at 256 images a batch its
# activations stay in cache. `make bench`, 2 cores, 10,000 test digits: 0.57 s at 256, 1.07 s at
# 2,048; the outputs are bit-identical at any batch size from 32 up (eval mode, no batch
# statistics; batches of a few images take other kernels and differ in the last bits).
JUDGE_BATCH = 256


def _for_inference(judge: nn.Module) -> nn.Module:
    """The judge as it runs over images: on the CPU, a copy in channels-last memory layout.

    In the default layout PyTorch's CPU max-pooling of 16- to 64-channel maps took 41% of the
    judge's time; `make bench` (``judge_bench``, 10,000 images, 2-core AMD EPYC) ran v2 in 1.4 s
    instead of 3.0 s and v1 in 0.86 s instead of 1.36 s in channels-last memory, with outputs
    within 1e-5 of the default layout's and, as before, bit-identical at any batch size from 32
    up. A copy (a few milliseconds), so the caller's model keeps the contiguous weights that
    safetensors writes. Left as it is on a GPU, where it was not measured, and so is a judge that
    is not a torch module.
    """
    if not isinstance(judge, nn.Module) or device_of(judge).type != "cpu":
        return judge  # a duck-typed judge runs as it is
    try:
        twin = copy.deepcopy(judge)
    except (TypeError, RuntimeError, copy.Error):  # a user's judge that cannot be copied
        return judge
    return twin.to(memory_format=torch.channels_last)


def judge_outputs(
    judge: nn.Module, images: np.ndarray, batch_size: int = JUDGE_BATCH
) -> tuple[np.ndarray, np.ndarray]:
    """The judge's class probabilities (N, 10) and penultimate features (N, feature_dim)."""
    probs, feats, _ = judge_all(judge, images, batch_size)
    return probs, feats


def has_descriptor(judge: nn.Module) -> bool:
    """Whether the judge has a copy descriptor of its own (the v2 ``judge``; v1 has none)."""
    return hasattr(judge, "outputs")


def judge_all(
    judge: nn.Module, images: np.ndarray, batch_size: int = JUDGE_BATCH
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class probabilities (N, 10), features (N, feature_dim) and copy descriptors (N, d).

    Novelty is measured between descriptors; a judge without a descriptor (v1) uses its features.
    """
    n_feat = 0

    def both(model: nn.Module, b: torch.Tensor) -> torch.Tensor:
        nonlocal n_feat
        x = _images(b, model)
        if has_descriptor(model):
            logits, feats, desc = model.outputs(x)  # (B, 10), (B, feature_dim), (B, d)
        else:
            feats = model.features(x)
            logits, desc = model.head(feats), feats
        n_feat = feats.shape[1]
        return torch.cat([torch.softmax(logits, dim=1), feats, desc], dim=1)

    with _EvalMode(judge):
        model = _for_inference(judge)  # a copy: in eval mode like the judge is here
        out = infer(lambda b: both(model, b), images, batch_size)  # (N, 10 + feature_dim + d)
    return out[:, :10], out[:, 10 : 10 + n_feat], out[:, 10 + n_feat :]
