"""ComfyUI's ``comfy.model_management`` for node packs, answered by the server's :class:`ldm.engine.Engine`.

Devices and dtypes are the engine's ``compute`` settings; what is loaded is its memory manager
(``current_loaded_models`` is a live view of it); interrupts are the executor's interrupt flag, and
``InterruptProcessingException`` *is* :class:`graph.context.Interrupted`, so a pack that raises it,
or catches it around Weft's sampler, ends the job as interrupted. Nothing here probes the GPU or
reads flags at import time: module globals that ComfyUI computes at start-up (``vram_state``,
``total_vram``, ``DISABLE_SMART_MEMORY`` …) are read from the engine when asked for.

``load_models_gpu`` hands Weft's handles (MODEL, VAE, CLIP) and other patchers to the memory
manager, which makes them resident on the compute device as far as the VRAM mode allows (the rest
is streamed per call); on a CPU engine weights are used where they are and loading is bookkeeping.
Weft has no xformers, sage or flash attention (it uses PyTorch's SDPA), no DirectML, XPU, NPU or MLU.
"""

from __future__ import annotations

import enum
import logging
import platform
import sys
import threading
import types
import weakref
from collections.abc import MutableSequence
from typing import Any

import torch
from torch import nn

from _weft_binding import host
from graph.context import Interrupted, current_context
from ldm.devices import free_memory_bytes, total_memory_bytes
from ldm.memory import Placement, VramMode

log = logging.getLogger(__name__)

MIB = 1024 ** 2
GIB = 1024 ** 3


class VRAMState(enum.Enum):
    DISABLED = 0  # no GPU: models stay where they are
    NO_VRAM = 1
    LOW_VRAM = 2
    NORMAL_VRAM = 3
    HIGH_VRAM = 4
    SHARED = 5  # memory shared between CPU and GPU (Apple silicon)


class CPUState(enum.Enum):
    GPU = 0
    CPU = 1
    MPS = 2


#: Weft's VRAM modes as ComfyUI's states (``--gpu-only`` is HIGH_VRAM there too).
VRAM_STATES = {VramMode.GPU_ONLY: VRAMState.HIGH_VRAM, VramMode.HIGH: VRAMState.HIGH_VRAM,
               VramMode.NORMAL: VRAMState.NORMAL_VRAM, VramMode.LOW: VRAMState.LOW_VRAM,
               VramMode.NONE: VRAMState.NO_VRAM, VramMode.CPU: VRAMState.DISABLED}

InterruptProcessingException = Interrupted
OOM_EXCEPTION = torch.OutOfMemoryError
XFORMERS_IS_AVAILABLE = False
XFORMERS_ENABLED_VAE = False
XFORMERS_VERSION = ""
ENABLE_PYTORCH_ATTENTION = True
PRIORITIZE_FP16 = False
SUPPORT_FP8_OPS = False
MIN_WEIGHT_MEMORY_RATIO = 0.0
NUM_STREAMS = 1
lowvram_available = True
directml_enabled = False
xpu_available = False
npu_available = False
mlu_available = False
WINDOWS = platform.system() == "Windows"
torch_version = torch.__version__
try:
    torch_version_numeric = tuple(int(part) for part in torch_version.split("+")[0].split(".")[:2])
except ValueError:
    torch_version_numeric = (0, 0)
#: Kept for packs that take it around their own checks; Weft's flag has its own lock.
interrupt_processing_mutex = threading.RLock()


def _engine():
    return getattr(host().services, "engine", None)


def _mode() -> VramMode:
    engine = _engine()
    return engine.options.mode if engine is not None else VramMode.CPU


# -- devices ---------------------------------------------------------------------------------------------

def get_torch_device() -> torch.device:
    engine = _engine()
    return engine.compute.device if engine is not None else torch.device("cpu")


def get_torch_device_name(device) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return f"{device} {torch.cuda.get_device_name(device)}"
    return device.type


def _cpu_state() -> CPUState:
    kind = get_torch_device().type
    return CPUState.CPU if kind == "cpu" else CPUState.MPS if kind == "mps" else CPUState.GPU


def _vram_state() -> VRAMState:
    if _cpu_state() is CPUState.MPS:
        return VRAMState.SHARED
    return VRAMState.DISABLED if _cpu_state() is CPUState.CPU else VRAM_STATES[_mode()]


def _high_vram() -> bool:
    return _mode() in (VramMode.GPU_ONLY, VramMode.HIGH) and _cpu_state() is not CPUState.CPU


