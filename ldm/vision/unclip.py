"""unCLIP's label input: a noise-augmented CLIP image embedding plus the embedding of its noise level.

Stable unCLIP (SD 2.1 unCLIP-L / -H; Ramesh et al. 2022 for the idea) conditions the UNet's ADM
label on a CLIP image embedding noised to a chosen level of a squared-cosine DDPM schedule (1000
levels, the Karlo prior's), concatenated with the sinusoidal embedding of that level: the label
is ``[noised embedding (D) ++ level embedding (D)]``, ``D`` = 768 for unCLIP-L, 1024 for -H.

Noising follows ComfyUI's ``unclip_adm`` (``comfy/model_base.py``) with its
``CLIPEmbeddingNoiseAugmentation``:

* each image of each ``unclip_conditioning`` entry is noised to
  ``round(999 * noise_augmentation)`` with noise from a generator seeded ``seed`` (the job's seed
  minus 10) — every image draws the same noise, as ComfyUI reseeds per image — and the label is
  scaled by the entry's ``strength``;
* one image in all: that label is the input; several: the labels are summed, the summed image
  part is noised again to the merge level (``unclip_noise_augment_merge``, default 0.05) and gets
  that level's embedding. ComfyUI draws this noise from the global generator right after the
  last reseed; here the same continuation is drawn from a local CPU generator, so no global
  random state is touched;
* no unCLIP conditioning: an all-zero label.

The embedding is normalised by ``mean``/``std`` before noising and restored after (the
``StableUnCLIPImageNormalizer`` of diffusers); the SD 2.1 unCLIP checkpoints do not store these
statistics, so they are 0 and 1 there, as in ComfyUI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import Tensor

from ldm.loading.detect import UNCLIP_FAMILIES
from ldm.networks.unet import timestep_embedding
from ldm.sampling.noise import cpu_generator

#: Model family -> width of the image embedding its label takes (half the label: the other half
#: is the noise level's embedding).
UNCLIP_EMBED_WIDTHS = {family: label_width // 2 for label_width, family in UNCLIP_FAMILIES.items()}
UNCLIP_L_EMBED_WIDTH = UNCLIP_EMBED_WIDTHS["sd2_unclip_l"]  # 768: CLIP ViT-L/14's projection
NOISE_LEVELS = 1000
DEFAULT_MERGE_AUGMENTATION = 0.05
MAX_BETA = 0.999


def squaredcos_betas(levels: int = NOISE_LEVELS) -> Tensor:
    """float64 betas of the squared-cosine schedule (Nichol & Dhariwal 2021, "squaredcos_cap_v2"):
    ``β_i = min(1 - ᾱ((i+1)/n) / ᾱ(i/n), 0.999)`` with ``ᾱ(t) = cos((t + 0.008) / 1.008 · π/2)²``."""
    def alpha_bar(t: float) -> float:
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    return torch.tensor([min(1 - alpha_bar((i + 1) / levels) / alpha_bar(i / levels), MAX_BETA)
                         for i in range(levels)], dtype=torch.float64)


def noise_level(augmentation: float) -> int:
    """The schedule level of a ``noise_augmentation`` in 0…1."""
    return round((NOISE_LEVELS - 1) * augmentation)


@dataclass(frozen=True)
class EmbeddingNoiseAugmentor:
    """q(z_t | z_0) on normalised image embeddings, plus the level's sinusoidal embedding."""

    width: int
    mean: Tensor | None = None  # [width]; None: 0
    std: Tensor | None = None  # [width]; None: 1

    def __call__(self, embeds: Tensor, level: int, noise: Tensor) -> tuple[Tensor, Tensor]:
        """``embeds`` [N, width] noised to ``level`` with ``noise`` [N, width] -> (noised, level
        embedding [N, width])."""
        x = embeds.float()
        mean = torch.zeros(self.width) if self.mean is None else self.mean.float()
        std = torch.ones(self.width) if self.std is None else self.std.float()
        alpha_bar = torch.cumprod(1.0 - squaredcos_betas(), dim=0)[level]
        scaled = (x - mean) / std
        noised = alpha_bar.sqrt().float() * scaled + (1.0 - alpha_bar).sqrt().float() * noise.float()
        levels = torch.full((x.shape[0],), level, dtype=torch.float32)
        return noised * std + mean, timestep_embedding(levels, self.width)


def unclip_label(unclip_conditioning: Sequence[dict[str, Any]] | None, embed_width: int, seed: int,
                 merge_augmentation: float = DEFAULT_MERGE_AUGMENTATION) -> Tensor:
    """The ADM label ``[1, 2 * embed_width]`` of a conditioning entry's ``unclip_conditioning``
    (a list of ``{"clip_vision_output", "strength", "noise_augmentation"}``); ``seed`` is the
    noise seed (ComfyUI: the job's seed - 10)."""
    if not unclip_conditioning:
        return torch.zeros((1, 2 * embed_width))
    augmentor = EmbeddingNoiseAugmentor(embed_width)
    labels = []
    for item in unclip_conditioning:
        embeds = item["clip_vision_output"].image_embeds
        level = noise_level(item["noise_augmentation"])
        for row in embeds:
            row = row.reshape(1, -1).float().cpu()
            noise = torch.randn(row.shape, generator=cpu_generator(seed))
            noised, level_embedding = augmentor(row, level, noise)
            labels.append(torch.cat([noised, level_embedding], dim=1) * item["strength"])
    if len(labels) == 1:
        return labels[0]
    summed = torch.stack(labels).sum(0)
    generator = cpu_generator(seed)
    torch.randn(labels[-1][:, :embed_width].shape, generator=generator)  # the last image's draw
    noise = torch.randn((1, embed_width), generator=generator)
    noised, level_embedding = augmentor(summed[:, :embed_width], noise_level(merge_augmentation), noise)
    return torch.cat([noised, level_embedding], dim=1)
