"""Which device computes and in which dtype: a frozen settings object built on request.

Nothing here runs at import time. :func:`detect_compute` is called once by whoever builds the
engine (the server at start-up, a test, a script) and the result is handed down.

Policy (user flags in :class:`PrecisionOptions` override it):
* CUDA: the UNet and the text encoders compute in fp16 (the dtype the published SD/SDXL weights
  are stored in, so loading casts nothing); the VAE in bf16 where the GPU supports it (Ampere and
  later), else fp32 — fp16 overflows in the SDXL VAE (a decode that comes out non-finite in fp16
  is redone in ``vae_fallback_dtype``). Conv weights and activations stay in PyTorch's default
  layout (channels-last pays on GPUs only under ``torch.compile``).
* CPU: bf16 when the CPU has native bf16 arithmetic (``amx_bf16`` or ``avx512_bf16`` in
  ``/proc/cpuinfo``), channels-last (measured on a 2-core EPYC: bf16 VAE decode 8 % faster in
  NHWC, UNet even), else fp32 in NCHW (NHWC was 5 % slower there). fp16 is never chosen on a
  CPU: without AMX-FP16 its matrix products ran ~200 times slower than fp32 here.
* ``weight_dtype`` is the dtype the UNet's weights are *stored* in while loaded (fp8 with
  ``--fp8_e4m3fn-unet``); ``None`` means the compute dtype. Layers cast per call when they differ.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch

BF16_CPU_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})

#: ``--<name>-unet`` choices -> (compute dtype or None for the device default, storage dtype or None).
UNET_PRECISIONS = {
    "fp32": (torch.float32, None),
    "fp16": (torch.float16, None),
    "bf16": (torch.bfloat16, None),
    "fp8_e4m3fn": (None, torch.float8_e4m3fn),
    "fp8_e5m2": (None, torch.float8_e5m2),
}
VAE_PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class PrecisionOptions:
    """What the precision flags asked for (``None`` = the device's default)."""

    unet: str | None = None  # a key of UNET_PRECISIONS
    vae: str | None = None  # a key of VAE_PRECISIONS
    cpu_vae: bool = False
    force_fp32: bool = False

    def __post_init__(self) -> None:
        if self.unet is not None and self.unet not in UNET_PRECISIONS:
            raise ValueError(f"unknown UNet precision {self.unet!r}; one of {sorted(UNET_PRECISIONS)}")
        if self.vae is not None and self.vae not in VAE_PRECISIONS:
            raise ValueError(f"unknown VAE precision {self.vae!r}; one of {sorted(VAE_PRECISIONS)}")


@dataclass(frozen=True)
class ComputeSettings:
    device: torch.device
    dtype: torch.dtype  # the diffusion model's compute dtype
    vae_dtype: torch.dtype
    text_dtype: torch.dtype
    reason: str  # one line saying why, for the start-up log
    weight_dtype: torch.dtype | None = None  # UNet storage while loaded; None = ``dtype``
    vae_device: torch.device | None = None  # None = ``device``
    vae_fallback_dtype: torch.dtype = torch.float32  # a non-finite VAE result is redone in this
    channels_last: bool = False  # conv weights and activations in NHWC memory layout
    pack_weights: bool = True  # on the CPU, conv and linear weights in oneDNN's layout (ldm.networks.onednn)

    def __post_init__(self) -> None:
        object.__setattr__(self, "device", torch.device(self.device))
        object.__setattr__(self, "vae_device", torch.device(self.vae_device or self.device))

    @property
    def unet_weight_dtype(self) -> torch.dtype:
        return self.weight_dtype or self.dtype


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


def _default_compute(device: torch.device, cpuinfo_path) -> ComputeSettings:
    if device.type == "cuda":
        bf16 = torch.cuda.is_bf16_supported()
        vae = torch.bfloat16 if bf16 else torch.float32
        return ComputeSettings(device, torch.float16, vae, torch.float16,
                               f"CUDA {torch.cuda.get_device_name(device)}: float16, VAE {vae}")
    if device.type == "cpu":
        flags = read_cpu_flags(cpuinfo_path)
        if cpu_has_fast_bf16(flags):
            found = sorted(flags & BF16_CPU_FLAGS)
            return ComputeSettings(device, torch.bfloat16, torch.bfloat16, torch.float32,
                                   f"CPU with {', '.join(found)}: bfloat16", channels_last=True)
        return ComputeSettings(device, torch.float32, torch.float32, torch.float32,
                               "CPU without native bf16: float32")
    return ComputeSettings(device, torch.float32, torch.float32, torch.float32, f"{device.type}: float32")


def detect_compute(device: str | torch.device | None = None, *, force_dtype: torch.dtype | None = None,
                   cpuinfo_path: str | Path = "/proc/cpuinfo",
                   precision: PrecisionOptions | None = None) -> ComputeSettings:
    """The compute device and dtypes for this machine (or for ``device`` if given).

    ``force_dtype`` sets every dtype (tests use it to compare with an oracle in float32);
    ``precision`` applies the user's flags on top of the device's defaults.
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    settings = _default_compute(torch.device(device), cpuinfo_path)
    if force_dtype is not None:
        settings = replace(settings, dtype=force_dtype, vae_dtype=force_dtype, text_dtype=force_dtype,
                           reason=f"{settings.reason}; forced to {force_dtype}")
    if precision is not None:
        settings = apply_precision(settings, precision, cpuinfo_path)
    return settings


def apply_precision(settings: ComputeSettings, precision: PrecisionOptions,
                    cpuinfo_path: str | Path = "/proc/cpuinfo") -> ComputeSettings:
    """``settings`` with the precision flags applied; the reason line says what changed."""
    notes = []
    if precision.force_fp32:
        settings = replace(settings, dtype=torch.float32, vae_dtype=torch.float32, text_dtype=torch.float32,
                           weight_dtype=None)
        notes.append("--force-fp32")
    if precision.unet is not None:
        compute, storage = UNET_PRECISIONS[precision.unet]
        settings = replace(settings, dtype=compute or settings.dtype, weight_dtype=storage)
        notes.append(f"UNet {precision.unet}")
        if compute == torch.float16 and settings.device.type == "cpu":
            notes.append("fp16 on a CPU is very slow")
    if precision.cpu_vae:
        cpu = _default_compute(torch.device("cpu"), cpuinfo_path)
        settings = replace(settings, vae_device=torch.device("cpu"), vae_dtype=cpu.vae_dtype)
        notes.append("VAE on the CPU")
    if precision.vae is not None:
        settings = replace(settings, vae_dtype=VAE_PRECISIONS[precision.vae])
        notes.append(f"VAE {precision.vae}")
    if notes:
        settings = replace(settings, reason=f"{settings.reason}; {', '.join(notes)}")
    return settings


def free_memory_bytes(device: torch.device) -> int:
    """Memory a computation on ``device`` may still use now (CUDA free memory, else RAM available)."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        # Memory PyTorch's caching allocator holds but does not use is free to us too.
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    import psutil

    return int(psutil.virtual_memory().available)


def total_memory_bytes(device: torch.device) -> int:
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[1])
    import psutil

    return int(psutil.virtual_memory().total)


