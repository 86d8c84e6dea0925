"""The shape of a ControlNet read off its weights (original layout, no ``control_model.`` prefix).

The encoder is read like a UNet's input side (levels, ResBlocks per level, transformer depths,
projection kind, context width, SDXL label embedding); the hint block's widths and the union
parts from their tensors. Head counts are not visible in shapes: the family's convention is used
(8 heads for SD1-style conv projections, 64-channel heads otherwise), unless the file's metadata
records the split as Weft's tiny files and saves do (``ldm.loading.detect.head_metadata``).
"""

from __future__ import annotations

import dataclasses

from ldm.control.network import HINT_STRIDES, ControlNetConfig, UnionConfig
from ldm.loading.detect import check_heads, metadata_heads
from ldm.networks.unet import UNetConfig


class ControlDetectionError(ValueError):
    """The weights do not describe a control model this build can load."""


def _indices(state_dict: dict, prefix: str) -> list[int]:
    return sorted({int(k[len(prefix):].split(".", 1)[0]) for k in state_dict if k.startswith(prefix)})


def _shape(state_dict: dict, key: str) -> tuple[int, ...]:
    if key not in state_dict:
        raise ControlDetectionError(f"ControlNet weights lack {key!r}")
    return tuple(state_dict[key].shape)


def _depth(state_dict: dict, prefix: str) -> int:
    return len(_indices(state_dict, prefix + "transformer_blocks."))


def head_split(metadata: dict | None, sd1_like: bool) -> tuple[int, int]:
    """``(num_heads, num_head_channels)``: the file's metadata, else the family's convention."""
    found = metadata_heads(metadata or {}, ControlDetectionError)
    if found is not None:
        return found
    return (8, -1) if sd1_like else (-1, 64)


def encoder_config(state_dict: dict, metadata: dict | None = None) -> UNetConfig:
    """The :class:`UNetConfig` of the encoder (input blocks + middle) in ``state_dict``."""
    conv_in = _shape(state_dict, "input_blocks.0.0.weight")
    model_channels, in_channels = conv_in[0], conv_in[1]
    adm = _shape(state_dict, "label_emb.0.0.weight")[1] if "label_emb.0.0.weight" in state_dict else None
    channel_mult, num_res_blocks, depths = [], [], []
    context_dim, use_linear = None, False
    res_in_level, level_channels = 0, None
    for index in _indices(state_dict, "input_blocks.")[1:]:
        prefix = f"input_blocks.{index}."
        if prefix + "0.op.weight" in state_dict:
            if level_channels is None:
                raise ControlDetectionError(f"input block {index} downsamples a level without ResBlocks")
            channel_mult.append(level_channels // model_channels)
            num_res_blocks.append(res_in_level)
            res_in_level, level_channels = 0, None
            continue
        channels = _shape(state_dict, prefix + "0.out_layers.3.weight")[0]
        level_channels = level_channels or channels
        res_in_level += 1
        depth = _depth(state_dict, prefix + "1.")
        depths.append(depth)
        if depth:
            use_linear = len(_shape(state_dict, prefix + "1.proj_in.weight")) == 2
            context_dim = _shape(state_dict, prefix + "1.transformer_blocks.0.attn2.to_k.weight")[1]
    if level_channels is None:
        raise ControlDetectionError("the last level of the ControlNet encoder has no ResBlock")
    channel_mult.append(level_channels // model_channels)
    num_res_blocks.append(res_in_level)
    if "middle_block.1.in_layers.0.weight" in state_dict:
        raise ControlDetectionError("a middle block without a transformer between its ResBlocks is not supported")
    middle_depth = _depth(state_dict, "middle_block.1.") or -1
    heads = head_split(metadata, sd1_like=not use_linear and adm is None)
    time_embed_dim = _shape(state_dict, "time_embed.0.weight")[0]
    return UNetConfig(
        in_channels=in_channels, out_channels=in_channels, model_channels=model_channels,
        channel_mult=tuple(channel_mult), num_res_blocks=tuple(num_res_blocks), transformer_depth=tuple(depths),
        transformer_depth_middle=middle_depth, transformer_depth_output=(), context_dim=context_dim,
        use_linear_in_transformer=use_linear, num_heads=heads[0], num_head_channels=heads[1],
        adm_in_channels=adm, time_embed_dim=time_embed_dim if time_embed_dim != 4 * model_channels else None)


def hint_block(state_dict: dict) -> tuple[int, tuple[int, ...]]:
    """``(hint_channels, widths of the hint convolutions but the last)``."""
    convs = _indices(state_dict, "input_hint_block.")
    if convs != [2 * i for i in range(len(HINT_STRIDES))]:
        raise ControlDetectionError(f"input_hint_block has convolutions {convs}, expected 0, 2, ..., 14")
    widths = tuple(_shape(state_dict, f"input_hint_block.{i}.weight")[0] for i in convs[:-1])
    return _shape(state_dict, "input_hint_block.0.weight")[1], widths


def union_config(state_dict: dict) -> UnionConfig | None:
    if "task_embedding" not in state_dict:
        return None
    types, width = _shape(state_dict, "task_embedding")
    embed_in = _shape(state_dict, "control_add_embedding.linear_1.weight")[1]
    return UnionConfig(types=types, width=width, embed_dim=embed_in // types)


def controlnet_config(state_dict: dict, metadata: dict | None = None) -> ControlNetConfig:
    """The full :class:`ControlNetConfig` of original-layout ControlNet weights."""
    config = encoder_config(state_dict, metadata)
    check_heads(config, "ControlNet", ControlDetectionError)
    hint_channels, widths = hint_block(state_dict)
    return ControlNetConfig(unet=config, hint_channels=hint_channels, hint_widths=widths,
                            union=union_config(state_dict))


def with_encoder_of(config: UNetConfig, hint_channels: int, hint_widths: tuple[int, ...]) -> ControlNetConfig:
    """A ControlNet shaped like a model's own UNet encoder (control-LoRA builds one)."""
    return ControlNetConfig(unet=dataclasses.replace(config, transformer_depth_output=()),
                            hint_channels=hint_channels, hint_widths=hint_widths)
