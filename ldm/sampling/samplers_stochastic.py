"""Samplers that inject fresh noise each step: ancestral (DDPM-like) and SDE solvers.

Same signature as every sampler (:mod:`ldm.sampling.sampler_common`). ``noise_sampler`` is
required: the ancestral ones take a :class:`~ldm.sampling.noise.StepNoiseSampler`, the SDE ones
(``dpmpp_sde``, ``dpmpp_2m_sde``, ``dpmpp_3m_sde``) a
:class:`~ldm.sampling.noise.BrownianNoiseSampler` spanning the schedule's sigma range.
These are the variance-exploding forms (alpha = 1) for eps / v models; ComfyUI switches to
rectified-flow variants for flow models, which Weft does not sample yet.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ldm.sampling.noise import NoiseSampler
from ldm.sampling.sampler_common import (Callback, Denoiser, ancestral_step, batch_sigma, report,
                                         require_noise, to_d)


@torch.no_grad()
def sample_euler_ancestral(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                           callback: Callback | None = None, noise_sampler: NoiseSampler | None = None,
                           eta: float = 1.0, s_noise: float = 1.0) -> Tensor:
    """Euler steps down to sigma_down plus fresh noise of sigma_up (Crowson, k-diffusion; Ho et al. 2020)."""
    extra_args = extra_args or {}
    noise_sampler = require_noise(noise_sampler, "euler_ancestral")
    for i in range(len(sigmas) - 1):
        denoised = model(x, batch_sigma(sigmas[i], x), **extra_args)
        sigma_down, sigma_up = ancestral_step(sigmas[i], sigmas[i + 1], eta)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        if sigma_down == 0:
            x = denoised
        else:
            x = x + to_d(x, sigmas[i], denoised) * (sigma_down - sigmas[i])
            x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * sigma_up
    return x


@torch.no_grad()
def sample_dpm_2_ancestral(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                           callback: Callback | None = None, noise_sampler: NoiseSampler | None = None,
                           eta: float = 1.0, s_noise: float = 1.0) -> Tensor:
    """Ancestral steps with DPM-Solver-2 midpoint updates (Lu et al. 2022; Crowson, k-diffusion)."""
    extra_args = extra_args or {}
    noise_sampler = require_noise(noise_sampler, "dpm_2_ancestral")
    for i in range(len(sigmas) - 1):
        denoised = model(x, batch_sigma(sigmas[i], x), **extra_args)
        sigma_down, sigma_up = ancestral_step(sigmas[i], sigmas[i + 1], eta)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        d = to_d(x, sigmas[i], denoised)
        if sigma_down == 0:
            x = x + d * (sigma_down - sigmas[i])
        else:
            sigma_mid = sigmas[i].log().lerp(sigma_down.log(), 0.5).exp()
            x_2 = x + d * (sigma_mid - sigmas[i])
            d_2 = to_d(x_2, sigma_mid, model(x_2, batch_sigma(sigma_mid, x), **extra_args))
            x = x + d_2 * (sigma_down - sigmas[i])
            x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * sigma_up
    return x


@torch.no_grad()
def sample_dpmpp_2s_ancestral(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                              callback: Callback | None = None, noise_sampler: NoiseSampler | None = None,
                              eta: float = 1.0, s_noise: float = 1.0) -> Tensor:
    """Ancestral sampling with DPM-Solver++(2S) single-step updates (Lu et al. 2022, arXiv:2211.01095)."""
    extra_args = extra_args or {}
    noise_sampler = require_noise(noise_sampler, "dpmpp_2s_ancestral")
    for i in range(len(sigmas) - 1):
        denoised = model(x, batch_sigma(sigmas[i], x), **extra_args)
        sigma_down, sigma_up = ancestral_step(sigmas[i], sigmas[i + 1], eta)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        if sigma_down == 0:
            x = x + to_d(x, sigmas[i], denoised) * (sigma_down - sigmas[i])
        else:
            # Midpoint in t = -log sigma: sigma_s = sqrt(sigma_i · sigma_down).
            h = sigmas[i].log() - sigma_down.log()
            sigma_s = (sigmas[i].log() - h / 2).exp()
            x_2 = (sigma_s / sigmas[i]) * x - (-h / 2).expm1() * denoised
            denoised_2 = model(x_2, batch_sigma(sigma_s, x), **extra_args)
            x = (sigma_down / sigmas[i]) * x - (-h).expm1() * denoised_2
        if sigmas[i + 1] > 0:
            x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * sigma_up
    return x


@torch.no_grad()
def sample_dpmpp_sde(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                     callback: Callback | None = None, noise_sampler: NoiseSampler | None = None,
                     eta: float = 1.0, s_noise: float = 1.0, r: float = 0.5) -> Tensor:
    """DPM-Solver++ stochastic second-order single-step (SDE-DPM-Solver++, Lu et al. 2022)."""
    extra_args = extra_args or {}
    noise_sampler = require_noise(noise_sampler, "dpmpp_sde")
    for i in range(len(sigmas) - 1):
        denoised = model(x, batch_sigma(sigmas[i], x), **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        if sigmas[i + 1] == 0:
            x = denoised
            continue
        # lambda = -log sigma (half log-SNR of a VE process); the intermediate point sits at
        # fraction r of the step in lambda.
        lambda_s, lambda_t = -sigmas[i].log(), -sigmas[i + 1].log()
        h = lambda_t - lambda_s
        sigma_s1 = (-(lambda_s + r * h)).exp()
        fac = 1 / (2 * r)

        sd, su = ancestral_step(sigmas[i], sigma_s1, eta)
        x_2 = (sd / sigmas[i]) * x - (sigmas[i].log() - sd.log()).neg().expm1() * denoised
        if eta > 0 and s_noise > 0:
            x_2 = x_2 + noise_sampler(sigmas[i], sigma_s1) * s_noise * su
        denoised_2 = model(x_2, batch_sigma(sigma_s1, x), **extra_args)

        sd, su = ancestral_step(sigmas[i], sigmas[i + 1], eta)
        denoised_d = (1 - fac) * denoised + fac * denoised_2
        x = (sd / sigmas[i]) * x - (sigmas[i].log() - sd.log()).neg().expm1() * denoised_d
        if eta > 0 and s_noise > 0:
            x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * su
    return x


@torch.no_grad()
def sample_dpmpp_2m_sde(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                        callback: Callback | None = None, noise_sampler: NoiseSampler | None = None,
                        eta: float = 1.0, s_noise: float = 1.0, solver_type: str = "midpoint") -> Tensor:
    """DPM-Solver++(2M) SDE, multistep second order (Lu et al. 2022, arXiv:2211.01095)."""
    if solver_type not in {"heun", "midpoint"}:
        raise ValueError("solver_type must be 'heun' or 'midpoint'")
    extra_args = extra_args or {}
    noise_sampler = require_noise(noise_sampler, "dpmpp_2m_sde")
    old_denoised, h_last = None, None
    for i in range(len(sigmas) - 1):
        denoised = model(x, batch_sigma(sigmas[i], x), **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        h = None
        if sigmas[i + 1] == 0:
            x = denoised
        else:
            h = sigmas[i].log() - sigmas[i + 1].log()
            h_eta = h * (eta + 1)
            x = sigmas[i + 1] / sigmas[i] * (-h * eta).exp() * x + (-h_eta).expm1().neg() * denoised
            if old_denoised is not None:
                r = h_last / h
                if solver_type == "heun":
                    x = x + ((-h_eta).expm1().neg() / (-h_eta) + 1) * (1 / r) * (denoised - old_denoised)
                else:
                    x = x + 0.5 * (-h_eta).expm1().neg() * (1 / r) * (denoised - old_denoised)
            if eta > 0 and s_noise > 0:
                x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * sigmas[i + 1] \
                    * (-2 * h * eta).expm1().neg().sqrt() * s_noise
        old_denoised, h_last = denoised, h
    return x


@torch.no_grad()
def sample_dpmpp_3m_sde(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                        callback: Callback | None = None, noise_sampler: NoiseSampler | None = None,
                        eta: float = 1.0, s_noise: float = 1.0) -> Tensor:
    """DPM-Solver++(3M) SDE, multistep third order (Lu et al. 2022; Crowson, k-diffusion)."""
    extra_args = extra_args or {}
    noise_sampler = require_noise(noise_sampler, "dpmpp_3m_sde")
    denoised_1 = denoised_2 = None
    h_1 = h_2 = None
    for i in range(len(sigmas) - 1):
        denoised = model(x, batch_sigma(sigmas[i], x), **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        h = None
        if sigmas[i + 1] == 0:
            x = denoised
        else:
            h = sigmas[i].log() - sigmas[i + 1].log()
            h_eta = h * (eta + 1)
            x = sigmas[i + 1] / sigmas[i] * (-h * eta).exp() * x + (-h_eta).expm1().neg() * denoised
            phi_2 = h_eta.neg().expm1() / h_eta + 1
            if h_2 is not None:
                r0, r1 = h_1 / h, h_2 / h
                d1_0 = (denoised - denoised_1) / r0
                d1_1 = (denoised_1 - denoised_2) / r1
                d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
                d2 = (d1_0 - d1_1) / (r0 + r1)
                phi_3 = phi_2 / h_eta - 0.5
                x = x + phi_2 * d1 - phi_3 * d2
            elif h_1 is not None:
                x = x + phi_2 * (denoised - denoised_1) / (h_1 / h)
            if eta > 0 and s_noise > 0:
                x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * sigmas[i + 1] \
                    * (-2 * h * eta).expm1().neg().sqrt() * s_noise
        denoised_1, denoised_2 = denoised, denoised_1
        h_1, h_2 = h, h_1
    return x


@torch.no_grad()
def sample_ddpm(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                callback: Callback | None = None, noise_sampler: NoiseSampler | None = None) -> Tensor:
    """DDPM ancestral steps in variance-preserving space (Ho et al. 2020, Algorithm 2)."""
    extra_args = extra_args or {}
    noise_sampler = require_noise(noise_sampler, "ddpm")
    for i in range(len(sigmas) - 1):
        sigma, sigma_prev = sigmas[i], sigmas[i + 1]
        denoised = model(x, batch_sigma(sigma, x), **extra_args)
        report(callback, x, i, sigma, sigma, denoised)
        eps = (x - denoised) / sigma
        x_vp = x / (1.0 + sigma ** 2).sqrt()
        alpha_bar, alpha_bar_prev = 1 / (sigma ** 2 + 1), 1 / (sigma_prev ** 2 + 1)
        alpha = alpha_bar / alpha_bar_prev
        x_vp = (1.0 / alpha).sqrt() * (x_vp - (1 - alpha) * eps / (1 - alpha_bar).sqrt())
        if sigma_prev > 0:
            x_vp = x_vp + ((1 - alpha) * (1 - alpha_bar_prev) / (1 - alpha_bar)).sqrt() \
                * noise_sampler(sigma, sigma_prev)
            x = x_vp * (1.0 + sigma_prev ** 2).sqrt()
        else:
            x = x_vp
    return x


@torch.no_grad()
def sample_lcm(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
               callback: Callback | None = None, noise_sampler: NoiseSampler | None = None,
               s_noise: float = 1.0, s_noise_end: float | None = None, noise_clip_std: float = 0.0) -> Tensor:
    """Latent Consistency Model sampling: jump to x0, re-noise to the next sigma (Luo et al. 2023)."""
    # ComfyUI's SamplerLCM options: the re-noising draw is scaled by a multiplier running linearly
    # from s_noise at the first step to s_noise_end at the last (both 1 is plain LCM), after being
    # clamped to ±noise_clip_std standard deviations of the draw when that is positive.
    extra_args = extra_args or {}
    noise_sampler = require_noise(noise_sampler, "lcm")
    s_noise_end = s_noise if s_noise_end is None else s_noise_end
    steps = len(sigmas) - 1
    for i in range(steps):
        denoised = model(x, batch_sigma(sigmas[i], x), **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        x = denoised
        if sigmas[i + 1] > 0:
            noise = noise_sampler(sigmas[i], sigmas[i + 1])
            if noise_clip_std > 0:
                bound = noise_clip_std * noise.std()
                noise = noise.clamp(-bound, bound)
            multiplier = s_noise + (s_noise_end - s_noise) * (i / max(steps - 1, 1))
            x = x + noise * (sigmas[i + 1] * multiplier)
    return x
