"""Image upscale models (ESRGAN, Real-ESRGAN, SwinIR, HAT, DAT, OmniSR …), run in tiles.

spandrel (``ModelLoader().load_from_state_dict``) recognises the architecture from a bare state
dict and builds it, as ComfyUI and chaiNNer do; the ``UPSCALE_MODEL`` value between nodes is its
:class:`spandrel.ImageModelDescriptor` itself, so node packs that call ``model(image)`` or read
``model.scale`` find what they expect. Files are read through :mod:`ldm.loading.checkpoint` (safetensors,
or ``torch.load(weights_only=True)``), never through an unrestricted unpickler.

Images are upscaled in tiles (facts from ComfyUI's ``ImageUpscaleWithModel`` and
``comfy.utils.tiled_scale``): tiles of ``tile`` pixels start every ``tile - overlap`` pixels, the
last ones are cut short at the image's edge; each upscaled tile is weighted by a mask that rises
linearly over ``overlap · scale`` pixels from each of its edges, and the sum is divided by the summed
weights. The first tile size is the largest that fits in free memory (ComfyUI always starts at 512
on its GPU); an out-of-memory error halves it, down to :data:`MIN_TILE`.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
from typing import Callable, Mapping, Sequence, Union

import torch

from ldm.engine import is_out_of_memory
from ldm.imaging.operations import resample
from ldm.loading.checkpoint import CheckpointError, load_object
from ldm.memory import Placement

log = logging.getLogger(__name__)

#: ComfyUI's tile and overlap (pixels of the input image).
TILE = 512
OVERLAP = 32
#: Below this tile size an out-of-memory error is given up on (ComfyUI's limit).
MIN_TILE = 128
#: ComfyUI's estimate of an upscale model's working memory: this many times the bytes of one
#: upscaled input tile (a rough figure it keeps for every architecture).
ACTIVATION_FACTOR = 384.0
#: ComfyUI strips a DataParallel ``module.`` prefix from SwinIR files that carry one.
_DATAPARALLEL_PREFIX = "module."

Progress = Callable[[int, int], None]
#: How an input size or offset along one axis becomes the output's: a factor, or a function.
ScaleRule = Union[float, Callable[[float], float]]


class UpscaleModelError(ValueError):
    """A file that holds no single-image upscale model spandrel knows."""


def _tensor_dict(loaded: object, path: str | os.PathLike) -> dict:
    if not isinstance(loaded, Mapping):
        raise CheckpointError(f"{path}: holds a {type(loaded).__name__}, not a state dict")
    state = dict(loaded)
    if state and all(isinstance(k, str) and k.startswith(_DATAPARALLEL_PREFIX) for k in state):
        state = {k[len(_DATAPARALLEL_PREFIX):]: v for k, v in state.items()}
    return state


def load_upscale_model(path: str | os.PathLike):
    """The spandrel :class:`~spandrel.ImageModelDescriptor` of an upscale model file, in eval mode.

    Nested files (Real-ESRGAN's ``{"params_ema": …}``, ``{"params": …}``, ``{"state_dict": …}``)
    are unwrapped by spandrel. Raises :class:`~ldm.loading.checkpoint.CheckpointError` for unreadable or
    unsafe files and :class:`UpscaleModelError` for models spandrel does not know.
    """
    from spandrel import ImageModelDescriptor, ModelLoader, UnsupportedModelError

    state = _tensor_dict(load_object(path), path)
    try:
        descriptor = ModelLoader().load_from_state_dict(state)
    except UnsupportedModelError:
        raise UpscaleModelError(f"{path}: not an upscale model architecture spandrel knows") from None
    if not isinstance(descriptor, ImageModelDescriptor):
        raise UpscaleModelError(f"{path}: upscale model must be a single-image model, "
                                f"this is a {type(descriptor).__name__} ({descriptor.architecture.name})")
    log.info("loaded upscale model %s: %s x%d", path, descriptor.architecture.name, descriptor.scale)
    return descriptor.eval()


# --------------------------------------------------------------------------- tiling


def tile_memory_bytes(tile: int, scale: float, element_size: int = 4) -> int:
    """ComfyUI's working-memory estimate for one ``tile`` x ``tile`` RGB tile at ``scale``."""
    return int(tile * tile * 3 * element_size * max(scale, 1.0) * ACTIVATION_FACTOR)


def first_tile(free_bytes: int, scale: float, element_size: int = 4) -> int:
    """The largest tile (``TILE`` halved, not below ``MIN_TILE``) whose estimate fits ``free_bytes``."""
    tile = TILE
    while tile > MIN_TILE and tile_memory_bytes(tile, scale, element_size) > free_bytes:
        tile //= 2
    return tile


def tile_origins(size: int, tile: int, overlap: int) -> list[int]:
    """Where tiles start along an axis of ``size`` pixels (the last ones may run short)."""
    if size <= tile:
        return [0]
    return list(range(0, size - overlap, tile - overlap))


def tile_count(height: int, width: int, tile: int, overlap: int) -> int:
    return len(tile_origins(height, tile, overlap)) * len(tile_origins(width, tile, overlap))


def feather_mask(sizes: Sequence[int], feathers: Sequence[int]) -> torch.Tensor:
    """Weights of shape ``sizes`` rising linearly (1/f, 2/f … 1) over ``feathers[d]`` positions
    from both ends of each axis ``d``; an axis no longer than its feather (or with none) is left flat."""
    mask = torch.ones(tuple(sizes))
    for dim, (length, feather) in enumerate(zip(sizes, feathers)):
        if feather <= 0 or feather >= length:
            continue
        ramp = torch.arange(1, feather + 1, dtype=torch.float32) / feather
        shape = [1] * len(sizes)
        shape[dim] = feather
        mask.narrow(dim, 0, feather).mul_(ramp.view(shape))
        mask.narrow(dim, length - feather, feather).mul_(ramp.flip(0).view(shape))
    return mask


def _per_axis(value, axes: int) -> list:
    return list(value) if isinstance(value, (tuple, list)) else [value] * axes


def tiled_scale(fn: Callable[[torch.Tensor], torch.Tensor], samples: torch.Tensor, *,
                tile: int | Sequence[int], overlap: int | Sequence[int], scale: ScaleRule | Sequence[ScaleRule],
                out_channels: int, progress: Progress | None = None, output_device: torch.device | str = "cpu",
                downscale: bool = False, offsets: ScaleRule | Sequence[ScaleRule] | None = None) -> torch.Tensor:
    """``fn`` over ``samples`` ``[B, C, *spatial]`` in feathered overlapping tiles, one item at a time.

    ``tile``, ``overlap`` (input positions), ``scale`` and ``offsets`` are one value for every
    spatial axis or one per axis. ``scale`` makes an output size from an input size: a factor (a
    divisor with ``downscale``: VAE encoding) or a function; ``offsets`` makes a tile's output start
    from its input start where ``scale`` does not (ComfyUI's ``index_formulas``). Each tile's output
    (``[1, out_channels, *tile output]``) is weighted by :func:`feather_mask` over the scaled overlap
    and the weighted sum divided by the summed weights. ``progress(done, total)`` after each tile.
    """
    axes = samples.ndim - 2
    tiles, overlaps, scales = _per_axis(tile, axes), _per_axis(overlap, axes), _per_axis(scale, axes)
    positions = _per_axis(offsets, axes) if offsets is not None else scales

    def scaled(rule: ScaleRule, value: float) -> float:
        if callable(rule):
            return rule(value)
        return value / rule if downscale else value * rule

    spatial = samples.shape[2:]
    out_size = [round(scaled(scales[d], spatial[d])) for d in range(axes)]
    feathers = [round(scaled(scales[d], overlaps[d])) for d in range(axes)]
    origins = [tile_origins(spatial[d], tiles[d], overlaps[d]) for d in range(axes)]
    out = torch.empty([samples.shape[0], out_channels] + out_size, device=output_device)
    steps, done = samples.shape[0] * math.prod(len(found) for found in origins), 0
    for index in range(samples.shape[0]):
        item = samples[index:index + 1]
        if all(spatial[d] <= tiles[d] for d in range(axes)):
            out[index:index + 1] = fn(item).to(output_device)
            done += 1
            if progress is not None:
                progress(done, steps)
            continue
        total = torch.zeros([1, out_channels] + out_size, device=output_device)
        weights = torch.zeros([1, 1] + out_size, device=output_device)
        for corner in itertools.product(*origins):
            piece = item
            for d, start in enumerate(corner):
                piece = piece.narrow(d + 2, start, min(tiles[d], spatial[d] - start))
            result = fn(piece).to(output_device)
            mask = feather_mask(result.shape[2:], feathers).to(output_device)[None, None]
            target, norm = total, weights
            for d, start in enumerate(corner):
                offset = round(scaled(positions[d], start))
                target = target.narrow(d + 2, offset, result.shape[d + 2])
                norm = norm.narrow(d + 2, offset, result.shape[d + 2])
            target.add_(result * mask)
            norm.add_(mask)
            done += 1
            if progress is not None:
                progress(done, steps)
        out[index:index + 1] = total / weights
    return out


# --------------------------------------------------------------------------- running


def upscale_image(engine, model, image: torch.Tensor, *, progress: Progress | None = None,
                  overlap: int = OVERLAP) -> torch.Tensor:
    """``image`` ``[B, H, W, C]`` (RGB or RGBA, 0..1) upscaled by ``model`` (a spandrel descriptor).

    The network runs in float32 (as ComfyUI runs it) on the engine's device, placed there by the
    engine's memory manager; the tile size starts at what free memory allows and halves after an
    out-of-memory error. An alpha channel is resized bilinearly beside the RGB result.
    """
    alpha = image[..., 3:4] if image.shape[-1] == 4 else None
    rgb = image[..., :3] if alpha is not None else image
    device = engine.compute.device
    scale = int(model.scale)
    pixels = rgb.movedim(-1, 1).float()
    tile = first_tile(engine.memory.free_bytes(device), scale)

    def run(piece: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(piece.to(device))

    with engine.memory.use(model.model, Placement(device, torch.float32), name="upscale model",
                           force_full=True, inference_bytes=tile_memory_bytes(tile, scale)):
        while True:
            failed = None
            try:
                out = tiled_scale(run, pixels, tile=tile, overlap=overlap, scale=scale,
                                  out_channels=model.output_channels, progress=progress,
                                  output_device=engine.intermediate_device)
            except Exception as error:  # noqa: BLE001 - only out-of-memory errors are retried
                if not is_out_of_memory(error) or tile // 2 < MIN_TILE:
                    raise
                failed = f"{type(error).__name__}: {str(error)[:200]}"
            if failed is None:
                break
            # Retried outside the except block, so the failed attempt's tensors are released.
            log.warning("upscale ran out of memory with %d px tiles; trying %d (%s)", tile, tile // 2, failed)
            tile //= 2
            if device.type == "cuda":
                torch.cuda.empty_cache()
    result = out.clamp(0.0, 1.0).movedim(1, -1)
    if alpha is not None:
        height, width = result.shape[1:3]
        resized = resample(alpha.movedim(-1, 1).to(result), width, height, "bilinear", "disabled")
        result = torch.cat((result, resized.movedim(1, -1)), dim=-1)
    return result
