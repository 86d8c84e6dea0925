"""Noise schedules: sigma sequences from sigma_max down to 0, under ComfyUI's scheduler names.

Every function of :data:`SCHEDULERS` has the signature ``(model_sampling, steps) -> sigmas``
and returns a float32 tensor of ``steps + 1`` decreasing sigmas ending in 0 (``beta`` may return
fewer when two quantiles round to the same timestep, as ComfyUI's does). The k-diffusion style
builders (:func:`karras_sigmas`, :func:`exponential_sigmas`, :func:`kl_optimal_sigmas`) take
``(n, sigma_min, sigma_max)`` and are usable on their own (ComfyUI's custom-sampling nodes).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy
import torch
from torch import Tensor

from ldm.sampling.beta_distribution import beta_ppf
from ldm.sampling.model_sampling import ModelSampling


def _append_zero(sigmas: Tensor) -> Tensor:
    return torch.cat([sigmas, sigmas.new_zeros([1])])


def karras_sigmas(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> Tensor:
    """Karras et al. (2022), eq. 5: sigmas evenly spaced in sigma^(1/rho), rho = 7."""
    ramp = torch.linspace(0, 1, n)
    min_inv_rho, max_inv_rho = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return _append_zero((max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho)


def exponential_sigmas(n: int, sigma_min: float, sigma_max: float) -> Tensor:
    """Sigmas evenly spaced in log sigma."""
    return _append_zero(torch.linspace(math.log(sigma_max), math.log(sigma_min), n).exp())


def kl_optimal_sigmas(n: int, sigma_min: float, sigma_max: float) -> Tensor:
    """Evenly spaced in arctan(sigma): the KL-optimal schedule of Sabour et al. (2024), "Align
    Your Steps", as AUTOMATIC1111 (PR #15608) and ComfyUI implement it."""
    if n == 1:  # the formula divides by n - 1; one step goes straight from sigma_max
        return torch.tensor([sigma_max, 0.0], dtype=torch.float32)
    frac = torch.arange(n, dtype=torch.float32) / (n - 1)
    sigmas = torch.zeros(n + 1)
    sigmas[:-1] = (frac * math.atan(sigma_min) + (1 - frac) * math.atan(sigma_max)).tan()
    return sigmas


def karras(ms: ModelSampling, steps: int) -> Tensor:
    return karras_sigmas(steps, float(ms.sigma_min), float(ms.sigma_max))


def exponential(ms: ModelSampling, steps: int) -> Tensor:
    return exponential_sigmas(steps, float(ms.sigma_min), float(ms.sigma_max))


def kl_optimal(ms: ModelSampling, steps: int) -> Tensor:
    return kl_optimal_sigmas(steps, float(ms.sigma_min), float(ms.sigma_max))


def _timestep_spaced(ms: ModelSampling, steps: int, sgm: bool) -> Tensor:
    start = float(ms.timestep(ms.sigma_max))
    end = float(ms.timestep(ms.sigma_min))
    append_zero = True
    if sgm:
        # SGM (Stability's generative-models) spacing: steps + 1 points, the last one dropped.
        timesteps = torch.linspace(start, end, steps + 1)[:-1]
    else:
        if math.isclose(float(ms.sigma(torch.tensor(end))), 0.0, abs_tol=1e-5):
            steps, append_zero = steps + 1, False
        timesteps = torch.linspace(start, end, steps)
    sigmas = ms.sigma(timesteps).float()
    return _append_zero(sigmas) if append_zero else sigmas


def normal(ms: ModelSampling, steps: int) -> Tensor:
    """Timesteps evenly spaced from the last to the first, both included; sigma interpolated."""
    return _timestep_spaced(ms, steps, sgm=False)


def sgm_uniform(ms: ModelSampling, steps: int) -> Tensor:
    """Like ``normal`` over ``steps + 1`` points, dropping the last timestep."""
    return _timestep_spaced(ms, steps, sgm=True)


def simple(ms: ModelSampling, steps: int) -> Tensor:
    """Every ``T/steps``-th entry of the sigma table, from the top (diffusers' "trailing")."""
    stride = len(ms.sigmas) / steps
    picked = [float(ms.sigmas[-(1 + int(i * stride))]) for i in range(steps)]
    return torch.tensor(picked + [0.0], dtype=torch.float32)


