"""ADM's self-attention block, as the CompVis LDM UNets without cross-attention use it.

Dhariwal & Nichol's ADM UNet ("Diffusion Models Beat GANs", 2021), kept by latent diffusion
(Rombach et al. 2022) as ``openaimodel.AttentionBlock`` wherever ``use_spatial_transformer`` is
off: the unconditional LDMs (CelebA-HQ, FFHQ, LSUN) and the concat-conditioned ones
(semantic synthesis, super-resolution, inpainting). Pixels of a feature map attend to each other;
there is no context.

Keys (names = checkpoint keys): ``norm`` (GroupNorm, 32 groups), ``qkv`` (1x1 ``Conv1d``
C -> 3C, weight ``[3C, C, 1]``), ``proj_out`` (1x1 ``Conv1d`` C -> C). The rows of ``qkv`` are
in the *legacy* order (``QKVAttentionLegacy``): heads first, then q, k, v of that head,
``[heads, 3, head_width]``. Every published LDM config leaves ``use_new_attention_order`` at its
default (False), so that is the only order built here. The head count is not visible in the
shapes; the caller gives it (``ldm.loading.detect`` reads it from the config conventions or the
file's metadata).
"""

from __future__ import annotations

import torch
from torch import nn

from ldm.networks.ops import Operations, SlicedAttention, StreamableLayer, attention

GROUPS = 32


class PointwiseConv1d(StreamableLayer, nn.Conv1d):
    """A kernel-1 ``Conv1d`` that casts its weights per call, like the layers of ``ldm.networks.ops``
    (which has no 1-D convolution: only this block needs one)."""

    def reset_parameters(self) -> None:  # weights come from a checkpoint
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, *self.weights_like(x))


def pointwise_conv1d(in_channels: int, out_channels: int, ops: Operations) -> PointwiseConv1d:
    return PointwiseConv1d(in_channels, out_channels, 1, device=ops.device, dtype=ops.dtype)


class AttentionBlock(SlicedAttention, nn.Module):
    """Multi-head self-attention over the pixels of ``x`` [B, C, H, W], residual."""

    def __init__(self, channels: int, heads: int, ops: Operations):
        super().__init__()
        if channels % heads:
            raise ValueError(f"{channels} channels do not split into {heads} heads")
        self.channels = channels
        self.num_heads = heads
        self.norm = ops.GroupNorm(GROUPS, channels)
        self.qkv = pointwise_conv1d(channels, 3 * channels, ops)
        self.proj_out = pointwise_conv1d(channels, channels, ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        flat = x.reshape(b, c, h * w)
        qkv = self.qkv(self.norm(flat))  # [B, 3C, T]
        # legacy order: [B, heads, 3*d, T] -> q, k, v each [B, heads, T, d]
        q, k, v = qkv.reshape(b, self.num_heads, 3 * (c // self.num_heads), h * w).transpose(2, 3).chunk(3, dim=-1)
        out = attention(q, k, v, self.attention_slice_bytes)  # [B, heads, T, d], scaled by 1/sqrt(d)
        out = out.transpose(2, 3).reshape(b, c, h * w)
        return self.proj_out(out).add_(flat).reshape(b, c, h, w)
