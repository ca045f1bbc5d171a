"""``ae``: a convolutional autoencoder; its encoder and decoder are reused by ``vae``."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mnistlab.models import check_channels, check_size, losses, register_model


@dataclass(frozen=True)
class AEConfig:
    latent_dim: int = 16
    # Stride-2 convs 28 -> 14 -> 7. (16, 32) is the widest that trains at >= 3,500 images/s on
    # 2 cores; measured: 8 epochs reach test MSE 0.0096 at latent_dim 16, seed 0.
    channels: tuple[int, ...] = (16, 32)

    def __post_init__(self) -> None:
        check_size("ae", "latent_dim", self.latent_dim)
        # 28 // 2**blocks must stay >= 1: at most 4 stride-2 blocks.
        object.__setattr__(self, "channels", check_channels("ae", "channels", self.channels, 4))


def conv_encoder(channels: tuple[int, ...], out_dim: int) -> nn.Sequential:
    """(N, 1, 28, 28) -> (N, out_dim) through stride-2 conv-BN-ReLU blocks."""
    layers, c_in = [], 1
    for c_out in channels:
        layers += [
            nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        ]
        c_in = c_out
    size = 28 // 2 ** len(channels)
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c_in * size * size, out_dim))


def conv_decoder(latent_dim: int, channels: tuple[int, ...]) -> nn.Sequential:
    """(N, latent_dim) -> logits (N, 1, 28, 28), the mirror image of ``conv_encoder``."""
    size = 28 // 2 ** len(channels)
    rev = list(channels[::-1])
    layers: list[nn.Module] = [
        nn.Linear(latent_dim, rev[0] * size * size),
        nn.ReLU(inplace=True),
        nn.Unflatten(1, (rev[0], size, size)),
    ]
    for c_in, c_out in zip(rev, rev[1:], strict=False):
        layers += [
            nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        ]
    layers.append(nn.ConvTranspose2d(rev[-1], 1, 3, stride=2, padding=1, output_padding=1))
    return nn.Sequential(*layers)


class Autoencoder(nn.Module):
    config: AEConfig
    model_name: str

    def __init__(self, config: AEConfig) -> None:
        super().__init__()
        self.encoder = conv_encoder(config.channels, config.latent_dim)
        self.decoder = conv_decoder(config.latent_dim, config.channels)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, 1, 28, 28) in [0, 1] -> z (N, latent_dim)."""
        return self.encoder(x)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """z (N, latent_dim) -> logits (N, 1, 28, 28)."""
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (N, latent_dim) -> images (N, 1, 28, 28) in [0, 1]."""
        return torch.sigmoid(self.decoder(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction of x (N, 1, 28, 28) -> (N, 1, 28, 28) in [0, 1]."""
        return self.decode(self.encode(x))

    def loss_terms(
        self, x_in: torch.Tensor, target: torch.Tensor, y: torch.Tensor, recon_loss: str = "bce"
    ) -> dict[str, torch.Tensor]:
        """Per-pixel reconstruction loss of ``target`` from ``x_in`` (noisy when denoising)."""
        logits = self.decode_logits(self.encode(x_in))  # (N, 1, 28, 28)
        return self.recon_terms(logits, target, recon_loss)

    def recon_terms(
        self, logits: torch.Tensor, target: torch.Tensor, recon_loss: str
    ) -> dict[str, torch.Tensor]:
        """``{"loss": per-pixel reconstruction loss}``, plus MSE, BCE and PSNR in eval mode."""
        n_pix = target[0].numel()
        terms = {"loss": losses.recon_per_image(logits, target, recon_loss).mean() / n_pix}
        if not self.training:
            terms |= losses.recon_figures(logits, target)
        return terms


@register_model("ae", train_defaults={"epochs": 8, "batch_size": 128, "lr": 3e-3})
def build_ae(config: AEConfig) -> Autoencoder:
    return Autoencoder(config)


@dataclass(frozen=True)
class SAEConfig(AEConfig):
    # Weight of the code's cross-entropy beside the per-pixel reconstruction loss. Measured once
    # at latent_dim 16, seed 0, 8 epochs (training.fit with each weight, then a standardised
    # logistic regression on 20,000 training codes): 0.1 gives a probe of 0.984 at test MSE
    # 0.0108 (the plain ae: 0.923 at 0.0098), 1.0 gives 0.987 at MSE 0.0142. `mnistlab study
    # latent` reproduces the 0.1 figure (0.985 with its probe on all 60,000 codes).
    label_weight: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.label_weight < 0:
            raise ValueError(f"label_weight must be >= 0, got {self.label_weight}")


class SupervisedAutoencoder(Autoencoder):
    """``sae``: the autoencoder plus a linear classifier on its code, trained together (a
    supervised autoencoder, Le, Patterson & White 2018). The labels shape the code; the decoder
    is the autoencoder's, so the code still has to reconstruct the digit."""

    config: SAEConfig

    def __init__(self, config: SAEConfig) -> None:
        super().__init__(config)
        self.head = nn.Linear(config.latent_dim, 10)

    def loss_terms(
        self, x_in: torch.Tensor, target: torch.Tensor, y: torch.Tensor, recon_loss: str = "bce"
    ) -> dict[str, torch.Tensor]:
        """Per-pixel reconstruction loss plus ``label_weight`` x the code head's cross-entropy."""
        z = self.encode(x_in)  # (N, latent_dim)
        terms = self.recon_terms(self.decode_logits(z), target, recon_loss)
        class_logits = self.head(z)  # (N, 10)
        ce = nn.functional.cross_entropy(class_logits, y)
        terms["recon"] = terms["loss"]
        terms |= {"loss": terms["recon"] + self.config.label_weight * ce, "ce": ce}
        if not self.training:
            terms["accuracy"] = (class_logits.argmax(1) == y).float().mean()
        return terms


@register_model("sae", train_defaults={"epochs": 8, "batch_size": 128, "lr": 3e-3})
def build_sae(config: SAEConfig) -> SupervisedAutoencoder:
    return SupervisedAutoencoder(config)