def _gpu_only() -> bool:
    return _mode() is VramMode.GPU_ONLY


def intermediate_device() -> torch.device:
    engine = _engine()
    return engine.intermediate_device if engine is not None else torch.device("cpu")


def intermediate_dtype() -> torch.dtype:
    """The dtype of results between nodes: Weft's are float32 (IMAGE, MASK, LATENT)."""
    return torch.float32


def unet_offload_device() -> torch.device:
    return get_torch_device() if _high_vram() else torch.device("cpu")


def unet_inital_load_device(parameters, dtype) -> torch.device:
    """Weft loads weights on the CPU and lets the memory manager move them (unless high VRAM)."""
    return unet_offload_device()


def text_encoder_device() -> torch.device:
    engine = _engine()
    return engine.text_placement().device if engine is not None else torch.device("cpu")


def text_encoder_offload_device() -> torch.device:
    return get_torch_device() if _gpu_only() else torch.device("cpu")


def text_encoder_initial_device(load_device, offload_device, model_size=0) -> torch.device:
    return offload_device


def text_encoder_dtype(device=None) -> torch.dtype:
    engine = _engine()
    return engine.compute.text_dtype if engine is not None else torch.float32


def vae_device() -> torch.device:
    engine = _engine()
    return engine.compute.vae_device if engine is not None else torch.device("cpu")


def vae_offload_device() -> torch.device:
    return get_torch_device() if _gpu_only() else torch.device("cpu")


def vae_dtype(device=None, allowed_dtypes=()) -> torch.dtype:
    engine = _engine()
    return engine.compute.vae_dtype if engine is not None else torch.float32


def unet_dtype(device=None, model_params=0, supported_dtypes=(torch.float16, torch.bfloat16, torch.float32),
               weight_dtype=None) -> torch.dtype:
    """The dtype the diffusion model's weights are kept in: an fp8 file or flag stays fp8 (cast
    per layer), else the compute dtype when the model supports it, else float32."""
    engine = _engine()
    if engine is None:
        return torch.float32
    if engine.compute.weight_dtype is not None:
        return engine.compute.weight_dtype
    if weight_dtype in get_supported_float8_types():
        return weight_dtype
    return engine.compute.dtype if engine.compute.dtype in supported_dtypes else torch.float32


def unet_manual_cast(weight_dtype, inference_device, supported_dtypes=(torch.float16, torch.bfloat16, torch.float32)):
    """The dtype to compute in when weights are stored in ``weight_dtype``; None when no cast is needed."""
    engine = _engine()
    compute = engine.compute.dtype if engine is not None else torch.float32
    if weight_dtype in (compute, torch.float32, torch.float64):
        return None
    return compute if compute in supported_dtypes else torch.float32


def get_autocast_device(dev) -> str:
    return dev.type if hasattr(dev, "type") else "cuda"


def is_device_type(device, type_name: str) -> bool:
    return getattr(device, "type", None) == type_name


def is_device_cpu(device) -> bool:
    return is_device_type(device, "cpu")


def is_device_mps(device) -> bool:
    return is_device_type(device, "mps")


def is_device_cuda(device) -> bool:
    return is_device_type(device, "cuda")


def is_device_xpu(device) -> bool:
    return is_device_type(device, "xpu")


def cpu_mode() -> bool:
    return _cpu_state() is CPUState.CPU


def mps_mode() -> bool:
    return _cpu_state() is CPUState.MPS


def is_nvidia() -> bool:
    return _cpu_state() is CPUState.GPU and get_torch_device().type == "cuda" and bool(torch.version.cuda)


def is_amd() -> bool:
    return _cpu_state() is CPUState.GPU and get_torch_device().type == "cuda" and bool(torch.version.hip)


def amd_min_version(device=None, min_rdna_version=0) -> bool:
    return False


def is_intel_xpu() -> bool:
    return False


def is_ascend_npu() -> bool:
    return False


def is_mlu() -> bool:
    return False


def is_ixuca() -> bool:
    return False


def is_directml_enabled() -> bool:
    return False


def mac_version():
    release = platform.mac_ver()[0]
    try:
        return tuple(int(n) for n in release.split(".")) if release else None
    except ValueError:
        return None


# -- dtypes ----------------------------------------------------------------------------------------------

def get_supported_float8_types() -> list[torch.dtype]:
    names = ("float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu")
    return [getattr(torch, name) for name in names if hasattr(torch, name)]


