"""``comfy.ldm.modules.diffusionmodules.openaimodel``: Weft's UNet and its blocks, by ComfyUI's names.

``model.model.diffusion_model`` is a :class:`UNetModel` (:mod:`ldm.networks.unet`) with ComfyUI's module
tree (``input_blocks`` / ``middle_block`` / ``output_blocks`` / ``out``, ``time_embed``,
``label_emb``) and attribute names (``model_channels``, ``in_channels``, ``out_channels``,
``num_classes``). ``TimestepEmbedSequential`` is Weft's block container (built as
``TimestepEmbedSequential(*layers)``); ``UNetModel(...)`` takes Weft's ``UNetConfig``.
The UNet calls its own block walk, so replacing :func:`forward_timestep_embed` in this module
does not reach it; ``forward_timestep_embed_patch`` in ``transformer_options`` does.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from comfy.ldm.modules.attention import SpatialTransformer, default, exists
from comfy.ldm.modules.diffusionmodules.util import avg_pool_nd, timestep_embedding
from _weft_absent import VIDEO, absent_class
from ldm.networks.unet import Downsample, ResBlock, TimestepBlock, UNetModel, Upsample
from ldm.networks.unet import UNetBlock as TimestepEmbedSequential
from ldm.networks.unet_patches import patching_options

__all__ = ["Downsample", "ResBlock", "SpatialTransformer", "TimestepBlock", "TimestepEmbedSequential",
           "UNetModel", "Upsample", "apply_control", "avg_pool_nd", "default", "exists",
           "forward_timestep_embed", "timestep_embedding"]


def forward_timestep_embed(ts: Any, x: torch.Tensor, emb: torch.Tensor, context: torch.Tensor | None = None,
                           transformer_options: dict | None = None, output_shape: Any = None,
                           time_context: Any = None, num_video_frames: Any = None,
                           image_only_indicator: Any = None) -> torch.Tensor:
    """Run the layers of ``ts`` (a block, or any sequence of layers) as a UNet block does: ResBlocks
    get ``emb``, transformers ``context`` and the patches in ``transformer_options``, Upsample the
    next skip's ``output_shape``. The video arguments are accepted and unused (no video UNets)."""
    return TimestepEmbedSequential.forward(ts, x, emb, context, patching_options(transformer_options),
                                           output_shape)


def apply_control(h: torch.Tensor, control: dict | None, name: str) -> torch.Tensor:
    """``h`` plus the next ControlNet residual for ``name`` ("input"/"middle"/"output"), if any."""
    if control is not None and control.get(name):
        residual = control[name].pop()
        if residual is not None:
            try:
                h += residual
            except RuntimeError:
                logging.warning("control could not be applied %s %s", tuple(h.shape), tuple(residual.shape))
    return h


# Video UNet layers (SVD): packs import them to test isinstance.
VideoResBlock = absent_class(VIDEO, __name__, "VideoResBlock", (ResBlock,))
