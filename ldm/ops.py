"""Layer operations handed to model constructors: no random init, weights cast per call.

Every model in ``ldm/`` builds its layers through an :class:`Operations` object instead of
``torch.nn`` directly. The layers here

* skip random initialisation (the weights come from a checkpoint, and building on the ``meta``
  device then loading with ``assign=True`` costs no memory at all);
* cast their weights to the input's dtype and device inside ``forward`` when they differ, so the
  weights can stay on the CPU in their storage dtype (fp16, bf16, fp8) and be streamed to the
  compute device one layer at a time by the memory manager.

Nothing is monkeypatched: a model built with another ``Operations`` gets other layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def cast_like(tensor: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    """``tensor`` on ``like``'s device and in its (floating) dtype; the same object if it already is."""
    if tensor is None:
        return None
    if tensor.device == like.device and tensor.dtype == like.dtype:
        return tensor
    return tensor.to(device=like.device, dtype=like.dtype, non_blocking=True)


class Linear(nn.Linear):
    def reset_parameters(self) -> None:  # weights come from a checkpoint
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, cast_like(self.weight, x), cast_like(self.bias, x))


class Conv2d(nn.Conv2d):
    def reset_parameters(self) -> None:
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, cast_like(self.weight, x), cast_like(self.bias, x))


class GroupNorm(nn.GroupNorm):
    """Group norm computed in float32 and returned in the input's dtype (CompVis' GroupNorm32)."""

    def reset_parameters(self) -> None:
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        out = F.group_norm(x32, self.num_groups, cast_like(self.weight, x32), cast_like(self.bias, x32),
                           self.eps)
        return out.to(x.dtype)


class LayerNorm(nn.LayerNorm):
    def reset_parameters(self) -> None:
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.normalized_shape, cast_like(self.weight, x), cast_like(self.bias, x),
                            self.eps)


class Embedding(nn.Embedding):
    def reset_parameters(self) -> None:
        return None

    def forward(self, indices: torch.Tensor, out_dtype: torch.dtype | None = None) -> torch.Tensor:
        weight = self.weight
        if weight.device != indices.device:
            weight = weight.to(indices.device, non_blocking=True)
        if out_dtype is not None and weight.dtype != out_dtype:
            weight = weight.to(out_dtype)
        return F.embedding(indices, weight, self.padding_idx, self.max_norm, self.norm_type,
                           self.scale_grad_by_freq, self.sparse)


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