FLOAT8_TYPES = get_supported_float8_types()


def dtype_size(dtype) -> int:
    return torch.empty((), dtype=dtype).element_size() if isinstance(dtype, torch.dtype) else 4


def _forced_fp32() -> bool:
    engine = _engine()
    return engine is not None and engine.compute.dtype == torch.float32 and get_torch_device().type == "cuda"


def should_use_fp16(device=None, model_params=0, prioritize_performance=True, manual_cast=False) -> bool:
    """fp16 on CUDA and MPS unless everything is forced to fp32; never on the CPU (Weft's policy too)."""
    device = torch.device(device) if device is not None else get_torch_device()
    if device.type == "mps":
        return True
    return device.type == "cuda" and not _forced_fp32()


def should_use_bf16(device=None, model_params=0, prioritize_performance=True, manual_cast=False) -> bool:
    device = torch.device(device) if device is not None else get_torch_device()
    if device.type != "cuda" or _forced_fp32():
        return False
    return torch.cuda.is_bf16_supported()


def supports_fp8_compute(device=None) -> bool:
    device = torch.device(device) if device is not None else get_torch_device()
    if device.type != "cuda" or not torch.version.cuda:
        return False
    return torch.cuda.get_device_capability(device) >= (8, 9)


def extended_fp16_support() -> bool:
    return torch_version_numeric >= (2, 7)


def supports_dtype(device, dtype) -> bool:
    if dtype == torch.float32:
        return True
    if is_device_cpu(device):
        return False
    return dtype in (torch.float16, torch.bfloat16)


def supports_cast(device, dtype) -> bool:
    if dtype in (torch.float32, torch.float16, torch.bfloat16):
        return True
    return dtype in FLOAT8_TYPES and not is_device_mps(device)


def pick_weight_dtype(dtype, fallback_dtype, device=None):
    """``dtype`` unless it is None, wider than ``fallback_dtype`` or not castable on ``device``."""
    if dtype is None or dtype_size(dtype) > dtype_size(fallback_dtype) or not supports_cast(device, dtype):
        return fallback_dtype
    return dtype


def force_channels_last() -> bool:
    engine = _engine()
    return bool(engine is not None and engine.compute.channels_last)


def force_upcast_attention_dtype():
    return None


def xformers_enabled() -> bool:
    return False


def xformers_enabled_vae() -> bool:
    return False


def pytorch_attention_enabled() -> bool:
    return True


def pytorch_attention_enabled_vae() -> bool:
    return True


def pytorch_attention_flash_attention() -> bool:
    return get_torch_device().type == "cuda"


def sage_attention_enabled() -> bool:
    return False


def flash_attention_enabled() -> bool:
    return False


# -- copies between devices --------------------------------------------------------------------------------

def device_supports_non_blocking(device) -> bool:
    return is_device_cuda(device)


def device_should_use_non_blocking(device) -> bool:
    return False


def cast_to(weight, dtype=None, device=None, non_blocking=False, copy=False, stream=None):
    """``weight`` in ``dtype`` on ``device``; the same tensor when nothing changes and no copy is asked."""
    if device is None or weight.device == torch.device(device):
        if not copy and (dtype is None or weight.dtype == dtype):
            return weight
        return weight.to(dtype=dtype, copy=copy)
    out = torch.empty_like(weight, dtype=dtype, device=device)
    out.copy_(weight, non_blocking=non_blocking)
    return out


def cast_to_device(tensor, device, dtype, copy=False):
    return cast_to(tensor, dtype=dtype, device=device, non_blocking=device_supports_non_blocking(device), copy=copy)


def get_offload_stream(device):
    return None


def sync_stream(device, stream) -> None:
    pass


# -- memory ----------------------------------------------------------------------------------------------

def get_free_memory(dev=None, torch_free_too=False):
    """Free bytes on ``dev`` (the compute device): CUDA free plus what PyTorch holds unused, or available RAM."""
    dev = torch.device(dev) if dev is not None else get_torch_device()
    free = free_memory_bytes(dev) if dev.type in ("cpu", "cuda") else free_memory_bytes(torch.device("cpu"))
    if not torch_free_too:
        return free
    held = torch.cuda.memory_reserved(dev) - torch.cuda.memory_allocated(dev) if dev.type == "cuda" else free
    return free, held


