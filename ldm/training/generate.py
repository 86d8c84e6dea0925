"""Text-to-image with a model in training or loaded from a file, through ``ldm.sampling`` — the
same guidance, schedules and samplers the KSampler node runs (the :class:`GuidedModel` comes
from ``ldm.sampling.from_handle.guided_model``)."""

from __future__ import annotations

from typing import Callable

import torch

from ldm.latent_formats import SD15
from ldm.model import ModelHandle
from ldm.networks.unet import UNetModel
from ldm.sampling.guidance import GuidedModel
from ldm.sampling.sample import common_ksampler
from ldm.text.handle import ClipHandle


def training_handle(unet: UNetModel, dtype: torch.dtype = torch.float32, prediction: str = "eps") -> ModelHandle:
    """A MODEL handle over a UNet in training (SD1 family: eps, SD1 latent format, the CPU), so
    previews sample through the same ``guided_model`` as the KSampler node."""
    return ModelHandle(unet=unet, config=unet.config, family="sd1", prediction=prediction, latent_format=SD15,
                       device=torch.device("cpu"), dtype=dtype)


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
