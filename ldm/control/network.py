"""The ControlNet network (Zhang, Rao & Agrawala 2023), attribute names = the original file's keys.

A ControlNet is a trainable copy of the UNet's encoder: ``time_embed`` (+ ``label_emb`` for
SDXL), ``input_blocks`` and ``middle_block`` exactly as in :mod:`ldm.networks.unet`, plus

- ``input_hint_block``: 8 convolutions (SiLU between them; strides 1,1,2,1,2,1,2,1) that turn
  the control image [B, hint_channels, 8h, 8w] into a feature map [B, model_channels, h, w],
  added after the first input block;
- ``zero_convs.i.0``: a 1x1 convolution on the output of each input block, and
  ``middle_block_out.0`` on the middle block's: these are the residuals the UNet adds.

Union ControlNets (xinsir's ControlNet++) add a task embedding and a small transformer that
mixes the pooled hint with it (``task_embedding``, ``transformer_layes``, ``spatial_ch_projs``)
and ``control_add_embedding``, an embedding of the chosen control types added to ``emb``.

``forward`` returns ComfyUI's control dict: ``{"output": [one residual per input block],
"middle": [the middle block's]}`` (:mod:`ldm.networks.unet` adds them to the skips and the middle).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ldm.networks.ops import META, Operations
from ldm.networks.unet import UNetConfig, encoder_blocks, timestep_embedding

#: Strides of the hint convolutions of every known file: three stride-2 steps, 8x down.
HINT_STRIDES = (1, 1, 2, 1, 2, 1, 2, 1)
#: Heads of the union transformer (ControlNet++ fixes it).
UNION_HEADS = 8


@dataclass(frozen=True)
class UnionConfig:
    """ControlNet++'s extra parts: ``types`` control types, a ``width``-wide task transformer,
    and an ``embed_dim``-wide sinusoidal embedding per type feeding ``control_add_embedding``."""

    types: int
    width: int
    embed_dim: int


@dataclass(frozen=True)
class ControlNetConfig:
    unet: UNetConfig  # the encoder's shape (the output side of a UNetConfig is not used)
    hint_channels: int
    hint_widths: tuple[int, ...]  # output widths of the hint convolutions but the last
    union: UnionConfig | None = None


class UnionAttention(nn.Module):
    """Multi-head self-attention with one packed ``in_proj`` (q, k, v stacked)."""

    def __init__(self, width: int, heads: int, ops: Operations):
        super().__init__()
        self.heads = heads
        self.in_proj = ops.Linear(width, 3 * width)
        self.out_proj = ops.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, length, width = x.shape
        # [B, L, 3C] -> three [B, heads, L, C/heads]
        q, k, v = (t.reshape(b, length, self.heads, -1).transpose(1, 2) for t in self.in_proj(x).chunk(3, dim=-1))
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, length, width)
        return self.out_proj(out)


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class UnionTransformerLayer(nn.Module):
    """A CLIP-style pre-norm block: attention, then a 4x QuickGELU MLP."""

    def __init__(self, width: int, heads: int, ops: Operations):
        super().__init__()
        self.attn = UnionAttention(width, heads, ops)
        self.ln_1 = ops.LayerNorm(width)
        self.mlp = nn.ModuleDict({"c_fc": ops.Linear(width, 4 * width), "c_proj": ops.Linear(4 * width, width)})
        self.ln_2 = ops.LayerNorm(width)
        self.gelu = QuickGELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp["c_proj"](self.gelu(self.mlp["c_fc"](self.ln_2(x))))


class ControlTypeEmbedding(nn.Module):
    """``emb`` offset for the chosen control types: a one-hot over the types, each entry
    embedded sinusoidally, flattened, then a two-layer SiLU MLP."""

    def __init__(self, union: UnionConfig, emb_dim: int, ops: Operations):
        super().__init__()
        self.types = union.types
        self.embed_dim = union.embed_dim
        self.linear_1 = ops.Linear(union.embed_dim * union.types, emb_dim)
        self.linear_2 = ops.Linear(emb_dim, emb_dim)

    def forward(self, control_types: list[int], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        one_hot = torch.zeros(self.types, device=device)
        one_hot[list(control_types)] = 1.0
        embedded = timestep_embedding(one_hot, self.embed_dim).to(dtype).reshape(1, -1)  # [1, types*dim]
        return self.linear_2(F.silu(self.linear_1(embedded)))


class ControlNetModel(nn.Module):
    def __init__(self, config: ControlNetConfig, ops: Operations = META):
        super().__init__()
        self.config = config
        unet = config.unet
        mc, emb_dim = unet.model_channels, unet.emb_dim
        self.time_embed = nn.Sequential(ops.Linear(mc, emb_dim), nn.SiLU(), ops.Linear(emb_dim, emb_dim))
        if unet.adm_in_channels is not None:
            self.label_emb = nn.Sequential(nn.Sequential(
                ops.Linear(unet.adm_in_channels, emb_dim), nn.SiLU(), ops.Linear(emb_dim, emb_dim)))
        self.input_blocks, self.middle_block, widths = encoder_blocks(unet, ops)
        self.zero_convs = nn.ModuleList(nn.Sequential(ops.Conv2d(w, w, 1)) for w in widths)
        self.middle_block_out = nn.Sequential(ops.Conv2d(widths[-1], widths[-1], 1))

        hint: list[nn.Module] = []
        channels = (config.hint_channels, *config.hint_widths, mc)
        for index, stride in enumerate(HINT_STRIDES[:len(channels) - 1]):
            if index:
                hint.append(nn.SiLU())
            hint.append(ops.Conv2d(channels[index], channels[index + 1], 3, stride=stride, padding=1))
        self.input_hint_block = nn.Sequential(*hint)

        if config.union is not None:
            union = config.union
            self.task_embedding = nn.Parameter(torch.empty(union.types, union.width, device=ops.device,
                                                           dtype=ops.dtype), requires_grad=False)
            self.transformer_layes = nn.Sequential(UnionTransformerLayer(union.width, UNION_HEADS, ops))
            self.spatial_ch_projs = ops.Linear(union.width, union.width)
            self.control_add_embedding = ControlTypeEmbedding(union, emb_dim, ops)

    def _union_hint(self, hint: torch.Tensor, control_types: list[int]) -> torch.Tensor:
        """The hint features shifted by the task transformer's reading of the first control type
        (ControlNet++ fuses several hints; a single hint is what ComfyUI feeds it)."""
        features = self.input_hint_block(hint)  # [B, C, h, w]
        pooled = features.mean(dim=(2, 3)) + self.task_embedding[control_types[0]].to(features)
        mixed = self.transformer_layes(pooled.unsqueeze(1))  # [B, 1, C]
        return features + self.spatial_ch_projs(mixed[:, 0])[:, :, None, None]

    def forward(self, x: torch.Tensor, hint: torch.Tensor, timesteps: torch.Tensor,
                context: torch.Tensor | None = None, y: torch.Tensor | None = None,
                control_type: list[int] | None = None) -> dict[str, list[torch.Tensor]]:
        """Residuals for latents ``x`` [B, C, h, w] (already scaled by the sampling's c_in) at
        ``timesteps`` [B], for the control image ``hint`` [B, hint_channels, 8h, 8w]."""
        unet = self.config.unet
        emb = self.time_embed(timestep_embedding(timesteps, unet.model_channels).to(x.dtype))
        if self.config.union is not None:
            control_type = list(control_type or [])
            if any(t >= self.config.union.types for t in control_type):
                raise ValueError(f"control type {max(control_type)} is out of range: this union ControlNet "
                                 f"knows {self.config.union.types} types")
            emb = emb + self.control_add_embedding(control_type, emb.dtype, emb.device)
            guided = self._union_hint(hint, control_type) if control_type else self.input_hint_block(hint)
        else:
            guided = self.input_hint_block(hint)
        if hasattr(self, "label_emb"):
            if y is None:
                raise ValueError("this ControlNet needs the SDXL label input y")
            emb = emb + self.label_emb(y.to(x))
        if context is not None:
            context = context.to(x)
        outputs = []
        h = x
        for index, (block, zero_conv) in enumerate(zip(self.input_blocks, self.zero_convs)):
            h = block(h, emb, context)
            if index == 0:
                h = h + guided
            outputs.append(zero_conv(h))
        h = self.middle_block(h, emb, context)
        return {"output": outputs, "middle": [self.middle_block_out(h)]}
