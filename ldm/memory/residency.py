"""One managed model: which of its layers are on the compute device, and how the others get there.

A model is split into *units*: the modules that own tensors (for Weft's models, the ``ldm.networks.ops``
layers). Each unit is either

* **resident** — its parameters are device tensors, prepared once: cast to the placement dtype,
  LoRA-patched, laid out channels-last if asked; or
* **streamed** — its parameters stay on the host (page-locked on CUDA) and a :class:`WeightStream`
  hands the layer device copies per forward call, patched on the fly; on CUDA the next layer's
  copy is already on its way on a side stream while this one computes.

Both paths prepare a tensor with the same function (:meth:`LoadedModel.finish`) from the same
source values, so a partially loaded model computes exactly what a fully loaded one does.

The tensors the model had when it was first managed (*originals*: usually the checkpoint's
memory-mapped tensors in their stored dtype) are never written; unloading puts them back, and a
change of LoRA recomputes only the weights whose patches changed, from the originals.
"""

from __future__ import annotations

import dataclasses
import logging
import weakref
from dataclasses import dataclass
from typing import Iterable, Mapping

import torch
from torch import nn

from ldm.lora.patches import DiffAdapter, LoraAdapter, WeightPatch, patched_weight
from ldm.memory.pages import file_mappings, release_file_pages
from ldm.memory.plan import LoadPlan, UnitSize
from ldm.networks import onednn
from ldm.networks.ops import PackableLayer, StreamableLayer, computes_with_packed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Placement:
    """Where a model computes and how its weights are kept there."""

    device: torch.device
    dtype: torch.dtype | None = None  # floating weights become this; None keeps their stored dtype
    channels_last: bool = False  # 4-D (conv) weights in NHWC layout
    pack_weights: bool = False  # resident k×k conv and linear weights in oneDNN's layout (CPU; ldm.networks.onednn)

    def __post_init__(self) -> None:
        object.__setattr__(self, "device", torch.device(self.device))


@dataclass
class Unit:
    name: str  # module path inside the model ("" for the root)
    layer: nn.Module
    local: tuple[str, ...]  # tensor names on the layer (parameters and buffers)
    keys: tuple[str, ...]  # the same as state-dict keys of the model
    streamable: bool
    order: int
    resident: bool = False


def discover_units(model: nn.Module) -> list[Unit]:
    """The modules of ``model`` that own tensors, in registration (= forward) order."""
    units = []
    for order, (name, module) in enumerate(model.named_modules()):
        local = [n for n, t in list(module._parameters.items()) + list(module._buffers.items())
                 if t is not None]
        if not local:
            continue
        prefix = f"{name}." if name else ""
        streamable = isinstance(module, StreamableLayer) and set(local) <= {"weight", "bias"}
        units.append(Unit(name, module, tuple(local), tuple(prefix + n for n in local), streamable, order))
    return units


def _signature(patches: Iterable[WeightPatch] | None) -> tuple:
    return tuple((float(p.strength), id(p.adapter), float(p.strength_model)) for p in patches or ())


def _set_tensor(layer: nn.Module, name: str, value: torch.Tensor) -> None:
    if name in layer._parameters:
        if not isinstance(value, nn.Parameter):
            value = nn.Parameter(value, requires_grad=False)
        layer._parameters[name] = value
    else:
        layer._buffers[name] = value


def _get_tensor(layer: nn.Module, name: str) -> torch.Tensor:
    found = layer._parameters.get(name)
    return found if found is not None else layer._buffers[name]


def _drop_packed(layer: nn.Module) -> None:
    if isinstance(layer, PackableLayer):
        layer.set_packed(None)


#: The attribute on a managed module that points (weakly) back at its :class:`LoadedModel`.
_ENTRY_ATTRIBUTE = "_weft_loaded_model"


def managing_entry(module: nn.Module) -> "LoadedModel | None":
    """The :class:`LoadedModel` that last took charge of ``module``; None if none did (or it is gone)."""
    ref = module.__dict__.get(_ENTRY_ATTRIBUTE)
    return ref() if ref is not None else None


