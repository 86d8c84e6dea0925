"""Variants of classifier-free guidance, as the sampling hooks patch nodes attach to a MODEL.

Each factory returns a hook with ComfyUI's calling convention (one ``args`` dict, see
:func:`ldm.sampling.guidance.cfg_combine` and :class:`~ldm.sampling.guidance.GuidedDenoiser`):

- pre-cfg hooks receive ``conds_out`` = [cond x0, uncond x0] and return the edited list;
- cfg functions receive ``cond``/``uncond`` as ``x - x0`` and return ``x - x0_guided``;
- post-cfg hooks receive the guided ``denoised`` x0 and return a new one.

Predictions here are x0 estimates (``*_denoised``) unless named scores/noise (``x - x0``, the
noise times sigma). Papers: APG (Sadat et al. 2024, arXiv 2410.02416), CFG-Zero* (Fan et al.
2025, 2503.18886), TCFG (Kwon et al. 2025, 2503.18137), FreSca (Huang et al. 2025, 2504.02154),
Epsilon Scaling (Ning et al. 2023, 2308.15321), TSR (temporal score rescaling, 2510.01184);
CFGNorm and Mahiro are ComfyUI's own.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor

Hook = Callable[[dict[str, Any]], Any]


def _per_item(values: Tensor, ndim: int) -> Tensor:
    """``[B]`` values viewed as ``[B, 1, …]`` against an ``ndim`` tensor."""
    return values.reshape((-1,) + (1,) * (ndim - 1))


# -- APG ------------------------------------------------------------------------------------------

def project(v0: Tensor, v1: Tensor) -> tuple[Tensor, Tensor]:
    """``v0``'s components parallel and orthogonal to ``v1``, per item over the last three dims."""
    unit = F.normalize(v1, dim=[-1, -2, -3])
    parallel = (v0 * unit).sum(dim=[-1, -2, -3], keepdim=True) * unit
    return parallel, v0 - parallel


class AdaptiveProjectedGuidance:
    """APG as a pre-cfg hook: the guidance ``cond - uncond`` is averaged with momentum, its norm
    capped at ``norm_threshold`` (0: no cap), and its component parallel to the conditional
    prediction scaled by ``eta``; the cond side is rewritten so the plain CFG combination that
    follows yields ``cond + cfg·guidance'`` (APG's update on the conditional prediction).

    The running average lives in this object, one per patched MODEL; it restarts when sigma
    rises (a new sampling run).
    """

    def __init__(self, eta: float, norm_threshold: float, momentum: float):
        self.eta = eta
        self.norm_threshold = norm_threshold
        self.momentum = momentum
        self._running: Tensor | None = None
        self._previous_sigma: float | None = None

    def __call__(self, args: dict[str, Any]) -> list:
        conds_out = args["conds_out"]
        if len(conds_out) == 1:
            return conds_out
        cond, uncond = conds_out[0], conds_out[1]
        sigma = float(args["sigma"][0])
        scale = args["cond_scale"]
        if self._previous_sigma is not None and sigma > self._previous_sigma:
            self._running = None
        self._previous_sigma = sigma

        guidance = cond - uncond
        if self.momentum != 0:
            self._running = guidance if self._running is None else self.momentum * self._running + guidance
            guidance = self._running
        if self.norm_threshold > 0:
            norm = guidance.norm(p=2, dim=[-1, -2, -3], keepdim=True)
            guidance = guidance * torch.minimum(torch.ones_like(norm), self.norm_threshold / norm)
        parallel, orthogonal = project(guidance, cond)
        modified = orthogonal + self.eta * parallel
        return [uncond + modified + (cond - uncond) / scale, uncond] + list(conds_out[2:])


# -- CFG-Zero* ------------------------------------------------------------------------------------

def optimized_scale(positive: Tensor, negative: Tensor) -> Tensor:
    """CFG-Zero*'s s* = <v_cond, v_uncond> / ||v_uncond||² per item, as ``[B, 1, …]``."""
    flat_pos = positive.reshape(positive.shape[0], -1)
    flat_neg = negative.reshape(negative.shape[0], -1)
    scale = (flat_pos * flat_neg).sum(dim=1) / ((flat_neg ** 2).sum(dim=1) + 1e-8)
    return _per_item(scale, positive.ndim)


def cfg_zero_star(args: dict[str, Any]) -> Tensor:
    """Post-cfg: the unconditional prediction scaled by s* (measured on the noise predictions
    ``x - x0``) before guiding: ``s*·uncond + cfg·(cond - s*·uncond)`` in x0 space."""
    x, scale = args["input"], args["cond_scale"]
    cond, uncond = args["cond_denoised"], args["uncond_denoised"]
    alpha = optimized_scale(x - cond, x - uncond)
    return args["denoised"] + uncond * (alpha - 1.0) + scale * uncond * (1.0 - alpha)


