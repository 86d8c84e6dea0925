"""DPM-Solver with fixed (``dpm_fast``) and adaptive (``dpm_adaptive``) step sizes.

Lu et al. 2022, "DPM-Solver: A Fast ODE Solver for Diffusion Probabilistic Model Sampling in
Around 10 Steps" (arXiv:2206.00927), single-step orders 1–3 in t = -log sigma, as k-diffusion
implements them. Both ignore the schedule's interior sigmas and integrate from ``sigmas[0]`` to
the smallest non-zero sigma (where they stop, as ComfyUI's do, leaving that much noise):
``dpm_fast`` spends ``len(sigmas) - 1`` model evaluations, ``dpm_adaptive`` as many as its
error control needs.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ldm.sampling.noise import NoiseSampler
from ldm.sampling.sampler_common import Callback, Denoiser, ancestral_step, require_noise


class _Solver:
    """Noise predictions eps(x, t) of a denoiser, and DPM-Solver steps of order 1–3 in t."""

    def __init__(self, model: Denoiser, extra_args: dict):
        self.model = model
        self.extra_args = extra_args
        self.evaluations = 0

    @staticmethod
    def sigma(t: Tensor) -> Tensor:
        return t.neg().exp()

    @staticmethod
    def t(sigma: Tensor) -> Tensor:
        return -sigma.log()

    def eps(self, cache: dict, key: str, x: Tensor, t: Tensor) -> Tensor:
        if key not in cache:
            sigma = self.sigma(t) * x.new_ones([x.shape[0]])
            cache[key] = (x - self.model(x, sigma, **self.extra_args)) / self.sigma(t)
            self.evaluations += 1
        return cache[key]

    def step_1(self, x, t, t_next, cache):
        h = t_next - t
        return x - self.sigma(t_next) * h.expm1() * self.eps(cache, "eps", x, t)

    def step_2(self, x, t, t_next, cache, r1=1 / 2):
        h = t_next - t
        eps = self.eps(cache, "eps", x, t)
        s1 = t + r1 * h
        u1 = x - self.sigma(s1) * (r1 * h).expm1() * eps
        eps_r1 = self.eps(cache, "eps_r1", u1, s1)
        return x - self.sigma(t_next) * h.expm1() * eps - self.sigma(t_next) / (2 * r1) * h.expm1() * (eps_r1 - eps)

    def step_3(self, x, t, t_next, cache, r1=1 / 3, r2=2 / 3):
        h = t_next - t
        eps = self.eps(cache, "eps", x, t)
        s1, s2 = t + r1 * h, t + r2 * h
        u1 = x - self.sigma(s1) * (r1 * h).expm1() * eps
        eps_r1 = self.eps(cache, "eps_r1", u1, s1)
        u2 = x - self.sigma(s2) * (r2 * h).expm1() * eps \
            - self.sigma(s2) * (r2 / r1) * ((r2 * h).expm1() / (r2 * h) - 1) * (eps_r1 - eps)
        eps_r2 = self.eps(cache, "eps_r2", u2, s2)
        return x - self.sigma(t_next) * h.expm1() * eps - self.sigma(t_next) / r2 * (h.expm1() / h - 1) * (eps_r2 - eps)

    def step(self, order: int, x, t, t_next, cache):
        return {1: self.step_1, 2: self.step_2, 3: self.step_3}[order](x, t, t_next, cache)


def _range(sigmas: Tensor) -> tuple[Tensor, Tensor]:
    sigma_min = sigmas[-1] if sigmas[-1] > 0 else sigmas[-2]
    return sigmas[0], sigma_min


def _eta_target(solver: _Solver, t: Tensor, t_next: Tensor, t_end: Tensor, eta: float):
    """Where the deterministic part of a step lands and the std of the noise added after it."""
    if not eta:
        return t_next, 0.0
    sd, _ = ancestral_step(solver.sigma(t), solver.sigma(t_next), eta)
    t_next_ = torch.minimum(t_end, solver.t(sd))
    return t_next_, (solver.sigma(t_next) ** 2 - solver.sigma(t_next_) ** 2) ** 0.5


@torch.no_grad()
def sample_dpm_fast(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                    callback: Callback | None = None, noise_sampler: NoiseSampler | None = None,
                    eta: float = 0.0, s_noise: float = 1.0) -> Tensor:
    """DPM-Solver-fast: uniform steps in log sigma, orders 3,3,…,(2,1) (Lu et al. 2022, §3.4)."""
    if len(sigmas) <= 1:
        return x
    if eta:
        noise_sampler = require_noise(noise_sampler, "dpm_fast")
    solver = _Solver(model, extra_args or {})
    sigma_max, sigma_min = _range(sigmas)
    nfe = len(sigmas) - 1
    t_start, t_end = solver.t(sigma_max.float()), solver.t(sigma_min.float())
    m = math.floor(nfe / 3) + 1
    ts = torch.linspace(float(t_start), float(t_end), m + 1, device=x.device)
    orders = [3] * (m - 2) + [2, 1] if nfe % 3 == 0 else [3] * (m - 1) + [nfe % 3]
    for i, order in enumerate(orders):
        cache: dict = {}
        t, t_next = ts[i], ts[i + 1]
        t_next_, su = _eta_target(solver, t, t_next, t_end, eta)
        denoised = x - solver.sigma(t) * solver.eps(cache, "eps", x, t)
        if callback is not None:
            callback({"x": x, "i": i, "sigma": solver.sigma(t), "sigma_hat": solver.sigma(t),
                      "denoised": denoised})
        x = solver.step(order, x, t, t_next_, cache)
        if eta:
            x = x + su * s_noise * noise_sampler(solver.sigma(t), solver.sigma(t_next))
    return x


class _PIDStepSizeController:
    """Step-size control by PID on the inverse error (Söderlind 2003, as k-diffusion uses it)."""

    def __init__(self, h, pcoeff, icoeff, dcoeff, order=1, accept_safety=0.81, eps=1e-8):
        self.h = h
        self.b1 = (pcoeff + icoeff + dcoeff) / order
        self.b2 = -(pcoeff + 2 * dcoeff) / order
        self.b3 = dcoeff / order
        self.accept_safety = accept_safety
        self.eps = eps
        self.errs: list[float] = []

    def propose_step(self, error) -> bool:
        inv_error = 1 / (float(error) + self.eps)
        if not self.errs:
            self.errs = [inv_error, inv_error, inv_error]
        self.errs[0] = inv_error
        factor = self.errs[0] ** self.b1 * self.errs[1] ** self.b2 * self.errs[2] ** self.b3
        factor = 1 + math.atan(factor - 1)  # soft limiter
        accept = factor >= self.accept_safety
        if accept:
            self.errs[2], self.errs[1] = self.errs[1], self.errs[0]
        self.h *= factor
        return accept


@torch.no_grad()
def sample_dpm_adaptive(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                        callback: Callback | None = None, noise_sampler: NoiseSampler | None = None,
                        order: int = 3, rtol: float = 0.05, atol: float = 0.0078, h_init: float = 0.05,
                        pcoeff: float = 0.0, icoeff: float = 1.0, dcoeff: float = 0.0,
                        accept_safety: float = 0.81, eta: float = 0.0, s_noise: float = 1.0) -> Tensor:
    """DPM-Solver-12/23 with embedded error estimate and adaptive steps (Lu et al. 2022, §3.4)."""
    if len(sigmas) <= 1:
        return x
    if order not in {2, 3}:
        raise ValueError("order should be 2 or 3")
    if eta:
        noise_sampler = require_noise(noise_sampler, "dpm_adaptive")
    solver = _Solver(model, extra_args or {})
    sigma_max, sigma_min = _range(sigmas)
    s, t_end = solver.t(sigma_max.float()), solver.t(sigma_min.float())
    atol_t, rtol_t = torch.tensor(atol), torch.tensor(rtol)
    x_prev = x
    pid = _PIDStepSizeController(abs(h_init), pcoeff, icoeff, dcoeff, 1.5 if eta else order, accept_safety)
    steps = 0
    while s < t_end - 1e-5:
        cache: dict = {}
        t = torch.minimum(t_end, s + pid.h)
        t_, su = _eta_target(solver, s, t, t_end, eta)
        denoised = x - solver.sigma(s) * solver.eps(cache, "eps", x, s)
        if order == 2:
            x_low = solver.step_1(x, s, t_, cache)
            x_high = solver.step_2(x, s, t_, cache)
        else:
            x_low = solver.step_2(x, s, t_, cache, r1=1 / 3)
            x_high = solver.step_3(x, s, t_, cache)
        delta = torch.maximum(atol_t, rtol_t * torch.maximum(x_low.abs(), x_prev.abs()))
        error = torch.linalg.norm((x_low - x_high) / delta) / x.numel() ** 0.5
        if pid.propose_step(error):
            x_prev = x_low
            x = x_high
            if eta:
                x = x + su * s_noise * noise_sampler(solver.sigma(s), solver.sigma(t))
            s = t
        if callback is not None:
            callback({"x": x, "i": steps, "sigma": solver.sigma(s), "sigma_hat": solver.sigma(s),
                      "denoised": denoised})
        steps += 1
    return x
