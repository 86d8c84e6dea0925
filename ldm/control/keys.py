"""diffusers-layout ControlNet weights renamed to the original (lllyasviel) layout.

diffusers names the encoder as its UNet (``conv_in``, ``time_embedding``, ``add_embedding``,
``down_blocks.i.{resnets,attentions}.j``, ``down_blocks.i.downsamplers.0.conv``, ``mid_block``)
and the ControlNet parts ``controlnet_cond_embedding.{conv_in, blocks.k, conv_out}`` (the hint
block's convolutions 0, 2, ..., 14), ``controlnet_down_blocks.i`` (``zero_convs.i.0``) and
``controlnet_mid_block`` (``middle_block_out.0``). The encoder's shape is read from the diffusers
names, the network built on the meta device, and its own keys give the renaming
(:func:`ldm.lora.patches.diffusers_unet_weights`: one table for UNet-shaped models).
"""

from __future__ import annotations

import re

from ldm.control.detect import ControlDetectionError, head_split, union_config
from ldm.control.network import ControlNetConfig, ControlNetModel
from ldm.lora.patches import diffusers_unet_weights
from ldm.networks.unet import UNetConfig

DIFFUSERS_MARKER = "controlnet_cond_embedding.conv_in.weight"


def is_diffusers_controlnet(state_dict: dict) -> bool:
    return DIFFUSERS_MARKER in state_dict


def _count(state_dict: dict, pattern: str) -> int:
    found = {int(m.group(1)) for k in state_dict if (m := re.match(pattern, k))}
    return max(found) + 1 if found else 0


def _config(state_dict: dict, metadata: dict | None = None) -> ControlNetConfig:
    def shape(key: str) -> tuple[int, ...]:
        if key not in state_dict:
            raise ControlDetectionError(f"diffusers ControlNet weights lack {key!r}")
        return tuple(state_dict[key].shape)

    model_channels, in_channels = shape("conv_in.weight")[:2]
    levels = _count(state_dict, r"down_blocks\.(\d+)\.")
    channel_mult, num_res_blocks, depths = [], [], []
    context_dim, use_linear = None, False
    for level in range(levels):
        blocks = _count(state_dict, rf"down_blocks\.{level}\.resnets\.(\d+)\.")
        num_res_blocks.append(blocks)
        channel_mult.append(shape(f"down_blocks.{level}.resnets.0.conv2.weight")[0] // model_channels)
        for j in range(blocks):
            prefix = f"down_blocks.{level}.attentions.{j}."
            depth = _count(state_dict, rf"{re.escape(prefix)}transformer_blocks\.(\d+)\.")
            depths.append(depth)
            if depth:
                use_linear = len(shape(prefix + "proj_in.weight")) == 2
                context_dim = shape(prefix + "transformer_blocks.0.attn2.to_k.weight")[1]
    middle = _count(state_dict, r"mid_block\.attentions\.0\.transformer_blocks\.(\d+)\.") or -1
    adm = shape("add_embedding.linear_1.weight")[1] if "add_embedding.linear_1.weight" in state_dict else None
    heads = head_split(metadata, sd1_like=not use_linear and adm is None)
    time_embed_dim = shape("time_embedding.linear_1.weight")[0]
    unet = UNetConfig(
        in_channels=in_channels, out_channels=in_channels, model_channels=model_channels,
        channel_mult=tuple(channel_mult), num_res_blocks=tuple(num_res_blocks), transformer_depth=tuple(depths),
        transformer_depth_middle=middle, transformer_depth_output=(), context_dim=context_dim,
        use_linear_in_transformer=use_linear, num_heads=heads[0], num_head_channels=heads[1], adm_in_channels=adm,
        time_embed_dim=time_embed_dim if time_embed_dim != 4 * model_channels else None)
    blocks = _count(state_dict, r"controlnet_cond_embedding\.blocks\.(\d+)\.")
    widths = ([shape("controlnet_cond_embedding.conv_in.weight")[0]]
              + [shape(f"controlnet_cond_embedding.blocks.{k}.weight")[0] for k in range(blocks)])
    union = union_config({k.replace(".attn.in_proj_", ".attn.in_proj."): v for k, v in state_dict.items()})
    return ControlNetConfig(unet=unet, hint_channels=shape(DIFFUSERS_MARKER)[1], hint_widths=tuple(widths),
                            union=union)


def diffusers_controlnet_to_original(state_dict: dict, metadata: dict | None = None) -> dict:
    """The same tensors under original-layout names; unknown keys raise."""
    config = _config(state_dict, metadata)
    own_keys = ControlNetModel(config).state_dict().keys()
    renames = diffusers_unet_weights(own_keys)
    blocks = _count(state_dict, r"controlnet_cond_embedding\.blocks\.(\d+)\.")
    hint = {"controlnet_cond_embedding.conv_in": "input_hint_block.0",
            "controlnet_cond_embedding.conv_out": f"input_hint_block.{2 * (blocks + 1)}",
            "controlnet_mid_block": "middle_block_out.0"}
    hint.update({f"controlnet_cond_embedding.blocks.{k}": f"input_hint_block.{2 * (k + 1)}" for k in range(blocks)})
    out, unknown = {}, []
    for key, value in state_dict.items():
        module, _, leaf = key.rpartition(".")
        if key in renames:
            out[renames[key]] = value
        elif module in hint:
            out[f"{hint[module]}.{leaf}"] = value
        elif m := re.fullmatch(r"controlnet_down_blocks\.(\d+)", module):
            out[f"zero_convs.{m.group(1)}.0.{leaf}"] = value
        elif config.union is not None and key.split(".")[0] in (
                "task_embedding", "transformer_layes", "spatial_ch_projs", "control_add_embedding"):
            out[key.replace(".attn.in_proj_", ".attn.in_proj.")] = value
        else:
            unknown.append(key)
    if unknown:
        raise ControlDetectionError(f"{len(unknown)} diffusers ControlNet weights have no original name, "
                                    f"e.g. {unknown[:3]}")
    return out
