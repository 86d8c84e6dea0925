"""Pieces every training loop here shares: precision, per-step random generators, LR schedules."""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch

from ldm.devices import cpu_has_fast_bf16, read_cpu_flags

PRECISIONS = ("auto", "bf16", "fp32")


def compute_dtype(precision: str, device: torch.device | str = "cpu") -> torch.dtype:
    """bf16 where the hardware computes it natively ("auto"), else float32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp32":
        return torch.float32
    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16 if cpu_has_fast_bf16(read_cpu_flags()) else torch.float32


def autocast(dtype: torch.dtype, device: torch.device | str = "cpu"):
    """Mixed precision for the forward pass: float32 master weights, ``dtype`` arithmetic."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


@contextlib.contextmanager
def flushing_denormals():
    """Denormal floats flushed to zero for the block: tiny gradients and weights otherwise fall
    into the denormal range, where x86 arithmetic is tens of times slower."""
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def step_generator(seed: int, step: int, stream: int = 0) -> torch.Generator:
    """A CPU generator for one step of one random stream, independent of every other step, so a
    resumed run draws exactly what an uninterrupted one would (no generator state to save)."""
    state = np.random.SeedSequence([seed, stream, step]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)


def warmup_cosine(step: int, total: int, peak: float, final: float, warmup: int) -> float:
    """Linear warm-up to ``peak`` over ``warmup`` steps, then cosine decay to ``final``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return final + 0.5 * (peak - final) * (1.0 + math.cos(math.pi * progress))


def warmup_constant(step: int, peak: float, warmup: int) -> float:
    return peak * min(1.0, (step + 1) / max(1, warmup))


def set_learning_rate(optimizer: torch.optim.Optimizer, value: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = value
