"""``comfy.ldm.modules.distributions.distributions``: the autoencoder's diagonal Gaussian posterior.

A thin object over Weft's posterior (:func:`ldm.networks.autoencoder.sample_posterior`; ``logvar`` clamped to
[-30, 20] as :meth:`ldm.networks.autoencoder.AutoencoderKL.encode` does). Sampling draws its noise on the
CPU from the global generator, like Weft's encoders.
"""

from __future__ import annotations

import math

import torch

from ldm.networks.autoencoder import sample_posterior


class DiagonalGaussianDistribution:
    """N(mean, exp(logvar)) per latent element; ``parameters`` [B, 2C, h, w] = cat(mean, logvar)."""

    def __init__(self, parameters: torch.Tensor, deterministic: bool = False):
        self.parameters = parameters
        self.mean, logvar = torch.chunk(parameters, 2, dim=1)
        self.logvar = logvar.clamp(-30.0, 20.0)
        self.deterministic = deterministic
        self.std = torch.exp(0.5 * self.logvar)
        self.var = torch.exp(self.logvar)
        if deterministic:
            self.var = self.std = torch.zeros_like(self.mean)

    def sample(self) -> torch.Tensor:
        if self.deterministic:
            return self.mean
        return sample_posterior(self.mean, self.logvar)

    def mode(self) -> torch.Tensor:
        return self.mean

    def kl(self, other: "DiagonalGaussianDistribution | None" = None) -> torch.Tensor:
        """KL(self || other) per batch item; ``other`` None is the standard normal."""
        if self.deterministic:
            return torch.tensor([0.0])
        if other is None:
            return 0.5 * torch.sum(self.mean ** 2 + self.var - 1.0 - self.logvar, dim=[1, 2, 3])
        return 0.5 * torch.sum((self.mean - other.mean) ** 2 / other.var + self.var / other.var
                               - 1.0 - self.logvar + other.logvar, dim=[1, 2, 3])

    def nll(self, sample: torch.Tensor, dims=(1, 2, 3)) -> torch.Tensor:
        """Negative log-likelihood of ``sample``, summed over ``dims``."""
        if self.deterministic:
            return torch.tensor([0.0])
        return 0.5 * torch.sum(math.log(2.0 * math.pi) + self.logvar + (sample - self.mean) ** 2 / self.var,
                               dim=list(dims))
