"""Image geometry, batches and alpha compositing behind the image-editing nodes: stitching,
fitting and padding, resizing images or masks by a rule, tiles, grids, rebatching, cropping to
a mask, Porter-Duff compositing, and near-duplicate detection.

Layouts as in :mod:`ldm.imaging.operations`: images ``[B, H, W, C]`` floats in 0..1, masks ``[B, H, W]``.
A MASK here is ComfyUI's: 1 means *transparent* (the inverse of alpha). The arithmetic follows
ComfyUI's nodes (``comfy_extras/nodes_images.py``, ``nodes_compositing.py``,
``nodes_post_processing.py``, ``nodes_rebatch.py``, ``nodes_dataset.py``, Dec 2026) so results
match theirs; all resampling goes through :func:`ldm.imaging.operations.resample`.
"""

from __future__ import annotations

import logging
import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ldm.imaging import morphology, operations as imaging

log = logging.getLogger(__name__)


# -- resizing images or masks --------------------------------------------------------------------

def resize_any(tensor: torch.Tensor, width: int, height: int, method: str, crop: str = "disabled") -> torch.Tensor:
    """Resize an image ``[B, H, W, C]`` or a mask ``[B, H, W]`` to ``width x height``."""
    if tensor.ndim == 4:
        return imaging.resample_image(tensor, width, height, method, crop)
    return imaging.resample(tensor.unsqueeze(1), width, height, method, crop).squeeze(1)


def longer_side_size(width: int, height: int, size: int) -> tuple[int, int]:
    """The size whose longer side is ``size``, keeping the aspect (rounded)."""
    if height > width:
        return round(width / height * size), size
    if width > height:
        return size, round(height / width * size)
    return size, size


def shorter_side_size(width: int, height: int, size: int) -> tuple[int, int]:
    """The size whose shorter side is ``size``, keeping the aspect (rounded)."""
    if height < width:
        return round(width / height * size), size
    if width < height:
        return size, round(height / width * size)
    return size, size


def scale_to_multiple_cover(tensor: torch.Tensor, multiple: int, method: str) -> torch.Tensor:
    """Shrink an image or mask so both sides are the largest multiples of ``multiple`` not above
    them: scale until the target is covered, then cut the excess equally from both ends."""
    height, width = tensor.shape[1], tensor.shape[2]
    target_w, target_h = width // multiple * multiple, height // multiple * multiple
    if multiple <= 1 or target_w == 0 or target_h == 0 or (target_w, target_h) == (width, height):
        return tensor
    scale_w, scale_h = target_w / width, target_h / height
    if scale_w >= scale_h:
        scaled_w, scaled_h = target_w, max(target_h, math.ceil(height * scale_w))
    else:
        scaled_w, scaled_h = max(target_w, math.ceil(width * scale_h)), target_h
    scaled = resize_any(tensor, scaled_w, scaled_h, method)
    x0, y0 = (scaled_w - target_w) // 2, (scaled_h - target_h) // 2
    return scaled[:, y0:y0 + target_h, x0:x0 + target_w]


def resize_and_pad(image: torch.Tensor, width: int, height: int, fill: float, method: str) -> torch.Tensor:
    """Fit ``image`` inside ``width x height`` keeping its aspect, centred on a ``fill`` canvas."""
    batch, old_h, old_w, channels = image.shape
    scale = min(width / old_w, height / old_h)
    new_w, new_h = int(old_w * scale), int(old_h * scale)
    resized = imaging.resample_image(image, new_w, new_h, method)
    canvas = torch.full((batch, height, width, channels), fill, dtype=image.dtype, device=image.device)
    y, x = (height - new_h) // 2, (width - new_w) // 2
    canvas[:, y:y + new_h, x:x + new_w] = resized.to(canvas)
    return canvas


# -- stitching -----------------------------------------------------------------------------------

#: ImageStitch's spacing colours; a float is a grey level for every colour channel.
SPACING_COLORS: dict[str, float | tuple[float, float, float]] = {
    "white": 1.0, "black": 0.0, "red": (1.0, 0.0, 0.0), "green": (0.0, 1.0, 0.0), "blue": (0.0, 0.0, 1.0),
}
STITCH_DIRECTIONS = ("right", "down", "left", "up")


def _extend_with_last(images: torch.Tensor, batch: int) -> torch.Tensor:
    """Repeat the last image until the batch has ``batch`` entries."""
    missing = batch - images.shape[0]
    return images if missing <= 0 else torch.cat([images, images[-1:].expand(missing, -1, -1, -1)])


