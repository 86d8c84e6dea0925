"""Fixtures for the sampling tests: a 1-D Gaussian toy problem with a closed-form denoiser."""

from __future__ import annotations

import pytest
import torch

from ldm.sampling.model_sampling import model_sampling


class GaussianToy:
    """Data x0 ~ N(mu, s²) per dimension; x = x0 + sigma·n.

    The exact MMSE denoiser is E[x0 | x] = (s²·x + sigma²·mu) / (s² + sigma²); the exact
    probability-flow ODE maps x at sigma to mu + (x - mu)·s / sqrt(s² + sigma²) at sigma = 0
    (a "consistency function", what LCM-distilled models approximate).
    """

    def __init__(self, mu: float = 0.5, s: float = 0.5):
        self.mu, self.s = mu, s
        self.calls = 0

    def denoiser(self, x, sigma, report_uncond=None, **extra_args):
        self.calls += 1
        sigma = sigma.reshape(-1, *([1] * (x.ndim - 1)))
        denoised = (self.s ** 2 * x + sigma ** 2 * self.mu) / (self.s ** 2 + sigma ** 2)
        if report_uncond is not None:  # unguided: the unconditional prediction is the prediction (CFG++)
            report_uncond(denoised)
        return denoised

    def consistency(self, x, sigma, **extra_args):
        self.calls += 1
        sigma = sigma.reshape(-1, *([1] * (x.ndim - 1)))
        return self.mu + (x - self.mu) * self.s / (self.s ** 2 + sigma ** 2) ** 0.5


@pytest.fixture
def toy():
    return GaussianToy()


@pytest.fixture(scope="session")
def sd_sampling():
    return model_sampling("eps")


@pytest.fixture
def start_noise():
    """4000 independent dimensions of unit noise, as one batch item [1, 4000]."""
    return torch.randn(1, 4000, generator=torch.Generator().manual_seed(1234))
