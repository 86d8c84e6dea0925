"""The text encoder of the paper's text-to-image model (``txt2img-f8-large``), read from the CompVis
checkpoint's ``cond_stage_model.transformer.*`` weights.

Rombach et al. (2022) train a BERT-sized transformer from scratch together with the UNet, on
bert-base-uncased WordPiece ids (:mod:`ldm.text.wordpiece`). CompVis builds it as ``BERTEmbedder``
→ an x-transformers ``TransformerWrapper`` around ``Encoder(dim=n_embed, depth=n_layer)`` (their
``ldm/modules/x_transformer.py``; the config ``txt2img-1p4B-eval.yaml``: n_embed 1280, n_layer
32, vocab 30522, 77 positions). What that builds, and so what this module computes:

- token embedding plus a learned absolute position embedding, neither scaled; embedding dropout
  is 0;
- ``depth`` blocks, each two pre-norm residual branches ``x + f(LayerNorm(x))``: self-attention
  (not causal, no mask; 8 heads of 64, so an inner width of 512 whatever the model width;
  ``to_q``/``to_k``/``to_v`` without bias, ``to_out`` with), then a feed-forward
  ``Linear(d, 4d) → GELU (erf) → Linear(4d, d)``;
- a final LayerNorm (eps 1e-5 everywhere). Its output ``[B, 77, d]`` is the UNet's
  cross-attention context; there is no pooled vector.

Module names equal the checkpoint keys below ``cond_stage_model.transformer.``: ``token_emb``,
``pos_emb.emb``, ``attn_layers.layers.{2i}.{0: norm, 1: attention}``,
``attn_layers.layers.{2i+1}.{0: norm, 1: feed-forward}`` with the feed-forward's linears at
``net.0.0`` and ``net.2`` (``net.1`` was a parameterless dropout), and ``norm``. The checkpoint's
``to_logits`` (a token-prediction head the embedder never calls) is not loaded.

The number of heads is not in the weights: CompVis' embedder always uses x-transformers' default of
8, which :func:`build_ldm_bert` assumes unless told otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ldm.text.clip_model import TORCH_OPERATIONS
from ldm.text.wordpiece import MAX_LENGTH, VOCAB_SIZE

#: Where the encoder's weights sit in a CompVis LDM checkpoint.
CHECKPOINT_PREFIX = "cond_stage_model.transformer."
#: Prefixes a file holding this encoder may carry: a whole checkpoint, the embedder, the bare wrapper.
PREFIXES = (CHECKPOINT_PREFIX, "transformer.", "")
#: x-transformers' default head count, which CompVis' ``BERTEmbedder`` never changes.
COMPVIS_HEADS = 8
#: Keys of the checkpoint that the text encoder does not use.
UNUSED_KEYS = ("to_logits.weight", "to_logits.bias")

_PROBE_KEYS = ("token_emb.weight", "pos_emb.emb.weight", "attn_layers.layers.0.1.to_q.weight")


@dataclass(frozen=True)
class LDMBertConfig:
    width: int  # n_embed: 1280 in txt2img-f8-large
    depth: int  # n_layer: 32
    heads: int = COMPVIS_HEADS
    head_dim: int = 64
    mlp_width: int = 5120  # 4 × width
    vocab_size: int = VOCAB_SIZE
    positions: int = MAX_LENGTH
    eps: float = 1e-5

    @property
    def inner_width(self) -> int:
        return self.heads * self.head_dim

    @classmethod
    def from_weights(cls, weights: Mapping[str, torch.Tensor], heads: int = COMPVIS_HEADS) -> LDMBertConfig:
        """The config of unprefixed encoder weights, from their shapes (``heads`` is not in them)."""
        vocab_size, width = weights["token_emb.weight"].shape
        positions = weights["pos_emb.emb.weight"].shape[0]
        inner = weights["attn_layers.layers.0.1.to_q.weight"].shape[0]
        mlp_width = weights["attn_layers.layers.1.1.net.0.0.weight"].shape[0]
        branches = {int(key.split(".")[2]) for key in weights if key.startswith("attn_layers.layers.")}
        if branches != set(range(len(branches))) or len(branches) % 2:
            raise ValueError(f"attention layers {sorted(branches)[:6]}… are not attention/feed-forward pairs")
        if inner % heads:
            raise ValueError(f"attention width {inner} does not split into {heads} heads")
        return cls(width=width, depth=len(branches) // 2, heads=heads, head_dim=inner // heads,
                   mlp_width=mlp_width, vocab_size=vocab_size, positions=positions)


class BertSelfAttention(nn.Module):
    def __init__(self, config: LDMBertConfig, ops, dtype, device):
        super().__init__()
        self.heads = config.heads
        width, inner = config.width, config.inner_width
        self.to_q = ops.Linear(width, inner, bias=False, dtype=dtype, device=device)
        self.to_k = ops.Linear(width, inner, bias=False, dtype=dtype, device=device)
        self.to_v = ops.Linear(width, inner, bias=False, dtype=dtype, device=device)
        self.to_out = ops.Linear(inner, width, bias=True, dtype=dtype, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, _ = x.shape
        # [B, T, heads·head_dim] -> [B, heads, T, head_dim]; softmax(q·kᵀ / √head_dim) v
        q, k, v = (proj(x).view(batch, tokens, self.heads, -1).transpose(1, 2)
                   for proj in (self.to_q, self.to_k, self.to_v))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(out.transpose(1, 2).reshape(batch, tokens, -1))


class BertFeedForward(nn.Module):
    def __init__(self, config: LDMBertConfig, ops, dtype, device):
        super().__init__()
        # x-transformers' layout: Sequential(Sequential(Linear, GELU), Dropout, Linear). The dropout
        # (p = 0) is an Identity here so the output linear keeps its checkpoint name ``net.2``.
        self.net = nn.Sequential(
            nn.Sequential(ops.Linear(config.width, config.mlp_width, dtype=dtype, device=device), nn.GELU()),
            nn.Identity(),
            ops.Linear(config.mlp_width, config.width, dtype=dtype, device=device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PreNormResidual(nn.ModuleList):
    """``x + branch(norm(x))``; a list so that the norm and the branch are named ``0`` and ``1``."""

    def __init__(self, norm: nn.Module, branch: nn.Module):
        super().__init__([norm, branch])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm, branch = self
        return x + branch(norm(x))


class AttentionLayers(nn.Module):
    def __init__(self, config: LDMBertConfig, ops, dtype, device):
        super().__init__()

        def norm() -> nn.Module:
            return ops.LayerNorm(config.width, eps=config.eps, dtype=dtype, device=device)

        branches = []
        for _ in range(config.depth):
            branches.append(PreNormResidual(norm(), BertSelfAttention(config, ops, dtype, device)))
            branches.append(PreNormResidual(norm(), BertFeedForward(config, ops, dtype, device)))
        self.layers = nn.ModuleList(branches)


class AbsolutePositions(nn.Module):
    def __init__(self, config: LDMBertConfig, ops, dtype, device):
        super().__init__()
        self.emb = ops.Embedding(config.positions, config.width, dtype=dtype, device=device)


class LDMBertEncoder(nn.Module):
    """Token ids ``[B, T]`` (T ≤ 77) -> the cross-attention context ``[B, T, width]``."""

    def __init__(self, config: LDMBertConfig, operations=TORCH_OPERATIONS, dtype=None, device=None):
        super().__init__()
        self.config = config
        self.token_emb = operations.Embedding(config.vocab_size, config.width, dtype=dtype, device=device)
        self.pos_emb = AbsolutePositions(config, operations, dtype, device)
        self.attn_layers = AttentionLayers(config, operations, dtype, device)
        self.norm = operations.LayerNorm(config.width, eps=config.eps, dtype=dtype, device=device)

    def forward(self, ids: torch.Tensor, layer: int | None = None) -> torch.Tensor:
        """``layer``: None or -1 for all blocks, -2 to stop after the penultimate block, …, as CLIP
        skip counts (beyond the depth: all blocks); the final norm is applied to whichever block's
        output is taken."""
        depth = self.config.depth
        blocks = depth if layer is None or -layer > depth else depth + 1 + layer
        x = self.token_emb(ids)
        x = x + self.pos_emb.emb.weight[: ids.shape[1]].to(x)
        for branch in self.attn_layers.layers[: 2 * blocks]:
            x = branch(x)
        return self.norm(x)


def find_ldm_bert(state_dict: Mapping[str, torch.Tensor]) -> str | None:
    """The prefix under which ``state_dict`` holds this encoder (see :data:`PREFIXES`), or None."""
    for prefix in PREFIXES:
        if all(prefix + key in state_dict for key in _PROBE_KEYS):
            return prefix
    return None


def read_ldm_bert(state_dict: Mapping[str, torch.Tensor], prefix: str | None = None,
                  heads: int = COMPVIS_HEADS) -> tuple[LDMBertConfig, dict[str, torch.Tensor]]:
    """``(config, weights)``: the encoder's weights without ``prefix`` (found if None) and without
    the unused :data:`UNUSED_KEYS`."""
    if prefix is None:
        prefix = find_ldm_bert(state_dict)
        if prefix is None:
            raise ValueError("no LDM BERT text encoder (token_emb, pos_emb.emb, attn_layers…) in these weights")
    weights = {key[len(prefix):]: tensor for key, tensor in state_dict.items() if key.startswith(prefix)}
    for key in UNUSED_KEYS:
        weights.pop(key, None)
    return LDMBertConfig.from_weights(weights, heads), weights


def build_ldm_bert(state_dict: Mapping[str, torch.Tensor], prefix: str | None = None, *,
                   heads: int = COMPVIS_HEADS, operations=TORCH_OPERATIONS,
                   dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> LDMBertEncoder:
    """The encoder whose weights are ``state_dict``'s under ``prefix`` (found if None), cast to
    ``dtype``. Built on the meta device and given the loaded tensors, so nothing is randomly
    initialised. Raises ``ValueError`` naming missing or unexpected keys."""
    config, weights = read_ldm_bert(state_dict, prefix, heads)
    with torch.device("meta"):
        model = LDMBertEncoder(config, operations, dtype=dtype, device="meta")
    expected, given = set(model.state_dict()), set(weights)
    missing, unexpected = sorted(expected - given), sorted(given - expected)
    if missing or unexpected:
        raise ValueError(f"LDM BERT weights do not match the model: missing {missing[:8]}"
                         f"{'…' if len(missing) > 8 else ''}, unexpected {unexpected[:8]}"
                         f"{'…' if len(unexpected) > 8 else ''}")
    model.load_state_dict({k: v.to(device=device, dtype=dtype) for k, v in weights.items()}, assign=True)
    return model.eval().requires_grad_(False)
