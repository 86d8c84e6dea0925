"""ComfyUI's ``comfy.utils`` for node packs: progress bars, resampling, tiling, state-dict helpers.

``ProgressBar`` moves the editor's progress bar of the running node through
:func:`graph.context.report_progress`; resampling is :mod:`ldm.imaging.operations`'s; files are read by
:mod:`ldm.loading.checkpoint`, so a pickle is only ever opened with ``torch.load(weights_only=True)``
whatever ``safe_load`` says, and the format comes from the file's bytes, not its name.
"""

from __future__ import annotations

import logging
import os
import struct
import time
from typing import Any, Callable

import torch
import torch.nn.functional as F

from graph.context import check_interrupted, report_progress
from ldm.imaging import operations as imaging, upscale
from ldm.loading.checkpoint import load_object, read_safetensors_header, save_state_dict, sniff_format
from ldm.sampling.model_conds import resize_to_batch_size  # noqa: F401  (ComfyUI's name, Weft's function)

log = logging.getLogger(__name__)

#: Weft memory-maps torch zip archives and safetensors files, and never unpickles unsafely.
MMAP_TORCH_FILES = True
DISABLE_MMAP = False
ALWAYS_SAFE_LOAD = True


# -- files ---------------------------------------------------------------------------------------------

def _to_device(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _to_device(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_device(v, device) for v in value)
    return value


def load_torch_file(ckpt, safe_load=False, device=None, return_metadata=False):
    """The contents of a weights file: a safetensors file's tensors, or what a torch file holds
    (its ``state_dict`` entry, or the value of its only key when that is a dict), on ``device``.

    With ``return_metadata``: ``(contents, metadata)``, metadata being the safetensors header's
    ``__metadata__`` (None when absent, and for torch files). Raises
    ``ldm.loading.checkpoint.CheckpointError`` (a ``ValueError``) for files that cannot be read
    safely.
    """
    if not os.path.isfile(ckpt):
        raise FileNotFoundError(f"no such weights file: {ckpt}")
    device = torch.device("cpu") if device is None else torch.device(device)
    metadata = None
    if sniff_format(ckpt) == "safetensors":
        contents = load_object(ckpt)
        metadata = read_safetensors_header(ckpt)[1] or None
    else:
        loaded = load_object(ckpt)
        contents = loaded
        if isinstance(loaded, dict):
            if "state_dict" in loaded:
                contents = loaded["state_dict"]
            elif len(loaded) == 1 and isinstance(next(iter(loaded.values())), dict):
                contents = next(iter(loaded.values()))
    if device.type != "cpu":
        contents = _to_device(contents, device)
    return (contents, metadata) if return_metadata else contents


def save_torch_file(sd, ckpt, metadata=None):
    """Write ``sd`` as a safetensors file (with ``metadata``: string to string)."""
    save_state_dict(ckpt, sd, metadata)


def safetensors_header(safetensors_path, max_size=100 * 1024 * 1024):
    """The raw JSON header bytes of a safetensors file; None when it claims more than ``max_size``."""
    with open(safetensors_path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        if length > max_size:
            return None
        return handle.read(length)


# -- state dicts and attributes ---------------------------------------------------------------------------

def calculate_parameters(sd, prefix=""):
    """Number of elements in the tensors whose key starts with ``prefix``."""
    return sum(value.nelement() for key, value in sd.items() if key.startswith(prefix))


def weight_dtype(sd, prefix=""):
    """The dtype holding the most elements among the tensors under ``prefix`` (None if there are none)."""
    counts: dict[torch.dtype, int] = {}
    for key, value in sd.items():
        if key.startswith(prefix):
            counts[value.dtype] = counts.get(value.dtype, 0) + value.numel()
    return max(counts, key=counts.get) if counts else None


def state_dict_key_replace(state_dict, keys_to_replace):
    """Rename keys in place (``{old: new}``); returns the same dict."""
    for old, new in keys_to_replace.items():
        if old in state_dict:
            state_dict[new] = state_dict.pop(old)
    return state_dict


def state_dict_prefix_replace(state_dict, replace_prefix, filter_keys=False):
    """Swap key prefixes (``{old_prefix: new_prefix}``). In place, or with ``filter_keys`` into a
    new dict that holds only the renamed keys (they are removed from ``state_dict`` either way)."""
    out = {} if filter_keys else state_dict
    for old, new in replace_prefix.items():
        for key in [k for k in state_dict if k.startswith(old)]:
            out[new + key[len(old):]] = state_dict.pop(key)
    return out


def convert_sd_to(state_dict, dtype):
    for key in list(state_dict):
        state_dict[key] = state_dict[key].to(dtype)
    return state_dict


def get_attr(obj, attr):
    """``obj.a.b.c`` for ``"a.b.c"``."""
    for name in attr.split("."):
        obj = getattr(obj, name)
    return obj


def set_attr(obj, attr, value):
    """Set ``obj.a.b.c = value`` for ``"a.b.c"``; returns the previous value."""
    *path, last = attr.split(".")
    owner = get_attr(obj, ".".join(path)) if path else obj
    previous = getattr(owner, last)
    setattr(owner, last, value)
    return previous


def set_attr_param(obj, attr, value):
    return set_attr(obj, attr, torch.nn.Parameter(value, requires_grad=False))


def copy_to_param(obj, attr, value):
    """Copy ``value`` into the existing tensor at ``attr`` (in place, keeping its storage)."""
    get_attr(obj, attr).data.copy_(value)


# -- batches and resampling ---------------------------------------------------------------------------------

def repeat_to_batch_size(tensor, batch_size, dim=0):
    """``tensor`` cut or cyclically repeated along ``dim`` to ``batch_size`` entries."""
    return imaging.repeat_to_batch(tensor.movedim(dim, 0), batch_size).movedim(0, dim)


bislerp = imaging.bislerp
lanczos = imaging.lanczos


def common_upscale(samples, width, height, upscale_method, crop):
    """Resize ``[B, C, H, W]`` (or ``[B, C, T, H, W]``, frame by frame; ``[B, H, W]`` as one channel)
    to ``height x width`` with one of ComfyUI's methods (nearest-exact, bilinear, area, bicubic,
    lanczos, bislerp); ``crop="center"`` first cuts to the target aspect."""
    shape = tuple(samples.shape)
    if len(shape) == 3:
        return common_upscale(samples.unsqueeze(1), width, height, upscale_method, crop).squeeze(1)
    if len(shape) > 4:  # [B, C, *frames, H, W] -> [B * frames, C, H, W]
        frames = samples.reshape(shape[0], shape[1], -1, shape[-2], shape[-1]).movedim(2, 1)
        out = common_upscale(frames.reshape(-1, shape[1], shape[-2], shape[-1]), width, height,
                             upscale_method, crop)
        out = out.reshape(shape[0], -1, shape[1], height, width).movedim(1, 2)
        return out.reshape(shape[:-2] + (height, width))
    if upscale_method in imaging.RESAMPLERS:
        return imaging.resample(samples, width, height, upscale_method, crop)
    if crop == "center":
        samples = imaging.center_crop_to_aspect(samples, width, height)
    return F.interpolate(samples, size=(height, width), mode=upscale_method)


def reshape_mask(input_mask, output_shape):
    """A mask resized to ``output_shape``'s spatial size, channel count and batch."""
    dims = len(output_shape) - 2
    if dims == 1:
        mode = "linear"
    elif dims == 2:
        input_mask = input_mask.reshape((-1, 1) + tuple(input_mask.shape[-2:]))
        mode = "bilinear"
    elif dims == 3:
        if input_mask.ndim < 5:
            input_mask = input_mask.reshape((1, 1, -1) + tuple(input_mask.shape[-2:]))
        mode = "trilinear"
    else:
        raise ValueError(f"cannot reshape a mask to {dims} spatial dimensions")
    mask = F.interpolate(input_mask, size=tuple(output_shape[2:]), mode=mode)
    if mask.shape[1] < output_shape[1]:
        mask = mask.repeat((1, output_shape[1]) + (1,) * dims)[:, :output_shape[1]]
    return repeat_to_batch_size(mask, output_shape[0])


# -- tiled processing ---------------------------------------------------------------------------------------

def get_tiled_scale_steps(width, height, tile_x, tile_y, overlap):
    """How many tiles :func:`tiled_scale` processes for one image."""
    return len(upscale.tile_origins(height, tile_y, overlap)) * len(upscale.tile_origins(width, tile_x, overlap))


@torch.inference_mode()
def tiled_scale_multidim(samples, function, tile=(64, 64), overlap=8, upscale_amount=4, out_channels=3,
                         output_device="cpu", downscale=False, index_formulas=None, pbar=None):
    """Apply ``function`` (e.g. an upscaler or a VAE) to overlapping tiles of ``samples``
    ``[B, C, *spatial]`` and blend the results with linear feathering over the overlaps: Weft's
    :func:`ldm.imaging.upscale.tiled_scale` (``upscale_amount`` is its ``scale``, ``index_formulas`` its
    ``offsets``). ``pbar.update(1)`` is called per tile.
    """
    progress = (lambda done, total: pbar.update(1)) if pbar is not None else None
    return upscale.tiled_scale(function, samples, tile=tuple(tile), overlap=overlap, scale=upscale_amount,
                               out_channels=out_channels, progress=progress, output_device=output_device,
                               downscale=downscale, offsets=index_formulas)


def tiled_scale(samples, function, tile_x=64, tile_y=64, overlap=8, upscale_amount=4, out_channels=3,
                output_device="cpu", pbar=None):
    """:func:`tiled_scale_multidim` for images ``[B, C, H, W]``."""
    return tiled_scale_multidim(samples, function, (tile_y, tile_x), overlap=overlap,
                                upscale_amount=upscale_amount, out_channels=out_channels,
                                output_device=output_device, pbar=pbar)


# -- progress ---------------------------------------------------------------------------------------------

#: Only affects console bars in ComfyUI; kept for packs that switch it.
PROGRESS_BAR_ENABLED = True
#: Least time and share of the total between two progress messages (first, last and previews
#: always go out): a loop updating per item must not flood the websocket.
PROGRESS_MIN_INTERVAL_S = 0.1
PROGRESS_MIN_FRACTION = 0.005


def _preview_image(preview):
    """ComfyUI's ``("JPEG", PIL image, max_size)`` (or a PIL image, or ``(format, bytes)``) as the
    preview Weft's executor takes; anything else is dropped."""
    if isinstance(preview, tuple) and len(preview) == 3 and hasattr(preview[1], "save"):
        image, max_size = preview[1], preview[2]
        if max_size and max(image.size) > max_size:
            image = image.copy()
            image.thumbnail((max_size, max_size))
        return image
    if hasattr(preview, "save") or (isinstance(preview, tuple) and len(preview) == 2):
        return preview
    return None


def report_to_weft(value, total, preview, node_id=None) -> None:
    """The default progress hook: the running node's progress (and preview) in Weft's events.
    ``node_id`` is accepted for ComfyUI's signature; progress always belongs to the running node."""
    report_progress(int(value), int(total), _preview_image(preview))


PROGRESS_BAR_HOOK: Callable | None = report_to_weft


def set_progress_bar_enabled(enabled):
    global PROGRESS_BAR_ENABLED
    PROGRESS_BAR_ENABLED = enabled


def set_progress_bar_global_hook(function):
    """Replace the hook new ``ProgressBar`` objects call (``function(value, total, preview, node_id=…)``)."""
    global PROGRESS_BAR_HOOK
    PROGRESS_BAR_HOOK = function


class ProgressBar:
    """ComfyUI's progress bar: ``update(n)`` / ``update_absolute(value, total, preview)`` move the
    running node's bar in the editor. Every update checks for an interrupt (raising
    ``comfy.model_management.InterruptProcessingException``); messages are thinned out."""

    def __init__(self, total, node_id=None):
        self.total = total
        self.current = 0
        self.node_id = node_id
        self.hook = PROGRESS_BAR_HOOK
        self._last_sent = None
        self._last_time = 0.0

    def update_absolute(self, value, total=None, preview=None):
        if total is not None:
            self.total = total
        self.current = min(value, self.total)
        check_interrupted()
        if self.hook is None or not self._due(preview):
            return
        self._last_sent, self._last_time = self.current, time.perf_counter()
        self.hook(self.current, self.total, preview, node_id=self.node_id)

    def update(self, value):
        self.update_absolute(self.current + value)

    def _due(self, preview) -> bool:
        if preview is not None or self._last_sent is None or self.current >= self.total:
            return True
        advanced = (self.current - self._last_sent) / self.total if self.total else 1.0
        return (time.perf_counter() - self._last_time >= PROGRESS_MIN_INTERVAL_S
                and advanced >= PROGRESS_MIN_FRACTION)


# -- UNet layer names (CompVis ↔ diffusers) -------------------------------------------------------------
# ComfyUI's tables, read by packs that convert diffusers-format UNet / ControlNet weights
# (Advanced-ControlNet). Derived from Weft's own CompVis ↔ diffusers mapping (ldm/lora/patches.py).

def _unet_names():
    from ldm.lora.patches import _RESNET_PARTS, _UNET_TOP

    params = ("weight", "bias")
    # The fixed layers, as (CompVis key, diffusers key); SD2's class embedding (x4 upscaler, unCLIP)
    # sits where SDXL's add_embedding does.
    basic = {(f"{compvis}.{p}", f"{diffusers}.{p}") for diffusers, compvis in _UNET_TOP.items() for p in params}
    basic |= {(f"label_emb.0.{i}.{p}", f"class_embedding.linear_{n}.{p}") for i, n in ((0, 1), (2, 2))
              for p in params}
    resnet = {f"{compvis}.{p}": f"{diffusers}.{p}" for diffusers, compvis in _RESNET_PARTS.items() for p in params}
    # Spatial-transformer and transformer-block weights keep their names in both layouts.
    attentions = {f"{layer}.{p}" for layer in ("proj_in", "proj_out", "norm") for p in params}
    blocks = {f"norm{i}.{p}" for i in (1, 2, 3) for p in params}
    blocks |= {f"{attn}.to_{x}.weight" for attn in ("attn1", "attn2") for x in "qkv"}
    blocks |= {f"{attn}.to_out.0.{p}" for attn in ("attn1", "attn2") for p in params}
    blocks |= {f"ff.net.{layer}.{p}" for layer in ("0.proj", "2") for p in params}
    return basic, resnet, attentions, blocks


#: ``{(CompVis key, diffusers key)}`` of the UNet's fixed layers (stem, time / class embeddings, output).
#: ``{CompVis suffix: diffusers suffix}`` inside a ResNet block; the suffixes of a spatial transformer's
#: own layers and of a transformer block's (the same in both layouts).
UNET_MAP_BASIC, UNET_MAP_RESNET, UNET_MAP_ATTENTIONS, TRANSFORMER_BLOCKS = _unet_names()
