"""The CLIP vision tower (Radford et al. 2021, ViT image encoder) as the ``CLIP_VISION`` value.

Module names equal the Hugging Face checkpoint keys (``vision_model.encoder.layers.N.…``,
``visual_projection.weight``), so a transformers-layout file loads by a walk over names; OpenCLIP
files (``visual.conv1.weight``, ``visual.transformer.resblocks.N.…``, ``visual.proj``) and the
towers inside unCLIP checkpoints (``embedder.model.visual.``) are renamed by one table
(:func:`openclip_visual_to_hf`).

The architecture is read from shapes: width from the class embedding, layers by counting, patch
size from the patch kernel, image size from the position count, projection width from
``visual_projection``. Not visible in shapes: the head count (every real tower — ViT-L/14,
OpenCLIP ViT-H/14, ViT-bigG/14 — has 16; narrower test towers use 16-wide heads) and the
activation (OpenAI's ViT-L, width 1024, uses quick-GELU; the OpenCLIP towers GELU), as ComfyUI
assumes for the same files.

Encoding follows ComfyUI's ``clip_preprocess`` and ``ClipVisionModel.encode_image``: the output
carries ``image_embeds`` (projected, post-norm class token), ``last_hidden_state`` (the last
layer's output, no final norm) and ``penultimate_hidden_states`` (the layer before it).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ldm.loading.weights import adopt_weights
from ldm.text.clip_model import TORCH_OPERATIONS, ClipAttention, ClipMlp
from ldm.text.layouts import hf_block_to_openclip, openclip_block_to_hf

#: OpenAI CLIP's normalisation of RGB inputs in 0…1 (ComfyUI's defaults, and every SD tower's).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

#: Real towers all use 16 heads; a narrower (test) tower gets 16-wide heads.
REAL_TOWER_HEADS = 16
REAL_TOWER_MIN_WIDTH = 768
TINY_HEAD_WIDTH = 16
#: OpenAI's ViT-L/14 (width 1024) is the one tower trained with quick-GELU.
QUICK_GELU_WIDTHS = (1024,)


class ClipVisionLayoutError(ValueError):
    """A state dict that holds no CLIP vision tower this build can read."""


@dataclass(frozen=True)
class ClipVisionConfig:
    width: int
    layers: int
    heads: int
    mlp_width: int
    activation: str  # "quick_gelu" | "gelu"
    patch_size: int
    image_size: int
    projection_dim: int | None  # None: image_embeds is the post-norm class token itself
    eps: float = 1e-5

    @property
    def positions(self) -> int:
        return (self.image_size // self.patch_size) ** 2 + 1  # patches + class token


class VisionAttention(ClipAttention):
    """Bidirectional self-attention: every patch sees every other (the text tower is causal)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, width = x.shape
        # [B, T, D] -> [B, heads, T, D/heads]
        q, k, v = (proj(x).view(batch, tokens, self.heads, -1).transpose(1, 2)
                   for proj in (self.q_proj, self.k_proj, self.v_proj))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.out_proj(out.transpose(1, 2).reshape(batch, tokens, width))


