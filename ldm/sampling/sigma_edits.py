"""Edits of SIGMAS and the noising they drive, for ComfyUI's sigma nodes: setting the first
sigma, inserting sigmas between neighbours, sigmas typed as text, a sampling share as a
sigma, and a latent noised to a schedule's level (AddNoise).
"""

from __future__ import annotations

import math
import re
from typing import Callable

import torch
from torch import Tensor

from ldm.sampling.model_sampling import ModelSampling

#: ExtendIntermediateSigmas' spacings: where between two sigmas (0 … 1) the new ones go.
SPACINGS: dict[str, Callable[[Tensor], Tensor]] = {
    "linear": lambda x: x,
    "cosine": lambda x: torch.sin(x * math.pi / 2),
    "sine": lambda x: 1 - torch.cos(x * math.pi / 2),
}
_NUMBER = re.compile(r"[-+]?(?:\d*\.*\d+)")


def set_first_sigma(sigmas: Tensor, sigma: float) -> Tensor:
    """A copy of ``sigmas`` starting at ``sigma``."""
    out = sigmas.clone()
    out[0] = sigma
    return out


def extend_intermediate_sigmas(sigmas: Tensor, steps: int, start_at_sigma: float, end_at_sigma: float,
                               spacing: str) -> Tensor:
    """Split each step whose starting sigma lies in [end_at_sigma, start_at_sigma] into ``steps``
    steps (``start_at_sigma < 0``: no upper bound), the new sigmas placed by ``spacing``."""
    upper = math.inf if start_at_sigma < 0 else start_at_sigma
    fractions = SPACINGS[spacing](torch.linspace(0, 1, steps + 1)[1:-1])
    extended: list[float] = []
    for current, following in zip(sigmas[:-1], sigmas[1:]):
        extended.append(float(current))
        if end_at_sigma <= float(current) <= upper:
            extended.extend((fractions * (following - current) + current).tolist())
    if len(sigmas) > 0:
        extended.append(float(sigmas[-1]))
    return torch.tensor(extended, dtype=torch.float32)


def parse_sigmas(text: str) -> Tensor:
    """The numbers in ``text`` ("1, 0.5", "14.6 7 3 0") as SIGMAS, in the order written."""
    return torch.tensor([float(number) for number in _NUMBER.findall(text)], dtype=torch.float32)


def sampling_percent_to_sigma(sampling: ModelSampling, percent: float, actual_ends: bool = False) -> float:
    """The sigma ``percent`` of the way through sampling. At 0 and 1 ComfyUI's interval checks
    use sigmas beyond every schedule (a huge one, 0); ``actual_ends`` gives sigma_max / sigma_min
    there instead."""
    if actual_ends and percent == 0.0:
        return float(sampling.sigma_max)
    if actual_ends and percent == 1.0:
        return float(sampling.sigma_min)
    return float(sampling.percent_to_sigma(percent))


def noise_latent(sampling: ModelSampling, noise: Tensor, latent: Tensor, sigmas: Tensor,
                 process_in: Callable[[Tensor], Tensor], process_out: Callable[[Tensor], Tensor]) -> Tensor:
    """A raw latent noised by the amount a schedule removes: sigma = |sigmas[0] - sigmas[-1]|
    (the only sigma when there is one), in the model's latent space and back."""
    scale = torch.abs(sigmas[0] - sigmas[-1]) if len(sigmas) > 1 else sigmas[0]
    if torch.count_nonzero(latent) > 0:  # an empty latent stays zero (matters for shifted formats)
        latent = process_in(latent)
    noisy = process_out(sampling.noise_scaling(scale, noise, latent))
    return torch.nan_to_num(noisy, nan=0.0, posinf=0.0, neginf=0.0)
