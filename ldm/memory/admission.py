"""Admission: refuse an allocation that cannot fit before it is made, with a job error that says why.

A job that asks for more memory than the machine has (a 16384×16384 latent at batch 80, a TIFF
whose frames decode to tens of GB) would otherwise be ended by the kernel's OOM killer together
with the server. Callers that know the size of what they are about to allocate ask first:

* on the CPU, what may still be used is the RAM available now (``psutil``'s ``available``, through
  the manager's free-memory figure) less ``MemoryOptions.cpu_reserve_bytes`` (1 GiB, the margin
  the manager itself keeps on the CPU);
* on a GPU, it is what is free there plus the resident weights of models not in use (the manager
  can offload or stream them), less ``MemoryOptions.reserve`` (``--reserve-vram``).

Sizes in messages are decimal gigabytes (10⁹ bytes), as a user reads them off a file manager.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from ldm.memory.manager import MemoryManager

GB = 1000 ** 3


class AdmissionError(MemoryError):
    """An allocation was refused before it was made: it cannot fit on its device."""

    def __init__(self, what: str, needed: int, available: int, device: torch.device) -> None:
        self.what = what
        self.needed = needed
        self.available = available
        self.device = device
        super().__init__(f"{what} needs {gigabytes(needed)}; {gigabytes(available)} of memory is available "
                         f"on {device}")


def gigabytes(nbytes: int) -> str:
    """``5368709120`` → ``"5.4 GB"``; small sizes keep two significant digits (``"0.0042 GB"``)."""
    value = max(0, nbytes) / GB
    return f"{value:.1f} GB" if value >= 0.1 else f"{value:.2g} GB"


def tensor_bytes(shape: Sequence[int], dtype: torch.dtype = torch.float32) -> int:
    """Bytes of a dense tensor of ``shape`` and ``dtype``."""
    return math.prod(int(side) for side in shape) * torch.empty((), dtype=dtype).element_size()


def describe_tensor(shape: Sequence[int], dtype: torch.dtype = torch.float32) -> str:
    """``(80, 4, 2048, 2048)`` → ``"80×4×2048×2048 float32"``."""
    return "×".join(str(int(side)) for side in shape) + " " + str(dtype).removeprefix("torch.")


def available_bytes(manager: MemoryManager, device: torch.device | str) -> int:
    """What an allocation on ``device`` may still use (see the module docstring); may be negative."""
    device = torch.device(device)
    free = manager.free_bytes(device)
    if device.type == "cpu":
        return free - manager.options.cpu_reserve_bytes
    offloadable = sum(entry.resident_bytes for entry in manager.loaded_models()
                      if entry.placement.device == device and not entry.users)
    return free + offloadable - manager.options.reserve


def admit(manager: MemoryManager, nbytes: int, what: str, device: torch.device | str = "cpu") -> None:
    """Pass if ``nbytes`` fit on ``device``; else raise :class:`AdmissionError` naming ``what``."""
    device = torch.device(device)
    available = available_bytes(manager, device)
    if nbytes > available:
        raise AdmissionError(what, int(nbytes), max(0, available), device)
