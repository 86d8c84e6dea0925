"""Latent arithmetic: matching shapes, interpolation, concatenation and cuts, batching, and the
latent operations (tonemap, sharpen, blend toward a reference) that patch CFG or edit a latent.

ComfyUI's ``comfy_extras/nodes_latent.py``, ``nodes_post_processing.batch_latents`` and
``nodes_rebatch.py`` define the behaviour. Latents are ``[B, C, H, W]`` (a video latent's extra
frame axis sits before ``H``: ``[B, C, T, H, W]``); nothing here changes its inputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ldm.imaging import operations as imaging

#: Axis names of LatentConcat / LatentCut, counted from the last axis.
AXIS_FROM_END = {"x": 1, "y": 2, "t": 3}


def reshape_to(target_shape: torch.Size, latent: torch.Tensor, repeat_batch: bool = True) -> torch.Tensor:
    """``latent`` made to fit ``target_shape``: a different channel/size is resized bilinearly
    with a centre crop to the target aspect, and the batch is cut or cyclically repeated to the
    target's unless ``repeat_batch`` is off (ComfyUI's ``reshape_latent_to``)."""
    if latent.shape[1:] != target_shape[1:]:
        latent = imaging.resample(latent, target_shape[-1], target_shape[-2], "bilinear", "center")
    return imaging.repeat_to_batch(latent, target_shape[0]) if repeat_batch else latent


def interpolate(first: torch.Tensor, second: torch.Tensor, ratio: float) -> torch.Tensor:
    """Blend two latents per pixel as directions and lengths apart: the unit vectors over the
    channel axis are mixed ``ratio : 1 - ratio`` and renormalised, the lengths are mixed the same
    way (``first`` gets ``ratio``). Zero vectors count as zero directions."""
    second = reshape_to(first.shape, second)
    length1 = torch.linalg.vector_norm(first, dim=1, keepdim=True)
    length2 = torch.linalg.vector_norm(second, dim=1, keepdim=True)
    mixed = torch.nan_to_num(first / length1) * ratio + torch.nan_to_num(second / length2) * (1.0 - ratio)
    direction = torch.nan_to_num(mixed / torch.linalg.vector_norm(mixed, dim=1, keepdim=True))
    return direction * (length1 * ratio + length2 * (1.0 - ratio))


def concat(first: torch.Tensor, second: torch.Tensor, axis: str) -> torch.Tensor:
    """``second`` appended after ``first`` along ``axis`` ("x", "y", "t"; a leading "-" puts it
    before). ``second``'s batch is repeated or cut to ``first``'s."""
    second = imaging.repeat_to_batch(second, first.shape[0])
    parts = (second, first) if axis.startswith("-") else (first, second)
    return torch.cat(parts, dim=-AXIS_FROM_END[axis.lstrip("-")])


def cut(latent: torch.Tensor, axis: str, index: int, amount: int) -> torch.Tensor:
    """``amount`` entries along ``axis`` from ``index`` (negative counts from the end), clamped
    to what the axis has."""
    dim = latent.ndim - AXIS_FROM_END[axis]
    size = latent.shape[dim]
    if index >= 0:
        index = min(index, size - 1)
        amount = min(size - index, amount)
    else:
        index = max(index, -size)
        amount = min(-index, amount)
    return torch.narrow(latent, dim, index, amount)


def cut_to_batch(latent: torch.Tensor, axis: str, slice_size: int) -> torch.Tensor:
    """Slices of ``slice_size`` along ``axis`` moved into the batch (a remainder that does not
    fill a slice is dropped). An axis that names batch or channels leaves the latent as it is."""
    dim = latent.ndim - AXIS_FROM_END[axis]
    if dim < 2:
        return latent
    moved = latent.movedim(dim, 1)  # [B, S, ...]
    if moved.shape[1] < slice_size:
        slice_size = moved.shape[1]
    else:
        moved = moved[:, :(moved.shape[1] // slice_size) * slice_size]
    return moved.reshape([-1, slice_size, *moved.shape[2:]]).movedim(1, dim)


def batch(latents: list[dict]) -> dict:
    """Latent dicts joined into one batch: each resized to the first's size (batches are not
    repeated) and batch indices kept, or numbered ``0..B-1`` per latent that has none. The first
    dict's other entries are carried."""
    first_shape = latents[0]["samples"].shape
    out = dict(latents[0])
    out["samples"] = torch.cat([reshape_to(first_shape, latent["samples"], repeat_batch=False)
                                for latent in latents], dim=0)
    out["batch_index"] = [index for latent in latents
                          for index in latent.get("batch_index", range(latent["samples"].shape[0]))]
    return out


