"""UniPC: unified predictor–corrector multistep solver (Zhao et al. 2023, arXiv:2302.04867).

Data-prediction form (the model gives x0), orders ≤ 3, "lower order final", corrector on every
step but the last. ComfyUI runs it in variance-preserving coordinates; there every update carries
the factor alpha_t of its target, so dividing it out gives this sigma-space form, with
lambda = -log sigma:

    x_t = (sigma_t / sigma_s)·x_s - expm1(-h)·m_s - B(h)·Σ rho_k·D_k

with B(h) = -h ("bh1") or expm1(-h) ("bh2"). As in ComfyUI, a final sigma of 0 is replaced by
0.001 (lambda must stay finite), so the result keeps noise of std 0.001; and the model
evaluation made for a step's corrector is reused as the next step's predictor input.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ldm.sampling.noise import NoiseSampler
from ldm.sampling.sampler_common import Callback, Denoiser, batch_sigma, report

_FINAL_SIGMA = 0.001


def _update(model, extra_args, x, history_m, history_sigma, sigma_t, order, variant, use_corrector):
    """One UniPC step from the newest history point to ``sigma_t``; returns (x_t, model(x_pred))."""
    sigma_s, m_s = history_sigma[-1], history_m[-1]
    lambda_s, lambda_t = -sigma_s.log(), -sigma_t.log()
    h = lambda_t - lambda_s

    rks, d1s = [], []
    for k in range(1, order):
        rk = ((-history_sigma[-(k + 1)].log()) - lambda_s) / h
        rks.append(rk)
        d1s.append((history_m[-(k + 1)] - m_s) / rk)
    rks.append(torch.ones_like(h))
    rks_t = torch.stack(rks)

    hh = -h
    h_phi_1 = hh.expm1()  # h·phi_1(h) = e^h - 1
    h_phi_k = h_phi_1 / hh - 1
    b_h = hh if variant == "bh1" else hh.expm1()
    rows, b = [], []
    factorial = 1
    for i in range(1, order + 1):
        rows.append(rks_t ** (i - 1))
        b.append(h_phi_k * factorial / b_h)
        factorial *= i + 1
        h_phi_k = h_phi_k / hh - 1 / factorial
    R = torch.stack(rows)
    b_t = torch.stack(b)

    x_base = (sigma_t / sigma_s) * x - h_phi_1 * m_s
    if d1s:
        rhos_p = torch.tensor([0.5], dtype=b_t.dtype) if order == 2 else torch.linalg.solve(R[:-1, :-1], b_t[:-1])
        pred_res = sum(rho * d for rho, d in zip(rhos_p, d1s))
        x_t = x_base - b_h * pred_res
    else:
        x_t = x_base

    model_t = None
    if use_corrector:
        model_t = model(x_t, batch_sigma(sigma_t, x), **extra_args)
        rhos_c = torch.tensor([0.5], dtype=b_t.dtype) if order == 1 else torch.linalg.solve(R, b_t)
        corr_res = sum(rho * d for rho, d in zip(rhos_c[:-1], d1s)) if d1s else 0
        x_t = x_base - b_h * (corr_res + rhos_c[-1] * (model_t - m_s))
    return x_t, model_t


def _sample_unipc(model, x, sigmas, extra_args, callback, variant):
    extra_args = extra_args or {}
    sigmas = sigmas.clone()
    if sigmas[-1] == 0:
        sigmas[-1] = _FINAL_SIGMA
    steps = len(sigmas) - 1
    if steps < 1:
        return x
    order = max(1, min(3, steps - 1))
    history_m = [model(x, batch_sigma(sigmas[0], x), **extra_args)]
    history_sigma = [sigmas[0]]
    for step in range(1, steps + 1):
        step_order = min(order, step, steps + 1 - step)
        use_corrector = step < steps
        x, model_x = _update(model, extra_args, x, history_m, history_sigma, sigmas[step],
                             step_order, variant, use_corrector)
        history_sigma = (history_sigma + [sigmas[step]])[-order:]
        if step < steps:
            if model_x is None:
                model_x = model(x, batch_sigma(sigmas[step], x), **extra_args)
            history_m = (history_m + [model_x])[-order:]
        report(callback, x, step - 1, sigmas[step - 1], sigmas[step - 1], history_m[-1])
    return x


@torch.no_grad()
def sample_uni_pc(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                  callback: Callback | None = None, noise_sampler: NoiseSampler | None = None) -> Tensor:
    """UniPC with B(h) = h (Zhao et al. 2023, "UniPC", variant bh1)."""
    return _sample_unipc(model, x, sigmas, extra_args, callback, "bh1")


@torch.no_grad()
def sample_uni_pc_bh2(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                      callback: Callback | None = None, noise_sampler: NoiseSampler | None = None) -> Tensor:
    """UniPC with B(h) = e^h - 1 (Zhao et al. 2023, "UniPC", variant bh2)."""
    return _sample_unipc(model, x, sigmas, extra_args, callback, "bh2")
