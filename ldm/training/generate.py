"""Text-to-image with a model in training or loaded from a file, through ``ldm.sampling`` — the
same guidance, schedules and samplers the KSampler node runs."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ldm.latent_formats import LatentFormat
from ldm.sampling.denoiser import UNetDenoiser
from ldm.sampling.guidance import GuidedModel
from ldm.sampling.model_conds import model_conds_for_family
from ldm.sampling.model_sampling import model_sampling_for_family
from ldm.sampling.sample import common_ksampler
from ldm.text.handle import ClipHandle


def guided_model(unet: nn.Module, family: str, prediction: str, latent_format: LatentFormat,
                 dtype: torch.dtype = torch.float32) -> GuidedModel:
    """A :class:`GuidedModel` over ``unet``, which computes in ``dtype`` (its input is cast)."""
    sampling = model_sampling_for_family(family, prediction)

    def network(x: torch.Tensor, timesteps: torch.Tensor, **kwargs) -> torch.Tensor:
        return unet(x.to(dtype), timesteps, **kwargs)

    return GuidedModel(apply_model=UNetDenoiser(network, sampling), sampling=sampling,
                       model_conds=model_conds_for_family(family), process_latent_in=latent_format.process_in,
                       process_latent_out=latent_format.process_out)


def batch_conditioning(clip: ClipHandle, prompts: list[str]) -> list:
    """One CONDITIONING entry whose cond is ``[N, tokens, dim]``: prompt ``i`` for batch item ``i``
    (the guidance repeats a cond to the latent batch only when its batch differs)."""
    encoded = [clip.encode_from_tokens(clip.tokenize(prompt), return_pooled=True) for prompt in prompts]
    tokens = max(cond.shape[1] for cond, _ in encoded)
    conds = [cond.repeat(1, tokens // cond.shape[1], 1) for cond, _ in encoded]  # 77·k tokens each
    return [[torch.cat(conds), {"pooled_output": torch.cat([pooled for _, pooled in encoded])}]]


@torch.no_grad()
def text_to_latents(model: GuidedModel, clip: ClipHandle, prompts: list[str], *, negative: str = "",
                    seed: int = 0, first_index: int = 0, steps: int = 20, cfg: float = 5.0,
                    sampler: str = "euler", scheduler: str = "normal",
                    latent_shape: tuple[int, int, int] = (4, 8, 8)) -> torch.Tensor:
    """Raw latents ``[N, C, h, w]``, sampled together. Item ``i`` starts from draw
    ``first_index + i`` of ``seed``'s noise (KSampler's ``batch_index`` rule), so an image does
    not depend on which batch it was sampled in."""
    count = len(prompts)
    positive = batch_conditioning(clip, prompts)
    negative_cond = clip.encode_from_tokens_scheduled(clip.tokenize(negative))
    latent = {"samples": torch.zeros((count, *latent_shape)),
              "batch_index": list(range(first_index, first_index + count))}
    return common_ksampler(model, seed, steps, cfg, sampler, scheduler, positive, negative_cond,
                           latent)["samples"]


def text_to_images(model: GuidedModel, clip: ClipHandle, decode: Callable[[torch.Tensor], torch.Tensor],
                   prompts: list[str], **options) -> torch.Tensor:
    """``[N, 3, H, W]`` in 0..1, one image per prompt; ``decode`` maps raw latents to such images."""
    return decode(text_to_latents(model, clip, prompts, **options))
