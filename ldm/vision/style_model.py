"""T2I-Adapter's style adapter (Mou et al. 2023, "T2I-Adapter", style branch) and applying its
tokens to a conditioning.

The adapter reads a CLIP vision tower's last hidden state ``[B, P, W]`` (ViT-L/14: 257 tokens of
1024), appends ``T`` learned style tokens, runs them through a few pre-norm transformer layers
(OpenAI CLIP blocks: fused q/k/v projection, quick-GELU MLP) and projects the final-normed style
tokens into the text context width: ``[B, T, context_dim]`` extra tokens for cross-attention.
Module names equal the file's keys (``style_embedding``, ``transformer_layes.N.attn.in_proj_weight``
— sic — ``ln_pre``, ``ln_post``, ``proj``). Widths and token count come from the shapes; the head
count (8) is the published adapter's, as ComfyUI assumes.
"""

from __future__ import annotations

import os
import re

import torch
import torch.nn.functional as F
from torch import nn

from ldm.loading.checkpoint import load_state_dict
from ldm.loading.weights import adopt_weights
from ldm.text.clip_model import quick_gelu

STYLE_ADAPTER_HEADS = 8


class StyleModelError(ValueError):
    """A style model file this build cannot use."""


class FusedAttention(nn.Module):
    """``nn.MultiheadAttention``'s parameters (fused ``in_proj``), bidirectional, batch first."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * width))
        self.out_proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, width = x.shape
        # [B, T, 3D] -> three [B, heads, T, D/heads]
        q, k, v = (part.view(batch, tokens, self.heads, -1).transpose(1, 2)
                   for part in F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.out_proj(out.transpose(1, 2).reshape(batch, tokens, width))


class ResidualBlock(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = FusedAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.ModuleDict({"c_fc": nn.Linear(width, 4 * width), "c_proj": nn.Linear(4 * width, width)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp["c_proj"](quick_gelu(self.mlp["c_fc"](self.ln_2(x))))


class StyleAdapter(nn.Module):
    def __init__(self, width: int, context_dim: int, layers: int, tokens: int, heads: int = STYLE_ADAPTER_HEADS):
        super().__init__()
        self.style_embedding = nn.Parameter(torch.empty(1, tokens, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer_layes = nn.Sequential(*(ResidualBlock(width, heads) for _ in range(layers)))
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.empty(width, context_dim))

    def forward(self, vision_hidden: torch.Tensor) -> torch.Tensor:
        """``[B, P, W]`` vision tokens -> ``[B, T, context_dim]`` style tokens."""
        tokens = self.style_embedding.shape[1]
        style = self.style_embedding.to(vision_hidden).expand(vision_hidden.shape[0], -1, -1)
        x = self.transformer_layes(self.ln_pre(torch.cat([vision_hidden, style], dim=1)))
        return self.ln_post(x[:, -tokens:]) @ self.proj.to(x)


class StyleModel:
    """The ``STYLE_MODEL`` value: tokens for a ``CLIP_VISION_OUTPUT``."""

    def __init__(self, adapter: StyleAdapter):
        self.model = adapter

    def get_cond(self, clip_vision_output) -> torch.Tensor:
        hidden = clip_vision_output.last_hidden_state
        weight = self.model.proj
        with torch.no_grad():
            return self.model(hidden.to(device=weight.device, dtype=weight.dtype)).float().cpu()


def style_adapter_from_state_dict(state_dict: dict[str, torch.Tensor]) -> StyleAdapter:
    _, tokens, width = state_dict["style_embedding"].shape
    layers = 1 + max((int(m.group(1)) for k in state_dict if (m := re.match(r"transformer_layes\.(\d+)\.", k))),
                     default=-1)
    with torch.device("meta"):
        adapter = StyleAdapter(width, state_dict["proj"].shape[1], layers, tokens)
    adopt_weights(adapter, {k: v.float() for k, v in state_dict.items()}, what="style adapter")
    return adapter


def load_style_model(path: str | os.PathLike) -> StyleModel:
    state_dict, _ = load_state_dict(path)
    if "style_embedding" in state_dict:
        return StyleModel(style_adapter_from_state_dict(state_dict))
    if "redux_down.weight" in state_dict:
        raise StyleModelError(f"{path}: a Flux Redux image encoder; Flux models are not supported")
    raise StyleModelError(f"{path}: not a style model (expected T2I style-adapter weights: style_embedding, …)")


def append_style_tokens(conditioning: list, tokens: torch.Tensor, strength: float, strength_type: str) -> list:
    """Each entry of ``conditioning`` with ``tokens`` ``[B, T, C]`` (flattened to ``[1, B·T, C]``)
    appended to its text tokens, as ComfyUI's ``StyleModelApply``:

    * ``multiply``: the tokens are scaled by ``strength``;
    * ``attn_bias``: the tokens stay as they are and an additive attention bias ``log(strength)``
      on them is recorded in the entry's ``attention_mask`` ``[B, L, L]`` (L = text + style +
      reference-image tokens), grown from any mask already there. An existing mask is always
      grown, whatever the strength type. Only models that read ``attention_mask`` (Flux in
      ComfyUI; none of the SD families) feel the bias.
    """
    if strength_type not in ("multiply", "attn_bias"):
        raise ValueError(f"strength_type must be 'multiply' or 'attn_bias', got {strength_type!r}")
    cond = tokens.flatten(0, 1).unsqueeze(0)
    if strength_type == "multiply":
        cond = cond * strength
    n = cond.shape[1]
    out = []
    for text, extras in conditioning:
        extras = dict(extras)
        if "attention_mask" in extras or (strength_type == "attn_bias" and strength != 1.0):
            extras.update(_grown_mask(extras, text, n, strength if strength_type == "attn_bias" else 1.0))
        out.append([torch.cat([text, cond.to(text)], dim=1), extras])
    return out


def _grown_mask(extras: dict, text: torch.Tensor, n: int, strength: float) -> dict:
    """The entry's attention mask with ``n`` style-token rows/columns inserted after the text
    tokens; text and reference tokens attend to them with bias ``log(strength)`` (-inf at 0)."""
    bias = torch.log(torch.tensor(float(strength)))
    ref_shape = extras.get("attention_mask_img_shape", (1, 1))
    n_ref = ref_shape[0] * ref_shape[1]
    n_txt = text.shape[1]
    mask = extras.get("attention_mask")
    if mask is None:
        mask = torch.zeros((text.shape[0], n_txt + n_ref, n_txt + n_ref), dtype=torch.float16)
    if mask.dtype == torch.bool:  # True attends: log 1 = 0, log 0 = -inf
        mask = torch.log(mask.to(torch.float16))
    grown = torch.zeros((text.shape[0], n_txt + n + n_ref, n_txt + n + n_ref), dtype=torch.float16)
    grown[:, :n_txt, :n_txt] = mask[:, :n_txt, :n_txt]
    grown[:, :n_txt, n_txt + n:] = mask[:, :n_txt, n_txt:]
    grown[:, n_txt + n:, :n_txt] = mask[:, n_txt:, :n_txt]
    grown[:, n_txt + n:, n_txt + n:] = mask[:, n_txt:, n_txt:]
    grown[:, :n_txt, n_txt:n_txt + n] = bias
    grown[:, n_txt + n:, n_txt:n_txt + n] = bias
    return {"attention_mask": grown.to(text.device), "attention_mask_img_shape": ref_shape}
