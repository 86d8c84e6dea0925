"""The engine object the server builds once and hands down to the nodes (``services().engine``).

It decides where and in which precision models run (``compute``), and it prepares a model for
each use through its :class:`~ldm.memory.MemoryManager`: resident on the device when it fits,
partially streamed otherwise, LoRA patches applied to resident weights once and to streamed ones
per call. Nodes never move weights themselves; they wrap a use in

* ``with engine.use_unet(model) as unet:`` — a whole sampling run; ``unet(x, timesteps,
  context=…, y=…)`` takes inputs on any device and in any dtype and returns the network output
  in ``x``'s device and dtype, computed on the device in ``compute.dtype``;
* ``with engine.use_control(network) as run:`` — a ControlNet / T2I-Adapter for a model call
  (lent by the UNet of a sampling run, ``RunnableUNet.lend``);
* ``with engine.use_vae(vae, inference_bytes=…):`` — around ``vae.decode``/``vae.encode``;
* ``engine.encode_tokens(clip, tokens, add_dict)`` — text encoding, cached by (model, tokens);
* ``engine.admit(nbytes, what, device)`` — before a large allocation: raises
  :class:`~ldm.memory.AdmissionError` (a ``MemoryError``) when it cannot fit.

An out-of-memory error inside a UNet call unloads the other models, halves what this one keeps
resident and retries once; a second failure raises :class:`EngineOutOfMemory` with advice.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from typing import Any, Iterator, Mapping

import torch

from ldm.devices import ComputeSettings, detect_compute, total_memory_bytes
from ldm.memory import MemoryManager, MemoryOptions, Placement, VramMode, admission
from ldm.memory.plan import unet_inference_bytes
from ldm.memory.text_cache import TextEncodeCache
from ldm.networks import onednn
from ldm.networks.ops import SlicedAttention

log = logging.getLogger(__name__)

MIB = 1024 ** 2
#: Activation-memory factor per family (ComfyUI's ``memory_usage_factor``; SDXL's attention is
#: mostly at 1/2 and 1/4 resolution).
USAGE_FACTORS = {"sdxl": 0.8, "sdxl_refiner": 0.8}
FP8_DTYPES = (torch.float8_e4m3fn, torch.float8_e5m2)
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
#: ComfyUI's ``model_options`` key for a MODEL's own ``torch.compile`` arguments (TorchCompileModel).
TORCH_COMPILE_KWARGS = "torch_compile_kwargs"


class EngineOutOfMemory(RuntimeError):
    """A model did not fit on its device even after unloading the others and streaming."""


def is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "can't allocate memory" in str(error)


def _shape(value) -> str:
    return "x".join(str(s) for s in value.shape) if torch.is_tensor(value) else "?"


def set_attention_slicing(model: torch.nn.Module, max_score_bytes: int | None) -> None:
    for module in model.modules():
        if isinstance(module, SlicedAttention):
            module.attention_slice_bytes = max_score_bytes


class RunnableUNet:
    """The UNet of a MODEL made ready for one sampling run (see :meth:`Engine.use_unet`)."""

    def __init__(self, engine: "Engine", entry, module: torch.nn.Module, placement: Placement,
                 compute_dtype: torch.dtype, compiled=None) -> None:
        self._engine = engine
        self._entry = entry
        self.module = module
        self.config = getattr(module, "config", None)
        self.device = placement.device
        self.dtype = compute_dtype
        self.channels_last = placement.channels_last
        self._compiled = compiled

    def _forward(self, x, timesteps, context, y, extra):
        x = x.to(device=self.device, dtype=self.dtype)
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        timesteps = torch.as_tensor(timesteps).to(self.device)
        if context is not None:
            context = context.to(device=self.device, dtype=self.dtype)
        if y is not None:
            y = y.to(self.device)
        run = self._compiled if self._compiled is not None and self._entry.fully_resident else self.module
        with torch.no_grad():
            return run(x, timesteps, context=context, y=y, **extra)

    def __call__(self, x: torch.Tensor, timesteps, context: torch.Tensor | None = None,
                 y: torch.Tensor | None = None, **extra) -> torch.Tensor:
        failed = None
        try:
            out = self._forward(x, timesteps, context, y, extra)
        except Exception as error:  # noqa: BLE001 - only out-of-memory errors are handled
            if not is_out_of_memory(error):
                raise
            failed = f"{type(error).__name__}: {error}"
        if failed is not None:
            # Retried outside the except block, so the failed call's activations are released.
            if not self._engine.memory.shrink(self._entry):
                raise EngineOutOfMemory(self._advice(x, failed))
            try:
                out = self._forward(x, timesteps, context, y, extra)
            except Exception as error:  # noqa: BLE001
                if is_out_of_memory(error):
                    raise EngineOutOfMemory(self._advice(x, f"{type(error).__name__}: {error}")) from None
                raise
        return out.to(device=x.device, dtype=x.dtype, memory_format=torch.contiguous_format)

    def lend(self, network: torch.nn.Module):
        """A ControlNet / T2I-Adapter placed beside this UNet for a call (:meth:`Engine.use_control`)."""
        return self._engine.use_control(network)

    def _advice(self, x, cause: str) -> str:
        return (f"out of memory on {self.device} running the UNet on latents {_shape(x)} in {self.dtype}, "
                f"even after unloading other models and keeping only "
                f"{self._entry.resident_bytes // MIB} MB of its weights resident. Try --lowvram or "
                f"--novram, a smaller image or batch, or a lower --reserve-vram. ({cause.strip()[:300]})")


class Engine:
    def __init__(self, compute: ComputeSettings | None = None, memory: MemoryOptions | None = None, *,
                 manager: MemoryManager | None = None, compile_mode: str | None = None,
                 text_cache_entries: int = 64) -> None:
        self.compute = compute if compute is not None else detect_compute()
        if memory is None:
            memory = MemoryOptions(mode=VramMode.CPU if self.compute.device.type == "cpu" else VramMode.NORMAL)
        self.memory = manager if manager is not None else MemoryManager(memory)
        self._packing_works: dict[torch.dtype, bool] = {}  # checked once per dtype (onednn.packing_works)
        self.set_compile(compile_mode)
        self.text_cache = TextEncodeCache(text_cache_entries)

    @property
    def options(self) -> MemoryOptions:
        return self.memory.options

    @property
    def intermediate_device(self) -> torch.device:
        """Where results between nodes live: the CPU, or the device with ``--gpu-only``."""
        return self.compute.device if self.options.intermediates_on_device else torch.device("cpu")

    def _channels_last(self, device: torch.device, dtype: torch.dtype | None) -> bool:
        """NHWC layout where it was measured to pay: bf16 on the CPU (VAE decode 8 % faster,
        UNet even; fp32 NCHW is faster there), CUDA under ``--compile`` or when asked."""
        if device.type == "cpu":
            return dtype == torch.bfloat16
        return self.compute.channels_last or (self.compile_mode is not None and device.type == "cuda")

    def _pack_weights(self, device: torch.device, weight_dtype: torch.dtype | None) -> bool:
        """Conv and linear weights packed for oneDNN (``ldm.networks.onednn``): on the CPU, in bf16 or fp32
        weights, where this PyTorch build was checked to compute them right; not under
        ``torch.compile``, which traces the plain layers."""
        if (device.type != "cpu" or not self.compute.pack_weights or self.compile_mode is not None
                or weight_dtype not in onednn.PACKABLE_DTYPES):
            return False
        if weight_dtype not in self._packing_works:
            self._packing_works[weight_dtype] = onednn.packing_works(weight_dtype)
        return self._packing_works[weight_dtype]

    def unet_placement(self, module: torch.nn.Module | None = None, device: torch.device | None = None, *,
                       compiled: bool = False, compute_dtype: torch.dtype | None = None) -> Placement:
        """Where a UNet runs: ``device`` (a MODEL's own choice) or the compute device. Weights are
        packed only where they are computed in their own dtype (a packed weight cast per call would
        be unpacked per call)."""
        device = self.compute.device if device is None else torch.device(device)
        dtype = self._unet_weight_dtype(module)
        computes_in = compute_dtype or self.compute.dtype
        return Placement(device, dtype, self._channels_last(device, self.compute.dtype),
                         pack_weights=not compiled and dtype == computes_in and self._pack_weights(device, dtype))

    def _unet_weight_dtype(self, module: torch.nn.Module | None) -> torch.dtype:
        """``--fp8_*-unet`` storage if asked; fp8 weights (an fp8 file, or UNETLoader's
        ``weight_dtype``) stay fp8 and are cast per layer; anything else becomes the compute dtype."""
        if self.compute.weight_dtype is not None or module is None:
            return self.compute.unet_weight_dtype
        entry = self.memory.find(module)
        tensors = entry.originals.values() if entry is not None else module.parameters()
        stored = next((t.dtype for t in tensors if t.is_floating_point()), None)
        return stored if stored in FP8_DTYPES else self.compute.dtype

    # --- uses ---------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def use_unet(self, model, *, latent_shape=None) -> Iterator[RunnableUNet]:
        """The UNet of a MODEL handle, ready to run for the block (LoRA patches applied).

        ``latent_shape`` (``[B, C, h, w]``) lets the manager keep room for the activations, and
        refuses the run (:class:`~ldm.memory.AdmissionError`) when even they cannot fit on the
        device after offloading. A MODEL's hooks may name its own compute device and dtype, and its
        own ``torch.compile`` settings (ComfyUI's ``model_options["torch_compile_kwargs"]``).
        """
        hooks = model.hooks
        compiled = self._compiled_for(model.unet, hooks.extra.get(TORCH_COMPILE_KWARGS))
        compute_dtype = hooks.compute_dtype or self.compute.dtype
        placement = self.unet_placement(model.unet, hooks.compute_device, compiled=compiled is not None,
                                        compute_dtype=compute_dtype)
        dtype_size = torch.empty((), dtype=self.compute.dtype).element_size()
        inference = (unet_inference_bytes(latent_shape, dtype_size, USAGE_FACTORS.get(model.family, 1.0))
                     if latent_shape is not None else 0)
        if inference:
            self.admit(inference, f"the {model.family} UNet's activations on latents "
                                  f"{admission.describe_tensor(latent_shape, self.compute.dtype)}",
                       placement.device)
        with self.memory.use(model.unet, placement, patches=model.patches, inference_bytes=inference,
                             name=f"{model.family} UNet", force_full=self.options.mode is VramMode.GPU_ONLY) as entry:
            set_attention_slicing(model.unet, self._attention_slice_bytes(placement.device, inference))
            yield RunnableUNet(self, entry, model.unet, placement, compute_dtype, compiled)

    @contextlib.contextmanager
    def use_control(self, network: torch.nn.Module) -> Iterator[Any]:
        """A ControlNet or T2I-Adapter placed like a UNet (resident or streamed, in the compute
        dtype) for the block; yields ``run(**inputs)``, which moves the floating-point inputs to
        the device and dtype and returns the network's output there."""
        placement = self.unet_placement(network)
        with self.memory.use(network, placement, name=type(network).__name__,
                             force_full=self.options.mode is VramMode.GPU_ONLY):
            device, dtype = placement.device, self.compute.dtype

            def run(**inputs):
                moved = {key: value.to(device=device, dtype=dtype)
                         if torch.is_tensor(value) and value.is_floating_point() else value
                         for key, value in inputs.items()}
                with torch.no_grad():
                    return network(**moved)

            yield run

    def _attention_slice_bytes(self, device: torch.device, inference_bytes: int) -> int | None:
        """A cap on attention score matrices where memory is short (lowvram/novram, or little free
        after loading); None elsewhere. SDPA's fused kernels need no cap; its math fallback does."""
        if device.type == "cpu" and self.options.mode is VramMode.CPU:
            return None
        free = self.memory.free_bytes(device)
        if self.options.mode in (VramMode.LOW, VramMode.NONE) or free < 2 * max(inference_bytes, 256 * MIB):
            return max(32 * MIB, free // 4)
        return None

    def set_compile(self, mode: str | None) -> None:
        """Switch ``torch.compile`` on (a mode of :data:`COMPILE_MODES`) or off; compiled models are dropped."""
        if mode is not None and mode not in COMPILE_MODES:
            raise ValueError(f"compile mode must be one of {COMPILE_MODES}, got {mode!r}")
        self.compile_mode = mode
        self._compiled = weakref.WeakKeyDictionary()

    def _compiled_for(self, module: torch.nn.Module, compile_kwargs: Mapping | None = None):
        """``module`` compiled with a MODEL's own settings (TorchCompileModel) or the engine's mode;
        None when neither asks for compilation. One compiled module per module and settings."""
        if compile_kwargs is None:
            if self.compile_mode is None:
                return None
            # Static shapes: one graph per latent size, batch and conditioning length, cached by torch.
            compile_kwargs = {"mode": self.compile_mode, "dynamic": False}
        key = tuple(sorted((name, repr(value)) for name, value in compile_kwargs.items()))
        by_settings = self._compiled.setdefault(module, {})
        if key not in by_settings:
            by_settings[key] = torch.compile(module, **compile_kwargs)
        return by_settings[key]

    @contextlib.contextmanager
    def use_vae(self, vae, *, inference_bytes: int = 0) -> Iterator[Any]:
        """A VAE handle whose autoencoder is on its device for the block."""
        placement = Placement(vae.device, vae.dtype, self._channels_last(vae.device, vae.dtype))
        with self.memory.use(vae.model, placement, inference_bytes=inference_bytes, name="VAE"):
            set_attention_slicing(vae.model, self._attention_slice_bytes(placement.device, inference_bytes))
            yield vae

    def text_placement(self, device: torch.device | None = None) -> Placement:
        """Where text encoders run: ``device`` (a CLIP's own choice) or the engine's text device."""
        if device is None:
            device = self.compute.device
            if device.type != "cpu" and not self.options.text_encoders_on_device:
                device = torch.device("cpu")
        device = torch.device(device)
        dtype = self.compute.text_dtype if device.type != "cpu" else None
        return Placement(device, dtype, False)

    @contextlib.contextmanager
    def use_clip(self, clip) -> Iterator[Any]:
        """A CLIP handle whose encoders are on the text device (or the handle's ``compute_device``,
        set by SelectCLIPDevice) for the block."""
        placement = self.text_placement(getattr(clip, "compute_device", None))
        with self.memory.use(clip.encoders, placement, name="text encoders", force_full=True):
            yield clip

    def encode_tokens(self, clip, tokens: Mapping[str, list], add_dict: Mapping | None = None) -> list:
        """CONDITIONING for ``tokens`` (``clip.tokenize`` output), encoded once per
        (encoder, CLIP layer, LoRA patches, tokens) and reused while cached."""
        found, key = self.text_cache.get(clip, tokens)
        if found is None:
            with self.use_clip(clip):
                cond, pooled = clip.encode_from_tokens(tokens, return_pooled=True)
            self.text_cache.put(clip, key, cond, pooled)
        else:
            cond, pooled = found
        extras = {"pooled_output": None if pooled is None else pooled.clone(), **(add_dict or {})}
        return [[cond.clone(), extras]]

    # --- admission -----------------------------------------------------------------------------------

    def admit(self, nbytes: int, what: str, device: torch.device | str | None = None) -> None:
        """Refuse an allocation of ``nbytes`` on ``device`` (default: the CPU, where nodes make
        their results) that cannot fit: :class:`~ldm.memory.AdmissionError` names ``what``, its
        size and what is available (see :mod:`ldm.memory.admission`)."""
        admission.admit(self.memory, nbytes, what, "cpu" if device is None else device)

    # --- server requests -----------------------------------------------------------------------------

    def unload_all(self) -> None:
        """Give back the device memory of every model not in use (``/free`` with unload_models)."""
        self.memory.unload_all()

    def free_memory(self) -> None:
        """``/free`` with free_memory: unload models and forget cached text encodings."""
        self.memory.unload_all()
        self.text_cache.clear()

    def device_stats(self) -> list[dict]:
        """The compute devices for ``/system_stats`` (ComfyUI's fields)."""
        import psutil

        device = self.compute.device
        if device.type == "cuda":
            free, total = torch.cuda.mem_get_info(device)
            reserved = torch.cuda.memory_reserved(device)
            return [{"name": f"{device} {torch.cuda.get_device_name(device)}", "type": "cuda",
                     "index": device.index or 0, "vram_total": total,
                     "vram_free": free + reserved - torch.cuda.memory_allocated(device),
                     "torch_vram_total": reserved,
                     "torch_vram_free": reserved - torch.cuda.memory_allocated(device),
                     "models": self.memory.stats()}]
        memory = psutil.virtual_memory()
        return [{"name": "cpu", "type": "cpu", "index": None, "vram_total": total_memory_bytes(device),
                 "vram_free": memory.available, "torch_vram_total": 0, "torch_vram_free": 0,
                 "models": self.memory.stats()}]
