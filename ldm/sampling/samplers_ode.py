"""Deterministic samplers: solvers of the probability-flow ODE dx/dsigma = (x - D(x, sigma))/sigma.

Every function has the shared signature described in :mod:`ldm.sampling.sampler_common`; the
``noise_sampler`` argument is accepted for uniformity and unused.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ldm.sampling.multistep_coefficients import deis_coefficients, lms_coefficients
from ldm.sampling.noise import NoiseSampler
from ldm.sampling.sampler_common import Callback, Denoiser, batch_sigma, report, to_d


@torch.no_grad()
def sample_euler(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                 callback: Callback | None = None, noise_sampler: NoiseSampler | None = None) -> Tensor:
    """Euler steps (Karras et al. 2022, "Elucidating the Design Space…", Algorithm 2, no churn)."""
    extra_args = extra_args or {}
    for i in range(len(sigmas) - 1):
        denoised = model(x, batch_sigma(sigmas[i], x), **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        x = x + to_d(x, sigmas[i], denoised) * (sigmas[i + 1] - sigmas[i])
    return x


@torch.no_grad()
def sample_heun(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                callback: Callback | None = None, noise_sampler: NoiseSampler | None = None) -> Tensor:
    """Heun's second-order steps, Euler into sigma = 0 (Karras et al. 2022, Algorithm 2)."""
    extra_args = extra_args or {}
    for i in range(len(sigmas) - 1):
        denoised = model(x, batch_sigma(sigmas[i], x), **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        d = to_d(x, sigmas[i], denoised)
        dt = sigmas[i + 1] - sigmas[i]
        if sigmas[i + 1] == 0:
            x = x + d * dt
        else:
            x_2 = x + d * dt
            d_2 = to_d(x_2, sigmas[i + 1], model(x_2, batch_sigma(sigmas[i + 1], x), **extra_args))
            x = x + (d + d_2) / 2 * dt
    return x


@torch.no_grad()
def sample_heunpp2(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                   callback: Callback | None = None, noise_sampler: NoiseSampler | None = None) -> Tensor:
    """Heun++ 2: up to three sigma-weighted derivatives per step (Carzit, sd-webui-samplers-scheduler)."""
    extra_args = extra_args or {}
    s_end = sigmas[-1]
    for i in range(len(sigmas) - 1):
        denoised = model(x, batch_sigma(sigmas[i], x), **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        d = to_d(x, sigmas[i], denoised)
        dt = sigmas[i + 1] - sigmas[i]
        if sigmas[i + 1] == s_end:
            x = x + d * dt
            continue
        x_2 = x + d * dt
        d_2 = to_d(x_2, sigmas[i + 1], model(x_2, batch_sigma(sigmas[i + 1], x), **extra_args))
        if sigmas[i + 2] == s_end:
            w_2 = sigmas[i + 1] / (2 * sigmas[0])
            x = x + (d * (1 - w_2) + d_2 * w_2) * dt
        else:
            x_3 = x_2 + d_2 * (sigmas[i + 2] - sigmas[i + 1])
            d_3 = to_d(x_3, sigmas[i + 2], model(x_3, batch_sigma(sigmas[i + 2], x), **extra_args))
            w_2 = sigmas[i + 1] / (3 * sigmas[0])
            w_3 = sigmas[i + 2] / (3 * sigmas[0])
            x = x + ((1 - w_2 - w_3) * d + w_2 * d_2 + w_3 * d_3) * dt
    return x


@torch.no_grad()
def sample_dpm_2(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                 callback: Callback | None = None, noise_sampler: NoiseSampler | None = None) -> Tensor:
    """Midpoint steps in log sigma, inspired by DPM-Solver-2 (Lu et al. 2022; Karras et al. 2022)."""
    extra_args = extra_args or {}
    for i in range(len(sigmas) - 1):
        denoised = model(x, batch_sigma(sigmas[i], x), **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        d = to_d(x, sigmas[i], denoised)
        if sigmas[i + 1] == 0:
            x = x + d * (sigmas[i + 1] - sigmas[i])
        else:
            sigma_mid = sigmas[i].log().lerp(sigmas[i + 1].log(), 0.5).exp()
            x_2 = x + d * (sigma_mid - sigmas[i])
            d_2 = to_d(x_2, sigma_mid, model(x_2, batch_sigma(sigma_mid, x), **extra_args))
            x = x + d_2 * (sigmas[i + 1] - sigmas[i])
    return x


@torch.no_grad()
def sample_lms(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
               callback: Callback | None = None, noise_sampler: NoiseSampler | None = None,
               order: int = 4) -> Tensor:
    """Linear multistep (Adams–Bashforth in sigma) of order ≤ 4 (Crowson, k-diffusion)."""
    extra_args = extra_args or {}
    sigma_list = [float(s) for s in sigmas]
    ds: list[Tensor] = []
    for i in range(len(sigmas) - 1):
        denoised = model(x, batch_sigma(sigmas[i], x), **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        ds = (ds + [to_d(x, sigmas[i], denoised)])[-order:]
        if sigmas[i + 1] == 0:
            x = denoised
        else:
            coeffs = lms_coefficients(sigma_list, i, min(i + 1, order))
            x = x + sum(c * d for c, d in zip(coeffs, reversed(ds)))
    return x


@torch.no_grad()
def sample_dpmpp_2m(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                    callback: Callback | None = None, noise_sampler: NoiseSampler | None = None) -> Tensor:
    """DPM-Solver++(2M), multistep second order in log sigma (Lu et al. 2022, arXiv:2211.01095)."""
    extra_args = extra_args or {}
    old_denoised = None
    for i in range(len(sigmas) - 1):
        denoised = model(x, batch_sigma(sigmas[i], x), **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        # t = -log sigma; h = t_next - t, so e^{-h} = sigma_next / sigma.
        h = sigmas[i].log() - sigmas[i + 1].log()
        if old_denoised is not None and sigmas[i + 1] != 0:
            r = (sigmas[i - 1].log() - sigmas[i].log()) / h
            denoised_d = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old_denoised
        else:
            denoised_d = denoised
        x = (sigmas[i + 1] / sigmas[i]) * x - (-h).expm1() * denoised_d
        old_denoised = denoised
    return x


def _adams_ipndm(history: list[Tensor], d: Tensor) -> Tensor:
    """iPNDM's fixed Adams–Bashforth combination of the current and up to 3 past derivatives."""
    if len(history) == 0:
        return d
    if len(history) == 1:
        return (3 * d - history[-1]) / 2
    if len(history) == 2:
        return (23 * d - 16 * history[-1] + 5 * history[-2]) / 12
    return (55 * d - 59 * history[-1] + 37 * history[-2] - 9 * history[-3]) / 24


@torch.no_grad()
def sample_ipndm(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                 callback: Callback | None = None, noise_sampler: NoiseSampler | None = None,
                 max_order: int = 4) -> Tensor:
    """Improved PNDM with fixed-step Adams–Bashforth weights (Zhang & Chen 2023, DEIS paper, §4)."""
    extra_args = extra_args or {}
    history: list[Tensor] = []
    for i in range(len(sigmas) - 1):
        denoised = model(x, batch_sigma(sigmas[i], x), **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        d = to_d(x, sigmas[i], denoised)
        usable = history[-(max_order - 1):] if max_order > 1 else []
        if sigmas[i + 1] == 0:
            x_next = denoised
        else:
            x_next = x + (sigmas[i + 1] - sigmas[i]) * _adams_ipndm(usable, d)
        history = (history + [d])[-(max_order - 1):] if max_order > 1 else []
        x = x_next
    return x


def _adams_variable(history: list[Tensor], d: Tensor, h: list[Tensor]) -> Tensor:
    """Variable-step Adams–Bashforth weights of iPNDM-v; ``h = [h_n, h_{n-1}, …]`` step sizes."""
    if len(history) == 0:
        return d
    r1 = h[0] / h[1]
    if len(history) == 1:
        return (2 + r1) / 2 * d - r1 / 2 * history[-1]
    h_n, h_1, h_2 = h[0], h[1], h[2]
    t1 = (1 - h_n / (3 * (h_n + h_1)) * (h_n * (h_n + h_1)) / (h_1 * (h_1 + h_2))) / 2
    if len(history) == 2:
        c1 = (2 + r1) / 2 + t1
        c2 = -r1 / 2 - (1 + h_1 / h_2) * t1
        c3 = t1 * h_1 / h_2
        return c1 * d + c2 * history[-1] + c3 * history[-2]
    h_3 = h[3]
    ratio = h_1 * (h_1 + h_2) / (h_2 * (h_2 + h_3))
    t2 = ((1 - h_n / (3 * (h_n + h_1))) / 2 + (1 - h_n / (2 * (h_n + h_1))) * h_n / (6 * (h_n + h_1 + h_2))) \
        * (h_n * (h_n + h_1) * (h_n + h_1 + h_2)) / (h_1 * (h_1 + h_2) * (h_1 + h_2 + h_3))
    c1 = (2 + r1) / 2 + t1 + t2
    c2 = -r1 / 2 - (1 + h_1 / h_2) * t1 - (1 + h_1 / h_2 + ratio) * t2
    c3 = t1 * h_1 / h_2 + (h_1 / h_2 + ratio * (1 + h_2 / h_3)) * t2
    c4 = -t2 * ratio * h_1 / h_2
    return c1 * d + c2 * history[-1] + c3 * history[-2] + c4 * history[-3]


@torch.no_grad()
def sample_ipndm_v(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                   callback: Callback | None = None, noise_sampler: NoiseSampler | None = None,
                   max_order: int = 4) -> Tensor:
    """iPNDM with variable-step Adams–Bashforth weights (Zhang & Chen 2023; zju-pi diff-sampler)."""
    extra_args = extra_args or {}
    history: list[Tensor] = []
    for i in range(len(sigmas) - 1):
        denoised = model(x, batch_sigma(sigmas[i], x), **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        d = to_d(x, sigmas[i], denoised)
        usable = history[-(max_order - 1):] if max_order > 1 else []
        if sigmas[i + 1] == 0:
            x_next = denoised
        else:
            steps = [sigmas[i + 1 - k] - sigmas[i - k] for k in range(len(usable) + 1)]
            x_next = x + (sigmas[i + 1] - sigmas[i]) * _adams_variable(usable, d, steps)
        history = (history + [d])[-(max_order - 1):] if max_order > 1 else []
        x = x_next
    return x


@torch.no_grad()
def sample_deis(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                callback: Callback | None = None, noise_sampler: NoiseSampler | None = None,
                max_order: int = 3) -> Tensor:
    """DEIS-tAB: exponential-integrator multistep in VP time (Zhang & Chen 2023, arXiv:2204.13902)."""
    extra_args = extra_args or {}
    coefficients = deis_coefficients([float(s) for s in sigmas], max_order)
    history: list[Tensor] = []
    for i in range(len(sigmas) - 1):
        denoised = model(x, batch_sigma(sigmas[i], x), **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        d = to_d(x, sigmas[i], denoised)
        if sigmas[i + 1] <= 0 or not coefficients[i]:
            x_next = x + (sigmas[i + 1] - sigmas[i]) * d
        else:
            c = coefficients[i]
            x_next = x + c[0] * d + sum(c[k] * history[-k] for k in range(1, len(c)))
        history = (history + [d])[-(max_order - 1):] if max_order > 1 else []
        x = x_next
    return x
