"""The CLIP text transformer (Radford et al. 2021), with module names equal to the Hugging Face
checkpoint keys (``text_model.encoder.layers.N.self_attn.q_proj.weight`` …), so an SD1 text
encoder loads by a walk over names. OpenCLIP checkpoints are renamed to this layout at load time
(:mod:`ldm.text.layouts`).

Pre-norm residual blocks with causal self-attention; the output of a chosen layer can be taken
with or without the final layer norm; the pooled output is the final-norm hidden state at the
first EOS token, optionally through ``text_projection``.

Layers are built through an ``operations`` object (``Linear``, ``LayerNorm``, ``Embedding``
classes taking ``dtype=`` and ``device=``), so the memory manager can hand in layers that keep
their weights elsewhere; :func:`build_text_model` builds on the meta device and assigns the
loaded tensors, so no weight is ever randomly initialised.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

#: Plain torch layers; the default ``operations``.
TORCH_OPERATIONS = SimpleNamespace(Linear=nn.Linear, LayerNorm=nn.LayerNorm, Embedding=nn.Embedding)


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    """OpenAI CLIP's sigmoid approximation of GELU (used by CLIP ViT-L/14)."""
    return x * torch.sigmoid(1.702 * x)


ACTIVATIONS = {"quick_gelu": quick_gelu, "gelu": F.gelu}


@dataclass(frozen=True)
class ClipTextConfig:
    width: int
    layers: int
    heads: int
    mlp_width: int
    activation: str  # "quick_gelu" (CLIP-L) or "gelu" (OpenCLIP H and bigG)
    vocab_size: int = 49408
    positions: int = 77
    projection_dim: int | None = None  # width of text_projection's output; None: no projection
    eps: float = 1e-5


