"""Which parts of a model stay on the compute device and which are streamed: pure arithmetic.

A model is a list of *units* (layers that own weights), each with a size in bytes and its place
in the forward order. Given a budget, :func:`plan_load` keeps the largest units resident — the
fewest, biggest transfers are the ones worth avoiding, and small layers cost little to stream —
and streams the rest in forward order. :func:`resident_budget` turns the free memory, the mode
and the activation estimate into that budget; :func:`plan_unload` picks what to take off the
device when another model needs the room (least recently used first, partially before fully).
Nothing here touches a tensor, so all of it is tested with made-up sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ldm.memory.options import MemoryOptions, VramMode


@dataclass(frozen=True)
class UnitSize:
    name: str
    bytes: int
    order: int  # position in the forward pass (registration order)
    streamable: bool = True  # False: must be resident whenever the model is in use


@dataclass(frozen=True)
class LoadPlan:
    resident: frozenset[str]
    streamed: tuple[str, ...]  # in forward order
    resident_bytes: int
    streamed_bytes: int

    @property
    def full(self) -> bool:
        return not self.streamed


def plan_load(units: Sequence[UnitSize], budget: int) -> LoadPlan:
    """Resident units (largest first while they fit, unstreamable ones always) and streamed ones.

    Greedy by size: a unit that does not fit is skipped and smaller ones are still tried, so the
    budget is used as fully as the sizes allow. Ties go to the earlier unit in the forward pass.
    """
    resident: set[str] = set()
    used = 0
    for unit in units:
        if not unit.streamable:
            resident.add(unit.name)
            used += unit.bytes
    for unit in sorted(units, key=lambda u: (-u.bytes, u.order)):
        if unit.streamable and used + unit.bytes <= budget:
            resident.add(unit.name)
            used += unit.bytes
    streamed = tuple(u.name for u in sorted(units, key=lambda u: u.order) if u.name not in resident)
    streamed_bytes = sum(u.bytes for u in units if u.name not in resident)
    return LoadPlan(frozenset(resident), streamed, used, streamed_bytes)


def resident_budget(options: MemoryOptions, *, device_is_cpu: bool, free_bytes: int, model_bytes: int,
                    already_resident: int, inference_bytes: int) -> int:
    """How many bytes of a model may be resident on its device for the coming use.

    ``free_bytes`` is what the device has free *after* the manager made room; what the model
    already holds there counts as available to it. A budget >= ``model_bytes`` means fully loaded.
    """
    if device_is_cpu:
        reserve = options.cpu_reserve_bytes
        return max(0, free_bytes + already_resident - inference_bytes - reserve)
    mode = options.mode
    if mode in (VramMode.GPU_ONLY, VramMode.HIGH):
        return model_bytes
    if mode is VramMode.NONE:
        return 0
    available = free_bytes + already_resident - inference_bytes - options.reserve - options.min_inference_bytes
    if mode is VramMode.LOW:
        return max(0, min(available, options.low_vram_weights))
    return max(0, available)


def resident_cap(options: MemoryOptions, *, device_is_cpu: bool, model_bytes: int) -> int:
    """The most a model may ever keep resident in this mode (what is worth making room for)."""
    if device_is_cpu or options.mode in (VramMode.GPU_ONLY, VramMode.HIGH, VramMode.NORMAL):
        return model_bytes
    if options.mode is VramMode.LOW:
        return min(model_bytes, options.low_vram_weights)
    return 0


@dataclass(frozen=True)
class LoadedSize:
    """What the unloader needs to know about a loaded model."""

    key: int  # the manager's handle for the model
    resident_bytes: int
    in_use: bool = False


@dataclass(frozen=True)
class UnloadStep:
    key: int
    bytes: int  # bytes to take off the device
    full: bool  # the whole model leaves the device


def plan_unload(loaded_lru: Sequence[LoadedSize], needed: int, *, smart: bool) -> list[UnloadStep]:
    """What to take off the device to free ``needed`` bytes.

    ``loaded_lru`` is least recently used first. With smart memory each model gives up only what
    is still needed (partially), and the next model is touched only if that was not enough;
    without it whole models go. Models in use are never touched.
    """
    steps: list[UnloadStep] = []
    remaining = needed
    for model in loaded_lru:
        if remaining <= 0:
            break
        if model.in_use or model.resident_bytes <= 0:
            continue
        if smart and model.resident_bytes > remaining:
            steps.append(UnloadStep(model.key, remaining, full=False))
            remaining = 0
        else:
            steps.append(UnloadStep(model.key, model.resident_bytes, full=True))
            remaining -= model.resident_bytes
    return steps


def unet_inference_bytes(latent_shape: Sequence[int], dtype_size: int, usage_factor: float = 1.0,
                         cond_batches: int = 2) -> int:
    """Activation memory estimate for a UNet call on latents ``[B, C, h, w]`` (CFG doubles B).

    ComfyUI's rule of thumb for memory-efficient attention: 0.01 MiB per latent pixel and batch
    item per byte of dtype, times a family factor (SDXL 0.8); measured peaks in ``bench/``.
    """
    batch = int(latent_shape[0]) * cond_batches
    area = batch
    for side in latent_shape[2:]:
        area *= int(side)
    return int(area * dtype_size * 0.01 * usage_factor * 1024 * 1024)
