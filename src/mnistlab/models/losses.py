"""Reconstruction and KL terms, written once and shared by ``ae`` and ``vae``.

Terms are per image (summed over the 784 pixels) so that a VAE's ELBO adds them as in Kingma &
Welling; the models divide by the pixel count to log per-pixel figures.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

RECON_LOSSES = ("bce", "mse")


def recon_per_image(logits: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """Reconstruction loss of decoder logits (N, 1, 28, 28) against target in [0, 1] -> (N,).

    "bce": binary cross-entropy on the logits (stable, no sigmoid round trip);
    "mse": squared error of sigmoid(logits).
    """
    if kind == "bce":
        per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    elif kind == "mse":
        per_pixel = (torch.sigmoid(logits) - target).square()
    else:
        raise ValueError(f"recon_loss must be one of {RECON_LOSSES}, not {kind!r}")
    return per_pixel.flatten(1).sum(1)  # (N,)


def kl_per_image(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) for mu, logvar (N, latent_dim) -> (N,)."""
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum(1)


def recon_figures(logits: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-pixel MSE and BCE and the PSNR of a reconstruction, batch means, for logging."""
    n_pix = target[0].numel()
    return {
        "mse": recon_per_image(logits, target, "mse").mean() / n_pix,
        "bce": recon_per_image(logits, target, "bce").mean() / n_pix,
        "psnr": psnr_per_image(torch.sigmoid(logits), target).mean(),
    }


def psnr_per_image(images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of images (N, 1, 28, 28) in [0, 1] against target, one value per image -> (N,)."""
    # Imported here: torchmetrics takes ~2 s to import (it loads scipy.signal), which every
    # command that loads a model would pay; only training figures and reconstruction metrics
    # need it (with the other imports made where used: `mnistlab evaluate` of 10,000 samples
    # 10-12 s -> 7-8 s with judge v1).
    from torchmetrics.functional.image import peak_signal_noise_ratio

    return peak_signal_noise_ratio(images, target, data_range=1.0, reduction="none", dim=(1, 2, 3))
