"""CFG++ samplers: steps that re-noise along the *unconditional* prediction (Chung et al. 2024,
"CFG++: Manifold-constrained Classifier Free Guidance", arXiv:2406.08070).

A CFG++ step takes the guided x0 estimate as the point to move to but the unconditional one to
recover the noise, which lets the guidance scale stay small (≈ 0.5–2). The guided denoiser
(:class:`~ldm.sampling.guidance.GuidedDenoiser`) hands the unconditional prediction to the
``report_uncond`` callable a sampler passes in ``extra_args`` (and then evaluates it even at
cfg 1, as ComfyUI's CFG++ samplers ask through ``disable_cfg1_optimization``).

Variance-exploding forms (alpha = 1, lambda = -log sigma), like the other samplers here.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ldm.sampling.multistep_coefficients import lms_coefficients
from ldm.sampling.noise import NoiseSampler
from ldm.sampling.sampler_common import (Callback, Denoiser, ancestral_step, batch_sigma, report,
                                         require_noise, to_d)


class UncondCapture:
    """Receives the unconditional prediction of each model call (``extra_args["report_uncond"]``)."""

    def __init__(self, sampler: str):
        self.sampler = sampler
        self._value: Tensor | None = None

    def __call__(self, uncond: Tensor) -> None:
        self._value = uncond

    def extra_args(self, extra_args: dict | None) -> dict:
        return {**(extra_args or {}), "report_uncond": self}

    def take(self) -> Tensor:
        """The prediction of the last call; raises when the denoiser reported none (a model
        without classifier-free guidance has no unconditional side to step along)."""
        if self._value is None:
            raise ValueError(f"sampler {self.sampler!r} needs the unconditional prediction: "
                             "run it through CFG guidance (KSampler, CFGGuider)")
        value, self._value = self._value, None
        return value


@torch.no_grad()
def sample_euler_ancestral_cfg_pp(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                                  callback: Callback | None = None, noise_sampler: NoiseSampler | None = None,
                                  eta: float = 1.0, s_noise: float = 1.0) -> Tensor:
    """Ancestral Euler with CFG++ re-noising (Chung et al. 2024, Algorithm 2 with DDIM's eta)."""
    uncond = UncondCapture("euler_ancestral_cfg_pp")
    args = uncond.extra_args(extra_args)
    noisy = eta > 0 and s_noise > 0
    if noisy:
        noise_sampler = require_noise(noise_sampler, "euler_ancestral_cfg_pp")
    for i in range(len(sigmas) - 1):
        denoised = model(x, batch_sigma(sigmas[i], x), **args)
        uncond_denoised = uncond.take()
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        if sigmas[i + 1] == 0:
            x = denoised
            continue
        sigma_down, sigma_up = ancestral_step(sigmas[i], sigmas[i + 1], eta)
        # Land on the guided x0, carrying the unconditional noise estimate down to sigma_down.
        x = denoised + sigma_down * to_d(x, sigmas[i], uncond_denoised)
        if noisy:
            x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * sigma_up
    return x


@torch.no_grad()
def sample_euler_cfg_pp(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                        callback: Callback | None = None, noise_sampler: NoiseSampler | None = None) -> Tensor:
    """Euler with CFG++ re-noising (Chung et al. 2024, Algorithm 2, deterministic)."""
    return sample_euler_ancestral_cfg_pp(model, x, sigmas, extra_args, callback, None, eta=0.0, s_noise=0.0)


@torch.no_grad()
def sample_euler_cfg_pp_alternative(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                                    callback: Callback | None = None,
                                    noise_sampler: NoiseSampler | None = None) -> Tensor:
    """Euler CFG++, SamplerEulerCFGpp's "alternative" form: the step direction from the state
    moved by (unconditional - guided) x0 (Chung et al. 2024)."""
    uncond = UncondCapture("euler_cfg_pp (alternative)")
    args = uncond.extra_args(extra_args)
    for i in range(len(sigmas) - 1):
        denoised = model(x, batch_sigma(sigmas[i], x), **args)
        d = to_d(x - denoised + uncond.take(), sigmas[i], denoised)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        x = x + d * (sigmas[i + 1] - sigmas[i])
    return x


@torch.no_grad()
def sample_dpmpp_2s_ancestral_cfg_pp(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                                     callback: Callback | None = None, noise_sampler: NoiseSampler | None = None,
                                     eta: float = 1.0, s_noise: float = 1.0) -> Tensor:
    """Ancestral DPM-Solver++(2S) with CFG++ re-noising (Lu et al. 2022; Chung et al. 2024)."""
    uncond = UncondCapture("dpmpp_2s_ancestral_cfg_pp")
    args = uncond.extra_args(extra_args)
    noise_sampler = require_noise(noise_sampler, "dpmpp_2s_ancestral_cfg_pp")
    for i in range(len(sigmas) - 1):
        denoised = model(x, batch_sigma(sigmas[i], x), **args)
        uncond_denoised = uncond.take()
        sigma_down, sigma_up = ancestral_step(sigmas[i], sigmas[i + 1], eta)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        if sigma_down == 0:
            x = denoised
        else:
            # x shifted by (guided - unconditional) x0 is the state whose unconditional
            # prediction is the guided one; the 2S midpoint sits at sqrt(sigma · sigma_down).
            h = sigmas[i].log() - sigma_down.log()
            sigma_s = (sigmas[i] * sigma_down).sqrt()
            shifted = x + (denoised - uncond_denoised)
            x_2 = (sigma_s / sigmas[i]) * shifted - (-h / 2).expm1() * denoised
            denoised_2 = model(x_2, batch_sigma(sigma_s, x), **args)
            uncond.take()
            x = (sigma_down / sigmas[i]) * shifted - (-h).expm1() * denoised_2
        if sigmas[i + 1] > 0:
            x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * sigma_up
    return x


@torch.no_grad()
def sample_dpmpp_2m_cfg_pp(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                           callback: Callback | None = None, noise_sampler: NoiseSampler | None = None) -> Tensor:
    """DPM-Solver++(2M) with CFG++: the multistep correction built from unconditional predictions."""
    uncond = UncondCapture("dpmpp_2m_cfg_pp")
    args = uncond.extra_args(extra_args)
    old_uncond = None
    for i in range(len(sigmas) - 1):
        denoised = model(x, batch_sigma(sigmas[i], x), **args)
        uncond_denoised = uncond.take()
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        h = sigmas[i].log() - sigmas[i + 1].log()  # t = -log sigma; e^{-h} = sigma_next / sigma
        if old_uncond is None or sigmas[i + 1] == 0:
            correction = -(-h).exp() * uncond_denoised
        else:
            r = (sigmas[i - 1].log() - sigmas[i].log()) / h
            correction = -(-h).exp() * uncond_denoised - (-h).expm1() / (2 * r) * (denoised - old_uncond)
        x = denoised + correction + (-h).exp() * x
        old_uncond = uncond_denoised
    return x


@torch.no_grad()
def sample_cfgpp_ud10_ab(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                         callback: Callback | None = None, noise_sampler: NoiseSampler | None = None,
                         history_weight: float = 0.25, uncond_history_weight: float = 0.1,
                         zero_weight: float = 1.0) -> Tensor:
    """CFG++ Euler blended with variable-step Adams–Bashforth 2, x0 extrapolated to sigma 0 at the end."""
    uncond = UncondCapture("cfgpp_ud10_ab")
    args = uncond.extra_args(extra_args)
    sigma_list = [float(s) for s in sigmas]
    derivatives: list[Tensor] = []
    previous_denoised = None
    previous_uncond_d = None
    for i in range(len(sigmas) - 1):
        denoised = model(x, batch_sigma(sigmas[i], x), **args)
        uncond_denoised = uncond.take()
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        dt = sigmas[i + 1] - sigmas[i]
        current_uncond_d = to_d(x, sigmas[i], uncond_denoised)
        uncond_d = current_uncond_d
        if i > 0 and uncond_history_weight:
            # Extrapolate the unconditional noise direction by its last change.
            uncond_d = uncond_d + uncond_history_weight * dt / (sigmas[i] - sigmas[i - 1]) \
                * (current_uncond_d - previous_uncond_d)
        euler_step = denoised + sigmas[i + 1] * uncond_d - x
        derivatives = (derivatives + [euler_step / dt])[-2:]
        if len(derivatives) == 1:
            step = euler_step
        else:
            coefficients = lms_coefficients(sigma_list, i, 2)
            history_step = coefficients[0] * derivatives[-1] + coefficients[1] * derivatives[-2]
            step = torch.lerp(euler_step, history_step, history_weight)
        x = x + step
        if sigmas[i + 1] == 0 and previous_denoised is not None:
            slope = (denoised - previous_denoised) / (sigmas[i] - sigmas[i - 1])
            x = torch.lerp(x, denoised - sigmas[i] * slope, zero_weight)
        previous_denoised = denoised
        previous_uncond_d = current_uncond_d
    return x