def compute_devices(primary: torch.device) -> list[torch.device]:
    """The devices a model can be placed on, as ComfyUI lists them: every CUDA device when
    ``primary`` is a CUDA device, else ``primary`` alone."""
    primary = torch.device(primary)
    if primary.type == "cuda":
        return [torch.device("cuda", index) for index in range(torch.cuda.device_count())]
    return [primary]


def device_options(devices: list[torch.device], with_cpu: bool = True) -> list[str]:
    """ComfyUI's device choices: ``"default"``, ``"cpu"``, and ``"gpu:N"`` per device when there
    are several (a one-GPU machine offers only the first two)."""
    options = ["default", "cpu"] if with_cpu else ["default"]
    if len(devices) > 1:
        options += [f"gpu:{index}" for index in range(len(devices))]
    return options


def resolve_device_option(option: str | None, devices: list[torch.device]) -> torch.device | None:
    """The device a choice names; None for ``"default"`` and for a ``"gpu:N"`` this machine lacks
    or a malformed choice (callers pass the model through then, as ComfyUI does)."""
    if option is None or option == "default":
        return None
    if option == "cpu":
        return torch.device("cpu")
    if option.startswith("gpu:") and option[4:].isdigit():
        index = int(option[4:])
        if index < len(devices):
            return devices[index]
    return None


def supported_compute_dtype(dtype: torch.dtype, device: torch.device) -> torch.dtype | None:
    """A dtype to compute in instead of ``dtype`` on ``device``, or None when ``dtype`` suits it:
    float32 for float16 on a CPU (no fast fp16 arithmetic there, see above), float16 for
    bfloat16 on a GPU without bf16 support."""
    device = torch.device(device)
    if device.type == "cpu" and dtype == torch.float16:
        return torch.float32
    if device.type == "cuda" and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        return torch.float16
    return None
