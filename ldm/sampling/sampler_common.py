"""What every sampler shares: the denoiser and callback types and the small step formulas.

A sampler is one function ``sample_x(model, x, sigmas, extra_args=None, callback=None,
noise_sampler=None, **options) -> x`` in k-diffusion's style (Crowson, k-diffusion):

- ``model(x, sigma, **extra_args)`` is a *denoiser*: given x in sigma space (``x0 + sigma·n``)
  and ``sigma`` as a ``[B]`` tensor it returns the estimate of x0, ``[B, C, h, w]``;
- ``sigmas`` is the decreasing schedule, usually ending in 0; ``x`` starts at ``sigmas[0]``;
- ``callback`` receives ``{"x", "i", "sigma", "sigma_hat", "denoised"}`` once per step; it is
  also where the caller checks for interruption (by raising);
- ``noise_sampler(sigma, sigma_next)`` gives unit-variance noise to samplers that inject noise
  (ancestral and SDE ones); they raise if it is missing, so nothing draws from a global RNG.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from torch import Tensor

from ldm.sampling.noise import NoiseSampler

Callback = Callable[[dict[str, Any]], None]


class Denoiser(Protocol):
    def __call__(self, x: Tensor, sigma: Tensor, **extra_args: Any) -> Tensor: ...


def batch_sigma(sigma: Tensor, x: Tensor) -> Tensor:
    """A scalar sigma as the ``[B]`` vector a denoiser takes."""
    return sigma * x.new_ones([x.shape[0]])


def to_d(x: Tensor, sigma: Tensor, denoised: Tensor) -> Tensor:
    """The probability-flow ODE's derivative dx/dsigma = (x - x0)/sigma (Karras et al. 2022, eq. 3)."""
    return (x - denoised) / sigma


def ancestral_step(sigma_from: Tensor, sigma_to: Tensor, eta: float = 1.0) -> tuple[Tensor, Tensor]:
    """Split a step to ``sigma_to`` into a deterministic part down to ``sigma_down`` and fresh
    noise of std ``sigma_up`` with sigma_down² + sigma_up² = sigma_to² (DDPM's ancestral step
    at eta = 1; DDIM's eta interpolates to the deterministic step at eta = 0)."""
    if not eta:
        return sigma_to, sigma_to * 0
    sigma_up = min(sigma_to, eta * (sigma_to ** 2 * (sigma_from ** 2 - sigma_to ** 2) / sigma_from ** 2) ** 0.5)
    sigma_down = (sigma_to ** 2 - sigma_up ** 2) ** 0.5
    return sigma_down, sigma_up


def report(callback: Callback | None, x: Tensor, i: int, sigma: Tensor, sigma_hat: Tensor,
           denoised: Tensor) -> None:
    if callback is not None:
        callback({"x": x, "i": i, "sigma": sigma, "sigma_hat": sigma_hat, "denoised": denoised})


def require_noise(noise_sampler: NoiseSampler | None, sampler: str) -> NoiseSampler:
    if noise_sampler is None:
        raise ValueError(f"sampler {sampler!r} injects noise and needs a noise_sampler")
    return noise_sampler
