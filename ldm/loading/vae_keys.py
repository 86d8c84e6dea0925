"""Renaming a diffusers-layout ``AutoencoderKL`` state dict to the CompVis layout we build.

Standalone VAE downloads often come in diffusers' layout (``encoder.down_blocks.0.resnets.0...``,
e.g. ``sdxl_vae.safetensors``). The mapping is one explicit table of name pieces; the decoder's
``up_blocks`` count from the lowest resolution, CompVis' ``up`` from the highest.
"""

from __future__ import annotations

import re

import torch

#: Within-block renames (diffusers -> CompVis); older diffusers files use query/key/value/proj_attn.
_RESNET = {"conv_shortcut": "nin_shortcut"}
_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out",
              "query": "q", "key": "k", "value": "v", "proj_attn": "proj_out"}
_TOP = {"conv_norm_out": "norm_out"}

_DOWN = re.compile(r"^encoder\.down_blocks\.(\d+)\.(resnets|downsamplers)\.(\d+)\.(.+)$")
_UP = re.compile(r"^decoder\.up_blocks\.(\d+)\.(resnets|upsamplers)\.(\d+)\.(.+)$")
_MID = re.compile(r"^(encoder|decoder)\.mid_block\.(resnets|attentions)\.(\d+)\.(.+)$")


def is_diffusers_vae(state_dict: dict) -> bool:
    return any(k.startswith("encoder.down_blocks.") for k in state_dict)


def _rename_leaf(leaf: str, table: dict[str, str]) -> str:
    for old, new in table.items():
        if leaf.startswith(old + "."):
            return new + leaf[len(old):]
    return leaf


def diffusers_vae_to_ldm(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same tensors under CompVis names (attention matrices are reshaped later, on load)."""
    up_levels = 1 + max((int(m.group(1)) for k in state_dict if (m := _UP.match(k))), default=-1)
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if m := _DOWN.match(key):
            level, kind, index, leaf = m.groups()
            name = (f"encoder.down.{level}.block.{index}.{_rename_leaf(leaf, _RESNET)}" if kind == "resnets"
                    else f"encoder.down.{level}.downsample.{leaf}")
        elif m := _UP.match(key):
            level, kind, index, leaf = m.groups()
            level = up_levels - 1 - int(level)
            name = (f"decoder.up.{level}.block.{index}.{_rename_leaf(leaf, _RESNET)}" if kind == "resnets"
                    else f"decoder.up.{level}.upsample.{leaf}")
        elif m := _MID.match(key):
            part, kind, index, leaf = m.groups()
            name = (f"{part}.mid.block_{int(index) + 1}.{_rename_leaf(leaf, _RESNET)}" if kind == "resnets"
                    else f"{part}.mid.attn_1.{_rename_leaf(leaf, _ATTENTION)}")
        else:
            part, _, leaf = key.partition(".")
            name = f"{part}.{_rename_leaf(leaf, _TOP)}" if part in ("encoder", "decoder") else key
        out[name] = value
    return out