def _pad_centred(image: torch.Tensor, dim: int, size: int, value: float) -> torch.Tensor:
    """Pad dim 1 (height) or 2 (width) of ``image`` to ``size``, the odd pixel after."""
    missing = size - image.shape[dim]
    if missing <= 0:
        return image
    before, after = missing // 2, missing - missing // 2
    pad = (0, 0, 0, 0, before, after) if dim == 1 else (0, 0, before, after)
    return F.pad(image, pad, value=value)


def _with_channels(image: torch.Tensor, channels: int) -> torch.Tensor:
    """Append opaque channels (value 1) up to ``channels``."""
    missing = channels - image.shape[-1]
    return image if missing <= 0 else F.pad(image, (0, missing), value=1.0)


def stitch(image1: torch.Tensor, image2: torch.Tensor, direction: str, match_size: bool,
           spacing_width: int, spacing_color: str) -> torch.Tensor:
    """Put ``image2`` beside ``image1`` (``direction`` says on which side).

    A shorter batch is extended with its last image. With ``match_size`` image2 is rescaled
    (Lanczos) to image1's height (side by side) or width (stacked), keeping its aspect;
    otherwise the narrower one is padded, centred, with the spacing colour's grey level (black
    for a coloured spacing). Spacing is rounded up to an even width.
    """
    if direction not in STITCH_DIRECTIONS:
        raise ValueError(f"unknown stitch direction {direction!r}; expected one of {STITCH_DIRECTIONS}")
    color = SPACING_COLORS[spacing_color]
    batch = max(image1.shape[0], image2.shape[0])
    image1, image2 = _extend_with_last(image1, batch), _extend_with_last(image2, batch)
    beside = direction in ("left", "right")
    if match_size:
        aspect = image2.shape[2] / image2.shape[1]
        if beside:
            width, height = int(image1.shape[1] * aspect), image1.shape[1]
        else:
            width, height = image1.shape[2], int(image1.shape[2] / aspect)
        image2 = imaging.resample_image(image2, width, height, "lanczos").to(image1)
    else:
        across = 1 if beside else 2
        size = max(image1.shape[across], image2.shape[across])
        fill = 0.0 if isinstance(color, tuple) else color
        image1, image2 = _pad_centred(image1, across, size, fill), _pad_centred(image2, across, size, fill)
    channels = max(image1.shape[-1], image2.shape[-1])
    image1, image2 = _with_channels(image1, channels), _with_channels(image2.to(image1), channels)
    parts = [image2, image1] if direction in ("left", "up") else [image1, image2]
    if spacing_width > 0:
        spacing_width += spacing_width % 2
        shape = ((batch, image1.shape[1], spacing_width, channels) if beside
                 else (batch, spacing_width, image1.shape[2], channels))
        spacing = image1.new_zeros(shape)
        rgb = color if isinstance(color, tuple) else (color,) * 3
        for channel, value in enumerate(rgb[:channels]):
            spacing[..., channel] = value
        if channels == 4:
            spacing[..., 3] = 1.0
        parts.insert(1, spacing)
    return torch.cat(parts, dim=2 if beside else 1)


# -- tiles and grids -----------------------------------------------------------------------------