class ClipAttention(nn.Module):
    def __init__(self, config: ClipTextConfig, ops, dtype, device):
        super().__init__()
        self.heads = config.heads
        width = config.width
        self.q_proj = ops.Linear(width, width, bias=True, dtype=dtype, device=device)
        self.k_proj = ops.Linear(width, width, bias=True, dtype=dtype, device=device)
        self.v_proj = ops.Linear(width, width, bias=True, dtype=dtype, device=device)
        self.out_proj = ops.Linear(width, width, bias=True, dtype=dtype, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, width = x.shape
        # [B, T, D] -> [B, heads, T, D/heads]
        q, k, v = (proj(x).view(batch, tokens, self.heads, -1).transpose(1, 2)
                   for proj in (self.q_proj, self.k_proj, self.v_proj))
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out_proj(out.transpose(1, 2).reshape(batch, tokens, width))


class ClipMlp(nn.Module):
    def __init__(self, config: ClipTextConfig, ops, dtype, device):
        super().__init__()
        self.fc1 = ops.Linear(config.width, config.mlp_width, bias=True, dtype=dtype, device=device)
        self.fc2 = ops.Linear(config.mlp_width, config.width, bias=True, dtype=dtype, device=device)
        self.activation = ACTIVATIONS[config.activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation(self.fc1(x)))


class ClipLayer(nn.Module):
    def __init__(self, config: ClipTextConfig, ops, dtype, device):
        super().__init__()
        self.layer_norm1 = ops.LayerNorm(config.width, eps=config.eps, dtype=dtype, device=device)
        self.self_attn = ClipAttention(config, ops, dtype, device)
        self.layer_norm2 = ops.LayerNorm(config.width, eps=config.eps, dtype=dtype, device=device)
        self.mlp = ClipMlp(config, ops, dtype, device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class ClipEmbeddings(nn.Module):
    def __init__(self, config: ClipTextConfig, ops, dtype, device):
        super().__init__()
        self.token_embedding = ops.Embedding(config.vocab_size, config.width, dtype=dtype, device=device)
        self.position_embedding = ops.Embedding(config.positions, config.width, dtype=dtype, device=device)


class ClipEncoder(nn.Module):
    def __init__(self, config: ClipTextConfig, ops, dtype, device):
        super().__init__()
        self.layers = nn.ModuleList(ClipLayer(config, ops, dtype, device) for _ in range(config.layers))


class ClipTextBody(nn.Module):
    def __init__(self, config: ClipTextConfig, ops, dtype, device):
        super().__init__()
        self.embeddings = ClipEmbeddings(config, ops, dtype, device)
        self.encoder = ClipEncoder(config, ops, dtype, device)
        self.final_layer_norm = ops.LayerNorm(config.width, eps=config.eps, dtype=dtype, device=device)


@dataclass
class TextOutput:
    hidden: torch.Tensor  # [B, T, D] the chosen layer's output
    pooled: torch.Tensor  # [B, P] final-norm state at the first EOS (projected if the model can)


class ClipTextModel(nn.Module):
    def __init__(self, config: ClipTextConfig, operations=TORCH_OPERATIONS, dtype=None, device=None):
        super().__init__()
        self.config = config
        self.text_model = ClipTextBody(config, operations, dtype, device)
        if config.projection_dim is not None:
            self.text_projection = operations.Linear(config.width, config.projection_dim, bias=False,
                                                     dtype=dtype, device=device)

    @property
    def token_embedding(self) -> nn.Module:
        return self.text_model.embeddings.token_embedding

    def embed(self, ids: torch.Tensor,
              vectors: Mapping[tuple[int, int], torch.Tensor] | None = None) -> torch.Tensor:
        """Token ids ``[B, T]`` -> input embeddings ``[B, T, D]`` with position embeddings.

        ``vectors`` maps ``(row, position)`` to a textual-inversion vector that replaces the
        token embedding there.
        """
        x = self.token_embedding(ids)
        if vectors:
            x = x.clone()
            for (row, position), vector in vectors.items():
                x[row, position] = vector.to(x)
        position = self.text_model.embeddings.position_embedding.weight[: ids.shape[1]]
        return x + position.to(x)

    def forward(self, embeds: torch.Tensor, eos_index: torch.Tensor, layer: int | None = None,
                norm_hidden: bool = True, project_pooled: bool = True) -> TextOutput:
        """Run the transformer on input embeddings ``[B, T, D]``.

        ``layer``: None for the last layer (always final-normed); -1 … -layers picks that layer's
        output (-2 = penultimate), final-normed when ``norm_hidden``. ``eos_index`` ``[B]``: where
        each row's first EOS is.
        """
        blocks = self.text_model.encoder.layers
        pick = None if layer is None or abs(layer) > len(blocks) else len(blocks) + layer
        x = embeds
        chosen = None
        for index, block in enumerate(blocks):
            x = block(x)
            if index == pick:
                chosen = x
        final = self.text_model.final_layer_norm(x)
        if chosen is None:
            hidden = final
        else:
            hidden = self.text_model.final_layer_norm(chosen) if norm_hidden else chosen
        pooled = final[torch.arange(final.shape[0], device=final.device), eos_index]
        if project_pooled and self.config.projection_dim is not None:
            pooled = self.text_projection(pooled)
        return TextOutput(hidden=hidden, pooled=pooled)


def build_text_model(config: ClipTextConfig, state_dict: Mapping[str, torch.Tensor],
                     operations=TORCH_OPERATIONS, dtype: torch.dtype = torch.float32,
                     device: torch.device | str = "cpu") -> ClipTextModel:
    """A model whose weights are ``state_dict`` (HF layout, no prefix), cast to ``dtype``.

    Raises ``ValueError`` naming missing or unexpected keys.
    """
    with torch.device("meta"):
        model = ClipTextModel(config, operations, dtype=dtype, device="meta")
    expected = set(model.state_dict().keys())
    given = set(state_dict.keys())
    missing, unexpected = sorted(expected - given), sorted(given - expected)
    if missing or unexpected:
        raise ValueError(f"text encoder weights do not match the model: missing {missing[:8]}"
                         f"{'…' if len(missing) > 8 else ''}, unexpected {unexpected[:8]}"
                         f"{'…' if len(unexpected) > 8 else ''}")
    tensors = {k: v.to(device=device, dtype=dtype) for k, v in state_dict.items()}
    model.load_state_dict(tensors, assign=True)
    return model.eval().requires_grad_(False)