def get_total_memory(dev=None, torch_total_too=False):
    dev = torch.device(dev) if dev is not None else get_torch_device()
    total = total_memory_bytes(dev) if dev.type in ("cpu", "cuda") else total_memory_bytes(torch.device("cpu"))
    if not torch_total_too:
        return total
    return total, (torch.cuda.memory_reserved(dev) if dev.type == "cuda" else total)


def extra_reserved_memory() -> int:
    engine = _engine()
    return engine.options.reserve if engine is not None else 400 * MIB


def minimum_inference_memory() -> int:
    engine = _engine()
    base = engine.options.min_inference_bytes if engine is not None else 800 * MIB
    return base + extra_reserved_memory()


def maximum_vram_for_weights(device=None) -> float:
    return get_total_memory(device) * 0.88 - minimum_inference_memory()


def soft_empty_cache(force=False) -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        torch.mps.empty_cache()


def module_size(module) -> int:
    """Bytes of a module's parameters and buffers."""
    return sum(t.nelement() * t.element_size() for t in module.state_dict().values())


# -- what is loaded ----------------------------------------------------------------------------------------

def _unit_of(obj) -> tuple[nn.Module, Placement, dict | None, str] | None:
    """The module Weft's memory manager should hold for ``obj``, where and with which patches."""
    engine = _engine()
    unet = getattr(obj, "unet", None)
    if isinstance(unet, nn.Module) and hasattr(obj, "latent_format"):  # ModelHandle (MODEL)
        return unet, engine.unet_placement(unet), getattr(obj, "patches", None), f"{getattr(obj, 'family', '')} UNet"
    encoders = getattr(obj, "encoders", None)
    if isinstance(encoders, nn.Module) and hasattr(obj, "tokenize"):  # ClipHandle (CLIP)
        return encoders, engine.text_placement(), getattr(obj, "patches", None), "text encoders"
    model = getattr(obj, "model", None)
    if isinstance(model, nn.Module) and hasattr(obj, "decode") and hasattr(obj, "dtype"):  # VaeHandle (VAE)
        return model, Placement(obj.device, obj.dtype), None, "VAE"
    if isinstance(model, nn.Module):  # a ModelPatcher-like wrapper of a pack's module
        device = getattr(obj, "load_device", None) or engine.compute.device
        return model, Placement(device), None, type(model).__name__
    if isinstance(obj, nn.Module):
        return obj, Placement(engine.compute.device), None, type(obj).__name__
    return None


class _ModuleView:
    """What ``LoadedModel.model`` is for a module Weft's manager holds that no patcher asked for."""

    def __init__(self, module: nn.Module, entry) -> None:
        self.model = module
        self.load_device = entry.placement.device
        self.offload_device = torch.device("cpu")
        self._entry = entry

    def model_size(self) -> int:
        return self._entry.total_bytes

    def loaded_size(self) -> int:
        return self._entry.resident_bytes

    def current_loaded_device(self) -> torch.device:
        return self.load_device


class LoadedModel:
    """One loaded model as ComfyUI's list holds it. For models Weft's manager holds it reads the
    manager's entry; a pack may also build one around its own patcher and insert it."""

    def __init__(self, model, entry=None) -> None:
        held = isinstance(model, _ModuleView) or not _weakrefable(model)  # a view lives as long as this
        self._model = (lambda: model) if held else weakref.ref(model)
        self._entry = entry
        self.device = entry.placement.device if entry is not None else getattr(model, "load_device", get_torch_device())
        self.currently_used = True
        self.model_finalizer = None

    @property
    def model(self):
        return self._model()

    def real_model(self):
        return self._entry.model if self._entry is not None else getattr(self.model, "model", None)

    def model_memory(self) -> int:
        if self._entry is not None:
            return self._entry.total_bytes
        size = getattr(self.model, "model_size", None)
        return int(size()) if callable(size) else 0

    def model_loaded_memory(self) -> int:
        if self._entry is not None:
            return self._entry.resident_bytes
        size = getattr(self.model, "loaded_size", None)
        return int(size()) if callable(size) else 0

    def model_offloaded_memory(self) -> int:
        return self.model_memory() - self.model_loaded_memory()

    def model_memory_required(self, device) -> int:
        return self.model_offloaded_memory() if torch.device(device) == self.device else self.model_memory()

    def model_load(self, lowvram_model_memory=0, force_patch_weights=False):
        load_models_gpu([self.model])
        return self.real_model()

    def model_use_more_vram(self, extra_memory, force_patch_weights=False) -> int:
        return 0

    def model_unload(self, memory_to_free=None, unpatch_weights=True) -> bool:
        """Take the model off its device (only ``memory_to_free`` bytes if that is enough); True when
        it left entirely."""
        entry = self._entry
        if entry is None:
            current_loaded_models.forget(self)
            detach = getattr(self.model, "detach", None)
            if callable(detach):
                detach(unpatch_weights)
            return True
        if entry.users:
            return False
        if memory_to_free is not None and memory_to_free < entry.resident_bytes:
            if entry.unload_bytes(int(memory_to_free)) >= memory_to_free:
                return False
        entry.unload()
        return True

    def should_reload_model(self, force_patch_weights=False) -> bool:
        return False

    def is_dead(self) -> bool:
        return self.model is None

    def __eq__(self, other) -> bool:
        return isinstance(other, LoadedModel) and self.model is other.model

    __hash__ = object.__hash__