class LoadedModel:
    """The residency state of one model (an ``nn.Module``) on one placement.

    Holds the model weakly: when the model is garbage-collected the manager forgets this entry.
    """

    def __init__(self, model: nn.Module, placement: Placement, *, name: str = "", pin_memory: bool = True,
                 prefetch: bool = True) -> None:
        self._model = weakref.ref(model)
        self.name = name or type(model).__name__
        self.placement = placement
        self.units = discover_units(model)
        self._by_layer = {id(u.layer): u for u in self.units}
        self._by_name = {u.name: u for u in self.units}
        self.originals: dict[str, torch.Tensor] = {
            key: _get_tensor(u.layer, local) for u in self.units for local, key in zip(u.local, u.keys)}
        # Weights a resident unit keeps only in packed form (conv and linear, ldm.networks.onednn):
        # the layer's ``weight`` is then the original again and its ``packed_weight`` the one copy.
        self.packed_keys = frozenset(
            u.keys[u.local.index("weight")] for u in self.units
            if placement.pack_weights and "weight" in u.local and computes_with_packed(u.layer)
            and onednn.packable(u.layer))
        # Code that holds only the module (a MODEL's get_key_patches, the savers) finds the stored
        # weights behind the device copies through this; weak, so a copied module stays copyable.
        model.__dict__[_ENTRY_ATTRIBUTE] = weakref.ref(self)
        self.patches: dict[str, list[WeightPatch]] = {}
        self._applied: dict[str, tuple] = {}  # key -> signature of the patches in its resident tensor
        self._device_adapters: dict[int, tuple[object, object]] = {}
        self._pinned: dict[str, torch.Tensor] = {}
        self._pin = pin_memory and placement.device.type == "cuda"
        self.stream = WeightStream(self, prefetch=prefetch and placement.device.type == "cuda")
        self.users = 0
        self.repatched_keys = 0  # weights recomputed because their patches changed (for tests/stats)

    # --- facts -----------------------------------------------------------------------------------

    @property
    def model(self) -> nn.Module | None:
        return self._model()

    def _target_dtype(self, tensor: torch.Tensor) -> torch.dtype:
        dtype = self.placement.dtype
        return dtype if dtype is not None and tensor.is_floating_point() else tensor.dtype

    def _is_free(self, key: str) -> bool:
        """True when the prepared tensor would be the original itself (costs no device memory)."""
        original = self.originals[key]
        return (original.device == self.placement.device and original.dtype == self._target_dtype(original)
                and not self.patches.get(key) and key not in self.packed_keys
                and not (self.placement.channels_last and original.ndim == 4
                         and not original.is_contiguous(memory_format=torch.channels_last)))

    def unit_bytes(self, unit: Unit) -> int:
        """Device bytes ``unit`` occupies when resident (0 when it needs no copy at all)."""
        total = 0
        for key in unit.keys:
            if not self._is_free(key):
                original = self.originals[key]
                total += original.numel() * torch.empty((), dtype=self._target_dtype(original)).element_size()
        return total

    def sizes(self) -> list[UnitSize]:
        return [UnitSize(u.name, self.unit_bytes(u), u.order, u.streamable) for u in self.units]

    @property
    def total_bytes(self) -> int:
        return sum(self.unit_bytes(u) for u in self.units)

    @property
    def resident_bytes(self) -> int:
        return sum(self.unit_bytes(u) for u in self.units if u.resident)

    @property
    def fully_resident(self) -> bool:
        return all(u.resident for u in self.units)

    @property
    def streamed_units(self) -> list[str]:
        return [u.name for u in self.units if not u.resident]

    # --- preparing tensors ------------------------------------------------------------------------

    def _device_adapter(self, adapter):
        """``adapter`` with its tensors on the compute device (cached while the patches last)."""
        found = self._device_adapters.get(id(adapter))
        if found is not None:
            return found[1]
        device = self.placement.device
        if isinstance(adapter, LoraAdapter):
            moved = dataclasses.replace(adapter, up=adapter.up.to(device), down=adapter.down.to(device),
                                        mid=None if adapter.mid is None else adapter.mid.to(device))
        elif isinstance(adapter, DiffAdapter):
            moved = DiffAdapter(adapter.diff.to(device))
        else:
            moved = adapter
        self._device_adapters[id(adapter)] = (adapter, moved)
        return moved

    def to_device(self, key: str, source: torch.Tensor, non_blocking: bool = False) -> torch.Tensor:
        """``source`` (the original or its host copy) on the device in the placement dtype."""
        return source.to(device=self.placement.device, dtype=self._target_dtype(source),
                         non_blocking=non_blocking)

    def finish(self, key: str, tensor: torch.Tensor) -> torch.Tensor:
        """A device tensor of ``key`` made ready for use: LoRA patches added, layout set."""
        patches = self.patches.get(key)
        if patches:
            tensor = patched_weight(tensor, [dataclasses.replace(p, adapter=self._device_adapter(p.adapter))
                                             for p in patches])
        # A weight about to be packed is laid out by the packing itself: no NHWC copy first.
        if self.placement.channels_last and tensor.ndim == 4 and key not in self.packed_keys:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return tensor

    def prepared(self, key: str) -> torch.Tensor:
        return self.finish(key, self.to_device(key, self.originals[key]))

    def stream_source(self, key: str) -> torch.Tensor:
        """The host tensor a streamed weight is copied from (page-locked on CUDA)."""
        if not self._pin:
            return self.originals[key]
        found = self._pinned.get(key)
        if found is None:
            original = self.originals[key]
            host = original.to(dtype=self._target_dtype(original))
            try:
                found = host.pin_memory()
            except RuntimeError as error:  # page-locked memory can run out; copies then block
                log.warning("could not pin %s (%s); streaming it from pageable memory", key, error)
                self._pin = False
                return host
            self._pinned[key] = found
        return found

    # --- changing what is resident ------------------------------------------------------------------

    def set_patches(self, patches: Mapping[str, list[WeightPatch]] | None) -> list[str]:
        """Make ``patches`` the active LoRA table; re-prepare only resident weights whose patches changed.

        Returns the keys that were recomputed.
        """
        patches = {k: list(v) for k, v in (patches or {}).items() if v and k in self.originals}
        self.patches = patches
        live = {id(p.adapter) for found in patches.values() for p in found}
        self._device_adapters = {k: v for k, v in self._device_adapters.items() if k in live}
        changed = []
        for unit in self.units:
            if not unit.resident:
                continue
            for local, key in zip(unit.local, unit.keys):
                wanted = _signature(patches.get(key))
                if self._applied.get(key, ()) != wanted:
                    self._install(unit, local, key)
                    self._applied[key] = wanted
                    changed.append(key)
        self.repatched_keys += len(changed)
        if changed:
            self.release_copied_originals()
        return changed

    def _install(self, unit: Unit, local: str, key: str) -> None:
        """Put the prepared tensor of ``key`` on its layer (packed, for the keys that are)."""
        with torch.no_grad():
            prepared = self.prepared(key)
            packed = onednn.pack_weight(unit.layer, prepared) if key in self.packed_keys else None
            if packed is not None:
                prepared = self.originals[key]
            _set_tensor(unit.layer, local, prepared)
            if packed is not None:
                unit.layer.set_packed(packed)

    def _make_resident(self, unit: Unit) -> None:
        for local, key in zip(unit.local, unit.keys):
            self._install(unit, local, key)
            self._applied[key] = _signature(self.patches.get(key))
        if isinstance(unit.layer, StreamableLayer):
            unit.layer.weight_stream = None
        unit.resident = True

    def _make_streamed(self, unit: Unit) -> None:
        if not unit.streamable:
            raise ValueError(f"{self.name}: {unit.name or 'the root module'} cannot be streamed")
        for local, key in zip(unit.local, unit.keys):
            _set_tensor(unit.layer, local, self.stream_source(key) if self._pin else self.originals[key])
            self._applied.pop(key, None)
        _drop_packed(unit.layer)
        unit.layer.weight_stream = self.stream
        unit.resident = False

    def apply(self, plan: LoadPlan) -> None:
        """Make the resident set ``plan.resident``; every other unit is streamed."""
        streamed_before = set(self.streamed_units)
        mappings = file_mappings()
        for unit in self.units:
            if unit.name in plan.resident and not unit.resident:
                self._make_resident(unit)
            elif unit.name not in plan.resident and (unit.resident
                                                     or getattr(unit.layer, "weight_stream", None) is None):
                self._make_streamed(unit)
            else:
                continue
            if mappings:  # as we go, so stored and converted weights never both fill RAM
                release_file_pages(self._copied_originals([unit]), mappings)
        self.stream.reset(relearn=set(self.streamed_units) != streamed_before)

    def _copied_originals(self, units) -> list[torch.Tensor]:
        """Originals that another tensor stands in for (a resident or packed copy, a pinned host copy)."""
        return [self.originals[key] for unit in units for local, key in zip(unit.local, unit.keys)
                if _get_tensor(unit.layer, local) is not self.originals[key]
                or (unit.resident and key in self.packed_keys)]

    def release_copied_originals(self) -> int:
        """Drop the file pages of originals that a copy stands in for (memory-mapped checkpoint
        tensors; see ``ldm.memory.pages``): they are read back from the file only if needed again."""
        return release_file_pages(self._copied_originals(self.units))

    def unload_bytes(self, wanted: int) -> int:
        """Stream resident units (largest first) until ``wanted`` device bytes are freed."""
        freed = 0
        for unit in sorted((u for u in self.units if u.resident and u.streamable),
                           key=lambda u: -self.unit_bytes(u)):
            if freed >= wanted:
                break
            size = self.unit_bytes(unit)
            if size == 0:
                continue
            self._make_streamed(unit)
            freed += size
        self.stream.reset(relearn=freed > 0)
        return freed

    def unload(self) -> int:
        """Put every original back: nothing on the device, no stream, pinned copies released."""
        freed = self.resident_bytes
        for unit in self.units:
            for local, key in zip(unit.local, unit.keys):
                _set_tensor(unit.layer, local, self.originals[key])
            _drop_packed(unit.layer)
            if isinstance(unit.layer, StreamableLayer):
                unit.layer.weight_stream = None
            unit.resident = False
        self._applied.clear()
        self._pinned.clear()
        self._device_adapters.clear()
        self.stream.reset(relearn=True)
        return freed

    def layer_unit(self, layer: nn.Module) -> Unit:
        return self._by_layer[id(layer)]

    def unit_named(self, name: str) -> Unit | None:
        return self._by_name.get(name)


