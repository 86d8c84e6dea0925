"""Tiny random control models in the real file layouts, for tests and offline demos.

A tiny ControlNet has the encoder of the family's tiny UNet (``ldm.tiny``), the real hint block
(16-16-32-32-96-96-256 channels, 8x down) and random weights; T2I-Adapters follow TencentARC's
layouts with small channel counts. Written as a real download would be: the original
single-file layout (optionally under ``control_model.``, as lllyasviel's .pth files), the
diffusers layout (by diffusers' own key names), a control-LoRA, a diff ControlNet.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ldm.control.detect import with_encoder_of
from ldm.control.network import ControlNetConfig, ControlNetModel, UnionConfig
from ldm.control.t2i_adapter import FULL_BLOCKS_PER_LEVEL, AdapterConfig, T2IAdapterModel
from ldm.loading.checkpoint import save_state_dict
from ldm.loading.detect import head_metadata
from ldm.loading.weights import random_weights
from ldm.lora.patches import diffusers_unet_weights
from ldm.tiny import _text_widths, tiny_text_state_dict, tiny_unet_config

#: The hint block's widths in every released ControlNet.
HINT_WIDTHS = (16, 16, 32, 32, 96, 96, 256)


def tiny_controlnet_config(family: str = "sd1", union_types: int | None = None) -> ControlNetConfig:
    """The encoder of ``family``'s tiny checkpoint (``ldm.tiny``, text widths included)."""
    unet = tiny_unet_config(family, _text_widths(family, tiny_text_state_dict(family)))
    config = with_encoder_of(unet, 3, HINT_WIDTHS)
    if union_types is not None:
        width = unet.model_channels
        config = ControlNetConfig(unet=config.unet, hint_channels=3, hint_widths=HINT_WIDTHS,
                                  union=UnionConfig(types=union_types, width=width, embed_dim=16))
    return config


def tiny_controlnet_state_dict(family: str = "sd1", seed: int = 0, union_types: int | None = None,
                               zero_scale: float = 1.0) -> dict[str, torch.Tensor]:
    """Random weights (original layout, no prefix). Real zero convolutions start at zero and
    grow in training; ``zero_scale`` scales the random ones (1 = as large as any other layer)."""
    network = ControlNetModel(tiny_controlnet_config(family, union_types))
    weights = random_weights(network, torch.Generator().manual_seed(seed))
    for key in weights:
        if key.startswith("zero_convs.") or key.startswith("middle_block_out."):
            weights[key] = weights[key] * zero_scale
    return weights


def controlnet_metadata(family: str = "sd1") -> dict[str, str]:
    """The head split a tiny ControlNet file records (tiny widths cannot hold 64-channel heads)."""
    return {} if family.startswith("sd1") else head_metadata(tiny_controlnet_config(family).unet)


def to_diffusers_layout(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Original-layout ControlNet weights under diffusers' names (what ``ControlNetModel`` saves)."""
    renames = {compvis: diffusers for diffusers, compvis in diffusers_unet_weights(weights).items()}
    hint_last = 2 * len(HINT_WIDTHS)
    out = {}
    for key, value in weights.items():
        module, _, leaf = key.rpartition(".")
        if key in renames:
            out[renames[key]] = value
        elif key.startswith("zero_convs."):
            out[f"controlnet_down_blocks.{key.split('.')[1]}.{leaf}"] = value
        elif key.startswith("middle_block_out."):
            out[f"controlnet_mid_block.{leaf}"] = value
        elif key.startswith("input_hint_block."):
            index = int(key.split(".")[1])
            name = ("conv_in" if index == 0 else "conv_out" if index == hint_last
                    else f"blocks.{index // 2 - 1}")
            out[f"controlnet_cond_embedding.{name}.{leaf}"] = value
        else:  # union parts keep their names; attention packs q, k, v as nn.MultiheadAttention does
            out[key.replace(".attn.in_proj.", ".attn.in_proj_")] = value
    return out


def write_tiny_controlnet(path: str | os.PathLike, family: str = "sd1", seed: int = 0, *,
                          layout: str = "original", prefix: str = "", dtype: torch.dtype = torch.float16,
                          union_types: int | None = None, zero_scale: float = 1.0) -> Path:
    """Write a tiny ControlNet: ``layout`` "original" (keys under ``prefix``) or "diffusers"."""
    weights = tiny_controlnet_state_dict(family, seed, union_types, zero_scale)
    if layout == "diffusers":
        weights = to_diffusers_layout(weights)
    else:
        weights = {prefix + k: v for k, v in weights.items()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_state_dict(path, {k: v.to(dtype) for k, v in weights.items()}, controlnet_metadata(family))
    return Path(path)


def control_lora_state_dict(unet_config, seed: int = 0, rank: int = 2) -> dict[str, torch.Tensor]:
    """A control-LoRA over a UNet of ``unet_config``: full hint block, zero convs and norms,
    low-rank ``up``/``down`` pairs for every linear and convolution weight of the encoder."""
    network = ControlNetModel(with_encoder_of(unet_config, 3, HINT_WIDTHS))
    generator = torch.Generator().manual_seed(seed)
    full = random_weights(network, generator)
    out: dict[str, torch.Tensor] = {"lora_controlnet": torch.tensor([])}
    for key, value in full.items():
        module = key.rsplit(".", 1)[0]
        own_part = key.startswith(("input_hint_block.", "zero_convs.", "middle_block_out."))
        if own_part or value.ndim < 2:
            out[key] = value
            continue
        fan_in = value[0].numel()
        out[module + ".up"] = torch.randn(value.shape[0], rank, generator=generator) * 0.1
        out[module + ".down"] = torch.randn(rank, *value.shape[1:], generator=generator) / fan_in ** 0.5
    return out


def tiny_adapter_config(xl: bool = False, channels: tuple[int, ...] = (32, 64), image_channels: int = 3,
                        light: bool = False) -> AdapterConfig:
    unshuffle = 16 if xl else 8
    input_width = image_channels * unshuffle * unshuffle
    if light:
        return AdapterConfig(kind="light", input_width=input_width, channels=channels, blocks_per_level=4)
    kernels = []
    for level, width in enumerate(channels):
        for j in range(FULL_BLOCKS_PER_LEVEL):
            changes = j == 0 and level > 0 and channels[level - 1] != width
            kernels.append(((("in_conv", 1),) if changes else ()) + (("block1", 3), ("block2", 1)))
    return AdapterConfig(kind="full", input_width=input_width, channels=channels,
                         blocks_per_level=FULL_BLOCKS_PER_LEVEL, xl=xl, kernels=tuple(kernels))


def tiny_adapter_state_dict(config: AdapterConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random T2I-Adapter weights in TencentARC's layout."""
    return random_weights(T2IAdapterModel(config), torch.Generator().manual_seed(seed))


def write_tiny_adapter(path: str | os.PathLike, config: AdapterConfig, seed: int = 0,
                       dtype: torch.dtype = torch.float16) -> Path:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_state_dict(path, {k: v.to(dtype) for k, v in tiny_adapter_state_dict(config, seed).items()})
    return Path(path)
