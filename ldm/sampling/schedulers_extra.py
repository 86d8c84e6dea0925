"""Schedules beyond the KSampler's list: k-diffusion's polyexponential and VP, the Laplace
schedule, and the published tables (Align Your Steps, GITS, Optimal Steps) resampled to any
number of steps.

All return float32 SIGMAS, decreasing; all but :func:`laplace_sigmas` end in 0.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy
import torch
from torch import Tensor

from ldm.sampling.noise_level_tables import ALIGN_YOUR_STEPS, GITS, OPTIMAL_STEPS

#: GITS tables exist for 2 … 20 steps; longer schedules stretch the 20-step one.
GITS_LONGEST_TABLE = 20


def _append_zero(sigmas: Tensor) -> Tensor:
    return torch.cat([sigmas, sigmas.new_zeros([1])])


def polyexponential_sigmas(n: int, sigma_min: float, sigma_max: float, rho: float = 1.0) -> Tensor:
    """log sigma falls from log sigma_max to log sigma_min along ramp^rho (k-diffusion); rho = 1
    is the exponential schedule."""
    ramp = torch.linspace(1, 0, n) ** rho
    return _append_zero(torch.exp(ramp * (math.log(sigma_max) - math.log(sigma_min)) + math.log(sigma_min)))


def vp_sigmas(n: int, beta_d: float = 19.9, beta_min: float = 0.1, eps_s: float = 1e-3) -> Tensor:
    """The continuous VP SDE's sigmas at t = 1 … eps_s (Song et al. 2021): sigma(t)² =
    exp(beta_d·t²/2 + beta_min·t) - 1."""
    t = torch.linspace(1, eps_s, n)
    return _append_zero(torch.sqrt(torch.special.expm1(beta_d * t ** 2 / 2 + beta_min * t)))


def laplace_sigmas(n: int, sigma_min: float, sigma_max: float, mu: float = 0.0, beta: float = 0.5) -> Tensor:
    """log sigma at the quantiles of a Laplace(mu, beta) distribution (Hang et al. 2024, "Improved
    Noise Schedule for Diffusion Training"), clamped to [sigma_min, sigma_max]. As in ComfyUI,
    ``n`` sigmas without a final 0."""
    epsilon = 1e-5  # keeps the log finite at the ends
    x = torch.linspace(0, 1, n)
    log_sigma = mu - beta * torch.sign(0.5 - x) * torch.log(1 - 2 * torch.abs(0.5 - x) + epsilon)
    return torch.clamp(torch.exp(log_sigma), min=sigma_min, max=sigma_max)


def loglinear_interp(sigmas: Sequence[float], count: int) -> numpy.ndarray:
    """``count`` sigmas spread over a decreasing schedule, linear in log sigma between its points."""
    known = numpy.log(numpy.asarray(sigmas, dtype=numpy.float64)[::-1])
    positions = numpy.linspace(0, 1, len(known))
    return numpy.exp(numpy.interp(numpy.linspace(0, 1, count), positions, known))[::-1].copy()


def _from_table(table: Sequence[float], steps: int, denoise: float) -> Tensor:
    """A table's schedule for ``steps`` steps, ending in 0; ``denoise < 1`` keeps the last
    ``round(steps·denoise)`` steps, ``denoise ≤ 0`` none."""
    if denoise <= 0.0:
        return torch.zeros(0)
    kept = round(steps * denoise) if denoise < 1.0 else steps
    sigmas = numpy.asarray(table, dtype=numpy.float64)
    if len(sigmas) != steps + 1:
        sigmas = loglinear_interp(table, steps + 1)
    sigmas = sigmas[-(kept + 1):].copy()
    sigmas[-1] = 0
    return torch.tensor(sigmas, dtype=torch.float32)


def align_your_steps_sigmas(model_type: str, steps: int, denoise: float = 1.0) -> Tensor:
    """Align Your Steps' 10-step schedule for ``model_type`` (SD1, SDXL, SVD), log-linearly
    resampled to ``steps`` (Sabour et al. 2024)."""
    return _from_table(ALIGN_YOUR_STEPS[model_type], steps, denoise)


def optimal_steps_sigmas(model_type: str, steps: int, denoise: float = 1.0) -> Tensor:
    """Optimal Steps' schedule for ``model_type`` (FLUX, Wan, Chroma), resampled to ``steps``
    (Pei et al. 2025)."""
    return _from_table(OPTIMAL_STEPS[model_type], steps, denoise)


def gits_sigmas(coeff: float, steps: int, denoise: float = 1.0) -> Tensor:
    """GITS' SD 1.x schedule for coefficient ``coeff`` (0.80 … 1.50 by 0.05) and ``steps`` ≥ 2
    (Chen et al. 2024); beyond 20 steps the 20-step schedule is resampled."""
    key = round(coeff, 2)
    if key not in GITS:
        raise ValueError(f"GITS has no schedules for coeff {coeff}; expected one of {sorted(GITS)}")
    if steps < 2:
        raise ValueError("GITS schedules need at least 2 steps")
    schedules = GITS[key]
    return _from_table(schedules[min(steps, GITS_LONGEST_TABLE) - 2], steps, denoise)
