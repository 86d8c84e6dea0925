"""``comfy.ops``: ComfyUI's layer namespaces (``operations=``) for the networks packs build themselves.

A pack builds its own modules (motion modules, adapters, ControlNet variants) from
``operations.Linear(...)``, ``operations.Conv2d(...)`` …, with ``operations`` one of these
namespaces. Their layers are torch layers that

* skip random initialisation (``disable_weight_init``: the weights come from a file);
* with ``comfy_cast_weights`` set (``manual_cast``), or a ``weight_function`` / ``bias_function``
  (ComfyUI's per-layer weight hooks), run ``forward_comfy_cast_weights``: weight and bias cast to
  the input's dtype and device per call through :func:`cast_bias_weight`, then the functions;
* otherwise run Weft's layer forward (:mod:`ldm.networks.ops`: Linear, Conv2d, GroupNorm, LayerNorm and
  Embedding *are* Weft's layers, which cast only when dtype or device differ) or plain torch's.

Packs that override ``forward_comfy_cast_weights`` in a subclass are honoured by these layers.
Weft's own UNet is built from :mod:`ldm.networks.ops`, not from these classes: replacing
``disable_weight_init.GroupNorm.forward_comfy_cast_weights`` (AnimateDiff does) does not reach it.
There are no fp8 matrix kernels or offload streams: ``fp8_ops`` casts like ``manual_cast`` (what
ComfyUI does when fp8 compute is unavailable), ``uncast_bias_weight`` has nothing to release, and
scaled-fp8 checkpoints (``scaled_fp8_ops``) raise ``NotImplementedError``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from comfy.model_management import cast_to
from ldm.networks import ops as weft_ops
from ldm.networks.ops import StreamableLayer

__all__ = ["CastWeightBiasOp", "cast_bias_weight", "cast_to", "cast_to_input", "disable_weight_init",
           "fp8_ops", "manual_cast", "pick_operations", "scaled_dot_product_attention", "scaled_fp8_ops",
           "uncast_bias_weight"]


def scaled_dot_product_attention(q, k, v, *args, **kwargs):
    return F.scaled_dot_product_attention(q, k, v, *args, **kwargs)


def cast_to_input(weight: torch.Tensor, input: torch.Tensor, non_blocking: bool = False, copy: bool = True):
    return cast_to(weight, input.dtype, input.device, non_blocking=non_blocking, copy=copy)


def cast_bias_weight(s: nn.Module, input: torch.Tensor | None = None, dtype: torch.dtype | None = None,
                     device: torch.device | None = None, bias_dtype: torch.dtype | None = None,
                     offloadable: bool = False):
    """``(weight, bias)`` of layer ``s`` in ``dtype`` on ``device`` (default: the input's), with the
    layer's ``weight_function`` / ``bias_function`` applied; ``(weight, bias, None)`` when
    ``offloadable`` (newer ComfyUI's form; Weft has no offload stream to return). A layer the
    memory manager streams hands over its weights through Weft's ``stored_weights``."""
    if input is not None:
        dtype = input.dtype if dtype is None else dtype
        device = input.device if device is None else device
    bias_dtype = dtype if bias_dtype is None else bias_dtype
    weight, bias = s.stored_weights() if isinstance(s, StreamableLayer) else (s.weight, getattr(s, "bias", None))
    weight_functions = getattr(s, "weight_function", ())
    bias_functions = getattr(s, "bias_function", ())
    weight = cast_to(weight, dtype, device, copy=bool(weight_functions))
    for function in weight_functions:
        weight = function(weight)
    if bias is not None:
        bias = cast_to(bias, bias_dtype, device, copy=bool(bias_functions))
        for function in bias_functions:
            bias = function(bias)
    return (weight, bias, None) if offloadable else (weight, bias)


def uncast_bias_weight(s: nn.Module, weight: Any, bias: Any, offload_stream: Any) -> None:
    """Nothing to release: Weft casts without offload streams."""


class CastWeightBiasOp:
    """ComfyUI's per-layer switches: cast per call, and functions applied to weight and bias."""

    comfy_cast_weights = False
    weight_function: list = []
    bias_function: list = []


class _Layer(CastWeightBiasOp):
    """ComfyUI's forward switch over a torch (or Weft) layer; subclasses define
    ``forward_comfy_cast_weights``."""

    def reset_parameters(self) -> None:  # weights come from a file
        return None

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self.comfy_cast_weights or self.weight_function or self.bias_function:
            return self.forward_comfy_cast_weights(*args, **kwargs)
        return super().forward(*args, **kwargs)


def _conv_layer(torch_class: type, weft_class: type | None = None) -> type:
    """A ComfyUI conv layer over ``weft_class`` (Weft's streamable conv) or torch's class."""
    bases = (_Layer, weft_class) if weft_class is not None else (_Layer, StreamableLayer, torch_class)

    def forward_comfy_cast_weights(self, input: torch.Tensor) -> torch.Tensor:
        weight, bias = cast_bias_weight(self, input)
        return self._conv_forward(input, weight, bias)

    return type(torch_class.__name__, bases, {"forward_comfy_cast_weights": forward_comfy_cast_weights,
                                              "__module__": __name__,
                                              "__qualname__": f"disable_weight_init.{torch_class.__name__}"})


def _conv_transpose_layer(torch_class: type, functional: Any, dims: int) -> type:
    def forward_comfy_cast_weights(self, input: torch.Tensor, output_size: Any = None) -> torch.Tensor:
        output_padding = self._output_padding(input, output_size, self.stride, self.padding, self.kernel_size,
                                              dims, self.dilation)
        weight, bias = cast_bias_weight(self, input)
        return functional(input, weight, bias, self.stride, self.padding, output_padding, self.groups,
                          self.dilation)

    return type(torch_class.__name__, (_Layer, StreamableLayer, torch_class),
                {"forward_comfy_cast_weights": forward_comfy_cast_weights, "__module__": __name__,
                 "__qualname__": f"disable_weight_init.{torch_class.__name__}"})


class disable_weight_init:  # noqa: N801 (ComfyUI's name)
    """Layers without random initialisation; cast per call only when switched on."""

    class Linear(_Layer, weft_ops.Linear):
        def forward_comfy_cast_weights(self, input: torch.Tensor) -> torch.Tensor:
            return F.linear(input, *cast_bias_weight(self, input))

    Conv1d = _conv_layer(nn.Conv1d)
    Conv2d = _conv_layer(nn.Conv2d, weft_ops.Conv2d)
    Conv3d = _conv_layer(nn.Conv3d)
    ConvTranspose1d = _conv_transpose_layer(nn.ConvTranspose1d, F.conv_transpose1d, 1)
    ConvTranspose2d = _conv_transpose_layer(nn.ConvTranspose2d, F.conv_transpose2d, 2)

    class GroupNorm(_Layer, weft_ops.GroupNorm):
        def forward_comfy_cast_weights(self, input: torch.Tensor) -> torch.Tensor:
            weight, bias = cast_bias_weight(self, input)
            return F.group_norm(input, self.num_groups, weight, bias, self.eps)

    class LayerNorm(_Layer, weft_ops.LayerNorm):
        def forward_comfy_cast_weights(self, input: torch.Tensor) -> torch.Tensor:
            weight, bias = cast_bias_weight(self, input) if self.weight is not None else (None, None)
            return F.layer_norm(input, self.normalized_shape, weight, bias, self.eps)

    class RMSNorm(_Layer, StreamableLayer, nn.RMSNorm):
        bias = None

        def forward_comfy_cast_weights(self, input: torch.Tensor) -> torch.Tensor:
            weight = cast_bias_weight(self, input)[0] if self.weight is not None else None
            return F.rms_norm(input, self.normalized_shape, weight, self.eps)

    class Embedding(_Layer, weft_ops.Embedding):
        def forward_comfy_cast_weights(self, input: torch.Tensor, out_dtype: torch.dtype | None = None):
            # Half-precision tables stay in their dtype for the lookup; the output is cast after.
            lookup_dtype = None if self.weight.dtype in (torch.float16, torch.bfloat16) else out_dtype
            weight, _ = cast_bias_weight(self, device=input.device, dtype=lookup_dtype)
            out = F.embedding(input, weight, self.padding_idx, self.max_norm, self.norm_type,
                              self.scale_grad_by_freq, self.sparse)
            return out.to(dtype=out_dtype)

    @classmethod
    def conv_nd(cls, dims: int, *args: Any, **kwargs: Any) -> nn.Module:
        if dims == 2:
            return cls.Conv2d(*args, **kwargs)
        if dims == 3:
            return cls.Conv3d(*args, **kwargs)
        raise ValueError(f"unsupported dimensions: {dims}")


def _casting(layer: type) -> type:
    return type(layer.__name__, (layer,), {"comfy_cast_weights": True, "__module__": __name__,
                                           "__qualname__": f"manual_cast.{layer.__name__}"})


class manual_cast(disable_weight_init):  # noqa: N801
    """Layers that cast weight and bias to the input's dtype and device on every call."""

    Linear = _casting(disable_weight_init.Linear)
    Conv1d = _casting(disable_weight_init.Conv1d)
    Conv2d = _casting(disable_weight_init.Conv2d)
    Conv3d = _casting(disable_weight_init.Conv3d)
    GroupNorm = _casting(disable_weight_init.GroupNorm)
    LayerNorm = _casting(disable_weight_init.LayerNorm)
    ConvTranspose1d = _casting(disable_weight_init.ConvTranspose1d)
    ConvTranspose2d = _casting(disable_weight_init.ConvTranspose2d)
    RMSNorm = _casting(disable_weight_init.RMSNorm)
    Embedding = _casting(disable_weight_init.Embedding)


class fp8_ops(manual_cast):  # noqa: N801
    """``manual_cast`` with ComfyUI's fp8 Linear attributes; Weft has no fp8 matrix kernels, so fp8
    weights are cast to the input's dtype per call (ComfyUI's own fallback path)."""

    class Linear(manual_cast.Linear):
        def reset_parameters(self) -> None:
            self.scale_weight = None
            self.scale_input = None
            return None


def scaled_fp8_ops(fp8_matrix_mult: bool = False, scale_input: bool = False, override_dtype=None):
    raise NotImplementedError("scaled-fp8 layers (checkpoints with a scaled_fp8 marker): Weft loads "
                              "fp8 weights only as plain storage dtypes")


def pick_operations(weight_dtype, compute_dtype, load_device=None, disable_fast_fp8=False,
                    fp8_optimizations=False, scaled_fp8=None, model_config=None):
    """``disable_weight_init`` when weights are stored in the compute dtype (or none is given),
    else ``manual_cast``. ``fp8_optimizations`` needs fp8 kernels Weft lacks, so it casts too."""
    if scaled_fp8 is not None:
        return scaled_fp8_ops(scale_input=fp8_optimizations, override_dtype=scaled_fp8)
    if compute_dtype is None or weight_dtype == compute_dtype:
        return disable_weight_init
    return manual_cast
