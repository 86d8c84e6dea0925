"""Text-encoder key layouts: finding an encoder in a state dict and renaming it to ours.

Two layouts occur in the files people download:

- **Hugging Face** (``transformers.CLIPTextModel``): SD1's ``cond_stage_model.transformer.``,
  SDXL's first encoder ``conditioner.embedders.0.transformer.``, and most standalone text-encoder
  files (no prefix). Keys are already ours: ``text_model.encoder.layers.N.self_attn.q_proj.weight``.
- **OpenCLIP**: SD2 / the x4 upscaler ``cond_stage_model.model.``, SDXL's second encoder
  ``conditioner.embedders.1.model.``, the SDXL refiner ``conditioner.embedders.0.model.``. Renamed
  by the table below; the fused attention input projection ``attn.in_proj_weight`` ``[3D, D]`` is
  split into q, k, v (in that order) and ``text_projection`` ``[D, P]`` (applied as ``x @ P``) is
  transposed into a ``Linear`` weight ``[P, D]``.

Which model a layout holds follows from its width: 768 is CLIP ViT-L/14, 1024 OpenCLIP ViT-H/14,
1280 OpenCLIP ViT-bigG/14. Any other width (tiny test models) needs the caller to say which.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

import torch

from ldm.text.clip_model import ClipTextConfig

#: The three text towers of the SD families and their activation.
ACTIVATION_OF_KIND = {"clip_l": "quick_gelu", "clip_h": "gelu", "clip_g": "gelu"}
KIND_OF_WIDTH = {768: "clip_l", 1024: "clip_h", 1280: "clip_g"}
#: Real CLIP text towers all use 64-wide attention heads; tiny test towers use 16.
HEAD_WIDTH = 64
TINY_HEAD_WIDTH = 16

HF = "hf"
OPENCLIP = "openclip"
_HF_MARKER = "text_model.embeddings.token_embedding.weight"
_OPENCLIP_MARKER = "token_embedding.weight"

# OpenCLIP name -> ours, outside the residual blocks.
_OPENCLIP_TOP = {
    "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
    "positional_embedding": "text_model.embeddings.position_embedding.weight",
    "ln_final.weight": "text_model.final_layer_norm.weight",
    "ln_final.bias": "text_model.final_layer_norm.bias",
}
# OpenCLIP name -> ours, inside ``transformer.resblocks.N.`` / ``<tower>.encoder.layers.N.`` (the text
# and the vision towers name their residual blocks alike).
_OPENCLIP_BLOCK = {
    "ln_1.weight": "layer_norm1.weight",
    "ln_1.bias": "layer_norm1.bias",
    "ln_2.weight": "layer_norm2.weight",
    "ln_2.bias": "layer_norm2.bias",
    "attn.out_proj.weight": "self_attn.out_proj.weight",
    "attn.out_proj.bias": "self_attn.out_proj.bias",
    "mlp.c_fc.weight": "mlp.fc1.weight",
    "mlp.c_fc.bias": "mlp.fc1.bias",
    "mlp.c_proj.weight": "mlp.fc2.weight",
    "mlp.c_proj.bias": "mlp.fc2.bias",
}
_HF_BLOCK = {ours: theirs for theirs, ours in _OPENCLIP_BLOCK.items()}
_OPENCLIP_FUSED = {"attn.in_proj_weight": "weight", "attn.in_proj_bias": "bias"}
_QKV = ("q_proj", "k_proj", "v_proj")  # the order of the fused projection's rows
_OPENCLIP_BLOCK_KEY = re.compile(r"transformer\.resblocks\.(\d+)\.(.+)")
# Present in files, not needed to encode text.
_IGNORED = {"logit_scale", "attn_mask", "text_model.embeddings.position_ids"}


class TextLayoutError(ValueError):
    """A state dict does not hold a text encoder where one was expected."""


def sub_dict(state_dict: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}


def find_encoder(state_dict: Mapping[str, torch.Tensor], prefix: str) -> tuple[str, str] | None:
    """Where under ``prefix`` an encoder sits: ``(layout, full prefix)``, or None.

    Tries ``prefix + "transformer."`` (HF), ``prefix + "model."`` (OpenCLIP), then ``prefix``
    itself in either layout (standalone files).
    """
    for layout, inner in ((HF, "transformer."), (OPENCLIP, "model."), (HF, ""), (OPENCLIP, "")):
        marker = _HF_MARKER if layout == HF else _OPENCLIP_MARKER
        if prefix + inner + marker in state_dict:
            return layout, prefix + inner
    return None


def openclip_block_to_hf(key: str, tensor: torch.Tensor, tower: str) -> dict[str, torch.Tensor] | None:
    """An OpenCLIP residual-block key (``transformer.resblocks.N.…``, text and vision towers alike)
    as our ``<tower>.encoder.layers.N.…`` entries, the fused input projection split into q, k, v;
    None when ``key`` is no block key."""
    block = _OPENCLIP_BLOCK_KEY.fullmatch(key)
    if block is None:
        return None
    index, name = block.groups()
    if name in _OPENCLIP_BLOCK:
        return {f"{tower}.encoder.layers.{index}.{_OPENCLIP_BLOCK[name]}": tensor}
    if name in _OPENCLIP_FUSED:
        kind = _OPENCLIP_FUSED[name]
        return {f"{tower}.encoder.layers.{index}.self_attn.{projection}.{kind}": part
                for projection, part in zip(_QKV, tensor.chunk(3, dim=0))}
    return None


def hf_block_to_openclip(weights: Mapping[str, torch.Tensor], key: str,
                         tower: str) -> dict[str, torch.Tensor] | None:
    """The reverse of :func:`openclip_block_to_hf` for ``weights[key]``: q, k and v fuse into
    ``attn.in_proj_*`` at q's key (k and v give no entries); None when ``key`` is no block key."""
    layer = re.fullmatch(rf"{tower}\.encoder\.layers\.(\d+)\.(.+)", key)
    if layer is None:
        return None
    index, name = layer.groups()
    if name in _HF_BLOCK:
        return {f"transformer.resblocks.{index}.{_HF_BLOCK[name]}": weights[key]}
    projection = re.fullmatch(r"self_attn\.([qkv])_proj\.(weight|bias)", name)
    if projection is None:
        return None
    if projection.group(1) != "q":
        return {}
    kind = projection.group(2)
    prefix = f"{tower}.encoder.layers.{index}.self_attn."
    return {f"transformer.resblocks.{index}.attn.in_proj_{kind}":
            torch.cat([weights[f"{prefix}{projection_name}.{kind}"] for projection_name in _QKV])}