def tile_grid(width: int, height: int, tile_width: int, tile_height: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Tiles ``(x0, y0, x1, y1)`` covering the image row by row. The step is the tile size less
    the overlap (at least a quarter tile); the last tile of a row or column is moved back so it
    ends at the border, and tiles larger than the image are cut to it."""
    step_x = round(max(tile_width * 0.25, tile_width - overlap))
    step_y = round(max(tile_height * 0.25, tile_height - overlap))
    tiles = []
    y = 0
    while True:
        y1 = min(y + tile_height, height)
        y0 = max(0, y1 - tile_height)
        x = 0
        while True:
            x1 = min(x + tile_width, width)
            tiles.append((max(0, x1 - tile_width), y0, x1, y1))
            if x1 >= width:
                break
            x += step_x
        if y1 >= height:
            return tiles
        y += step_y


def split_tiles(image: torch.Tensor, tile_width: int, tile_height: int, overlap: int) -> list[torch.Tensor]:
    return [image[:, y0:y1, x0:x1] for x0, y0, x1, y1 in
            tile_grid(image.shape[2], image.shape[1], tile_width, tile_height, overlap)]


def merge_tiles(tiles: list[torch.Tensor], width: int, height: int, overlap: int) -> torch.Tensor:
    """Put tiles made by :func:`split_tiles` back into a ``width x height`` image. Overlaps are
    averaged with a sine window (highest in a tile's centre), so seams fade; without overlap
    every tile weighs the same. The grid is recomputed from the first tile's size."""
    first = tiles[0]
    batch, tile_h, tile_w, channels = first.shape
    canvas = first.new_zeros((batch, height, width, channels))
    weights = first.new_zeros((batch, height, width, 1))
    if overlap > 0:
        ramp_y = torch.sin(math.pi * torch.linspace(0, 1, tile_h, device=first.device, dtype=first.dtype)).clamp(min=1e-5)
        ramp_x = torch.sin(math.pi * torch.linspace(0, 1, tile_w, device=first.device, dtype=first.dtype)).clamp(min=1e-5)
        window = (ramp_y[:, None] * ramp_x[None, :])[None, :, :, None]
    else:
        window = first.new_ones((1, tile_h, tile_w, 1))
    for tile, (x0, y0, x1, y1) in zip(tiles, tile_grid(width, height, tile_w, tile_h, overlap)):
        rows, cols = min(y1 - y0, tile.shape[1]), min(x1 - x0, tile.shape[2])
        piece = window[:, :rows, :cols]
        canvas[:, y0:y0 + rows, x0:x0 + cols] += tile[:, :rows, :cols].to(canvas) * piece
        weights[:, y0:y0 + rows, x0:x0 + cols] += piece
    weights[weights == 0] = 1.0
    return canvas / weights


def _rgb8(frame: torch.Tensor) -> np.ndarray:
    """One image ``[H, W, C]`` (or ``[1, H, W, C]``) as 8-bit RGB pixels, truncated as ComfyUI's
    conversion to PIL does."""
    return (frame.reshape(frame.shape[-3:])[..., :3].detach().float().cpu().clamp(0, 1).numpy() * 255.0).astype(np.uint8)


def image_grid(frames: list[torch.Tensor], columns: int, cell_width: int, cell_height: int,
               padding: int) -> torch.Tensor:
    """One RGB image ``[1, H, W, 3]``: each frame scaled (Lanczos) into a cell, row by row, cells
    ``padding`` apart on black."""
    if not frames:
        raise ValueError("Cannot create grid from empty image list")
    rows = (len(frames) + columns - 1) // columns
    grid = np.zeros((rows * cell_height + (rows - 1) * padding,
                     columns * cell_width + (columns - 1) * padding, 3), dtype=np.uint8)
    for index, frame in enumerate(frames):
        cell = Image.fromarray(_rgb8(frame)).resize((cell_width, cell_height), Image.Resampling.LANCZOS)
        y, x = (index // columns) * (cell_height + padding), (index % columns) * (cell_width + padding)
        grid[y:y + cell_height, x:x + cell_width] = np.asarray(cell)
    return torch.from_numpy(grid.astype(np.float32) / 255.0).unsqueeze(0)


# -- batches -------------------------------------------------------------------------------------

def batch_images(images: list[torch.Tensor]) -> torch.Tensor:
    """One batch of ``images``: an RGB image joined to RGBA ones gets an opaque alpha, and every
    image is rescaled (bilinear, centre-cropped to the aspect) to the first one's size."""
    channels = max(image.shape[-1] for image in images)
    first = images[0]
    batched = []
    for image in images:
        image = _with_channels(image, channels)
        if image.shape[1:3] != first.shape[1:3]:
            image = imaging.resample_image(image, first.shape[2], first.shape[1], "bilinear", "center")
        batched.append(image.to(first))
    return torch.cat(batched)


def batch_masks(masks: list[torch.Tensor]) -> torch.Tensor:
    """One batch of ``masks``, each rescaled (bilinear, centre crop) to the first one's size."""
    masks = [imaging.as_mask_batch(mask) for mask in masks]
    first = masks[0]
    return torch.cat([mask.to(first) if mask.shape[1:] == first.shape[1:]
                      else resize_any(mask, first.shape[2], first.shape[1], "bilinear", "center").to(first)
                      for mask in masks])


#: How RebatchImages reconciles the frames two consecutive input batches share.
MERGE_MODES = ("truncate start", "truncate end", "fade smooth", "fade linear")


def _join_overlapping(batches: list[torch.Tensor], overlap: int, mode: str) -> torch.Tensor:
    """Concatenate batches whose neighbours share ``overlap`` frames: "truncate start" keeps
    the earlier batch's copy, "truncate end" the later one's, the fades cross-fade (linear or
    smoothstep) from the earlier to the later."""
    merged = batches[0]
    for batch in batches[1:]:
        if overlap:
            kept, shared = merged[:-overlap], merged[-overlap:]
            incoming = batch[:overlap].to(shared)
            if mode == "truncate end":
                shared = incoming
            elif mode in ("fade smooth", "fade linear"):
                weight = torch.linspace(0, 1, overlap, device=shared.device, dtype=shared.dtype)
                if mode == "fade smooth":
                    weight = weight * weight * (3 - 2 * weight)
                weight = weight.reshape((overlap,) + (1,) * (shared.ndim - 1))
                shared = shared * (1 - weight) + incoming * weight
            merged = torch.cat([kept, shared])
        merged = torch.cat([merged, batch[overlap:].to(merged)])
    return merged


def rebatch(batches: list[torch.Tensor], batch_size: int, overlap: int = 0,
            mode: str = "truncate start") -> list[torch.Tensor]:
    """Regroup a list of batches into batches of ``batch_size`` (the last may be smaller).

    Consecutive inputs join only when their frames have the same shape; consecutive outputs
    repeat ``overlap`` frames, and consecutive inputs are taken to share ``overlap`` frames,
    reconciled by ``mode`` (:data:`MERGE_MODES`).
    """
    if mode not in MERGE_MODES:
        raise ValueError(f"unknown merge mode {mode!r}; expected one of {MERGE_MODES}")
    if overlap >= batch_size:
        raise ValueError("Rebatch overlap must be smaller than the batch size")
    pending, outputs = list(batches), []
    while pending:
        first = pending[0]
        count, length = 1, first.shape[0]
        while length < batch_size and count < len(pending):
            candidate = pending[count]
            if candidate.shape[1:] != first.shape[1:]:
                break
            if overlap > min(length, candidate.shape[0]):
                raise ValueError("Rebatch overlap cannot exceed an input batch")
            length += candidate.shape[0] - overlap
            count += 1
        merged = _join_overlapping(pending[:count], overlap, mode)
        del pending[:count]
        outputs.append(merged[:batch_size])
        if length > batch_size:
            pending.insert(0, merged[batch_size - overlap:])
    return outputs


# -- alpha and Porter-Duff -----------------------------------------------------------------------

def join_alpha(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """RGBA images from RGB(A) ``image`` and a MASK (1 = transparent), the mask rescaled
    (bilinear) to the image; the batch is the shorter of the two."""
    mask = imaging.as_mask_batch(mask)
    if mask.shape[1:] != image.shape[1:3]:
        mask = F.interpolate(mask.unsqueeze(1), size=tuple(image.shape[1:3]), mode="bilinear").squeeze(1)
    batch = min(image.shape[0], mask.shape[0])
    alpha = (1.0 - mask[:batch]).to(image).unsqueeze(-1)
    return torch.cat([image[:batch, ..., :3], alpha], dim=-1)


def split_alpha(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB and the MASK (1 - alpha; all zeros for an image without alpha)."""
    if image.shape[-1] > 3:
        return image[..., :3], 1.0 - image[..., 3]
    return image[..., :3], torch.zeros_like(image[..., 0])


# Each mode gives (alpha, premultiplied colour) from premultiplied source s / destination d and
# their alphas sa / da (Porter & Duff, "Compositing Digital Images", 1984; DARKEN, LIGHTEN,
# MULTIPLY, OVERLAY and SCREEN are the formulas ComfyUI uses).
_Blend = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _union(sa, da):
    return sa + da - sa * da


PORTER_DUFF_MODES: dict[str, _Blend] = {
    "ADD": lambda s, sa, d, da: ((sa + da).clamp(0, 1), (s + d).clamp(0, 1)),
    "CLEAR": lambda s, sa, d, da: (torch.zeros_like(da), torch.zeros_like(d)),
    "DARKEN": lambda s, sa, d, da: (_union(sa, da), (1 - da) * s + (1 - sa) * d + torch.minimum(s, d)),
    "DST": lambda s, sa, d, da: (da, d),
    "DST_ATOP": lambda s, sa, d, da: (sa, sa * d + (1 - da) * s),
    "DST_IN": lambda s, sa, d, da: (sa * da, d * sa),
    "DST_OUT": lambda s, sa, d, da: ((1 - sa) * da, (1 - sa) * d),
    "DST_OVER": lambda s, sa, d, da: (da + (1 - da) * sa, d + (1 - da) * s),
    "LIGHTEN": lambda s, sa, d, da: (_union(sa, da), (1 - da) * s + (1 - sa) * d + torch.maximum(s, d)),
    "MULTIPLY": lambda s, sa, d, da: (sa * da, s * d),
    "OVERLAY": lambda s, sa, d, da: (_union(sa, da), torch.where(
        2 * d < da, 2 * s * d, sa * da - 2 * (da - s) * (sa - d))),
    "SCREEN": lambda s, sa, d, da: (_union(sa, da), s + d - s * d),
    "SRC": lambda s, sa, d, da: (sa, s),
    "SRC_ATOP": lambda s, sa, d, da: (da, da * s + (1 - sa) * d),
    "SRC_IN": lambda s, sa, d, da: (sa * da, s * da),
    "SRC_OUT": lambda s, sa, d, da: ((1 - da) * sa, (1 - da) * s),
    "SRC_OVER": lambda s, sa, d, da: (sa + (1 - sa) * da, s + (1 - sa) * d),
    "XOR": lambda s, sa, d, da: ((1 - da) * sa + (1 - sa) * da, (1 - da) * s + (1 - sa) * d),
}


def porter_duff(source: torch.Tensor, source_mask: torch.Tensor, destination: torch.Tensor,
                destination_mask: torch.Tensor, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Composite one image pair ``[H, W, C]`` with masks ``[H, W, 1]`` (1 = transparent); returns
    the straight (not premultiplied) colour clamped to 0..1 and the result's mask."""
    if mode not in PORTER_DUFF_MODES:
        raise ValueError(f"unknown Porter-Duff mode {mode!r}; expected one of {list(PORTER_DUFF_MODES)}")
    source_alpha, destination_alpha = 1 - source_mask, 1 - destination_mask
    alpha, colour = PORTER_DUFF_MODES[mode](source * source_alpha, source_alpha,
                                            destination * destination_alpha, destination_alpha)
    straight = torch.where(alpha > 1e-5, colour / alpha, torch.zeros_like(colour)).clamp(0, 1)
    return straight, 1 - alpha


def porter_duff_batch(source: torch.Tensor, source_mask: torch.Tensor, destination: torch.Tensor,
                      destination_mask: torch.Tensor, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`porter_duff` over batches (as many pairs as the shortest input has). Per pair, the
    destination mask and the source image are rescaled (bicubic, centre crop) to the destination
    image, and the source mask to the destination mask."""
    source_mask, destination_mask = imaging.as_mask_batch(source_mask), imaging.as_mask_batch(destination_mask)
    count = min(len(source), len(source_mask), len(destination), len(destination_mask))
    images, masks = [], []
    for index in range(count):
        src, dst = source[index:index + 1], destination[index:index + 1]
        src_mask, dst_mask = source_mask[index:index + 1], destination_mask[index:index + 1]
        if src.shape[-1] != dst.shape[-1]:
            raise ValueError(f"source and destination need the same channels, got {src.shape[-1]} and {dst.shape[-1]}")
        height, width = dst.shape[1], dst.shape[2]
        if dst_mask.shape[1:] != (height, width):
            dst_mask = resize_any(dst_mask, width, height, "bicubic", "center")
        if src.shape != dst.shape:
            src = imaging.resample_image(src, width, height, "bicubic", "center")
        if src_mask.shape != dst_mask.shape:
            src_mask = resize_any(src_mask, dst_mask.shape[2], dst_mask.shape[1], "bicubic", "center")
        image, mask = porter_duff(src[0], src_mask[0].unsqueeze(-1).to(src), dst[0],
                                  dst_mask[0].unsqueeze(-1).to(dst), mode)
        images.append(image)
        masks.append(mask.squeeze(-1))
    return torch.stack(images), torch.stack(masks)


# -- cropping to a mask --------------------------------------------------------------------------

def _foreground_box(mask: torch.Tensor) -> tuple[int, int, int, int] | None:
    """``(x_min, y_min, x_max, y_max)`` of the pixels above 80 % coverage (on 8-bit levels)."""
    found = ((mask * 255.0).to(torch.uint8) > 204).nonzero()
    if found.numel() == 0:
        return None
    (y_min, x_min), (y_max, x_max) = found.min(dim=0).values.tolist(), found.max(dim=0).values.tolist()
    return x_min, y_min, x_max, y_max


def _subject_mask(mask: torch.Tensor, grow: int) -> torch.Tensor:
    """The mask ``[1, 1, H, W]`` as coverage of the subject: inverted when the border is mostly
    covered and the centre is not (a background mask), grown or shrunk by ``grow`` pixels, and
    cleared below 5 %."""
    plane = mask[0, 0]
    height, width = plane.shape
    border = torch.cat([plane[0], plane[-1], plane[:, 0], plane[:, -1]])
    centre = plane[height // 4:height - height // 4, width // 4:width - width // 4]
    if float(border.mean()) > 0.5 and float(centre.mean()) < 0.5:
        mask = 1.0 - mask
    if grow > 0:
        mask = morphology.dilate(mask, 2 * grow + 1)
    elif grow < 0:
        mask = morphology.erode(mask, -2 * grow + 1)
    return torch.where(mask < 0.05, torch.zeros_like(mask), mask)


def crop_to_mask(image: torch.Tensor, mask: torch.Tensor, width: int, height: int, pad_factor: float,
                 grow: int, background: tuple[float, float, float]) -> torch.Tensor:
    """One RGB image ``[H, W, 3]`` cut to its mask's subject and scaled (Lanczos) to
    ``width x height``: the box around the subject, widened to the output aspect and by
    ``pad_factor``, centred on the subject (zeros beyond the image), with the subject over
    ``background``. An empty mask keeps the whole image. Returns ``[1, height, width, 3]``."""
    picture = image[..., :3].movedim(-1, 0).unsqueeze(0).cpu().float().clamp(0, 1)
    coverage = _subject_mask(mask.unsqueeze(0).unsqueeze(0).cpu().float().clamp(0, 1), grow)
    largest = max(width, height)
    full_h, full_w = picture.shape[-2:]
    if max(full_h, full_w) > largest:  # work at about the output's resolution
        scale = largest / max(full_h, full_w)
        full_w, full_h = int(full_w * scale), int(full_h * scale)
        picture = imaging.resample(picture, full_w, full_h, "lanczos")
        coverage = imaging.resample(coverage, full_w, full_h, "lanczos")
    box = _foreground_box(coverage[0, 0])
    if box is None and _foreground_box(1.0 - coverage[0, 0]) is not None:
        log.info("crop to mask: the mask covers nothing; using it inverted")
        coverage = 1.0 - coverage
        box = _foreground_box(coverage[0, 0])
    aspect = width / height
    if box is None:
        log.warning("crop to mask: the mask is empty; keeping the whole image")
        x0, y0, x1, y1 = 0, 0, full_w, full_h
    else:
        x_min, y_min, x_max, y_max = box
        box_w, box_h = x_max - x_min + 1, y_max - y_min + 1
        if box_w / max(box_h, 1) >= aspect:
            crop_w, crop_h = int(box_w * pad_factor), int(box_w / aspect * pad_factor)
        else:
            crop_w, crop_h = int(box_h * aspect * pad_factor), int(box_h * pad_factor)
        half_w, half_h = math.ceil(crop_w / 2), math.ceil(crop_h / 2)
        x0, y0 = int((x_min + x_max) / 2.0 - half_w), int((y_min + y_max) / 2.0 - half_h)
        x1, y1 = x0 + 2 * half_w, y0 + 2 * half_h
    # Zeros where the crop leaves the image (PIL's crop semantics).
    pad = (max(0, -x0), max(0, x1 - full_w), max(0, -y0), max(0, y1 - full_h))
    picture, coverage = F.pad(picture, pad), F.pad(coverage, pad)
    x0, x1, y0, y1 = x0 + pad[0], x1 + pad[0], y0 + pad[2], y1 + pad[2]
    picture, coverage = picture[..., y0:y1, x0:x1], coverage[..., y0:y1, x0:x1]
    fill = torch.tensor(background, dtype=picture.dtype).view(1, 3, 1, 1)
    subject = (picture * coverage + fill * (1.0 - coverage)).clamp(0, 1)
    return imaging.as_channel_last(imaging.resample(subject, width, height, "lanczos"))


# -- near duplicates -----------------------------------------------------------------------------

def average_hash(frame: torch.Tensor) -> np.ndarray:
    """The 64-bit average hash of an image ``[H, W, C]``: 8 x 8 Lanczos thumbnail, luma, each
    bit "brighter than the mean" (Krawetz, "Looks like it", 2011)."""
    thumb = Image.fromarray(_rgb8(frame)).resize((8, 8), Image.Resampling.LANCZOS).convert("L")
    pixels = np.asarray(thumb, dtype=np.float64).reshape(-1)
    return pixels > pixels.mean()


def distinct_indices(frames: list[torch.Tensor], threshold: float) -> list[int]:
    """Indices of the frames to keep: a frame whose hash agrees with a kept one's on at least
    ``threshold`` of the 64 bits is a duplicate."""
    hashes = [average_hash(frame) for frame in frames]
    kept: list[int] = []
    for index, bits in enumerate(hashes):
        match = next((other for other in kept if 1.0 - np.count_nonzero(bits != hashes[other]) / 64.0 >= threshold), None)
        if match is None:
            kept.append(index)
        else:
            log.info("image %d is a near duplicate of image %d; dropped", index, match)
    return kept


# -- padding (PadImageNode) ----------------------------------------------------------------------
# Split rule: a total margin is shared by opposite sides, the odd pixel going right / bottom.
# Mirroring is numpy's "reflect" (the edge pixel is not repeated, and a margin wider than the
# image keeps reflecting, so the image repeats). Feathering fades the image into the fill colour
# on padded sides by ComfyUI's FeatherMask ramp: the k-th pixel from that edge (k = 1..n) keeps
# k/n of the image, and sides multiply.

def split_margin(total: int) -> tuple[int, int]:
    """A total margin as (before, after), the odd pixel after."""
    return total // 2, total - total // 2


def margin_for_multiplier(size: int, multiplier: float) -> tuple[int, int]:
    """Margins that grow ``size`` to ``round(size * multiplier)``."""
    return split_margin(max(0, round(size * multiplier) - size))


def margin_to_multiple(size: int, multiple: int) -> tuple[int, int]:
    """The smallest margins that make ``size`` divisible by ``multiple``."""
    return split_margin(-size % multiple)


def _reflected_indices(size: int, before: int, after: int) -> torch.Tensor:
    """Source index of each output position along an axis padded by reflection."""
    positions = torch.arange(-before, size + after)
    if size == 1:
        return torch.zeros_like(positions)
    period = 2 * (size - 1)
    folded = positions.remainder(period)
    return torch.where(folded < size, folded, period - folded)


def pad_mirrored(image: torch.Tensor, left: int, top: int, right: int, bottom: int) -> torch.Tensor:
    """``image`` ``[B, H, W, C]`` grown by reflecting its edges."""
    rows = _reflected_indices(image.shape[1], top, bottom).to(image.device)
    cols = _reflected_indices(image.shape[2], left, right).to(image.device)
    return image[:, rows][:, :, cols]


def _feather_ramp(size: int, before: int, after: int, width: int) -> torch.Tensor:
    """Per-pixel image weight along one axis of the unpadded image."""
    index = torch.arange(size, dtype=torch.float32)
    ramp = torch.ones(size)
    if before and width:
        ramp = ramp * torch.where(index < width, (index + 1) / width, 1.0)
    if after and width:
        ramp = ramp * torch.where(size - 1 - index < width, (size - index) / width, 1.0)
    return ramp


def pad_with_color(image: torch.Tensor, left: int, top: int, right: int, bottom: int,
                   color: tuple[float, float, float], feathering: int = 0) -> torch.Tensor:
    """``image`` ``[B, H, W, C]`` grown by margins of ``color`` (an alpha channel pads opaque),
    its outer ``feathering`` pixels on padded sides faded into that colour."""
    batch, height, width, channels = image.shape
    fill = torch.tensor([*color, 1.0][:channels], dtype=image.dtype, device=image.device)
    out = fill.expand(batch, height + top + bottom, width + left + right, channels).clone()
    inner = image
    if feathering > 0:
        weight = (_feather_ramp(height, top, bottom, min(feathering, height))[:, None]
                  * _feather_ramp(width, left, right, min(feathering, width))[None, :])
        weight = weight.to(image.device, image.dtype)[None, :, :, None]
        inner = fill + (image - fill) * weight
    out[:, top:top + height, left:left + width] = inner
    return out
