"""``comfy.float``: rounding weights to a storage dtype, stochastically for fp8.

Packs that patch weights themselves (ComfyUI-GGUF applies LoRA to dequantised weights) call
``stochastic_rounding(value, dtype, seed)`` to store the result in the weight's dtype. For
float32, float16 and bfloat16 that is a plain cast, as in ComfyUI. For ``float8_e4m3fn`` and
``float8_e5m2`` each value is rounded to one of the two representable fp8 values around it, the
upper one with probability equal to how far the value lies towards it (so the rounding is unbiased
on average), drawing uniform numbers from a generator seeded with ``seed`` on the value's device.
Values beyond the fp8 range are clamped to its largest finite value. The random numbers differ
from ComfyUI's implementation, so the same seed gives a different (equally distributed) result.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: fp8 formats: (mantissa bits, smallest normal exponent).
_FP8_FORMATS = {
    torch.float8_e4m3fn: (3, -6),
    torch.float8_e5m2: (2, -14),
}

#: ComfyUI rounds large tensors in slices of about this many elements (bounds the temporaries).
_SLICE_ELEMENTS = 4096 * 4096


def manual_stochastic_round_to_float8(x: Tensor, dtype: torch.dtype,
                                      generator: torch.Generator | None = None) -> Tensor:
    """``x`` stochastically rounded onto the grid of ``dtype`` (float8_e4m3fn or float8_e5m2),
    as float16 values (every fp8 value is exact in float16); casting the result to ``dtype`` is exact."""
    if dtype not in _FP8_FORMATS:
        raise ValueError(f"stochastic rounding to {dtype} is not supported (float8_e4m3fn, float8_e5m2)")
    mantissa_bits, min_exponent = _FP8_FORMATS[dtype]
    limit = torch.finfo(dtype).max
    magnitude = x.float().abs().clamp(max=limit)
    # |x| = m·2^e with m in [0.5, 1): the binade of |x| is [2^(e-1), 2^e), whose spacing is
    # 2^(e-1-mantissa_bits); below the smallest normal the spacing stays that of the subnormals.
    _, exponent = torch.frexp(magnitude)
    binade = torch.clamp(exponent - 1, min=min_exponent)
    spacing = torch.ldexp(torch.ones_like(magnitude), binade - mantissa_bits)
    steps = magnitude / spacing  # exact: dividing by a power of two
    noise = torch.rand(magnitude.shape, generator=generator, device=magnitude.device, dtype=magnitude.dtype)
    rounded = torch.floor(steps + noise) * spacing  # lower neighbour + spacing with probability frac(steps)
    rounded = rounded.clamp(max=limit)
    return (torch.sign(x.float()) * rounded).half()


def stochastic_rounding(value: Tensor, dtype: torch.dtype, seed: int = 0) -> Tensor:
    """``value`` in ``dtype``: a cast for float32 / float16 / bfloat16 (and any non-fp8 dtype);
    seeded stochastic rounding for float8_e4m3fn and float8_e5m2."""
    if dtype not in _FP8_FORMATS:
        return value.to(dtype=dtype)
    generator = torch.Generator(device=value.device)
    generator.manual_seed(seed)
    output = torch.empty_like(value, dtype=dtype)
    if value.ndim == 0:
        output.copy_(manual_stochastic_round_to_float8(value, dtype, generator=generator))
        return output
    slices = max(1.0, value.numel() / _SLICE_ELEMENTS)
    rows = max(1, round(value.shape[0] / slices))
    for start in range(0, value.shape[0], rows):
        output[start:start + rows].copy_(
            manual_stochastic_round_to_float8(value[start:start + rows], dtype, generator=generator))
    return output
