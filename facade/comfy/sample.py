"""``comfy.sample``: the functions a pack's own sampler node calls.

``sample`` is Weft's KSampler run (same sigmas, guidance, sampler and noise handling) on the
MODEL the pack holds — so it returns Weft's KSampler result for the same seed — with ComfyUI's
arguments and ComfyUI's ``callback(step, x0, x, total_steps)``.
"""

from __future__ import annotations

import numpy as np  # noqa: F401  (ComfyUI's module imports it; efficiency-nodes reads comfy.sample.np)
import torch

from _weft_binding import host
from comfy._weft_sampling import guided_run, step_reporter
from comfy.samplers import KSampler
from ldm.sampling import guidance
from ldm.sampling.from_handle import fix_empty_latent_channels as _fit_channels
from ldm.sampling.noise import prepare_noise as _prepare_noise
from ldm.sampling.sample import sample_with_sigmas


def prepare_noise(latent_image: torch.Tensor, seed: int, noise_inds=None) -> torch.Tensor:
    """Start noise drawn on the CPU from ``seed``, one draw per batch index (as ComfyUI)."""
    return _prepare_noise(latent_image, seed, noise_inds)


def fix_empty_latent_channels(model, latent_image: torch.Tensor, downscale_ratio_spacial=None,
                              downscale_ratio_temporal=None) -> torch.Tensor:
    latent_format = model.latent_format  # Weft's latents have no time axis: the temporal ratio has no use
    return _fit_channels(latent_image, latent_format.channels, downscale_ratio_spacial,
                         latent_format.spatial_downscale_ratio)


def sample(model, noise, steps, cfg, sampler_name, scheduler, positive, negative, latent_image, denoise=1.0,
           disable_noise=False, start_step=None, last_step=None, force_full_denoise=False, noise_mask=None,
           sigmas=None, callback=None, disable_pbar=False, seed=None):
    sampler = KSampler(model, steps=steps, sampler=sampler_name, scheduler=scheduler, denoise=denoise)
    samples = sampler.sample(noise, positive, negative, cfg=cfg, latent_image=latent_image, start_step=start_step,
                             last_step=last_step, force_full_denoise=force_full_denoise, denoise_mask=noise_mask,
                             sigmas=sigmas, callback=callback, disable_pbar=disable_pbar, seed=seed)
    return samples.to(_intermediate_device())


def sample_custom(model, noise, cfg, sampler, sigmas, positive, negative, latent_image, noise_mask=None,
                  callback=None, disable_pbar=False, seed=None):
    with guided_run(model, tuple(latent_image.shape)) as guided:
        guider = guidance.CFGGuider(guided, list(positive), list(negative), cfg)
        samples = sample_with_sigmas(guider, sampler.spec or sampler.name, sigmas, noise, latent_image, noise_mask,
                                     0 if seed is None else seed, step_reporter(callback), model.device)
    return samples.to(_intermediate_device())


def _intermediate_device() -> torch.device:
    return host().services.engine.intermediate_device