class WeightStream:
    """Hands streamed layers their weights on the device, the next layer's already in flight.

    The forward order is learnt during the first pass (the order layers ask for weights); from
    then on, fetching layer *i* starts the host-to-device copy of layer *i + 1* on a side CUDA
    stream. Copies are waited for on the compute stream and marked as used by it, so the caching
    allocator never hands their memory out early. Off CUDA everything is synchronous.
    """

    def __init__(self, loaded: LoadedModel, *, prefetch: bool) -> None:
        self._loaded = loaded
        self._prefetch = prefetch
        self._side = None
        self.order: list[str] = []
        self._position: dict[str, int] = {}
        self._complete = False
        self._pending: dict[str, tuple[dict[str, torch.Tensor], object]] = {}
        self.fetches = 0  # per-call transfers made (for tests and stats)

    def reset(self, relearn: bool = False) -> None:
        """Drop copies in flight; with ``relearn`` also the forward order (the streamed set changed)."""
        self._pending.clear()
        if relearn:
            self.order, self._position, self._complete = [], {}, False

    def _copy(self, unit: Unit, non_blocking: bool) -> dict[str, torch.Tensor]:
        loaded = self._loaded
        return {local: loaded.to_device(key, loaded.stream_source(key), non_blocking=non_blocking)
                for local, key in zip(unit.local, unit.keys)}

    def _start_prefetch(self, name: str) -> None:
        if name in self._pending:
            return
        unit = self._loaded.unit_named(name)
        if unit is None or unit.resident:
            return
        if self._side is None:
            self._side = torch.cuda.Stream(device=self._loaded.placement.device)
        # No wait on the compute stream: the copy reads constant host memory into fresh memory of
        # the side stream's own pool, so it may run while the queued layers compute.
        with torch.cuda.stream(self._side):
            tensors = self._copy(unit, non_blocking=True)
            event = torch.cuda.Event()
            event.record(self._side)
        self._pending[name] = (tensors, event)

    def _learn(self, name: str) -> None:
        if self._complete:
            return
        if name in self._position:
            self._complete = name == self.order[0]
            return
        self._position[name] = len(self.order)
        self.order.append(name)

    def _next(self, name: str) -> str | None:
        """The streamed unit that runs after ``name`` (wrapping to the next pass once learnt)."""
        position = self._position.get(name)
        if position is None:
            return None
        for step in range(1, len(self.order)):
            index = position + step
            if index >= len(self.order):
                if not self._complete:
                    return None
                index -= len(self.order)
            unit = self._loaded.unit_named(self.order[index])
            if unit is not None and not unit.resident:
                return unit.name
        return None

    def fetch(self, layer: nn.Module) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        loaded = self._loaded
        unit = loaded.layer_unit(layer)
        self._learn(unit.name)
        pending = self._pending.pop(unit.name, None)
        if pending is not None:
            tensors, event = pending
            compute = torch.cuda.current_stream(loaded.placement.device)
            compute.wait_event(event)
            for tensor in tensors.values():
                tensor.record_stream(compute)
        else:
            tensors = self._copy(unit, non_blocking=False)
        self.fetches += 1
        if self._prefetch:
            following = self._next(unit.name)
            if following is not None:
                self._start_prefetch(following)
        ready = {local: loaded.finish(key, tensors[local]) for local, key in zip(unit.local, unit.keys)}
        return ready.get("weight"), ready.get("bias")
