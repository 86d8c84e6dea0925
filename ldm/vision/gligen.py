"""GLIGEN (Li et al. 2023, "GLIGEN: Open-Set Grounded Text-to-Image Generation"), text-box grounding.

A GLIGEN file adds to an SD 1.x UNet

* a *position net*: each grounding box ``(x1, y1, x2, y2)`` in 0…1 is Fourier-embedded (8
  frequencies ``100^(i/8)``, sin and cos of each coordinate: 64 values), concatenated with the
  pooled (unprojected) CLIP text embedding of the box's phrase and mapped by an MLP
  (512, 512, SiLU) to a grounding token; unused slots of the 30 take learned null features;
* one *fuser* per transformer (``…transformer_blocks.0.fuser.``): gated self-attention over the
  visual tokens and the projected grounding tokens, ``x + tanh(α_attn) · attn(norm1([x, objs]))``
  on the visual part, then ``x + tanh(α_dense) · ff(norm2(x))``. It runs right after the
  block's self-attention: ComfyUI's ``middle_patch``, which ``ldm.networks.unet_patches`` calls with the
  transformer's index in ``transformer_index``.

The sampler builds one patch per conditioning entry from its ``gligen`` value (ComfyUI's
``("position", model, [(pooled, h/8, w/8, y/8, x/8), …])``) with :meth:`Gligen.position_patch`,
and an :meth:`Gligen.empty_patch` for the matching uncond entries.
"""

from __future__ import annotations

import os
import re
from typing import Callable, Sequence

import torch
from torch import nn

from ldm.loading.checkpoint import load_state_dict
from ldm.loading.weights import adopt_weights
from ldm.networks.ops import Operations
from ldm.networks.unet import CrossAttention, FeedForward

MAX_OBJECTS = 30
FOURIER_FREQS = 8
POSITION_HIDDEN = 512
#: SD 1.x fusers use 8 heads (CLIP-L context, 768); others 64-wide heads, as ComfyUI builds them.
SD1_KEY_DIM = 768  # CLIP-L
SD1_HEADS = 8
HEAD_WIDTH = 64
_FUSER_KEY = re.compile(r"(?:.*\.)?(input_blocks|middle_block|output_blocks)\.(\d+)\..*?fuser\.(.+)")
_SECTIONS = ("input_blocks", "middle_block", "output_blocks")


class GligenError(ValueError):
    """A GLIGEN file or request this build cannot use."""


class GatedSelfAttentionDense(nn.Module):
    def __init__(self, query_dim: int, context_dim: int, heads: int, dim_head: int, ops: Operations = Operations()):
        super().__init__()
        self.linear = ops.Linear(context_dim, query_dim)
        self.attn = CrossAttention(query_dim, query_dim, heads, dim_head, ops)
        self.ff = FeedForward(query_dim, ops)
        self.norm1 = ops.LayerNorm(query_dim)
        self.norm2 = ops.LayerNorm(query_dim)
        self.alpha_attn = nn.Parameter(torch.tensor(0.0, device=ops.device))
        self.alpha_dense = nn.Parameter(torch.tensor(0.0, device=ops.device))

    def forward(self, x: torch.Tensor, objs: torch.Tensor) -> torch.Tensor:
        """``x`` [B, N, C] visual tokens, ``objs`` [B, M, context_dim] grounding tokens."""
        visual = x.shape[1]
        objs = self.linear(objs)
        attended = self.attn(self.norm1(torch.cat([x, objs], dim=1)))[:, :visual]
        x = x + torch.tanh(self.alpha_attn).to(x) * attended
        return x + torch.tanh(self.alpha_dense).to(x) * self.ff(self.norm2(x))


def fourier_embed(boxes: torch.Tensor, freqs: int = FOURIER_FREQS, temperature: float = 100.0) -> torch.Tensor:
    """``[B, N, 4]`` -> ``[B, N, freqs·2·4]``: for each frequency, sin of the 4 coordinates then cos."""
    bands = temperature ** (torch.arange(freqs, dtype=boxes.dtype, device=boxes.device) / freqs)
    angles = bands.view(1, 1, freqs, 1) * boxes.unsqueeze(2)  # [B, N, F, 4]
    return torch.stack([angles.sin(), angles.cos()], dim=3).flatten(2)  # [B, N, F, 2, 4] -> [B, N, F*8]


