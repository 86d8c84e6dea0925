"""Multistep samplers that reuse the previous step's prediction: RES multistep and gradient
estimation, each with a CFG++ form (see :mod:`ldm.sampling.samplers_cfgpp`).

Variance-exploding forms (alpha = 1, t = -log sigma); same signature as every sampler.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ldm.sampling.noise import NoiseSampler
from ldm.sampling.sampler_common import (Callback, Denoiser, ancestral_step, batch_sigma, report,
                                         require_noise, to_d)
from ldm.sampling.samplers_cfgpp import UncondCapture


def _phi_1(h: Tensor) -> Tensor:
    return h.expm1() / h


def _phi_2(h: Tensor) -> Tensor:
    return (_phi_1(h) - 1) / h


def res_multistep(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None, callback: Callback | None,
                  noise_sampler: NoiseSampler | None, name: str, eta: float, s_noise: float, cfg_pp: bool) -> Tensor:
    """The RES second-order multistep update (Zhang et al. 2023, "Improved order analysis and
    design of exponential integrator for diffusion models sampling", arXiv:2308.02157), with
    ancestral noise for ``eta > 0`` and CFG++ re-noising for ``cfg_pp``."""
    uncond = UncondCapture(name)
    args = uncond.extra_args(extra_args) if cfg_pp else (extra_args or {})
    noisy = eta > 0 and s_noise > 0
    if noisy:
        noise_sampler = require_noise(noise_sampler, name)
    old_denoised = old_sigma_down = None
    for i in range(len(sigmas) - 1):
        denoised = model(x, batch_sigma(sigmas[i], x), **args)
        uncond_denoised = uncond.take() if cfg_pp else denoised
        sigma_down, sigma_up = ancestral_step(sigmas[i], sigmas[i + 1], eta)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        if sigma_down == 0 or old_denoised is None:
            if cfg_pp:
                x = denoised + to_d(x, sigmas[i], uncond_denoised) * sigma_down
            else:
                x = x + to_d(x, sigmas[i], denoised) * (sigma_down - sigmas[i])
        else:
            t, t_next = -sigmas[i].log(), -sigma_down.log()
            t_old, t_prev = -old_sigma_down.log(), -sigmas[i - 1].log()
            h = t_next - t
            c2 = (t_prev - t_old) / h
            phi_1, phi_2 = _phi_1(-h), _phi_2(-h)
            b1 = torch.nan_to_num(phi_1 - phi_2 / c2, nan=0.0)
            b2 = torch.nan_to_num(phi_2 / c2, nan=0.0)
            if cfg_pp:
                x = x + (denoised - uncond_denoised)
            x = (-h).exp() * x + h * (b1 * uncond_denoised + b2 * old_denoised)
        if noisy and sigmas[i + 1] > 0:
            x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * sigma_up
        old_denoised, old_sigma_down = uncond_denoised, sigma_down
    return x


@torch.no_grad()
def sample_res_multistep(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                         callback: Callback | None = None, noise_sampler: NoiseSampler | None = None,
                         s_noise: float = 1.0) -> Tensor:
    """RES multistep, second order (Zhang et al. 2023, arXiv:2308.02157)."""
    return res_multistep(model, x, sigmas, extra_args, callback, noise_sampler, "res_multistep", 0.0, s_noise, False)


@torch.no_grad()
def sample_res_multistep_cfg_pp(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                                callback: Callback | None = None, noise_sampler: NoiseSampler | None = None,
                                s_noise: float = 1.0) -> Tensor:
    """RES multistep with CFG++ re-noising (arXiv:2308.02157; Chung et al. 2024)."""
    return res_multistep(model, x, sigmas, extra_args, callback, noise_sampler, "res_multistep_cfg_pp", 0.0,
                         s_noise, True)


@torch.no_grad()
def sample_res_multistep_ancestral(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                                   callback: Callback | None = None, noise_sampler: NoiseSampler | None = None,
                                   eta: float = 1.0, s_noise: float = 1.0) -> Tensor:
    """RES multistep down to sigma_down plus ancestral noise (arXiv:2308.02157)."""
    return res_multistep(model, x, sigmas, extra_args, callback, noise_sampler, "res_multistep_ancestral", eta,
                         s_noise, False)


@torch.no_grad()
def sample_res_multistep_ancestral_cfg_pp(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                                          callback: Callback | None = None, noise_sampler: NoiseSampler | None = None,
                                          eta: float = 1.0, s_noise: float = 1.0) -> Tensor:
    """Ancestral RES multistep with CFG++ re-noising (arXiv:2308.02157; Chung et al. 2024)."""
    return res_multistep(model, x, sigmas, extra_args, callback, noise_sampler, "res_multistep_ancestral_cfg_pp",
                         eta, s_noise, True)


def gradient_estimation(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None, callback: Callback | None,
                        name: str, ge_gamma: float, cfg_pp: bool) -> Tensor:
    """Euler plus (gamma - 1)·(d - d_previous) per step (Permenter & Yuan 2024, "Interpreting and
    Improving Diffusion Models from an Optimization Perspective", ICML)."""
    uncond = UncondCapture(name)
    args = uncond.extra_args(extra_args) if cfg_pp else (extra_args or {})
    old_d = None
    for i in range(len(sigmas) - 1):
        denoised = model(x, batch_sigma(sigmas[i], x), **args)
        d = to_d(x, sigmas[i], uncond.take() if cfg_pp else denoised)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        dt = sigmas[i + 1] - sigmas[i]
        if sigmas[i + 1] == 0:
            x = denoised
        else:
            x = denoised + d * sigmas[i + 1] if cfg_pp else x + d * dt
            if old_d is not None:
                x = x + (ge_gamma - 1) * (d - old_d) * dt
        old_d = d
    return x


@torch.no_grad()
def sample_gradient_estimation(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                               callback: Callback | None = None, noise_sampler: NoiseSampler | None = None,
                               ge_gamma: float = 2.0) -> Tensor:
    """Gradient-estimation sampler (Permenter & Yuan 2024, ICML)."""
    return gradient_estimation(model, x, sigmas, extra_args, callback, "gradient_estimation", ge_gamma, False)


@torch.no_grad()
def sample_gradient_estimation_cfg_pp(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                                      callback: Callback | None = None, noise_sampler: NoiseSampler | None = None,
                                      ge_gamma: float = 2.0) -> Tensor:
    """Gradient estimation with CFG++ re-noising (Permenter & Yuan 2024; Chung et al. 2024)."""
    return gradient_estimation(model, x, sigmas, extra_args, callback, "gradient_estimation_cfg_pp", ge_gamma, True)
