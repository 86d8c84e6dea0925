"""Layer operations handed to model constructors: no random init, weights cast per call.

Every model in ``ldm/`` builds its layers through an :class:`Operations` object instead of
``torch.nn`` directly. The layers here

* skip random initialisation (the weights come from a checkpoint, and building on the ``meta``
  device then loading with ``assign=True`` costs no memory at all);
* cast their weights to the input's dtype and device inside ``forward`` when they differ, so the
  weights can stay on the CPU in their storage dtype (fp16, bf16, fp8);
* take their weights from a ``weight_stream`` when the memory manager sets one (layers it keeps
  off the compute device: moved, prefetched and LoRA-patched per call, see ``ldm.memory``).

Nothing is monkeypatched: a model built with another ``Operations`` gets other layers.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ldm.networks.onednn import packed_conv, packed_linear


def cast_like(tensor: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    """``tensor`` on ``like``'s device and in its (floating) dtype; the same object if it already is."""
    if tensor is None:
        return None
    if tensor.device == like.device and tensor.dtype == like.dtype:
        return tensor
    return tensor.to(device=like.device, dtype=like.dtype, non_blocking=True)


class StreamableLayer:
    """A layer whose weights may be handed to it per call by a weight stream.

    ``weight_stream`` is ``None`` (use the layer's own ``weight``/``bias``) or an object with
    ``fetch(layer) -> (weight, bias)``, set by the memory manager on layers it keeps off the
    compute device: the stream returns them on the device, LoRA-patched, just in time.
    """

    weight_stream = None

    def stored_weights(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        if self.weight_stream is not None:
            return self.weight_stream.fetch(self)
        return self.weight, self.bias

    def weights_like(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        weight, bias = self.stored_weights()
        return cast_like(weight, x), cast_like(bias, x)


class PackableLayer(StreamableLayer):
    """A layer that may compute with a oneDNN-packed copy of its weight (``ldm.networks.onednn``).

    The memory manager sets ``packed_weight`` on resident CPU layers; while set (and while
    ``weight`` is still the parameter it was set beside) it is the weight the layer computes with.
    """

    packed_weight: torch.Tensor | None = None
    _packed_beside: weakref.ref | None = None  # the ``weight`` parameter it was set beside

    def set_packed(self, packed: torch.Tensor | None) -> None:
        self.packed_weight = packed
        self._packed_beside = None if packed is None else weakref.ref(self._parameters["weight"])

    def current_packed(self) -> torch.Tensor | None:
        """The packed weight to compute with, or None: never packed, or ``weight`` is not the
        parameter it was set beside — someone replaced it (ComfyUI's ``set_attr_param``, a training
        wrapper), and their weight counts until the parameter is put back."""
        if self.packed_weight is None or self._packed_beside is None:
            return None
        return self.packed_weight if self._packed_beside() is self._parameters.get("weight") else None


class Linear(PackableLayer, nn.Linear):
    def reset_parameters(self) -> None:  # weights come from a checkpoint
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        packed = self.current_packed()
        if packed is not None:
            return packed_linear(packed, self.bias, x)
        return F.linear(x, *self.weights_like(x))


class Conv2d(PackableLayer, nn.Conv2d):
    def reset_parameters(self) -> None:
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        packed = self.current_packed()
        if packed is not None:
            return packed_conv(self, packed, self.bias, x)
        return self._conv_forward(x, *self.weights_like(x))


def computes_with_packed(layer: nn.Module) -> bool:
    """True for Weft's own Linear / Conv2d whose ``forward`` no subclass replaced: only those read
    ``packed_weight``. A subclass with its own forward (ComfyUI's ``manual_cast`` layers, a pack's
    layer) reads ``weight`` itself, so its weight must stay a plain resident tensor."""
    return type(layer).forward in (Linear.forward, Conv2d.forward)


class GroupNorm(StreamableLayer, nn.GroupNorm):
    """Group norm in the input's dtype; the kernels accumulate the statistics in float32
    (CPU and CUDA), so half-precision maps need no upcast copy (CompVis' GroupNorm32 made one)."""

    def reset_parameters(self) -> None:
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.group_norm(x, self.num_groups, *self.weights_like(x), self.eps)


class LayerNorm(StreamableLayer, nn.LayerNorm):
    def reset_parameters(self) -> None:
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.normalized_shape, *self.weights_like(x), self.eps)


class Embedding(StreamableLayer, nn.Embedding):
    bias = None

    def reset_parameters(self) -> None:
        return None

    def forward(self, indices: torch.Tensor, out_dtype: torch.dtype | None = None) -> torch.Tensor:
        weight, _ = self.stored_weights()
        if weight.device != indices.device:
            weight = weight.to(indices.device, non_blocking=True)
        if out_dtype is not None and weight.dtype != out_dtype:
            weight = weight.to(out_dtype)
        return F.embedding(indices, weight, self.padding_idx, self.max_norm, self.norm_type,
                           self.scale_grad_by_freq, self.sparse)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
              max_score_bytes: int | None = None) -> torch.Tensor:
    """Scaled dot-product attention over ``[B, heads, L, d]``; in query slices when asked.

    SDPA's fused kernels (flash / memory-efficient on CUDA, flash on the CPU) never hold the
    ``[B, heads, Lq, Lk]`` score matrix, but its math fallback does. With ``max_score_bytes`` the
    queries are processed in slices whose score matrix stays under it; every query row attends
    independently, so the result is the same.
    """
    if max_score_bytes is None:
        return F.scaled_dot_product_attention(q, k, v)
    b, heads, length, _ = q.shape
    per_row = b * heads * k.shape[-2] * q.element_size()
    rows = max(1, int(max_score_bytes) // max(per_row, 1))
    if rows >= length:
        return F.scaled_dot_product_attention(q, k, v)
    out = torch.empty((b, heads, length, v.shape[-1]), dtype=q.dtype, device=q.device)
    for start in range(0, length, rows):
        out[:, :, start:start + rows] = F.scaled_dot_product_attention(q[:, :, start:start + rows], k, v)
    return out


class SlicedAttention:
    """Mixin of attention modules: ``attention_slice_bytes`` (None = whole) is set by the engine
    when device memory is short (``ldm.engine``)."""

    attention_slice_bytes: int | None = None


@dataclass(frozen=True)
class Operations:
    """Builds layers whose parameters are created on ``device`` in ``dtype``.

    ``device="meta"`` builds a model that owns no memory, ready for
    ``load_state_dict(..., assign=True)`` to adopt a checkpoint's (memory-mapped) tensors.
    """

    device: torch.device | str | None = None
    dtype: torch.dtype | None = None

    def _where(self) -> dict:
        return {"device": self.device, "dtype": self.dtype}

    def Linear(self, in_features: int, out_features: int, bias: bool = True) -> Linear:
        return Linear(in_features, out_features, bias=bias, **self._where())

    def Conv2d(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
               bias: bool = True) -> Conv2d:
        return Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias,
                      **self._where())

    def GroupNorm(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                  affine: bool = True) -> GroupNorm:
        return GroupNorm(num_groups, num_channels, eps=eps, affine=affine, **self._where())

    def LayerNorm(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True) -> LayerNorm:
        return LayerNorm(normalized_shape, eps=eps, elementwise_affine=elementwise_affine, **self._where())

    def Embedding(self, num_embeddings: int, embedding_dim: int) -> Embedding:
        return Embedding(num_embeddings, embedding_dim, **self._where())


#: Parameters on the meta device: the way every loader builds a model before adopting weights.
META = Operations(device="meta")
