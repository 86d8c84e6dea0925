"""The entry points a KSampler node calls: sigmas from (scheduler, steps, denoise), slicing for
KSamplerAdvanced, noise, guidance, inpainting, the sampler, and the latent out.

No node or graph imports: progress and interruption go through ``callback``, which receives
``{"x", "i", "sigma", "sigma_hat", "denoised", "total_steps"}`` after each step's model call
and may raise to stop sampling. Each step's x0 and the sampled latent are checked to be finite
first (:class:`~ldm.finite.NonFiniteError` names the first bad step and the likely cause).
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

from ldm.finite import is_finite, sampling_error
from ldm.sampling.guidance import CFGGuider, Conditioning, GuidedModel, InpaintDenoiser, prepare_denoise_mask
from ldm.sampling.model_sampling import ModelSampling
from ldm.sampling.noise import StepNoiseSampler, brownian_noise_sampler, cpu_generator, prepare_noise
from ldm.sampling.samplers import SamplerSpec, get_sampler
from ldm.sampling.schedulers import calculate_sigmas

StepCallback = Callable[[dict[str, Any]], None]


def ksampler_sigmas(sampling: ModelSampling, scheduler: str, sampler_name: str, steps: int,
                    denoise: float = 1.0) -> Tensor:
    """KSampler's schedule (ComfyUI ``KSampler.set_steps``).

    Samplers of :data:`~ldm.sampling.samplers.DISCARD_PENULTIMATE_SIGMA_SAMPLERS` get one step
    more with the next-to-last sigma dropped. With ``denoise < 1`` the schedule is computed for
    ``int(steps / denoise)`` steps and its last ``steps + 1`` sigmas kept (img2img starts part
    way down); ``denoise ≤ 0`` gives an empty schedule (sampling returns the input).
    """
    discard = get_sampler(sampler_name).discard_penultimate_sigma

    def schedule(n: int) -> Tensor:
        sigmas = calculate_sigmas(sampling, scheduler, n + 1 if discard else n)
        return torch.cat([sigmas[:-2], sigmas[-1:]]) if discard else sigmas

    if denoise is None or denoise > 0.9999:
        return schedule(steps)
    if denoise <= 0.0:
        return torch.zeros(0)
    return schedule(int(steps / denoise))[-(steps + 1):]


def slice_sigmas(sigmas: Tensor, start_step: int | None = None, last_step: int | None = None,
                 force_full_denoise: bool = False) -> Tensor | None:
    """KSamplerAdvanced's ``start_at_step`` / ``end_at_step``; None when nothing is left to do.

    Ending early keeps ``sigmas[:last_step + 1]``; unless the leftover noise is to be returned
    (``force_full_denoise``) the last of them is set to 0, so the result is fully denoised.
    """
    if last_step is not None and last_step < len(sigmas) - 1:
        sigmas = sigmas[:last_step + 1].clone()
        if force_full_denoise:
            sigmas[-1] = 0
    if start_step is not None:
        if start_step >= len(sigmas) - 1:
            return None
        sigmas = sigmas[start_step:]
    return sigmas


def sample_with_sigmas(guider: CFGGuider, sampler_name: "str | SamplerSpec", sigmas: Tensor, noise: Tensor,
                       latent_image: Tensor, denoise_mask: Tensor | None = None, seed: int = 0,
                       callback: StepCallback | None = None, device: torch.device | str = "cpu",
                       step_noise_on_device: bool = False) -> Tensor:
    """Run ``sampler_name`` over ``sigmas`` (ComfyUI ``CFGGuider.sample`` + ``KSAMPLER.sample``).

    ``noise`` is unit noise shaped like ``latent_image`` (zeros to add none); ``latent_image``
    is a raw LATENT ``samples`` tensor (not scaled); ``denoise_mask`` a LATENT ``noise_mask``.
    Returns the raw latent (scaled back out), float32 on the CPU.
    """
    if sigmas.shape[-1] == 0:
        return latent_image
    model: GuidedModel = guider.model
    sampling = model.sampling
    device = torch.device(device)
    noise = noise.to(device=device, dtype=torch.float32)
    latent = latent_image.to(device=device, dtype=torch.float32)
    if torch.count_nonzero(latent) > 0:  # an empty latent stays zero (matters for shifted formats)
        latent = model.process_latent_in(latent)
    sigmas = sigmas.to(device)
    mask = prepare_denoise_mask(denoise_mask, noise.shape).to(device) if denoise_mask is not None else None

    denoiser = guider.prepare(noise.shape, latent, mask, seed)
    # A pack's own sampler function (comfy.samplers.KSAMPLER) arrives as a ready SamplerSpec.
    spec = sampler_name if isinstance(sampler_name, SamplerSpec) else get_sampler(sampler_name)
    inpaint_noise = noise
    if spec.random_inpaint_noise:
        inpaint_noise = torch.randn(noise.shape, generator=cpu_generator(seed + 1)).to(noise)
    wrapped = InpaintDenoiser(denoiser, latent, inpaint_noise, mask, model.hooks.denoise_mask_function,
                              {"model": model, "sigmas": sigmas})

    x = sampling.noise_scaling(sigmas[0], noise, latent, sampling.is_max_denoise(sigmas))
    noise_sampler = None
    if spec.noise == "step":
        noise_sampler = StepNoiseSampler(x, seed, on_device=step_noise_on_device)
    elif spec.noise == "brownian" and len(sigmas) > 1:
        # ComfyUI's "*_gpu" SDE samplers build the Brownian tree on the sampling device; the
        # others on the CPU (same numbers when sampling on the CPU).
        noise_sampler = brownian_noise_sampler(x, sigmas, seed, on_device=spec.noise_on_device)

    total = len(sigmas) - 1
    label = sampler_name if isinstance(sampler_name, str) else getattr(spec.function, "__name__", "a sampler")

    def failure(step: int | None):
        return sampling_error(label, step, total, latent_in=latent, conditioning=_conditioning(guider),
                              diffusion_model=getattr(model, "diffusion_model", None))

    def step_callback(info: dict[str, Any]) -> None:
        # The x0 of every step, so the first bad step is named (a [B, C, h, w] reduction per step).
        if not is_finite(info["denoised"]):
            raise failure(info["i"])
        if callback is not None:
            callback({**info, "total_steps": total})

    samples = spec.function(wrapped, x, sigmas, extra_args={"seed": seed, "model_sampling": sampling},
                            callback=step_callback,
                            noise_sampler=noise_sampler)
    if not is_finite(samples):
        raise failure(None)
    samples = sampling.inverse_noise_scaling(sigmas[-1], samples)
    return model.process_latent_out(samples.float()).cpu()


def _conditioning(guider: Any) -> list[tuple[str, Tensor]]:
    """The conditioning tensors a guider holds, by field name (``positive``, ``cond1``, …): each
    entry's cond ``[1, tokens, dim]`` and SDXL's ``pooled_output``. For the error's post-mortem."""
    found = []
    for name, value in getattr(guider, "__dict__", {}).items():
        if not isinstance(value, (list, tuple)):
            continue
        for entry in value:
            if isinstance(entry, (list, tuple)) and len(entry) == 2 and isinstance(entry[0], Tensor):
                found.append((name, entry[0]))
                pooled = entry[1].get("pooled_output") if isinstance(entry[1], dict) else None
                if isinstance(pooled, Tensor):
                    found.append((name, pooled))
    return found


