"""Operations on SIGMAS (1-D float32 tensors, decreasing, usually ending in 0) that ComfyUI's
custom-sampling nodes perform: scheduling with denoise, SD-Turbo's timesteps, splitting, flipping.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ldm.sampling.model_sampling import ModelSampling
from ldm.sampling.schedulers import calculate_sigmas

#: SD-Turbo / SDXL-Turbo were distilled (ADD, Sauer et al. 2023) on timesteps 999, 899, …, 99.
TURBO_TIMESTEPS = tuple(range(999, 0, -100))


def scheduled_sigmas(sampling: ModelSampling, scheduler: str, steps: int, denoise: float = 1.0) -> Tensor:
    """BasicScheduler: ``steps`` steps of ``scheduler``; ``denoise < 1`` computes
    ``int(steps/denoise)`` and keeps the last ``steps + 1`` sigmas, ``denoise ≤ 0`` gives none.
    (Unlike KSampler's schedule, no sampler-specific sigma is dropped.)"""
    total = steps
    if denoise < 1.0:
        if denoise <= 0.0:
            return torch.zeros(0)
        total = int(steps / denoise)
    return calculate_sigmas(sampling, scheduler, total)[-(steps + 1):].cpu()


def sd_turbo_sigmas(sampling: ModelSampling, steps: int, denoise: float = 1.0) -> Tensor:
    """``steps`` of the ten turbo timesteps, starting ``10 - int(10·denoise)`` of them in, then 0."""
    start = 10 - int(10 * denoise)
    timesteps = torch.tensor(TURBO_TIMESTEPS[start:start + steps], dtype=torch.float32)
    sigmas = sampling.sigma(timesteps).float()
    return torch.cat([sigmas, sigmas.new_zeros([1])])


def split_sigmas(sigmas: Tensor, step: int) -> tuple[Tensor, Tensor]:
    """``(sigmas[:step+1], sigmas[step:])``: the two halves share the sigma at ``step``."""
    return sigmas[:step + 1], sigmas[step:]


def split_sigmas_denoise(sigmas: Tensor, denoise: float) -> tuple[Tensor, Tensor]:
    """Split so the low half has ``round(steps·denoise)`` steps (and the high half the rest).

    At ``denoise`` 0 the high half is the whole schedule and the low half its last sigma (ComfyUI
    slices ``sigmas[:-0]`` there, an empty high half).
    """
    steps = max(sigmas.shape[-1] - 1, 0)
    low_steps = round(steps * denoise)
    high = sigmas[:sigmas.shape[-1] - low_steps]
    return high, sigmas[-(low_steps + 1):]


def flip_sigmas(sigmas: Tensor) -> Tensor:
    """The schedule reversed (for inversion: noise an image back up); a leading 0 becomes 1e-4."""
    if len(sigmas) == 0:
        return sigmas
    flipped = sigmas.flip(0)
    if flipped[0] == 0:
        flipped[0] = 0.0001
    return flipped