# -- CFGNorm --------------------------------------------------------------------------------------

def cfg_norm_post(strength: float) -> Hook:
    """Post-cfg: the guided x0 scaled down, per pixel, to at most the channel norm of the
    conditional x0, then by ``strength``. Above strength 1 the scaling amplifies every step; a
    result that overflows raises rather than sampling on into NaN."""

    def cfg_norm(args: dict[str, Any]) -> Tensor:
        guided = args["denoised"]
        cond_norm = torch.norm(args["cond_denoised"], dim=1, keepdim=True)
        guided_norm = torch.norm(guided, dim=1, keepdim=True)
        out = guided * (cond_norm / (guided_norm + 1e-8)).clamp(min=0.0, max=1.0) * strength
        if strength > 1.0 and not torch.isfinite(out).all():
            raise RuntimeError(f"CFGNorm: strength={strength} made the denoised prediction non-finite; values "
                               "above 1.0 amplify the prediction on every step until it overflows")
        return out

    return cfg_norm


def cfg_norm_pre(strength: float) -> Hook:
    """A cfg function: the CFG combination of the noise predictions rescaled, per pixel, to the
    channel norm of the conditional one (without clamping), blended with plain CFG by ``strength``."""

    def cfg_norm(args: dict[str, Any]) -> Tensor:
        cond, uncond, scale = args["cond"], args["uncond"], args["cond_scale"]
        combined = uncond + scale * (cond - uncond)
        cond_norm = torch.linalg.vector_norm(cond, dim=1, keepdim=True)
        combined_norm = torch.linalg.vector_norm(combined, dim=1, keepdim=True)
        ratio = torch.where(combined_norm > 0, cond_norm / combined_norm.clamp_min(1e-12),
                            torch.ones_like(combined_norm))
        rescaled = combined * ratio
        if strength != 1.0:
            rescaled = strength * rescaled + (1.0 - strength) * combined
        return rescaled

    return cfg_norm


# -- Mahiro ---------------------------------------------------------------------------------------

def mahiro(args: dict[str, Any]) -> Tensor:
    """Post-cfg: blend the guided x0 with ``cfg·cond`` by how well the signed square roots of
    ``cfg·uncond`` and of the mean of the two agree (cosine similarity over channels, averaged):
    full agreement keeps the CFG result, disagreement leans on the positive prompt's direction."""
    scale = args["cond_scale"]
    leap = args["cond_denoised"] * scale
    uncond_leap = args["uncond_denoised"] * scale
    guided = args["denoised"]
    merge = (leap + guided) / 2
    signed_root_uncond = torch.sqrt(uncond_leap.abs()) * uncond_leap.sign()
    signed_root_merge = torch.sqrt(merge.abs()) * merge.sign()
    similarity = F.cosine_similarity(signed_root_uncond, signed_root_merge).mean()
    weight = 2 * (similarity + 1)  # 0 … 4
    return (weight * guided + (4 - weight) * leap) / 4


# -- TCFG -----------------------------------------------------------------------------------------

def tangential_damping(cond_score: Tensor, uncond_score: Tensor) -> Tensor:
    """The unconditional score projected onto the first right-singular vector of the stacked
    [uncond; cond] scores (per item): its component tangential to the pair's main direction dropped."""
    batch = cond_score.shape[0]
    cond_flat = cond_score.reshape(batch, 1, -1).float()
    uncond_flat = uncond_score.reshape(batch, 1, -1).float()
    _, _, vh = torch.linalg.svd(torch.cat((uncond_flat, cond_flat), dim=1), full_matrices=False)
    main = vh[:, 0:1, :]  # [B, 1, N]
    damped = (uncond_flat @ main.transpose(-2, -1)) * main
    return damped.reshape_as(uncond_score).to(uncond_score.dtype)


def tangential_damping_cfg(args: dict[str, Any]) -> list:
    """Pre-cfg (TCFG): the uncond x0 replaced by ``x - tangential_damping(x - cond, x - uncond)``."""
    conds_out = args["conds_out"]
    if len(conds_out) <= 1 or None in args["conds"][:2]:
        return conds_out
    x = args["input"]
    cond, uncond = conds_out[0], conds_out[1]
    damped = x - tangential_damping(x - cond, x - uncond)
    return [cond, damped] + list(conds_out[2:])


# -- FreSca ---------------------------------------------------------------------------------------

