"""SEEDS: stochastic explicit exponential derivative-free solvers in data prediction (Gonzalez et
al. 2023, "SEEDS: Exponential SDE Solvers for Fast High-Quality Sampling from Diffusion
Models", NeurIPS, arXiv:2305.14267), and the exponential Heun method that is SEEDS-2 with its
intermediate point at the step's end.

Variance-exploding forms (alpha = 1, lambda = -log sigma). ``eta`` scales the SDE's noise
(0 gives the probability-flow ODE); each stage's noise is the previous stage's decayed plus a
fresh draw, so the stages share one Brownian path.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ldm.sampling.noise import NoiseSampler
from ldm.sampling.sampler_common import Callback, Denoiser, batch_sigma, report, require_noise


def h_phi_1(h: Tensor) -> Tensor:
    """h·phi_1(h) = e^h - 1 of exponential integrators."""
    return h.expm1()


def h_phi_2(h: Tensor) -> Tensor:
    """h·phi_2(h) = (e^h - 1 - h)/h."""
    return (h.expm1() - h) / h


def _sigma(lambda_: Tensor) -> Tensor:
    return lambda_.neg().exp()


def _carry(noise: Tensor, segment: Tensor, draw: Tensor) -> Tensor:
    """The path's noise at the end of a segment of -segment in lambda·eta: decayed, plus fresh."""
    return noise * segment.exp() + segment.mul(2).expm1().neg().sqrt() * draw


@torch.no_grad()
def sample_seeds_2(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                   callback: Callback | None = None, noise_sampler: NoiseSampler | None = None,
                   eta: float = 1.0, s_noise: float = 1.0, r: float = 0.5, solver_type: str = "phi_1") -> Tensor:
    """SEEDS-2: two stages per step, the second at fraction r of the step in lambda (arXiv:2305.14267)."""
    if solver_type not in ("phi_1", "phi_2"):
        raise ValueError("solver_type must be 'phi_1' or 'phi_2'")
    extra_args = extra_args or {}
    inject_noise = eta > 0 and s_noise > 0
    if inject_noise:
        noise_sampler = require_noise(noise_sampler, "seeds_2")
    for i in range(len(sigmas) - 1):
        denoised = model(x, batch_sigma(sigmas[i], x), **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        if sigmas[i + 1] == 0:
            x = denoised
            continue
        lambda_s, lambda_t = -sigmas[i].log(), -sigmas[i + 1].log()
        h = lambda_t - lambda_s
        h_eta = h * (eta + 1)
        sigma_1 = _sigma(torch.lerp(lambda_s, lambda_t, r))

        x_2 = sigma_1 / sigmas[i] * (-r * h * eta).exp() * x - h_phi_1(-r * h_eta) * denoised
        if inject_noise:
            noise = (-2 * r * h * eta).expm1().neg().sqrt() * noise_sampler(sigmas[i], sigma_1)
            x_2 = x_2 + noise * sigma_1 * s_noise
        denoised_2 = model(x_2, batch_sigma(sigma_1, x), **extra_args)

        if solver_type == "phi_1":
            # Midpoint rule on the x0 estimates, weighted 1 - 1/(2r) : 1/(2r).
            combined = h_phi_1(-h_eta) * torch.lerp(denoised, denoised_2, 1 / (2 * r))
        else:
            b2 = h_phi_2(-h_eta) / r
            combined = (h_phi_1(-h_eta) - b2) * denoised + b2 * denoised_2
        x = sigmas[i + 1] / sigmas[i] * (-h * eta).exp() * x - combined
        if inject_noise:
            noise = _carry(noise, (r - 1) * h * eta, noise_sampler(sigma_1, sigmas[i + 1]))
            x = x + noise * sigmas[i + 1] * s_noise
    return x


@torch.no_grad()
def sample_seeds_3(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                   callback: Callback | None = None, noise_sampler: NoiseSampler | None = None,
                   eta: float = 1.0, s_noise: float = 1.0, r_1: float = 1 / 3, r_2: float = 2 / 3) -> Tensor:
    """SEEDS-3: three stages per step at fractions r_1, r_2 of the step in lambda (arXiv:2305.14267)."""
    extra_args = extra_args or {}
    inject_noise = eta > 0 and s_noise > 0
    if inject_noise:
        noise_sampler = require_noise(noise_sampler, "seeds_3")
    for i in range(len(sigmas) - 1):
        denoised = model(x, batch_sigma(sigmas[i], x), **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        if sigmas[i + 1] == 0:
            x = denoised
            continue
        lambda_s, lambda_t = -sigmas[i].log(), -sigmas[i + 1].log()
        h = lambda_t - lambda_s
        h_eta = h * (eta + 1)
        sigma_1 = _sigma(torch.lerp(lambda_s, lambda_t, r_1))
        sigma_2 = _sigma(torch.lerp(lambda_s, lambda_t, r_2))

        x_2 = sigma_1 / sigmas[i] * (-r_1 * h * eta).exp() * x - h_phi_1(-r_1 * h_eta) * denoised
        if inject_noise:
            noise = (-2 * r_1 * h * eta).expm1().neg().sqrt() * noise_sampler(sigmas[i], sigma_1)
            x_2 = x_2 + noise * sigma_1 * s_noise
        denoised_2 = model(x_2, batch_sigma(sigma_1, x), **extra_args)

        a_2 = r_2 / r_1 * h_phi_2(-r_2 * h_eta)
        a_1 = h_phi_1(-r_2 * h_eta) - a_2
        x_3 = sigma_2 / sigmas[i] * (-r_2 * h * eta).exp() * x - (a_1 * denoised + a_2 * denoised_2)
        if inject_noise:
            noise = _carry(noise, (r_1 - r_2) * h * eta, noise_sampler(sigma_1, sigma_2))
            x_3 = x_3 + noise * sigma_2 * s_noise
        denoised_3 = model(x_3, batch_sigma(sigma_2, x), **extra_args)

        b_3 = h_phi_2(-h_eta) / r_2
        b_1 = h_phi_1(-h_eta) - b_3
        x = sigmas[i + 1] / sigmas[i] * (-h * eta).exp() * x - (b_1 * denoised + b_3 * denoised_3)
        if inject_noise:
            noise = _carry(noise, (r_2 - 1) * h * eta, noise_sampler(sigma_2, sigmas[i + 1]))
            x = x + noise * sigmas[i + 1] * s_noise
    return x


@torch.no_grad()
def sample_exp_heun_2_x0(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                         callback: Callback | None = None, noise_sampler: NoiseSampler | None = None,
                         solver_type: str = "phi_2") -> Tensor:
    """Exponential Heun in x0 and log-SNR time: SEEDS-2 at r = 1, eta = 0 (arXiv:2305.14267)."""
    return sample_seeds_2(model, x, sigmas, extra_args, callback, None, eta=0.0, s_noise=0.0, r=1.0,
                          solver_type=solver_type)


@torch.no_grad()
def sample_exp_heun_2_x0_sde(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                             callback: Callback | None = None, noise_sampler: NoiseSampler | None = None,
                             eta: float = 1.0, s_noise: float = 1.0, solver_type: str = "phi_2") -> Tensor:
    """Stochastic exponential Heun: SEEDS-2 at r = 1 (arXiv:2305.14267)."""
    return sample_seeds_2(model, x, sigmas, extra_args, callback, noise_sampler, eta=eta, s_noise=s_noise, r=1.0,
                          solver_type=solver_type)