def _pixel_mask(latent: dict) -> torch.Tensor:
    """The latent's noise mask as ``[B, 1, 8h, 8w]`` (all ones when it has none), one per latent."""
    samples = latent["samples"]
    height, width = samples.shape[-2] * 8, samples.shape[-1] * 8
    mask = latent.get("noise_mask")
    if mask is None:
        return torch.ones((samples.shape[0], 1, height, width))
    mask = mask.reshape((-1, 1, mask.shape[-2], mask.shape[-1]))
    if mask.shape[-2:] != (height, width):
        mask = F.interpolate(mask, size=(height, width), mode="bilinear")
    return imaging.repeat_to_batch(mask, samples.shape[0]) if mask.shape[0] < samples.shape[0] else mask


def rebatch(latents: list[dict], batch_size: int) -> list[dict]:
    """A list of latent batches regrouped into batches of ``batch_size`` (ComfyUI's RebatchLatents).

    Consecutive latents of one size are joined and cut into full batches; a change of size ends
    the current batch early. Batch indices are kept (or numbered by position in the whole list);
    noise masks travel at pixel size and are dropped from batches they do not mask at all.
    """
    groups: list[list] = []  # finished batches as [samples, masks, indices]
    current: list | None = None
    processed = 0
    for latent in latents:
        samples = latent["samples"]
        indices = list(latent.get("batch_index", range(processed, processed + samples.shape[0])))
        processed += len(indices)
        entry = [samples, _pixel_mask(latent), indices]
        if current is not None and samples.shape[-2:] != current[0].shape[-2:]:
            groups.append([part[:batch_size] for part in current])
            current = None
        if current is None:
            current = entry
        else:
            current = [torch.cat((current[0], samples)), torch.cat((current[1], entry[1])), current[2] + indices]
        while current[0].shape[0] > batch_size:
            groups.append([part[:batch_size] for part in current])
            current = [part[batch_size:] for part in current]
    if current is not None:
        groups.append([part[:batch_size] for part in current])
    out = []
    for samples, mask, indices in groups:
        entry = {"samples": samples, "batch_index": indices}
        if mask.mean() != 1.0:  # a mask of all ones masks nothing
            entry["noise_mask"] = mask
        out.append(entry)
    return out


def tonemap_reinhard(latent: torch.Tensor, multiplier: float) -> torch.Tensor:
    """Reinhard tonemapping of the per-pixel vector lengths (Reinhard et al. 2002, ``L / (1 + L)``)
    with the white point at ``(mean + 5 std) * multiplier`` of the lengths; directions are kept."""
    length = (torch.linalg.vector_norm(latent, dim=1) + 1e-10)[:, None]
    direction = latent / length
    dims = list(range(1, length.ndim))
    top = (torch.std(length, dim=dims, keepdim=True) * 5 + torch.mean(length, dim=dims, keepdim=True)) * multiplier
    scaled = length / top
    return direction * (scaled / (scaled + 1.0) * top)


def sharpen(latent: torch.Tensor, radius: int, sigma: float, alpha: float) -> torch.Tensor:
    """Sharpen the per-pixel directions with the sharpening kernel of ImageSharpen (see
    :func:`ldm.imaging.operations.sharpen`) over a reflected border; the vector lengths are kept."""
    length = (torch.linalg.vector_norm(latent, dim=1) + 1e-6)[:, None]
    direction = latent / length
    channels = latent.shape[1]
    kernel = imaging.gaussian_kernel(2 * radius + 1, sigma, device=latent.device) * -(alpha * 10)
    kernel[radius, radius] = kernel[radius, radius] - kernel.sum() + 1.0
    padded = F.pad(direction, (radius,) * 4, mode="reflect")
    weights = kernel.to(latent.dtype).expand(channels, 1, *kernel.shape)
    return length * F.conv2d(padded, weights, groups=channels)


def blend_toward(latent: torch.Tensor, reference: torch.Tensor, strength: float) -> torch.Tensor:
    """``latent`` moved ``strength`` of the way to ``reference`` (resized nearest-neighbour to the
    latent's size and repeated to its batch)."""
    if strength == 0:
        return latent
    target = reference.to(latent)
    if target.shape[2:] != latent.shape[2:]:
        target = F.interpolate(target, size=latent.shape[2:], mode="nearest")
    return torch.lerp(latent, imaging.repeat_to_batch(target, latent.shape[0]), strength)


def latent_size(samples: torch.Tensor) -> tuple[int, int, int, int]:
    """``(width, height, frames, batch)`` of an image (4-D) or video (5-D) latent."""
    if samples.is_nested:
        samples = samples.unbind()[0]
    if samples.ndim == 5:
        batch_size, _, frames, height, width = samples.shape
    else:
        batch_size, _, height, width = samples.shape
        frames = 1
    return width, height, frames, batch_size