class VisionLayer(nn.Module):
    def __init__(self, config: ClipVisionConfig):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(config.width, eps=config.eps)
        self.self_attn = VisionAttention(config, TORCH_OPERATIONS, None, None)
        self.layer_norm2 = nn.LayerNorm(config.width, eps=config.eps)
        self.mlp = ClipMlp(config, TORCH_OPERATIONS, None, None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class VisionEmbeddings(nn.Module):
    def __init__(self, config: ClipVisionConfig):
        super().__init__()
        self.class_embedding = nn.Parameter(torch.empty(config.width))
        self.patch_embedding = nn.Conv2d(3, config.width, config.patch_size, stride=config.patch_size, bias=False)
        self.position_embedding = nn.Embedding(config.positions, config.width)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embedding(pixels).flatten(2).transpose(1, 2)  # [B, grid*grid, D]
        cls = self.class_embedding.to(patches).expand(pixels.shape[0], 1, -1)
        return torch.cat([cls, patches], dim=1) + self.position_embedding.weight.to(patches)


class VisionEncoder(nn.Module):
    def __init__(self, config: ClipVisionConfig):
        super().__init__()
        self.layers = nn.ModuleList(VisionLayer(config) for _ in range(config.layers))


class VisionBody(nn.Module):
    def __init__(self, config: ClipVisionConfig):
        super().__init__()
        self.embeddings = VisionEmbeddings(config)
        self.pre_layrnorm = nn.LayerNorm(config.width, eps=config.eps)  # sic: the HF key is misspelt
        self.encoder = VisionEncoder(config)
        self.post_layernorm = nn.LayerNorm(config.width, eps=config.eps)


@dataclass
class ClipVisionOutput:
    """``CLIP_VISION_OUTPUT``; readable as attributes or, as ComfyUI's ``Output``, by key."""

    image_embeds: torch.Tensor  # [B, projection_dim]
    last_hidden_state: torch.Tensor  # [B, positions, width]
    penultimate_hidden_states: torch.Tensor  # [B, positions, width]
    mm_projected: torch.Tensor | None = None  # LLaVA projector output; no SD tower has one

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        setattr(self, key, value)

    def __contains__(self, key: str) -> bool:
        return hasattr(self, key)


class ClipVisionModel(nn.Module):
    """``vision_model`` + ``visual_projection``, as transformers' ``CLIPVisionModelWithProjection``."""

    def __init__(self, config: ClipVisionConfig):
        super().__init__()
        self.config = config
        self.vision_model = VisionBody(config)
        if config.projection_dim is not None:
            self.visual_projection = nn.Linear(config.width, config.projection_dim, bias=False)

    def encode(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``pixels`` [B, 3, S, S], already normalised (:func:`clip_preprocess`) -> the last and
        penultimate layers' outputs [B, P, D] and the pooled class token [B, D] (final-normed,
        not projected)."""
        body = self.vision_model
        x = body.pre_layrnorm(body.embeddings(pixels))
        penultimate = x
        for index, layer in enumerate(body.encoder.layers):
            x = layer(x)
            if index == len(body.encoder.layers) - 2:
                penultimate = x
        return x, penultimate, body.post_layernorm(x[:, 0])

    def forward(self, pixels: torch.Tensor) -> ClipVisionOutput:
        last, penultimate, pooled = self.encode(pixels)
        embeds = self.visual_projection(pooled) if self.config.projection_dim is not None else pooled
        return ClipVisionOutput(image_embeds=embeds, last_hidden_state=last, penultimate_hidden_states=penultimate)


# --- preprocessing ----------------------------------------------------------------------------


def clip_preprocess(image: torch.Tensor, size: int = 224, mean: tuple[float, ...] = CLIP_MEAN,
                    std: tuple[float, ...] = CLIP_STD, crop: bool = True) -> torch.Tensor:
    """IMAGE ``[B, H, W, C]`` (0…1) -> normalised pixels ``[B, 3, size, size]``.

    With ``crop`` the shorter side is resized to ``size`` (bicubic, antialiased) and the centre
    cut out; without it the image is squashed to ``size``×``size``. Values are rounded to 8-bit
    levels before normalising, as the reference preprocessing sees 8-bit images. The arguments
    are ComfyUI's, in its order (``comfy.clip_vision.clip_preprocess`` is this function).
    """
    pixels = image[..., :3].movedim(-1, 1)
    if pixels.shape[-2:] != (size, size):
        h, w = pixels.shape[-2:]
        if crop:
            scale = size / min(h, w)
            target = (round(scale * h), round(scale * w))
        else:
            target = (size, size)
        pixels = F.interpolate(pixels, size=target, mode="bicubic", antialias=True)
        top, left = (pixels.shape[2] - size) // 2, (pixels.shape[3] - size) // 2
        pixels = pixels[:, :, top:top + size, left:left + size]
    pixels = torch.clip(255.0 * pixels, 0, 255).round() / 255.0
    mean_t = torch.tensor(mean, dtype=pixels.dtype, device=pixels.device).view(3, 1, 1)
    std_t = torch.tensor(std, dtype=pixels.dtype, device=pixels.device).view(3, 1, 1)
    return (pixels - mean_t) / std_t


# --- layouts ----------------------------------------------------------------------------------

_HF_MARKER = "vision_model.embeddings.class_embedding"
_OPENCLIP_MARKER = "conv1.weight"
_OPENCLIP_TOP = {
    "class_embedding": "vision_model.embeddings.class_embedding",
    "conv1.weight": "vision_model.embeddings.patch_embedding.weight",
    "positional_embedding": "vision_model.embeddings.position_embedding.weight",
    "ln_pre.weight": "vision_model.pre_layrnorm.weight",
    "ln_pre.bias": "vision_model.pre_layrnorm.bias",
    "ln_post.weight": "vision_model.post_layernorm.weight",
    "ln_post.bias": "vision_model.post_layernorm.bias",
}
#: Where a vision tower sits in the files people have: standalone (either layout), inside an
#: unCLIP checkpoint, inside an OpenCLIP checkpoint.
VISION_PREFIXES = ("", "embedder.model.visual.", "visual.", "clip_vision.")
_IGNORED = ("vision_model.embeddings.position_ids",)


def openclip_visual_to_hf(weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An OpenCLIP ``visual`` tower (keys without prefix) in our (HF) names.

    The fused ``attn.in_proj_*`` ``[3D, …]`` splits into q, k, v in that order; ``proj``
    ``[D, P]`` (applied as ``x @ proj``) becomes the ``Linear`` weight ``[P, D]``.
    """
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, tensor in weights.items():
        if key in _OPENCLIP_TOP:
            out[_OPENCLIP_TOP[key]] = tensor
        elif key == "proj":
            out["visual_projection.weight"] = tensor.t().contiguous()
        elif (block := openclip_block_to_hf(key, tensor, "vision_model")) is not None:
            out.update(block)
        else:
            unknown.append(key)
    if unknown:
        raise ClipVisionLayoutError(f"unknown OpenCLIP vision keys: {sorted(unknown)[:8]}")
    return out


def hf_to_openclip_visual(weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our names back to OpenCLIP's (q, k, v fused again): how tiny test files are written."""
    top = {ours: theirs for theirs, ours in _OPENCLIP_TOP.items()}
    out: dict[str, torch.Tensor] = {}
    for key, tensor in weights.items():
        if key in top:
            out[top[key]] = tensor
        elif key == "visual_projection.weight":
            out["proj"] = tensor.t().contiguous()
        else:  # keys OpenCLIP has no name for (position_ids) are left out
            out.update(hf_block_to_openclip(weights, key, "vision_model") or {})
    return out


def find_vision_tower(state_dict: Mapping[str, torch.Tensor],
                      prefixes: tuple[str, ...] = VISION_PREFIXES) -> dict[str, torch.Tensor] | None:
    """The vision tower of ``state_dict`` in our names (keys without prefix), or None."""
    for prefix in prefixes:
        if prefix + _HF_MARKER in state_dict:
            raw = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
            return {k: v for k, v in raw.items()
                    if (k.startswith("vision_model.") or k.startswith("visual_projection.")) and k not in _IGNORED}
        if prefix + _OPENCLIP_MARKER in state_dict and prefix + "class_embedding" in state_dict:
            raw = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
            return openclip_visual_to_hf(raw)
    return None


def vision_config_from_weights(weights: Mapping[str, torch.Tensor]) -> ClipVisionConfig:
    """The architecture of an HF-layout tower, read from its tensor shapes."""
    width = weights["vision_model.embeddings.class_embedding"].shape[0]
    patch = weights["vision_model.embeddings.patch_embedding.weight"].shape[-1]
    positions = weights["vision_model.embeddings.position_embedding.weight"].shape[0]
    grid = round((positions - 1) ** 0.5)
    if grid * grid + 1 != positions:
        raise ClipVisionLayoutError(f"{positions} position embeddings are not a square grid plus a class token")
    layers = 1 + max((int(m.group(1)) for k in weights
                      if (m := re.match(r"vision_model\.encoder\.layers\.(\d+)\.", k))), default=-1)
    projection = weights.get("visual_projection.weight")
    heads = REAL_TOWER_HEADS if width >= REAL_TOWER_MIN_WIDTH else max(1, width // TINY_HEAD_WIDTH)
    return ClipVisionConfig(
        width=width, layers=layers, heads=heads,
        mlp_width=weights["vision_model.encoder.layers.0.mlp.fc1.weight"].shape[0],
        activation="quick_gelu" if width in QUICK_GELU_WIDTHS else "gelu",
        patch_size=patch, image_size=grid * patch,
        projection_dim=None if projection is None else projection.shape[0])


def build_vision_model(weights: Mapping[str, torch.Tensor], config: ClipVisionConfig | None = None,
                       dtype: torch.dtype = torch.float32) -> ClipVisionModel:
    """A tower whose weights are ``weights`` (HF names, no prefix), cast to ``dtype``."""
    config = config or vision_config_from_weights(weights)
    with torch.device("meta"):
        model = ClipVisionModel(config)
    adopt_weights(model, {k: v.to(dtype) for k, v in weights.items()}, what="CLIP vision")
    return model


# --- the CLIP_VISION value --------------------------------------------------------------------


@contextlib.contextmanager
def placed_as_encoder(engine, model: nn.Module, name: str) -> Iterator[nn.Module]:
    """``model`` placed by the engine's memory manager where text encoders run, for the block
    (ComfyUI loads image encoders on its text-encoder device too)."""
    with engine.memory.use(model, engine.text_placement(), name=name, force_full=True):
        yield model



class ClipVisionHandle:
    """A loaded vision tower and its preprocessing (the ``CLIP_VISION`` socket type).

    ``model`` is placed by the engine's memory manager for each use (:meth:`placed`); outside a
    placement it computes where its weights are.
    """

    def __init__(self, model: ClipVisionModel, mean=CLIP_MEAN, std=CLIP_STD):
        self.model = model
        self.image_size = model.config.image_size
        self.image_mean = tuple(mean)
        self.image_std = tuple(std)

    def placed(self, engine):
        """The tower on the text-encoder device for the block."""
        return placed_as_encoder(engine, self.model, "CLIP vision")

    def encode_image(self, image: torch.Tensor, crop: bool = True) -> ClipVisionOutput:
        """IMAGE ``[B, H, W, C]`` -> :class:`ClipVisionOutput` (float32, on the CPU)."""
        weight = self.model.vision_model.embeddings.patch_embedding.weight
        pixels = clip_preprocess(image.to(weight.device).float(), self.image_size, self.image_mean,
                                 self.image_std, crop)
        with torch.no_grad():
            out = self.model(pixels.to(weight.dtype))
        return ClipVisionOutput(**{name: getattr(out, name).float().cpu()
                                   for name in ("image_embeds", "last_hidden_state", "penultimate_hidden_states")})

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def __repr__(self) -> str:
        c = self.model.config
        return f"ClipVisionHandle(width={c.width}, layers={c.layers}, image_size={c.image_size})"


def clip_vision_from_state_dict(state_dict: Mapping[str, torch.Tensor],
                                prefixes: tuple[str, ...] = VISION_PREFIXES) -> ClipVisionHandle | None:
    """The vision tower in ``state_dict`` (any supported layout and prefix), or None."""
    weights = find_vision_tower(state_dict, prefixes)
    if weights is None:
        return None
    return ClipVisionHandle(build_vision_model(weights))