def common_ksampler(model: GuidedModel, seed: int, steps: int, cfg: float, sampler_name: str,
                    scheduler: str, positive: Conditioning, negative: Conditioning,
                    latent: dict[str, Any], denoise: float = 1.0, disable_noise: bool = False,
                    start_step: int | None = None, last_step: int | None = None,
                    force_full_denoise: bool = False, callback: StepCallback | None = None,
                    device: torch.device | str = "cpu") -> dict[str, Any]:
    """KSampler and KSamplerAdvanced on a LATENT dict; returns a new LATENT dict.

    KSampler: ``common_ksampler(model, seed, steps, cfg, sampler_name, scheduler, positive,
    negative, latent, denoise=denoise)``. KSamplerAdvanced: ``denoise=1.0,
    disable_noise=(add_noise == "disable"), start_step=start_at_step, last_step=end_at_step,
    force_full_denoise=(return_with_leftover_noise != "enable")``.
    """
    samples = latent["samples"]
    if disable_noise:
        noise = torch.zeros(samples.shape, dtype=samples.dtype)
    else:
        noise = prepare_noise(samples, seed, latent.get("batch_index"))
    sigmas = ksampler_sigmas(model.sampling, scheduler, sampler_name, steps, denoise)
    sliced = slice_sigmas(sigmas, start_step, last_step, force_full_denoise)
    out = dict(latent)
    if sliced is None:
        out["samples"] = samples
        return out
    guider = CFGGuider(model, positive, negative, cfg)
    out["samples"] = sample_with_sigmas(guider, sampler_name, sliced, noise, samples,
                                        latent.get("noise_mask"), seed, callback, device)
    return out


__all__ = ("ksampler_sigmas", "slice_sigmas", "sample_with_sigmas", "common_ksampler")
