"""PhotoMaker (Li et al. 2024, "PhotoMaker: Customizing Realistic Human Photos via Stacked ID
Embedding"), for SDXL: an identity embedding from a face photo fused into a class token of the prompt.

The ID encoder is a CLIP ViT-L/14 vision tower whose pooled class token is projected twice
(``visual_projection`` to 768, ``visual_projection_2`` to 1280) and concatenated: a 2048-wide ID
embedding, the width of SDXL's text context. The *fuse module* mixes it into the prompt embedding
of the class token: ``mlp2(mlp1([prompt, id]) + prompt)`` then a layer norm, where each MLP is
layer norm, fc1, GELU, fc2 (``mlp2`` with a residual).

Which token is fused follows ComfyUI's ``PhotoMakerEncode``: with the trigger word ``photomaker``
the ``k``-th space-separated word of the text (1-based), the tokens whose word id is ``k`` are
dropped (padded at the end with the chunk's last entry) and the token at position ``k - 1`` of the
first chunk is fused with the first image's ID embedding. Word ids count prompt segments (not
spaces) in ComfyUI's tokenizer and in ours, so for a plain prompt nothing is dropped unless the
trigger is its first word; the position rule is ComfyUI's as written.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from ldm.loading.checkpoint import load_object
from ldm.loading.weights import adopt_weights
from ldm.vision.clip_vision import ClipVisionModel, vision_config_from_weights

TRIGGER_WORD = "photomaker"


class PhotoMakerError(ValueError):
    """A PhotoMaker file this build cannot read."""


class FuseMlp(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int, residual: bool):
        super().__init__()
        self.residual = residual
        self.layernorm = nn.LayerNorm(in_dim)
        self.fc1 = nn.Linear(in_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fc2(F.gelu(self.fc1(self.layernorm(x))))
        return out + x if self.residual else out


class FuseModule(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.mlp1 = FuseMlp(2 * width, width, width, residual=False)
        self.mlp2 = FuseMlp(width, width, width, residual=True)
        self.layer_norm = nn.LayerNorm(width)

    def forward(self, prompt_embeds: torch.Tensor, id_embeds: torch.Tensor) -> torch.Tensor:
        """``[N, D]`` class-token embeddings and ``[N, D]`` ID embeddings -> fused ``[N, D]``."""
        fused = self.mlp1(torch.cat([prompt_embeds, id_embeds], dim=-1)) + prompt_embeds
        return self.layer_norm(self.mlp2(fused))


class PhotoMakerIdEncoder(ClipVisionModel):
    """The ``PHOTOMAKER`` value's network: the vision tower, the second projection and the fuse module."""

    def __init__(self, config, second_projection_dim: int):
        super().__init__(config)
        self.visual_projection_2 = nn.Linear(config.width, second_projection_dim, bias=False)
        self.fuse_module = FuseModule(config.projection_dim + second_projection_dim)

    def id_embeds(self, pixels: torch.Tensor) -> torch.Tensor:
        """Normalised pixels ``[B, 3, S, S]`` -> ID embeddings ``[B, proj + proj_2]``."""
        pooled = self.encode(pixels)[2]
        return torch.cat([self.visual_projection(pooled), self.visual_projection_2(pooled)], dim=-1)

    def fuse_prompt(self, pixels: torch.Tensor, prompt_embeds: torch.Tensor, class_position: int) -> torch.Tensor:
        """``prompt_embeds`` ``[1, T, D]`` with the token at ``class_position`` fused with the
        first image's ID embedding."""
        if class_position >= prompt_embeds.shape[1]:
            raise ValueError(f"the PhotoMaker class token position {class_position} lies beyond the "
                             f"prompt's {prompt_embeds.shape[1]} tokens")
        weight = self.visual_projection.weight
        with torch.no_grad():
            identity = self.id_embeds(pixels[:1].to(device=weight.device, dtype=weight.dtype))
            token = prompt_embeds[:, class_position].to(identity)
            fused = self.fuse_module(token, identity)
        out = prompt_embeds.clone()
        out[:, class_position] = fused.to(out)
        return out


def trigger_tokens(tokens: dict[str, list], text: str,
                   trigger: str = TRIGGER_WORD) -> tuple[dict[str, list], int | None]:
    """Tokens (``clip.tokenize(text, return_word_ids=True)``) without the trigger word's word id,
    each chunk padded back to its length with its last entry, and the class token's position
    (None without a trigger word)."""
    words = text.split(" ")
    if trigger not in words:
        return tokens, None
    word_id = words.index(trigger) + 1
    out = {}
    for name, chunks in tokens.items():
        out[name] = []
        for chunk in chunks:
            kept = [entry for entry in chunk if entry[2] != word_id]
            out[name].append(kept + [chunk[-1]] * (len(chunk) - len(kept)))
    return out, word_id - 1


def _id_encoder_weights(raw) -> dict[str, torch.Tensor]:
    if isinstance(raw, dict) and isinstance(raw.get("id_encoder"), dict):
        return raw["id_encoder"]
    prefixed = {k[len("id_encoder."):]: v for k, v in raw.items() if isinstance(k, str) and k.startswith("id_encoder.")}
    return prefixed or {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}


def load_photomaker(path: str | os.PathLike) -> PhotoMakerIdEncoder:
    """A PhotoMaker file (``photomaker-v1.bin``: ``{"id_encoder": …, "lora_weights": …}``, or its
    ID encoder alone / under ``id_encoder.`` in a safetensors file)."""
    weights = _id_encoder_weights(load_object(path))
    if "visual_projection_2.weight" not in weights or "fuse_module.layer_norm.weight" not in weights:
        raise PhotoMakerError(f"{path}: not a PhotoMaker ID encoder (no visual_projection_2 / fuse_module weights)")
    tower = {k: v for k, v in weights.items() if k.startswith(("vision_model.", "visual_projection."))}
    config = vision_config_from_weights(tower)
    with torch.device("meta"):
        encoder = PhotoMakerIdEncoder(config, weights["visual_projection_2.weight"].shape[0])
    weights = {k: v.float() for k, v in weights.items() if k != "vision_model.embeddings.position_ids"}
    adopt_weights(encoder, weights, what="PhotoMaker ID encoder")
    return encoder