def fourier_filter(x: Tensor, scale_low: float, scale_high: float, freq_cutoff: int) -> Tensor:
    """Scale ``x``'s spatial spectrum: the centred ``2·cutoff`` band of each spatial axis (low
    frequencies, after fftshift) by ``scale_low``, the rest by ``scale_high``."""
    dtype = x.dtype
    spectrum = torch.fft.fftshift(torch.fft.fftn(x.float(), dim=(-2, -1)), dim=(-2, -1))
    mask = torch.full(spectrum.shape, scale_high, device=x.device)
    low = mask
    for dim in range(2, spectrum.ndim):
        centre = spectrum.shape[dim] // 2
        half = min(freq_cutoff, centre)
        low = low.narrow(dim, centre - half, half * 2)
    low[:] = scale_low
    filtered = torch.fft.ifftn(torch.fft.ifftshift(spectrum * mask, dim=(-2, -1)), dim=(-2, -1)).real
    return filtered.to(dtype)


def fresca(scale_low: float, scale_high: float, freq_cutoff: int) -> Hook:
    """Pre-cfg: the guidance ``cond - uncond`` filtered by :func:`fourier_filter`."""

    def frequency_scaled_guidance(args: dict[str, Any]) -> list:
        conds_out = args["conds_out"]
        if len(conds_out) <= 1 or None in args["conds"][:2]:
            return conds_out
        cond, uncond = conds_out[0], conds_out[1]
        filtered = fourier_filter(cond - uncond, scale_low, scale_high, freq_cutoff)
        return [filtered + uncond, uncond] + list(conds_out[2:])

    return frequency_scaled_guidance


# -- Epsilon scaling and temporal score rescaling ----------------------------------------------------

def epsilon_scaling(scaling_factor: float) -> Hook:
    """Post-cfg: the predicted noise divided by λ (the paper's uniform schedule), against
    exposure bias: ``x0' = x - (x - x0)/λ``."""
    factor = scaling_factor if scaling_factor != 0 else 1e-9  # the input's minimum keeps it above 0

    def scale_epsilon(args: dict[str, Any]) -> Tensor:
        x = args["input"]
        return x - (x - args["denoised"]) / factor

    return scale_epsilon


def tsr_rescaling_factor(snr: Tensor, tsr_k: float, tsr_variance: float) -> Tensor:
    """TSR's score ratio r = (SNR·σ² + 1)/(SNR·σ²/k + 1) (eq. 6); k as SNR → ∞."""
    ratio = (snr * tsr_variance + 1) / (snr * tsr_variance / tsr_k + 1)
    return torch.where(torch.isposinf(snr), torch.full_like(snr, tsr_k), ratio)


def temporal_score_rescaling(tsr_k: float, tsr_sigma: float) -> Hook:
    """Post-cfg: the score rescaled by r, ``x0' = x + r·(x0 - x)`` (x/α with α = 1 in the sigma
    space Weft's models sample in: half log-SNR is -ln σ). No change at sigma 0 or k = 1."""
    variance = tsr_sigma ** 2

    def rescale(args: dict[str, Any]) -> Tensor:
        denoised, x = args["denoised"], args["input"]
        sigma = args["sigma"].to(denoised)
        if tsr_k == 1 or bool((sigma == 0).all()):
            return denoised
        half_log_snr = -sigma.log()
        ratio = tsr_rescaling_factor((2 * half_log_snr).exp(), tsr_k, variance)
        ratio = torch.where(sigma == 0, torch.ones_like(ratio), ratio)
        alpha = _per_item(sigma * half_log_snr.exp(), x.ndim)
        return torch.lerp(x / alpha, denoised, _per_item(ratio, x.ndim))

    return rescale


# -- Differential diffusion ---------------------------------------------------------------------------

def differential_diffusion(strength: float) -> Callable[..., Tensor]:
    """A ``denoise_mask_function`` (Levin & Fried 2023, "Differential Diffusion"): a soft
    inpainting mask becomes, per step, the binary mask of the pixels whose value is at least the
    step's remaining fraction of the run (timestep progress from the run's first sigma to its
    last, or the model's smallest); below ``strength`` 1 it is blended with the soft mask.
    ``extra_options`` carries the job's ``model`` (its ``sampling``) and ``sigmas``."""

    def threshold_mask(sigma: Tensor, denoise_mask: Tensor, extra_options: dict[str, Any]) -> Tensor:
        sampling = extra_options["model"].sampling
        step_sigmas = extra_options["sigmas"]
        sigma_to = sampling.sigma_min
        if step_sigmas[-1] > sigma_to:
            sigma_to = step_sigmas[-1]
        ts_from = sampling.timestep(step_sigmas[0])
        ts_to = sampling.timestep(sigma_to)
        current = sampling.timestep(sigma[0])
        threshold = (current - ts_to) / (ts_from - ts_to)
        binary = (denoise_mask >= threshold.to(denoise_mask.device)).to(denoise_mask.dtype)
        if strength and strength < 1:
            return strength * binary + (1 - strength) * denoise_mask
        return binary

    return threshold_mask
