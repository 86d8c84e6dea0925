"""Which device computes and in which dtype: a frozen settings object built on request.

Nothing here runs at import time. :func:`detect_compute` is called once by whoever builds the
engine (the server at start-up, a test, a script) and the result is handed down.

Policy (wave 1):
* CUDA: bf16 where the GPU supports it (Ampere and later), else fp16; the VAE in bf16 or fp32
  (fp16 overflows in the SDXL VAE).
* CPU: bf16 when the CPU has native bf16 arithmetic (``amx_bf16`` or ``avx512_bf16`` in
  ``/proc/cpuinfo``), else fp32.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

BF16_CPU_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})


@dataclass(frozen=True)
class ComputeSettings:
    device: torch.device
    dtype: torch.dtype  # the diffusion model's compute dtype
    vae_dtype: torch.dtype
    text_dtype: torch.dtype
    reason: str  # one line saying why, for the start-up log


def read_cpu_flags(cpuinfo_path: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU feature flags listed in ``/proc/cpuinfo`` (empty where there is no such file)."""
    try:
        text = Path(cpuinfo_path).read_text(errors="replace")
    except OSError:
        return frozenset()
    flags: set[str] = set()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            flags.update(value.split())
    return frozenset(flags)


def cpu_has_fast_bf16(flags: frozenset[str]) -> bool:
    return bool(flags & BF16_CPU_FLAGS)


def detect_compute(device: str | torch.device | None = None, *, force_dtype: torch.dtype | None = None,
                   cpuinfo_path: str | Path = "/proc/cpuinfo") -> ComputeSettings:
    """The compute device and dtypes for this machine (or for ``device`` if given)."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda":
        bf16 = torch.cuda.is_bf16_supported()
        dtype = torch.bfloat16 if bf16 else torch.float16
        settings = ComputeSettings(device, dtype, torch.bfloat16 if bf16 else torch.float32, dtype,
                                   f"CUDA {torch.cuda.get_device_name(device)}: {dtype}")
    elif device.type == "cpu":
        flags = read_cpu_flags(cpuinfo_path)
        if cpu_has_fast_bf16(flags):
            found = sorted(flags & BF16_CPU_FLAGS)
            settings = ComputeSettings(device, torch.bfloat16, torch.bfloat16, torch.float32,
                                       f"CPU with {', '.join(found)}: bfloat16")
        else:
            settings = ComputeSettings(device, torch.float32, torch.float32, torch.float32,
                                       "CPU without native bf16: float32")
    else:
        settings = ComputeSettings(device, torch.float32, torch.float32, torch.float32,
                                   f"{device.type}: float32")
    if force_dtype is not None:
        settings = ComputeSettings(device, force_dtype, force_dtype, force_dtype,
                                   f"{settings.reason}; forced to {force_dtype}")
    return settings


def free_memory_bytes(device: torch.device) -> int:
    """Memory a computation on ``device`` may still use now (CUDA free memory, else RAM available)."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    import psutil

    return int(psutil.virtual_memory().available)