def openclip_to_hf(weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an OpenCLIP text tower (keys without prefix) to our layout."""
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, tensor in weights.items():
        if key in _OPENCLIP_TOP:
            out[_OPENCLIP_TOP[key]] = tensor
        elif key == "text_projection":
            out["text_projection.weight"] = tensor.t().contiguous()
        elif key == "text_projection.weight":  # diffusers' SDXL converter keeps HF's Linear [P, D]
            out["text_projection.weight"] = tensor
        elif (block := openclip_block_to_hf(key, tensor, "text_model")) is not None:
            out.update(block)
        elif key not in _IGNORED:
            unknown.append(key)
    if unknown:
        raise TextLayoutError(f"unknown OpenCLIP text-encoder keys: {sorted(unknown)[:8]}")
    return out


def hf_weights(weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An HF-layout text tower without the keys we do not use."""
    return {k: v for k, v in weights.items() if k not in _IGNORED}


def heads_for_width(width: int) -> int:
    head_width = HEAD_WIDTH if width % HEAD_WIDTH == 0 else TINY_HEAD_WIDTH
    return max(1, width // head_width)


def config_for(weights: Mapping[str, torch.Tensor], kind: str) -> ClipTextConfig:
    """Read the architecture from HF-layout tensor shapes; ``kind`` gives the activation."""
    token = weights["text_model.embeddings.token_embedding.weight"]
    layer_ids = {int(m.group(1)) for k in weights
                 if (m := re.match(r"text_model\.encoder\.layers\.(\d+)\.", k))}
    projection = weights.get("text_projection.weight")
    return ClipTextConfig(
        width=token.shape[1],
        layers=max(layer_ids) + 1 if layer_ids else 0,
        heads=heads_for_width(token.shape[1]),
        mlp_width=weights["text_model.encoder.layers.0.mlp.fc1.weight"].shape[0],
        activation=ACTIVATION_OF_KIND[kind],
        vocab_size=token.shape[0],
        positions=weights["text_model.embeddings.position_embedding.weight"].shape[0],
        projection_dim=None if projection is None else projection.shape[0],
    )


@dataclass(frozen=True)
class EncoderWeights:
    """One text tower read from a file: its kind, architecture and weights in our layout."""

    kind: str  # "clip_l" | "clip_h" | "clip_g"
    config: ClipTextConfig
    weights: dict[str, torch.Tensor]
    source_layout: str  # HF | OPENCLIP, as found in the file


def read_encoder(state_dict: Mapping[str, torch.Tensor], prefix: str,
                 kind: str | None = None) -> EncoderWeights:
    """The text tower under ``prefix``; ``kind`` None means: infer it from the width."""
    found = find_encoder(state_dict, prefix)
    if found is None:
        raise TextLayoutError(f"no text encoder under {prefix!r}")
    layout, full_prefix = found
    raw = sub_dict(state_dict, full_prefix)
    weights = hf_weights(raw) if layout == HF else openclip_to_hf(raw)
    width = weights["text_model.embeddings.token_embedding.weight"].shape[1]
    kind = kind or KIND_OF_WIDTH.get(width)
    if kind is None:
        raise TextLayoutError(f"cannot tell which text encoder has width {width} under {prefix!r}")
    return EncoderWeights(kind=kind, config=config_for(weights, kind), weights=weights,
                          source_layout=layout)


def hf_to_openclip(weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our layout back to OpenCLIP names (q, k, v fused again); used to write tiny checkpoints."""
    top = {ours: theirs for theirs, ours in _OPENCLIP_TOP.items()}
    out: dict[str, torch.Tensor] = {}
    for key, tensor in weights.items():
        if key in top:
            out[top[key]] = tensor
        elif key == "text_projection.weight":
            out["text_projection"] = tensor.t().contiguous()
        elif (block := hf_block_to_openclip(weights, key, "text_model")) is not None:
            out.update(block)
        else:
            raise TextLayoutError(f"no OpenCLIP name for {key!r}")
    return out
