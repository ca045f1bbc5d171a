"""``classifier``: the judge, a small CNN; its penultimate layer is where novelty is measured."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mnistlab import perturb
from mnistlab.models import check_channels, check_size, register_model


@dataclass(frozen=True)
class ClassifierConfig:
    # conv-BN-ReLU-maxpool blocks 28 -> 14 -> 7 -> 3; small enough for 8 epochs in < 3 min on
    # 2 cores, BatchNorm + one-cycle LR get it to >= 99.3% without augmentation.
    channels: tuple[int, ...] = (16, 32, 64)
    feature_dim: int = 128  # penultimate layer: the space in which novelty and FID are measured
    dropout: float = 0.25  # before the head only; BatchNorm regularises the convs
    n_classes: int = 10

    def __post_init__(self) -> None:
        # JSON gives lists back; keep the config hashable and equal to the one that was saved.
        # Max-pool blocks 28 -> 14 -> 7 -> 3 -> 1: at most 4.
        object.__setattr__(
            self, "channels", check_channels("classifier", "channels", self.channels, 4)
        )
        check_size("classifier", "feature_dim", self.feature_dim)
        check_size("classifier", "n_classes", self.n_classes, 2)


class Classifier(nn.Module):
    config: ClassifierConfig
    model_name: str

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        blocks, c_in, size = [], 1, 28
        for c_out in config.channels:
            blocks += [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            c_in, size = c_out, size // 2  # 28 -> 14 -> 7 -> 3
        self.body = nn.Sequential(*blocks, nn.Flatten())
        self.neck = nn.Sequential(
            nn.Linear(c_in * size * size, config.feature_dim, bias=False),
            nn.BatchNorm1d(config.feature_dim),
            nn.ReLU(inplace=True),
        )
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.feature_dim, config.n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, 1, 28, 28) in [0, 1] -> penultimate features (N, feature_dim)."""
        return self.neck(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, 1, 28, 28) -> logits (N, n_classes)."""
        return self.head(self.drop(self.features(x)))

    def loss_terms(
        self, x_in: torch.Tensor, target: torch.Tensor, y: torch.Tensor, recon_loss: str = "bce"
    ) -> dict[str, torch.Tensor]:
        """Cross-entropy of the labels y (N,); ``target`` and ``recon_loss`` are unused here."""
        logits = self(x_in)  # (N, 10)
        return {
            "loss": F.cross_entropy(logits, y),
            "accuracy": (logits.argmax(1) == y).float().mean(),
        }


@register_model("classifier", train_defaults={"epochs": 8, "batch_size": 128, "lr": 3e-3})
def build_classifier(config: ClassifierConfig) -> Classifier:
    return Classifier(config)


# ---- the judge v2: the classifier, taught what is not a digit, and a copy descriptor ---------


@dataclass(frozen=True)
class JudgeConfig:
    # The classifier of v1 (quality, FID and PRDC features) beside a copy descriptor of its own
    # (novelty): one trunk cannot be both class-invariant and instance-discriminative, and the
    # descriptor sees the image canonicalised (centred, contrast-normalised) while FID must not.
    channels: tuple[int, ...] = (16, 32, 64)
    feature_dim: int = 128
    dropout: float = 0.25
    n_classes: int = 10
    descriptor_channels: tuple[int, ...] = (16, 32, 64)
    descriptor_dim: int = 64
    # Outlier Exposure (Hendrycks et al. 2019): cross-entropy to the uniform distribution on
    # non-digits at the paper's weight 0.5, a quarter batch of them per digit batch.
    outlier_weight: float = 0.5
    outlier_fraction: float = 0.25
    # Instance contrast (SimCLR; SSCD, Pizzi et al. 2022): each training digit against a changed
    # view of itself, the batch's other digits as negatives.
    contrast_weight: float = 1.0
    temperature: float = 0.05
    # Descriptors of the last batches' digits, as extra negatives (MoCo's queue, He et al. 2020):
    # a random batch holds few digits similar enough to teach a copy from a look-alike.
    queue_size: int = 8192

    def __post_init__(self) -> None:
        for name in ("channels", "descriptor_channels"):
            object.__setattr__(self, name, check_channels("judge", name, getattr(self, name), 4))
        for name in ("feature_dim", "descriptor_dim", "queue_size"):
            check_size("judge", name, getattr(self, name), hi=1 << 20)
        check_size("judge", "n_classes", self.n_classes, 2)


def canonicalise(x: torch.Tensor) -> torch.Tensor:
    """x (N, 1, 28, 28) -> the same digits with their brightest pixel at 1 and their centre of
    mass moved, by whole pixels, to (14, 14), where MNIST puts it (every training digit's lies
    within half a pixel of it, so they are left as they are). Undoes a shift or a contrast change
    exactly, without resampling."""
    n, _, h, w = x.shape
    x = x / x.amax((1, 2, 3), keepdim=True).clamp(min=1e-2)
    x = x.clamp(0.0, 1.0)
    mass = x.sum((1, 2, 3)).clamp(min=1e-6)  # (N,)
    grid = torch.arange(h, dtype=x.dtype)
    cy = (x.sum(3)[:, 0] * grid).sum(1) / mass
    cx = (x.sum(2)[:, 0] * grid).sum(1) / mass
    dy, dx = torch.round(cy - 14.0).long(), torch.round(cx - 14.0).long()  # (N,)
    moved = ((dy != 0) | (dx != 0)).nonzero()[:, 0]
    if len(moved) == 0:  # every MNIST digit: the gather below costs 20 us an image
        return x
    m = len(moved)
    rows = torch.arange(h)[None, :] + dy[moved, None]  # (M, H): source row of each output row
    cols = torch.arange(w)[None, :] + dx[moved, None]
    valid = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    r = rows.clamp(0, h - 1)[:, :, None].expand(m, h, w)
    c = cols.clamp(0, w - 1)[:, None, :].expand(m, h, w)
    flat = x[moved, 0].reshape(m, -1)
    out = torch.gather(flat, 1, (r * w + c).reshape(m, -1)).reshape(m, h, w)
    x = x.clone()
    x[moved] = (out * valid)[:, None]
    return x


class CopyDescriptor(nn.Module):
    """Canonicalised image -> unit-length descriptor (N, d): a copy lies next to its source."""

    def __init__(self, channels: tuple[int, ...], dim: int) -> None:
        super().__init__()
        blocks, c_in, size = [], 1, 28
        for c_out in channels:
            blocks += [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            c_in, size = c_out, size // 2
        self.body = nn.Sequential(*blocks, nn.Flatten())
        self.project = nn.Sequential(
            nn.Linear(c_in * size * size, 256, bias=False),
            nn.BatchNorm1d(256),
            nn.ReLU(inplace=True),
            nn.Linear(256, dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.project(self.body(canonicalise(x))), dim=1)


class Judge(Classifier):
    """The classifier, trained with outlier exposure, and a copy descriptor trained by contrast."""

    config: JudgeConfig
    train_channels_last = True  # training.fit: 1.5-1.8x faster a step on the CPU

    def __init__(self, config: JudgeConfig) -> None:
        super().__init__(config)  # type: ignore[arg-type]
        self.describe = CopyDescriptor(config.descriptor_channels, config.descriptor_dim)
        # Not saved with the weights: a resumed training starts it empty again.
        self._queue = torch.zeros(0, config.descriptor_dim)

    def outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (N, 1, 28, 28) -> logits (N, 10), features (N, feature_dim), descriptor (N, d)."""
        feats = self.features(x)
        return self.head(self.drop(feats)), feats, self.describe(x)

    def loss_terms(
        self, x_in: torch.Tensor, target: torch.Tensor, y: torch.Tensor, recon_loss: str = "bce"
    ) -> dict[str, torch.Tensor]:
        """Cross-entropy on digits (clean, and half a batch of changed views), cross-entropy to
        uniform on non-digits, InfoNCE between each digit's descriptor and its view's."""
        if not self.training:
            return super().loss_terms(x_in, target, y, recon_loss)
        cfg = self.config
        gen = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,))))
        b, half = len(x_in), len(x_in) // 2
        # Views and outliers are drawn on the CPU, where the seeded generator lives.
        dev, x_cpu = x_in.device, x_in.cpu()
        view = perturb.random_view(x_cpu, gen).to(dev)  # (B, 1, 28, 28)
        n_out = max(1, int(round(b * cfg.outlier_fraction)))
        out = perturb.outliers(n_out, gen, x_cpu, y.cpu()).to(dev)  # (n_out, 1, 28, 28)
        logits = self(torch.cat([x_in, view[:half], out]))
        ce = F.cross_entropy(logits[: b + half], torch.cat([y, y[:half]]))
        oe = -F.log_softmax(logits[b + half :], dim=1).mean()  # CE to the uniform distribution
        desc = self.describe(torch.cat([x_in, view]))  # (2B, d)
        anchor, positive = desc[:b], desc[b:]
        negatives = torch.cat([positive, self._queue.to(dev)])  # (B + Q, d)
        sim = anchor @ negatives.T / cfg.temperature  # (B, B + Q)
        idx = torch.arange(b, device=dev)
        nce = 0.5 * (
            F.cross_entropy(sim, idx) + F.cross_entropy(positive @ anchor.T / cfg.temperature, idx)
        )
        self._queue = torch.cat([anchor.detach(), self._queue])[: cfg.queue_size]
        return {
            "loss": ce + cfg.outlier_weight * oe + cfg.contrast_weight * nce,
            "accuracy": (logits[:b].argmax(1) == y).float().mean(),
            "ce": ce.detach(),
            "oe": oe.detach(),
            "nce": nce.detach(),
        }


@register_model("judge", train_defaults={"epochs": 3, "batch_size": 256, "lr": 3e-3})
def build_judge(config: JudgeConfig) -> Judge:
    return Judge(config)
