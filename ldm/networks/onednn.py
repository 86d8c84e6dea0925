"""Convolutions and linears on the CPU with their weights packed once in oneDNN's own layout.

PyTorch's CPU convolution hands oneDNN a plain (OIHW or OHWI) weight on every call, and oneDNN
reorders it into the blocked layout its kernels read before computing. For a UNet's deep levels
(1280–2560 channels on 4×4 to 16×16 maps) that reorder costs more than the convolution itself:
``[2, 2560, 4, 4] * [1280, 2560, 3, 3]`` in bf16 takes 20.7 ms as ``F.conv2d`` and 3.9 ms with
the weight packed beforehand (2-core AVX512-BF16 EPYC, measured; the whole SD1.5 step at 256²
went 0.71 → 0.56 s). The memory manager packs a resident layer's weight when its placement asks
for it (:attr:`ldm.memory.residency.Placement.pack_weights`); the packed layout depends on the
weight only, and the result is ``F.conv2d``'s: bitwise in bf16 for every input size tried, within
~10⁻⁶ relative in fp32 (oneDNN may pick another algorithm for some shapes).

Linear weights are packed too (``_reorder_linear_weight`` / ``_linear_pointwise``): the bias is
fused and the GEMM reads the weight in its own layout, 2–5 % off the same step, bitwise equal to
``F.linear`` for contiguous inputs.
1×1 convolutions stay plain: packed, oneDNN runs them as direct convolutions instead of the GEMM
it picks for plain weights, and the SD1.5 step got slower (0.56 → 0.89 s).
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

#: Weight dtypes oneDNN computes natively on x86 CPUs (fp16 would need AVX512-FP16 / AMX-FP16).
PACKABLE_DTYPES = (torch.float32, torch.bfloat16)


def _ops_present() -> bool:
    return (torch.backends.mkldnn.is_available()
            and hasattr(torch.ops.mkldnn, "_reorder_convolution_weight")
            and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
            and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
            and hasattr(torch.ops.mkldnn, "_linear_pointwise"))


def packable(layer: nn.Module) -> bool:
    """A layer the packed path computes exactly: a linear, or a 2-D convolution with a kernel
    larger than 1×1 and zero padding."""
    if isinstance(layer, nn.Linear):
        return True
    return (isinstance(layer, nn.Conv2d) and tuple(layer.kernel_size) != (1, 1)
            and layer.padding_mode == "zeros" and not isinstance(layer.padding, str))


def pack_weight(layer: nn.Module, weight: torch.Tensor) -> torch.Tensor:
    """``weight`` (a CPU tensor of ``layer``'s shape) as an opaque oneDNN tensor in blocked layout."""
    if isinstance(layer, nn.Linear):
        return torch.ops.mkldnn._reorder_linear_weight(weight.contiguous(), None)
    # The input size only guides oneDNN's choice of blocking; a packed weight serves every size.
    probe = [1, layer.in_channels, 16, 16]
    return torch.ops.mkldnn._reorder_convolution_weight(
        weight.contiguous(), list(layer.padding), list(layer.stride), list(layer.dilation), layer.groups, probe)


def _unpacked(packed: torch.Tensor, bias: torch.Tensor | None, x: torch.Tensor):
    weight = packed.to_dense().to(x.device, x.dtype)
    return weight, None if bias is None else bias.to(x.device, x.dtype)


def _packed_path(packed: torch.Tensor, x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and x.dtype == packed.dtype and not (torch.is_grad_enabled() and x.requires_grad)


def packed_linear(packed: torch.Tensor, bias: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` with the packed weight (plain ``F.linear`` for inputs the oneDNN
    op cannot take, as in :func:`packed_conv`)."""
    if not _packed_path(packed, x):
        return F.linear(x, *_unpacked(packed, bias, x))
    if bias is not None and bias.dtype != x.dtype:
        bias = bias.to(x.dtype)
    # Strided inputs are computed right but rounded differently from F.linear; contiguous ones match it bitwise.
    return torch.ops.mkldnn._linear_pointwise(x.contiguous(), packed, bias, "none", [], "")


def packed_conv(layer: nn.Conv2d, packed: torch.Tensor, bias: torch.Tensor | None,
                x: torch.Tensor) -> torch.Tensor:
    """``layer``'s convolution of ``x`` with its packed weight; the output is channels-last.

    Inputs the oneDNN op cannot take (another device or dtype, or a call that records gradients)
    get the plain convolution with the packed weight unpacked, so the numbers are the same.
    """
    if not _packed_path(packed, x):
        weight, bias = _unpacked(packed, bias, x)
        return F.conv2d(x, weight, bias, layer.stride, layer.padding, layer.dilation, layer.groups)
    if bias is not None and bias.dtype != x.dtype:
        bias = bias.to(x.dtype)
    return torch.ops.mkldnn._convolution_pointwise(
        x, packed, bias, list(layer.padding), list(layer.stride), list(layer.dilation), layer.groups,
        "none", [], "")


def packing_works(dtype: torch.dtype) -> bool:
    """True when this PyTorch build packs and runs a convolution and a linear in ``dtype`` and gets
    ``F.conv2d``'s and ``F.linear``'s numbers (checked on tiny layers; builds without oneDNN, or
    CPUs it cannot serve, say False)."""
    if dtype not in PACKABLE_DTYPES or not _ops_present():
        return False
    try:
        generator = torch.Generator().manual_seed(0)
        conv = nn.Conv2d(8, 8, 3, padding=1, dtype=dtype)
        linear = nn.Linear(8, 4, dtype=dtype)
        x = torch.randn(1, 8, 5, 5, generator=generator).to(dtype)
        with torch.no_grad():
            pairs = [
                (conv(x), packed_conv(conv, pack_weight(conv, conv.weight), conv.bias, x)),
                (linear(x[0, :, 0].T), packed_linear(pack_weight(linear, linear.weight), linear.bias, x[0, :, 0].T))]
        close = all(torch.allclose(got.float(), expected.float(), rtol=1e-2, atol=1e-2) for expected, got in pairs)
    except RuntimeError as error:  # a build whose oneDNN lacks a kernel for this dtype or CPU
        log.info("oneDNN weight packing unavailable for %s: %s", dtype, error)
        return False
    if not close:
        log.warning("oneDNN packed convolution or linear disagrees with PyTorch's in %s; not used", dtype)
    return close