def ddim_uniform(ms: ModelSampling, steps: int) -> Tensor:
    """DDIM's uniform timesteps 1, 1+k, 1+2k, … with k = T // steps (diffusers' "leading", offset 1).

    As in ComfyUI, when T is not a multiple of ``steps`` this can yield more than ``steps``
    sigmas; a table whose first sigma is 0 (zero-SNR flow tables) gets one step more instead of
    the appended 0.
    """
    table = ms.sigmas
    if math.isclose(float(table[1]), 0.0, abs_tol=1e-5):
        steps, picked = steps + 1, []
    else:
        picked = [0.0]
    stride = max(len(table) // steps, 1)
    picked += [float(table[i]) for i in range(1, len(table), stride)]
    return torch.tensor(picked[::-1], dtype=torch.float32)


def beta(ms: ModelSampling, steps: int, alpha: float = 0.6, beta_: float = 0.6) -> Tensor:
    """Timesteps at the Beta(0.6, 0.6) quantiles (Lee et al. 2024, arXiv:2407.12173).

    Quantiles are rounded to integer timesteps (half to even, like ``numpy.rint``); a timestep
    equal to the previous one is skipped, so very long schedules can come out shorter.
    """
    last = len(ms.sigmas) - 1
    quantiles = 1.0 - numpy.linspace(0.0, 1.0, steps, endpoint=False)
    timesteps = numpy.rint(numpy.array([beta_ppf(float(q), alpha, beta_) for q in quantiles]) * last)
    picked, previous = [], None
    for t in timesteps:
        if t != previous:
            picked.append(float(ms.sigmas[int(t)]))
        previous = t
    return torch.tensor(picked + [0.0], dtype=torch.float32)


def linear_quadratic(ms: ModelSampling, steps: int, threshold_noise: float = 0.025,
                     linear_steps: int | None = None) -> Tensor:
    """Genmo Mochi's schedule: sigma/sigma_max rises linearly to ``threshold_noise`` over the
    first half of the steps, then quadratically to 1 (read backwards: from 1 down to 0)."""
    if steps == 1:
        schedule = [1.0, 0.0]
    else:
        linear_steps = steps // 2 if linear_steps is None else linear_steps
        linear = [i * threshold_noise / linear_steps for i in range(linear_steps)]
        step_diff = linear_steps - threshold_noise * steps
        quadratic_steps = steps - linear_steps
        quad_coef = step_diff / (linear_steps * quadratic_steps ** 2)
        lin_coef = threshold_noise / linear_steps - 2 * step_diff / quadratic_steps ** 2
        const = quad_coef * linear_steps ** 2
        quadratic = [quad_coef * i ** 2 + lin_coef * i + const for i in range(linear_steps, steps)]
        schedule = [1.0 - v for v in linear + quadratic + [1.0]]
    return torch.tensor(schedule, dtype=torch.float32) * float(ms.sigma_max)


SchedulerFunction = Callable[[ModelSampling, int], Tensor]

#: ComfyUI's scheduler names, in ComfyUI's order (the KSampler widget lists them so).
SCHEDULERS: dict[str, SchedulerFunction] = {
    "simple": simple,
    "sgm_uniform": sgm_uniform,
    "karras": karras,
    "exponential": exponential,
    "ddim_uniform": ddim_uniform,
    "beta": beta,
    "normal": normal,
    "linear_quadratic": linear_quadratic,
    "kl_optimal": kl_optimal,
}
SCHEDULER_NAMES = tuple(SCHEDULERS)


def calculate_sigmas(ms: ModelSampling, scheduler: str, steps: int) -> Tensor:
    """The sigmas of ``scheduler`` for ``steps`` steps of a model with sampling ``ms``."""
    try:
        function = SCHEDULERS[scheduler]
    except KeyError:
        raise ValueError(f"unknown scheduler {scheduler!r}; expected one of {list(SCHEDULER_NAMES)}")
    return function(ms, steps)
