"""Tiny random first-stage autoencoders in the CompVis key layout, one per released first stage.

Each keeps what detection and the runtime read from a real file of that release
(``models/first_stage_models/*/config.yaml`` of CompVis/latent-diffusion): the kind, the number
of levels (so the downscale factor), ``z_channels`` = ``embed_dim``, which levels have attention
(``attn_resolutions`` at training resolution 256) and whether the middle block has it (``vq-f4-noattn``
has none). Widths, blocks per level and codebook sizes are small, so the weights are a few MB at most.
The LDM checkpoint generator puts these under ``first_stage_model.``.
"""

from __future__ import annotations

import torch

from ldm.loading.first_stage import KL, VQ, FirstStageSpec, build_first_stage
from ldm.loading.weights import random_weights
from ldm.networks.autoencoder import VaeConfig

WIDTH = 32  # GroupNorm's 32 groups need multiples of 32


def _config(ch_mult: tuple[int, ...], latent: int, attn_levels: tuple[int, ...] = (), *, double_z: bool,
            mid_attn: bool = True) -> VaeConfig:
    flags = tuple(level in attn_levels for level in range(len(ch_mult))) if attn_levels else ()
    return VaeConfig(ch=WIDTH, ch_mult=ch_mult, num_res_blocks=1, z_channels=latent, embed_dim=latent,
                     attn_levels=flags, mid_attn=mid_attn, double_z=double_z)


#: Release name -> tiny spec. Attention levels: resolution 256 / 2^level in ``attn_resolutions``.
TINY_FIRST_STAGES: dict[str, FirstStageSpec] = {
    "kl-f4": FirstStageSpec(KL, _config((1, 2, 2), 3, double_z=True)),
    "kl-f8": FirstStageSpec(KL, _config((1, 2, 2, 2), 4, double_z=True)),
    "kl-f16": FirstStageSpec(KL, _config((1, 1, 2, 2, 2), 16, (4,), double_z=True)),  # attn at 16
    "kl-f32": FirstStageSpec(KL, _config((1, 1, 2, 2, 2, 2), 64, (4, 5), double_z=True)),  # at 16, 8
    "vq-f4": FirstStageSpec(VQ, _config((1, 2, 2), 3, double_z=False), n_embed=64),
    "vq-f4-noattn": FirstStageSpec(VQ, _config((1, 2, 2), 3, double_z=False, mid_attn=False), n_embed=64),
    "vq-f8": FirstStageSpec(VQ, _config((1, 2, 2, 2), 4, (3,), double_z=False), n_embed=64),  # attn at 32
    "vq-f8-n256": FirstStageSpec(VQ, _config((1, 2, 2, 2), 4, (3,), double_z=False), n_embed=256),
    "vq-f16": FirstStageSpec(VQ, _config((1, 1, 2, 2, 2), 8, (4,), double_z=False), n_embed=64),  # at 16
}


def tiny_first_stage_spec(name: str) -> FirstStageSpec:
    if name not in TINY_FIRST_STAGES:
        raise ValueError(f"unknown first stage {name!r}; choose from {sorted(TINY_FIRST_STAGES)}")
    return TINY_FIRST_STAGES[name]


def tiny_first_stage_state_dict(name: str, seed: int = 0,
                                dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """Random weights (keys without prefix) of the tiny first stage ``name`` (e.g. ``"vq-f4"``)."""
    module = build_first_stage(tiny_first_stage_spec(name))
    return random_weights(module, torch.Generator().manual_seed(seed), dtype)
