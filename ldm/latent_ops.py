"""Latent arithmetic: matching shapes, interpolation, concatenation and cuts, batching, and the
latent operations (tonemap, sharpen, blend toward a reference) that patch CFG or edit a latent.

ComfyUI's ``comfy_extras/nodes_latent.py``, ``nodes_post_processing.batch_latents`` and
``nodes_rebatch.py`` define the behaviour. Latents are ``[B, C, H, W]`` (a video latent's extra
frame axis sits before ``H``: ``[B, C, T, H, W]``); nothing here changes its inputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ldm.imaging import editing
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


#: RebatchLatents' ``dimension`` choices: the axis each names, counted for a latent of ``ndim`` axes
#: ("t (video only)" is the frame axis of ``[B, C, T, H, W]``; "t (audio only)" the last axis).
REBATCH_DIMENSIONS = {"b": lambda ndim: 0, "t (video only)": lambda ndim: 2, "t (audio only)": lambda ndim: ndim - 1}


def _latent_mask(latent: dict) -> torch.Tensor | None:
    """The latent's noise mask resized (bilinear) to its samples' size, one per latent, as
    ``[B, 1, …]`` beside ``[B, C, …]`` samples; None when it has none."""
    samples, mask = latent["samples"], latent.get("noise_mask")
    if not torch.is_tensor(mask):
        return None
    if mask.ndim == samples.ndim:
        mask = mask[:, :1]
    else:  # a mask of images: [H, W], [B, H, W] or [B, 1, H, W]
        mask = mask.reshape((-1, 1) + tuple(mask.shape[-2:]))
        if samples.ndim == 5:
            mask = mask.unsqueeze(2)
    size = tuple(samples.shape[2:])
    if tuple(mask.shape[2:]) != size:
        mask = F.interpolate(mask.float(), size=size, mode="bilinear" if len(size) == 2 else "trilinear")
    if mask.shape[0] < samples.shape[0]:
        mask = imaging.repeat_to_batch(mask, samples.shape[0])
    return mask[:samples.shape[0]]


def _join(parts: list[torch.Tensor], dim: int, overlap: int, mode: str) -> torch.Tensor:
    """Parts joined along ``dim``, neighbours sharing ``overlap`` entries reconciled by ``mode``
    (RebatchImages' joining, along the batch, with ``dim`` moved there)."""
    moved = [part.movedim(dim, 0) for part in parts]
    return editing._join_overlapping(moved, overlap, mode).movedim(0, dim)


def _cut(tensor: torch.Tensor, dim: int, start: int | None = None, end: int | None = None) -> torch.Tensor:
    return tensor[(slice(None),) * dim + (slice(start, end),)]


def rebatch(latents: list[dict], batch_size: int, dimension: str = "b", overlap: int = 0,
            mode: str = "truncate start") -> list[dict]:
    """A list of latents regrouped into pieces of ``batch_size`` along ``dimension`` (ComfyUI's
    RebatchLatents): the batch (``"b"``), a video latent's frames, or the last axis.

    Consecutive latents whose other axes agree are joined and cut into full pieces; a mismatch
    ends the current piece early. Consecutive pieces repeat ``overlap`` entries, and consecutive
    inputs are taken to share ``overlap`` entries, reconciled by ``mode``
    (:data:`ldm.imaging.editing.MERGE_MODES`; "truncate end" keeps the later input's copy and, along
    the batch, its batch indices). Along the batch, batch indices are kept (or numbered by
    position in the whole list). Noise masks travel at the samples' size (a latent without one
    counts as all ones) and are dropped from pieces they do not mask at all.
    """
    if dimension not in REBATCH_DIMENSIONS:
        raise ValueError(f"unknown dimension {dimension!r}; expected one of {list(REBATCH_DIMENSIONS)}")
    if mode not in editing.MERGE_MODES:
        raise ValueError(f"unknown merge mode {mode!r}; expected one of {list(editing.MERGE_MODES)}")
    if not latents:
        return []
    if dimension == "t (video only)" and any(latent["samples"].ndim == 4 for latent in latents):
        raise ValueError("Rebatch Latents cannot use the video time dimension with image latents")
    if overlap >= batch_size:
        raise ValueError("Rebatch overlap must be smaller than the batch size")
    dim = REBATCH_DIMENSIONS[dimension](latents[0]["samples"].ndim)
    pending, processed = [], 0
    for latent in latents:
        samples = latent["samples"]
        if dim >= samples.ndim:
            raise ValueError(f"Cannot rebatch dimension {dim} of a {samples.ndim}-dimensional latent")
        indices = latent.get("batch_index")
        if dim == 0 and indices is None:
            indices = range(processed, processed + samples.shape[0])
        processed += samples.shape[0]
        pending.append({"samples": samples, "mask": _latent_mask(latent),
                        "batch_index": None if indices is None else list(indices)})

    def same_other_axes(a: torch.Tensor, b: torch.Tensor) -> bool:
        return a.ndim == b.ndim and all(a.shape[i] == b.shape[i] for i in range(a.ndim) if i != dim)

    outputs = []
    while pending:
        first = pending[0]["samples"]
        count, length = 1, first.shape[dim]
        while length < batch_size and count < len(pending):
            candidate = pending[count]["samples"]
            if not same_other_axes(first, candidate):
                break
            if overlap > min(length, candidate.shape[dim]):
                raise ValueError("Rebatch overlap cannot exceed an input batch")
            length += candidate.shape[dim] - overlap
            count += 1
        group, pending = pending[:count], pending[count:]
        merged = {"samples": _join([g["samples"] for g in group], dim, overlap, mode), "mask": None,
                  "batch_index": group[0]["batch_index"]}
        if any(g["mask"] is not None for g in group):
            masks = [g["mask"] if g["mask"] is not None else
                     torch.ones((g["samples"].shape[0], 1) + tuple(g["samples"].shape[2:])) for g in group]
            merged["mask"] = _join(masks, dim, overlap, mode)
        if dim == 0:
            indices = list(group[0]["batch_index"])
            for g in group[1:]:
                if overlap and mode == "truncate end":
                    indices[len(indices) - overlap:] = g["batch_index"][:overlap]
                indices.extend(g["batch_index"][overlap:])
            merged["batch_index"] = indices
        piece = {"samples": _cut(merged["samples"], dim, end=batch_size)}
        if merged["mask"] is not None:
            piece["noise_mask"] = _cut(merged["mask"], dim, end=batch_size)
            if bool(torch.all(piece["noise_mask"] == 1)):  # a mask of all ones masks nothing
                del piece["noise_mask"]
        if merged["batch_index"] is not None:
            piece["batch_index"] = merged["batch_index"][:batch_size] if dim == 0 else merged["batch_index"]
        outputs.append(piece)
        if length > batch_size:
            rest = {"samples": _cut(merged["samples"], dim, start=batch_size - overlap),
                    "mask": None if merged["mask"] is None else _cut(merged["mask"], dim, start=batch_size - overlap),
                    "batch_index": (merged["batch_index"][batch_size - overlap:] if dim == 0
                                    else merged["batch_index"])}
            pending.insert(0, rest)
    return outputs


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