def _weakrefable(obj) -> bool:
    try:
        weakref.ref(obj)
    except TypeError:
        return False
    return True


class _LoadedModels(MutableSequence):
    """``current_loaded_models``: the models Weft's memory manager holds, most recent first, as
    :class:`LoadedModel` objects (their ``model`` the patcher a pack loaded, where one did), then
    models a CPU engine was asked to load, then entries packs inserted themselves."""

    def __init__(self) -> None:
        self._patchers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # module -> ref(patcher)
        self._on_cpu: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # module -> ref(patcher)
        self._inserted: list = []
        self._lock = threading.RLock()

    def remember(self, module: nn.Module, patcher, *, on_cpu: bool) -> None:
        with self._lock:
            if _weakrefable(patcher) and patcher is not module:
                self._patchers[module] = weakref.ref(patcher)
            if on_cpu:
                self._on_cpu[module] = weakref.ref(patcher) if _weakrefable(patcher) else (lambda: patcher)

    def forget(self, item) -> None:
        with self._lock:
            if item in self._inserted:
                self._inserted.remove(item)
            module = item.real_model() if isinstance(item, LoadedModel) else None
            if module is not None:
                self._on_cpu.pop(module, None)

    def forget_cpu_models(self) -> None:
        with self._lock:
            self._on_cpu.clear()

    def _items(self) -> list:
        engine = _engine()
        items = []
        seen = set()
        if engine is not None:
            for entry in engine.memory.loaded_models():
                module = entry.model
                if module is None:
                    continue
                seen.add(id(module))
                ref = self._patchers.get(module)
                patcher = ref() if ref is not None else None
                items.append(LoadedModel(patcher if patcher is not None else _ModuleView(module, entry), entry))
        with self._lock:
            for module, ref in list(self._on_cpu.items()):
                patcher = ref()
                if patcher is not None and id(module) not in seen:
                    items.append(LoadedModel(patcher))
            items.extend(self._inserted)
        return items

    def __getitem__(self, index):
        return self._items()[index]

    def __len__(self) -> int:
        return len(self._items())

    def __iter__(self):
        return iter(self._items())

    def __setitem__(self, index, value) -> None:
        raise TypeError("current_loaded_models is a view of Weft's memory manager; insert or remove entries")

    def __delitem__(self, index) -> None:
        item = self._items()[index]
        if isinstance(index, slice):
            for one in item:
                self.forget(one)
        else:
            self.forget(item)

    def insert(self, index: int, value) -> None:
        """Keep a pack's own entry (listed after Weft's; ``unload_all_models`` unloads it too)."""
        with self._lock:
            self._inserted.insert(max(0, min(index, len(self._inserted))), value)

    def pop(self, index: int = -1):
        item = self._items()[index]
        self.forget(item)
        return item

    def clear(self) -> None:
        unload_all_models()

    def __repr__(self) -> str:
        return f"current_loaded_models({self._items()!r})"


current_loaded_models = _LoadedModels()


def _expand(models) -> list:
    """The models and the models their patches need (ComfyUI's ``model_patches_models``)."""
    found = []
    for model in models:
        found.append(model)
        more = getattr(model, "model_patches_models", None)
        if callable(more):
            try:
                found.extend(more())
            except Exception:  # noqa: BLE001 - a pack's patcher must not stop the load
                log.debug("model_patches_models() of %r failed", model, exc_info=True)
    return found


