"""How the memory manager may use a device: the VRAM mode and its numbers, fixed at start-up.

The modes are ComfyUI's flags (``--gpu-only``, ``--highvram``, ``--normalvram``, ``--lowvram``,
``--novram``, ``--cpu``) with Weft's meaning written down here:

| mode | models on the compute device | between nodes |
|---|---|---|
| ``gpu_only`` | every model fully resident; never offloaded | results stay on the device |
| ``highvram`` | fully resident; offloaded only when another model needs the room | CPU |
| ``normalvram`` | fully resident when it fits (after offloading least-recently-used models), else partially | CPU |
| ``lowvram`` | at most ``low_vram_weights`` bytes of weights resident (all models together); the rest streamed per forward | CPU |
| ``novram`` | nothing resident: every layer streamed per forward | CPU |
| ``cpu`` | everything computes on the CPU | CPU |

Text encoders compute on the GPU in the first three modes and on the CPU in ``lowvram`` and
``novram`` (as ComfyUI does), where their few hundred MB matter more than their speed.
"""

from __future__ import annotations

import enum
import sys
from dataclasses import dataclass

GIB = 1024 ** 3
MIB = 1024 ** 2


class VramMode(enum.Enum):
    GPU_ONLY = "gpu_only"
    HIGH = "highvram"
    NORMAL = "normalvram"
    LOW = "lowvram"
    NONE = "novram"
    CPU = "cpu"


def default_reserve_bytes() -> int:
    """Device memory left alone for the desktop and other programs (ComfyUI's defaults)."""
    return 600 * MIB if sys.platform == "win32" else 400 * MIB


@dataclass(frozen=True)
class MemoryOptions:
    mode: VramMode = VramMode.NORMAL
    reserve_bytes: int | None = None  # ``--reserve-vram``; None = default_reserve_bytes()
    smart_memory: bool = True  # False (``--disable-smart-memory``): whole models leave the device after use
    low_vram_weights: int = 1 * GIB  # resident weight bytes, all models together, in ``lowvram``
    min_inference_bytes: int = 800 * MIB  # kept free for activations beyond the caller's estimate
    pin_memory: bool = True  # page-lock streamed weights on the host (faster, asynchronous copies)
    prefetch: bool = True  # copy the next streamed layer on a side CUDA stream while this one runs
    cpu_reserve_bytes: int = 1 * GIB  # RAM left alone when the compute device is the CPU

    def __post_init__(self) -> None:
        if self.reserve_bytes is not None and self.reserve_bytes < 0:
            raise ValueError("reserve_bytes must be >= 0")

    @property
    def reserve(self) -> int:
        return default_reserve_bytes() if self.reserve_bytes is None else self.reserve_bytes

    @property
    def intermediates_on_device(self) -> bool:
        return self.mode is VramMode.GPU_ONLY

    @property
    def text_encoders_on_device(self) -> bool:
        return self.mode in (VramMode.GPU_ONLY, VramMode.HIGH, VramMode.NORMAL)
