"""The engine object the server builds once and hands down to the nodes (``services().engine``).

It decides where and in which precision models run, and it prepares a model for use: today the
LoRA patches of a MODEL are written into its weights for the duration of a sampling run. The
memory manager (model residency on the GPU, partial loading, offloading) grows behind this same
interface; nodes never move weights themselves.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from ldm import lora
from ldm.devices import ComputeSettings, detect_compute


class Engine:
    def __init__(self, compute: ComputeSettings | None = None) -> None:
        self.compute = compute if compute is not None else detect_compute()

    @contextlib.contextmanager
    def use_unet(self, model) -> Iterator[torch.nn.Module]:
        """The UNet of a MODEL handle, ready to run (its LoRA patches applied) for the block."""
        with lora.patched(model.unet, model.patches) as unet:
            yield unet

    def unload_all(self) -> None:
        """Give back the memory of every loaded model (nothing is cached on the device yet)."""

    def device_stats(self) -> list[dict]:
        """The compute devices for ``/system_stats``."""
        import psutil

        memory = psutil.virtual_memory()
        device = self.compute.device
        if device.type == "cuda":
            free, total = torch.cuda.mem_get_info(device)
            allocated = torch.cuda.memory_reserved(device)
            return [{"name": torch.cuda.get_device_name(device), "type": "cuda", "index": device.index or 0,
                     "vram_total": total, "vram_free": free, "torch_vram_total": allocated,
                     "torch_vram_free": allocated - torch.cuda.memory_allocated(device)}]
        return [{"name": "cpu", "type": "cpu", "index": None, "vram_total": memory.total,
                 "vram_free": memory.available, "torch_vram_total": 0, "torch_vram_free": 0}]
