"""The memory manager: which models are on which device, and room for the next one.

One object, built by whoever builds the engine (the server at start-up) and handed down; no
module-global state. It keeps the loaded models in least-recently-used order and, before each
use of a model, makes sure the bytes it needs are there:

1. what the model still lacks on the device plus the caller's activation estimate is compared
   with the device's free memory; if it is short, least-recently-used models give up layers —
   only as many bytes as needed (smart memory), or whole models (``--disable-smart-memory``);
2. the model's resident budget follows the mode (:func:`ldm.memory.plan.resident_budget`) and
   :func:`ldm.memory.plan.plan_load` picks the resident layers; the rest are streamed per call.

After an out-of-memory error inside a use, :meth:`MemoryManager.shrink` unloads every other model
and halves what the failing model keeps resident, so the caller can retry once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from typing import Callable, Iterator, Mapping

import torch
from torch import nn

from ldm.devices import free_memory_bytes
from ldm.memory.options import MemoryOptions, VramMode
from ldm.memory.plan import LoadedSize, plan_load, plan_unload, resident_budget, resident_cap
from ldm.memory.residency import LoadedModel, Placement

log = logging.getLogger(__name__)

MIB = 1024 ** 2


def _empty_device_cache(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


class MemoryManager:
    def __init__(self, options: MemoryOptions | None = None, *,
                 free_memory: Callable[[torch.device], int] | None = None,
                 empty_cache: Callable[[torch.device], None] | None = None) -> None:
        self.options = options or MemoryOptions()
        self._free_memory = free_memory or free_memory_bytes
        self._empty_cache = empty_cache or _empty_device_cache
        self._loaded: list[LoadedModel] = []  # most recently used first
        self._lock = threading.RLock()

    # --- what is loaded -------------------------------------------------------------------------

    def loaded_models(self) -> list[LoadedModel]:
        with self._lock:
            return [entry for entry in self._loaded if entry.model is not None]

    def find(self, model: nn.Module) -> LoadedModel | None:
        with self._lock:
            return next((e for e in self._loaded if e.model is model), None)

    def free_bytes(self, device: torch.device) -> int:
        return int(self._free_memory(torch.device(device)))

    def resident_bytes(self, device: torch.device | None = None) -> int:
        with self._lock:
            return sum(e.resident_bytes for e in self._loaded
                       if device is None or e.placement.device == torch.device(device))

    def _forget(self, entry: LoadedModel) -> None:
        with self._lock:
            if entry in self._loaded:
                self._loaded.remove(entry)

    def _entry(self, model: nn.Module, placement: Placement, name: str) -> LoadedModel:
        entry = self.find(model)
        if entry is not None and entry.placement != placement:
            if entry.users:
                raise RuntimeError(f"{entry.name} is in use on {entry.placement}; cannot move it")
            entry.unload()
            self._loaded.remove(entry)
            entry = None
        if entry is None:
            entry = LoadedModel(model, placement, name=name, pin_memory=self.options.pin_memory,
                                prefetch=self.options.prefetch)
            self._loaded.insert(0, entry)
            weakref.finalize(model, self._forget, entry)
        else:
            self._loaded.remove(entry)
            self._loaded.insert(0, entry)
        return entry

    # --- making room ----------------------------------------------------------------------------

    def free_memory(self, needed: int, device: torch.device, keep: tuple[LoadedModel, ...] = ()) -> int:
        """Unload least-recently-used models on ``device`` until ``needed`` bytes are free.

        Returns the bytes taken off the device (by the models' own accounting).
        """
        device = torch.device(device)
        with self._lock:
            shortfall = needed - self.free_bytes(device)
            if shortfall <= 0:
                return 0
            candidates = [e for e in reversed(self._loaded)
                          if e.placement.device == device and e.model is not None and e not in keep]
            sizes = [LoadedSize(i, e.resident_bytes, in_use=e.users > 0) for i, e in enumerate(candidates)]
            freed = 0
            for step in plan_unload(sizes, shortfall, smart=self.options.smart_memory):
                entry = candidates[step.key]
                if step.full:
                    freed += entry.unload()
                    log.info("unloaded %s from %s", entry.name, device)
                else:
                    freed += entry.unload_bytes(step.bytes)
                    log.info("partially unloaded %s (%d MB) from %s", entry.name, step.bytes // MIB, device)
            if freed:
                self._empty_cache(device)
            return freed

    def _keep_low_vram_total(self, entry: LoadedModel, cap: int) -> None:
        """``lowvram`` bounds the weights of *all* models on the device, not each one: others
        give up what this model's share would push past ``low_vram_weights``."""
        device = entry.placement.device
        others = [e for e in reversed(self._loaded)
                  if e is not entry and e.placement.device == device and e.model is not None]
        excess = sum(e.resident_bytes for e in others) + cap - self.options.low_vram_weights
        if excess <= 0:
            return
        sizes = [LoadedSize(i, e.resident_bytes, in_use=e.users > 0) for i, e in enumerate(others)]
        for step in plan_unload(sizes, excess, smart=self.options.smart_memory):
            model = others[step.key]
            if step.full:
                model.unload()
            else:
                model.unload_bytes(step.bytes)
        self._empty_cache(device)

    # --- loading --------------------------------------------------------------------------------

    def load(self, model: nn.Module, placement: Placement, *, patches: Mapping | None = None,
             inference_bytes: int = 0, name: str = "", force_full: bool = False) -> LoadedModel:
        """Make ``model`` ready on ``placement`` with ``patches`` applied; the caller must
        :meth:`release` it. Resident as much as the mode and free memory allow, streamed otherwise."""
        with self._lock:
            entry = self._entry(model, placement, name)
            entry.users += 1
            try:
                entry.set_patches(patches)
                device = placement.device
                cpu_mode = self.options.mode is VramMode.CPU
                cap = entry.total_bytes if force_full else resident_cap(
                    self.options, device_is_cpu=cpu_mode, model_bytes=entry.total_bytes)
                missing = cap - entry.resident_bytes
                margin = self.options.cpu_reserve_bytes if cpu_mode else (
                    self.options.reserve + self.options.min_inference_bytes)
                if missing > 0:
                    self.free_memory(missing + inference_bytes + margin, device, keep=(entry,))
                if self.options.mode is VramMode.LOW:
                    self._keep_low_vram_total(entry, cap)
                budget = entry.total_bytes if force_full else resident_budget(
                    self.options, device_is_cpu=cpu_mode, free_bytes=self.free_bytes(device),
                    model_bytes=entry.total_bytes, already_resident=entry.resident_bytes,
                    inference_bytes=inference_bytes)
                plan = plan_load(entry.sizes(), budget)
                entry.apply(plan)
                if not plan.full:
                    log.info("%s: %d MB resident, %d MB streamed per call (%d layers)", entry.name,
                             plan.resident_bytes // MIB, plan.streamed_bytes // MIB, len(plan.streamed))
            except BaseException:
                entry.users -= 1
                raise
            return entry

    def release(self, entry: LoadedModel) -> None:
        with self._lock:
            entry.users = max(0, entry.users - 1)
            if not self.options.smart_memory and entry.users == 0:
                entry.unload()
                self._empty_cache(entry.placement.device)

    @contextlib.contextmanager
    def use(self, model: nn.Module, placement: Placement, **kwargs) -> Iterator[LoadedModel]:
        entry = self.load(model, placement, **kwargs)
        try:
            yield entry
        finally:
            self.release(entry)

    def shrink(self, entry: LoadedModel) -> bool:
        """After an out-of-memory error: every other model off the device, this one keeps half of
        what it had resident. False when there is nothing left to give up."""
        with self._lock:
            device = entry.placement.device
            others = [e for e in self._loaded if e is not entry and e.placement.device == device and not e.users]
            freed = sum(e.unload() for e in others)
            resident = entry.resident_bytes
            if resident > 0:
                plan = plan_load(entry.sizes(), resident // 2)
                entry.apply(plan)
                freed += resident - entry.resident_bytes
            self._empty_cache(device)
            log.warning("out of memory: freed %d MB; %s keeps %d MB resident", freed // MIB, entry.name,
                        entry.resident_bytes // MIB)
            return freed > 0

    def unload_all(self) -> None:
        with self._lock:
            devices = set()
            for entry in list(self._loaded):
                if entry.users:
                    continue
                entry.unload()
                devices.add(entry.placement.device)
                self._loaded.remove(entry)
            for device in devices:
                self._empty_cache(device)

    def stats(self) -> list[dict]:
        """One line per loaded model, most recently used first (for logs and ``/system_stats``)."""
        return [{"name": e.name, "device": str(e.placement.device), "dtype": str(e.placement.dtype),
                 "resident_bytes": e.resident_bytes, "total_bytes": e.total_bytes, "in_use": e.users > 0}
                for e in self.loaded_models()]
