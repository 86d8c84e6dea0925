"""LCM sampling that enlarges the latent between steps (ComfyUI's SamplerLCMUpscale).

Each step jumps to the model's x0 (as :func:`~ldm.sampling.samplers_stochastic.sample_lcm`),
resizes it by the next factor of ``linspace(1, total_upscale, upscale_steps + 1)[1:]`` and
re-noises it to the next sigma; so the output is ``total_upscale`` times larger than the input.
"""

from __future__ import annotations

import numpy
import torch
from torch import Tensor

from ldm.imaging.operations import resample
from ldm.sampling.noise import NoiseSampler, cpu_generator
from ldm.sampling.sampler_common import Callback, Denoiser, batch_sigma, report

UPSCALE_METHODS = ("bislerp", "nearest-exact", "bilinear", "area", "bicubic")


def upscale_factors(sigma_count: int, total_upscale: float, upscale_steps: int | None) -> list[float]:
    """The resize factor after each of the first steps (relative to the input size)."""
    if upscale_steps is None:
        count = max(sigma_count // 2 + 1, 2)
    else:
        count = min(upscale_steps + 1, sigma_count + 1)
    return [float(f) for f in numpy.linspace(1.0, total_upscale, count)[1:]]


@torch.no_grad()
def sample_lcm_upscale(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                       callback: Callback | None = None, noise_sampler: NoiseSampler | None = None,
                       total_upscale: float = 2.0, upscale_method: str = "bislerp",
                       upscale_steps: int | None = None) -> Tensor:
    """LCM steps (Luo et al. 2023) with the x0 estimate enlarged between steps.

    The re-noising draws come from a CPU generator seeded with ``extra_args["seed"] + 1`` (the
    latent changes size, so the fixed-shape noise source of the other samplers cannot serve).
    """
    extra_args = extra_args or {}
    generator = cpu_generator(int(extra_args.get("seed", 0)) + 1)
    height, width = x.shape[-2:]
    factors = upscale_factors(len(sigmas), total_upscale, upscale_steps)
    for i in range(len(sigmas) - 1):
        denoised = model(x, batch_sigma(sigmas[i], x), **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        x = denoised
        if i < len(factors):
            x = resample(x, round(width * factors[i]), round(height * factors[i]), upscale_method, "disabled")
        if sigmas[i + 1] > 0:
            noise = torch.randn(x.shape, generator=generator, dtype=torch.float32)
            x = x + sigmas[i + 1] * noise.to(x)
    return x
