"""``vae``: a convolutional VAE with the ``ae`` API, the reparameterised posterior and the prior."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mnistlab.models import check_channels, check_size, losses, register_model
from mnistlab.models.autoencoder import conv_decoder, conv_encoder


@dataclass(frozen=True)
class VAEConfig:
    latent_dim: int = 16
    channels: tuple[int, ...] = (16, 32)  # as ae: same speed, same decoder
    beta: float = 1.0  # weight of the KL term; 1 is the ELBO

    def __post_init__(self) -> None:
        check_size("vae", "latent_dim", self.latent_dim)
        object.__setattr__(self, "channels", check_channels("vae", "channels", self.channels, 4))


class VAE(nn.Module):
    config: VAEConfig
    model_name: str

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.latent_dim = config.latent_dim
        self.encoder = conv_encoder(config.channels, 2 * config.latent_dim)
        self.decoder = conv_decoder(config.latent_dim, config.channels)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, 1, 28, 28) -> (mu, logvar), each (N, latent_dim)."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 8.0)  # keeps exp(logvar) finite early in training

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean (N, latent_dim)."""
        return self.posterior(x)[0]

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)  # (N, 1, 28, 28)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (N, latent_dim) -> images (N, 1, 28, 28) in [0, 1]."""
        return torch.sigmoid(self.decoder(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction from the posterior mean, (N, 1, 28, 28) in [0, 1]."""
        return self.decode(self.encode(x))

    def sample_prior(self, n: int, generator: torch.Generator | int = 0) -> torch.Tensor:
        """n images decoded from z ~ N(0, I) -> (n, 1, 28, 28) in [0, 1]."""
        if isinstance(generator, int):
            generator = torch.Generator().manual_seed(generator)
        z = torch.randn(n, self.latent_dim, generator=generator)  # (n, latent_dim)
        return self.decode(z)

    def loss_terms(
        self, x_in: torch.Tensor, target: torch.Tensor, y: torch.Tensor, recon_loss: str = "bce"
    ) -> dict[str, torch.Tensor]:
        """Negative ELBO per pixel; in eval mode the posterior mean is decoded (deterministic)."""
        mu, logvar = self.posterior(x_in)  # (N, latent_dim) each
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu) if self.training else mu
        logits = self.decode_logits(z)  # (N, 1, 28, 28)
        n_pix = target[0].numel()
        rec = losses.recon_per_image(logits, target, recon_loss)  # (N,)
        kl = losses.kl_per_image(mu, logvar)  # (N,)
        terms = {"loss": (rec + self.config.beta * kl).mean() / n_pix, "kl": kl.mean()}
        if not self.training:
            terms |= losses.recon_figures(logits, target)
        return terms


@register_model("vae", train_defaults={"epochs": 10, "batch_size": 128, "lr": 3e-3})
def build_vae(config: VAEConfig) -> VAE:
    return VAE(config)
