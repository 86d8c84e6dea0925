"""The paper's own samplers (CompVis latent-diffusion ``ddim.py`` and ``plms.py``) as Weft samplers.

Same signature as every sampler (:mod:`ldm.sampling.sampler_common`): the model is the denoiser
in sigma space and the schedule is whatever sigmas the caller gives. The DDIM update is written
on the VP quantities of the paper: a discrete eps / v model's table is sigma = sqrt((1 - ᾱ)/ᾱ),
so at any sigma ᾱ = 1/(1 + sigma²) (what ``DiscreteSchedule.alphas_cumprod`` holds), the VP
state is x_vp = sqrt(ᾱ)·x and eps = (x - x0)/sigma. Scalar coefficients are computed in Python
floats (double precision) because 1 - ᾱ at the smallest sigmas (≈ 8.5e-4) loses digits in float32.

Where the schedule ends: Weft's schedules end in sigma 0 (ᾱ = 1, diffusers' ``set_alpha_to_one``),
so the last step lands on the x0 estimate; CompVis (and diffusers with ``set_alpha_to_one=False``)
stop at ᾱ of timestep 0 (sigma ≈ 0.029) instead — a schedule that ends there reproduces it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ldm.sampling.noise import NoiseSampler
from ldm.sampling.sampler_common import Callback, Denoiser, batch_sigma, report, require_noise, to_d

#: Adams–Bashforth weights on (newest, …, oldest) eps, by how many eps are combined (PNDM, Liu et
#: al. 2022, eq. 12; CompVis ``p_sample_plms``). "Pseudo": they assume equal steps whatever the schedule.
ADAMS_BASHFORTH: dict[int, tuple[float, ...]] = {
    1: (1.0,),
    2: (3 / 2, -1 / 2),
    3: (23 / 12, -16 / 12, 5 / 12),
    4: (55 / 24, -59 / 24, 37 / 24, -9 / 24),
}


def alpha_cumprod(sigma: float) -> float:
    """ᾱ of a VP (DDPM) model at ``sigma``."""
    return 1.0 / (1.0 + sigma * sigma)


def ddim_step(x: Tensor, sigma: float, sigma_next: float, eps: Tensor, eta: float = 0.0,
              noise: Tensor | None = None) -> Tensor:
    """One DDIM update from ``sigma`` to ``sigma_next`` (Song et al. 2021, eq. 12), in sigma space.

    In VP space: x_vp' = sqrt(ᾱ')·x0 + sqrt(1 - ᾱ' - σ_t²)·eps + σ_t·z with x0 = x - sigma·eps and
    σ_t = η·sqrt((1 - ᾱ')/(1 - ᾱ))·sqrt(1 - ᾱ/ᾱ') (eq. 16; η = 1 is DDPM's posterior variance).
    Returned divided by sqrt(ᾱ'), i.e. as x at ``sigma_next``. σ_t is capped at sqrt(1 - ᾱ')
    (all of the next noise level) so η > 1 cannot take a square root of a negative number.
    ``noise`` (unit, shaped like x) is needed only when σ_t > 0.
    """
    a, a_next = alpha_cumprod(sigma), alpha_cumprod(sigma_next)
    x0 = x - sigma * eps
    std = 0.0
    if eta and sigma_next > 0:
        std = eta * math.sqrt((1 - a_next) / (1 - a) * (1 - a / a_next))
        std = min(std, math.sqrt(1 - a_next))
    x_next = x0 + math.sqrt(max(1 - a_next - std * std, 0.0) / a_next) * eps
    if std:
        if noise is None:
            raise ValueError("a DDIM step with eta > 0 needs noise")
        x_next = x_next + (std / math.sqrt(a_next)) * noise
    return x_next


@torch.no_grad()
def sample_ddim_eta(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                    callback: Callback | None = None, noise_sampler: NoiseSampler | None = None,
                    eta: float = 1.0, s_noise: float = 1.0) -> Tensor:
    """DDIM with η: 0 deterministic, 1 DDPM-like ancestral noise (Song et al. 2021; CompVis ddim.py)."""
    extra_args = extra_args or {}
    if eta:
        noise_sampler = require_noise(noise_sampler, "ddim_eta")
    for i in range(len(sigmas) - 1):
        denoised = model(x, batch_sigma(sigmas[i], x), **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        # One draw per step that adds noise (none into sigma 0), as the other ancestral samplers.
        noise = noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise if eta and sigma_next > 0 else None
        x = ddim_step(x, sigma, sigma_next, to_d(x, sigmas[i], denoised), eta, noise)
    return x


@torch.no_grad()
def sample_plms(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                callback: Callback | None = None, noise_sampler: NoiseSampler | None = None,
                order: int = 4) -> Tensor:
    """Pseudo linear multistep: a pseudo improved Euler start, then Adams–Bashforth on eps (Liu et al. 2022)."""
    if order not in ADAMS_BASHFORTH:
        raise ValueError(f"PLMS order must be one of {sorted(ADAMS_BASHFORTH)}, not {order}")
    extra_args = extra_args or {}
    previous: list[Tensor] = []  # eps of the latest steps' own evaluations, newest first
    for i in range(len(sigmas) - 1):
        denoised = model(x, batch_sigma(sigmas[i], x), **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        eps = to_d(x, sigmas[i], denoised)
        if i == 0 and sigma_next > 0:
            # Pseudo improved Euler (2nd order): average with eps at the DDIM step's end point.
            # This is the one extra evaluation; the run costs steps + 1 (not when the only step
            # goes to sigma 0, where eps is undefined — then it is a plain DDIM step).
            x_end = ddim_step(x, sigma, sigma_next, eps)
            eps_end = to_d(x_end, sigmas[i + 1], model(x_end, batch_sigma(sigmas[i + 1], x), **extra_args))
            combined = (eps + eps_end) / 2
        else:
            recent = [eps, *previous]
            combined = eps * ADAMS_BASHFORTH[len(recent)][0]
            for weight, older in zip(ADAMS_BASHFORTH[len(recent)][1:], recent[1:]):
                combined = combined + weight * older
        # The start's end-point eps is not kept: only each step's own evaluation (CompVis, diffusers).
        previous = [eps, *previous][:order - 1]
        x = ddim_step(x, sigma, sigma_next, combined)
    return x