def load_models_gpu(models, memory_required=0, force_patch_weights=False, minimum_memory_required=None,
                    force_full_load=False) -> None:
    """Make ``models`` usable on :func:`get_torch_device`.

    Weft's MODEL, CLIP and VAE handles and ModelPatcher-like objects (``.model`` an ``nn.Module``)
    go to the memory manager, which keeps them resident (patches applied) as far as the VRAM mode
    and free memory allow and streams the rest per call; they stay until memory is needed. On a
    CPU engine nothing moves. Objects it cannot place are skipped with a debug message.
    """
    engine = _engine()
    if engine is None:
        return
    on_cpu = engine.options.mode is VramMode.CPU
    for obj in _expand(models):
        unit = _unit_of(obj)
        if unit is None:
            log.debug("load_models_gpu: nothing to load in %r", type(obj).__name__)
            continue
        module, placement, patches, name = unit
        current_loaded_models.remember(module, obj, on_cpu=on_cpu)
        if on_cpu:
            continue
        extra = max(0, int(memory_required))
        force = force_full_load or engine.options.mode is VramMode.GPU_ONLY
        entry = engine.memory.load(module, placement, patches=patches, inference_bytes=extra, name=name,
                                   force_full=force)
        engine.memory.release(entry)


def load_model_gpu(model) -> None:
    load_models_gpu([model])


def loaded_models(only_currently_used=False) -> list:
    return [item.model for item in current_loaded_models if item.model is not None]


def free_memory(memory_required, device, keep_loaded=()) -> list:
    """Unload least-recently-used models from ``device`` until ``memory_required`` bytes are free;
    the :class:`LoadedModel` entries that left the device entirely."""
    engine = _engine()
    if engine is None:
        return []
    device = torch.device(device)
    keep_modules = {id(item.real_model()) for item in keep_loaded if isinstance(item, LoadedModel)}
    before = [item for item in current_loaded_models if item._entry is not None and item.device == device
              and item.model_loaded_memory() > 0]
    keep = tuple(item._entry for item in before if id(item._entry.model) in keep_modules)
    engine.memory.free_memory(int(min(memory_required, 2 ** 62)), device, keep=keep)
    return [item for item in before if item._entry.resident_bytes == 0]


def unload_all_models() -> None:
    """Every model off the device (those in use stay), and the entries packs inserted unloaded."""
    engine = _engine()
    if engine is not None:
        engine.unload_all()
    current_loaded_models.forget_cpu_models()
    for item in list(current_loaded_models._inserted):
        try:
            item.model_unload()
        except Exception:  # noqa: BLE001 - a pack's entry must not stop the others
            log.debug("model_unload() of a pack's loaded model failed", exc_info=True)
        current_loaded_models.forget(item)


def cleanup_models() -> None:
    """Weft's manager forgets collected models by itself."""


def cleanup_models_gc() -> None:
    """Weft's manager forgets collected models by itself."""


# -- interrupts ------------------------------------------------------------------------------------------

def _interrupt_flag():
    context = current_context()
    return context.interrupt if context is not None else host().interrupt


def interrupt_current_processing(value=True) -> None:
    """Ask the running job to stop (``value=False`` withdraws the request)."""
    flag = _interrupt_flag()
    flag.request() if value else flag.clear()


def processing_interrupted() -> bool:
    return _interrupt_flag().is_set()


def throw_exception_if_processing_interrupted() -> None:
    """Raise :data:`InterruptProcessingException` (clearing the request) when the job was interrupted."""
    _interrupt_flag().raise_if_set()


# -- module globals ComfyUI computes at start-up, read when asked for ----------------------------------------

_LIVE = {
    "vram_state": _vram_state,
    "set_vram_to": _vram_state,
    "cpu_state": _cpu_state,
    "total_vram": lambda: get_total_memory(get_torch_device()) / MIB,
    "total_ram": lambda: get_total_memory(torch.device("cpu")) / MIB,
    "DISABLE_SMART_MEMORY": lambda: _engine() is not None and not _engine().options.smart_memory,
    "EXTRA_RESERVED_VRAM": extra_reserved_memory,
    "FORCE_FP32": _forced_fp32,
    "interrupt_processing": processing_interrupted,
}


#: Of those, the ones packs assign to (``interrupt_processing = False`` to reset the request).
_WRITES = {"interrupt_processing": lambda value: interrupt_current_processing(bool(value))}


def __getattr__(name: str) -> Any:
    if name in _LIVE:
        return _LIVE[name]()
    raise AttributeError(f"module 'comfy.model_management' has no attribute {name!r}")


class _Module(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        if name in _WRITES:
            _WRITES[name](value)
        else:
            super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Module