class PositionNet(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, ops: Operations = Operations(), freqs: int = FOURIER_FREQS):
        super().__init__()
        self.freqs = freqs
        position_dim = freqs * 2 * 4
        self.linears = nn.Sequential(
            ops.Linear(in_dim + position_dim, POSITION_HIDDEN), nn.SiLU(),
            ops.Linear(POSITION_HIDDEN, POSITION_HIDDEN), nn.SiLU(),
            ops.Linear(POSITION_HIDDEN, out_dim))
        self.null_positive_feature = nn.Parameter(torch.zeros(in_dim, device=ops.device))
        self.null_position_feature = nn.Parameter(torch.zeros(position_dim, device=ops.device))

    def forward(self, boxes: torch.Tensor, masks: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        """``boxes`` [B, N, 4], ``masks`` [B, N] (1 = a real box), ``embeddings`` [B, N, in_dim]
        -> grounding tokens [B, N, out_dim]; masked-out slots take the null features."""
        masks = masks.unsqueeze(-1).to(boxes)
        null_text = self.null_positive_feature.to(boxes).view(1, 1, -1)
        null_position = self.null_position_feature.to(boxes).view(1, 1, -1)
        text = embeddings * masks + (1 - masks) * null_text
        position = fourier_embed(boxes, self.freqs) * masks + (1 - masks) * null_position
        return self.linears(torch.cat([text, position], dim=-1))


BoxParams = tuple  # (pooled [1, key_dim], height/8, width/8, y/8, x/8), ComfyUI's position_params entry


class Gligen(nn.Module):
    """The ``GLIGEN`` value: fusers in UNet transformer order and the position net."""

    def __init__(self, fusers: Sequence[GatedSelfAttentionDense], position_net: PositionNet, key_dim: int):
        super().__init__()
        self.fusers = nn.ModuleList(fusers)
        self.position_net = position_net
        self.key_dim = key_dim

    def _patch(self, boxes: torch.Tensor, masks: torch.Tensor, embeddings: torch.Tensor) -> Callable:
        weight = self.position_net.null_positive_feature
        with torch.no_grad():
            objs = self.position_net(boxes.to(weight), masks.to(weight), embeddings.to(weight))

        def middle_patch(x: torch.Tensor, extra: dict) -> torch.Tensor:
            with torch.no_grad():
                return self.fusers[extra["transformer_index"]](x, objs.to(device=x.device, dtype=x.dtype))
        return middle_patch

    def position_patch(self, latent_shape: Sequence[int], boxes: Sequence[BoxParams]) -> Callable:
        """The ``middle_patch`` for an entry's boxes on latents of ``latent_shape`` [B, C, h, w]."""
        if len(boxes) > MAX_OBJECTS:
            raise GligenError(f"GLIGEN takes at most {MAX_OBJECTS} boxes, got {len(boxes)}")
        batch, _, h, w = latent_shape
        coords = torch.zeros(MAX_OBJECTS, 4)
        masks = torch.zeros(MAX_OBJECTS)
        embeddings = torch.zeros(MAX_OBJECTS, self.key_dim)
        for slot, (pooled, box_h, box_w, y, x) in enumerate(boxes):
            coords[slot] = torch.tensor([x / w, y / h, (x + box_w) / w, (y + box_h) / h])
            masks[slot] = 1.0
            embeddings[slot] = pooled.reshape(-1).float().cpu()
        return self._patch(coords.expand(batch, -1, -1), masks.expand(batch, -1), embeddings.expand(batch, -1, -1))

    def empty_patch(self, latent_shape: Sequence[int]) -> Callable:
        """The ``middle_patch`` with every slot empty (null features): for the uncond side."""
        batch = latent_shape[0]
        return self._patch(torch.zeros(batch, MAX_OBJECTS, 4), torch.zeros(batch, MAX_OBJECTS),
                           torch.zeros(batch, MAX_OBJECTS, self.key_dim))


def gligen_patches(value: Sequence, latent_shape: Sequence[int]) -> dict:
    """The UNet patches of a conditioning entry's ``gligen`` value — ComfyUI's
    ``("position", model, boxes)`` or ``("empty", model)`` — for its input of ``latent_shape``."""
    kind, gligen = value[0], value[1]
    if kind == "position":
        patch = gligen.position_patch(latent_shape, value[2])
    elif kind == "empty":
        patch = gligen.empty_patch(latent_shape)
    else:
        raise GligenError(f"unknown GLIGEN conditioning type {kind!r} (expected 'position' or 'empty')")
    return {"middle_patch": [patch]}


def _fuser_states(state_dict: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """Fuser weights grouped per UNet block, in ComfyUI's order: input, middle, output blocks."""
    grouped: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
    for key, tensor in state_dict.items():
        match = _FUSER_KEY.fullmatch(key)
        if match is not None:
            place = (_SECTIONS.index(match.group(1)), int(match.group(2)))
            grouped.setdefault(place, {})[match.group(3)] = tensor
    return [grouped[place] for place in sorted(grouped)]


def gligen_from_state_dict(state_dict: dict[str, torch.Tensor]) -> Gligen:
    if "position_net.null_positive_feature" not in state_dict:
        raise GligenError("not a GLIGEN model: no position_net weights")
    meta = Operations(device="meta")
    fusers = []
    for index, state in enumerate(_fuser_states(state_dict)):
        query_dim, key_dim = state["linear.weight"].shape
        heads = SD1_HEADS if key_dim == SD1_KEY_DIM or query_dim < HEAD_WIDTH else query_dim // HEAD_WIDTH
        fuser = GatedSelfAttentionDense(query_dim, key_dim, heads, query_dim // heads, meta)
        adopt_weights(fuser, {k: v.float() for k, v in state.items()}, what=f"GLIGEN fuser {index}")
        fusers.append(fuser)
    if not fusers:
        raise GligenError("not a GLIGEN model: no fuser weights")
    position = {k[len("position_net."):]: v.float() for k, v in state_dict.items() if k.startswith("position_net.")}
    net = PositionNet(position["null_positive_feature"].shape[0], position["linears.4.weight"].shape[0], meta)
    adopt_weights(net, position, what="GLIGEN position net")
    return Gligen(fusers, net, key_dim=position["null_positive_feature"].shape[0])


def load_gligen(path: str | os.PathLike) -> Gligen:
    state_dict, _ = load_state_dict(path)
    try:
        return gligen_from_state_dict(state_dict)
    except GligenError as exc:
        raise GligenError(f"{path}: {exc}") from None
