"""Image, mask and latent operations behind the everyday nodes: resampling, blur, sharpen,
blending, compositing, padding, feathering and morphology.

Layouts: images are ``[B, H, W, C]`` floats in 0..1 (C = 3, sometimes 4); masks ``[B, H, W]``;
latents and the channel-first form of images ``[B, C, H, W]``. Each function states which it
takes. The arithmetic follows ComfyUI's nodes (v0.3.64) so results match theirs; where theirs
fails on an input (mismatched batches, images smaller than a blur radius) these functions
pick the evident meaning instead, and say so.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

# -- batches -----------------------------------------------------------------------------------------

def repeat_to_batch(tensor: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``tensor`` cut or cyclically repeated along dim 0 to ``batch_size`` entries."""
    have = tensor.shape[0]
    if have == batch_size:
        return tensor
    if have > batch_size:
        return tensor[:batch_size]
    if have == 0:
        raise ValueError("cannot repeat an empty batch")
    repeats = (math.ceil(batch_size / have),) + (1,) * (tensor.ndim - 1)
    return tensor.repeat(repeats)[:batch_size]


def as_mask_batch(mask: torch.Tensor) -> torch.Tensor:
    """A mask ``[H, W]``, ``[B, H, W]`` or ``[B, 1, H, W]`` as ``[B, H, W]``."""
    return mask.reshape((-1, mask.shape[-2], mask.shape[-1]))


def as_channel_first(image: torch.Tensor) -> torch.Tensor:
    """``[B, H, W, C]`` -> ``[B, C, H, W]``."""
    return image.movedim(-1, 1)


def as_channel_last(samples: torch.Tensor) -> torch.Tensor:
    """``[B, C, H, W]`` -> ``[B, H, W, C]``."""
    return samples.movedim(1, -1)


def match_channels(image1: torch.Tensor, image2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Give an RGB image an opaque alpha channel when the other image is RGBA."""
    if image1.shape[-1] == image2.shape[-1]:
        return image1, image2
    if image1.shape[-1] < image2.shape[-1]:
        return F.pad(image1, (0, image2.shape[-1] - image1.shape[-1]), value=1.0), image2
    return image1, F.pad(image2, (0, image1.shape[-1] - image2.shape[-1]), value=1.0)


# -- resampling ([B, C, H, W]) -----------------------------------------------------------------------

#: Methods that torch's ``interpolate`` implements under the same names.
INTERPOLATE_METHODS = ("nearest-exact", "bilinear", "area", "bicubic", "nearest")


def center_crop_to_aspect(samples: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Cut equal amounts from two opposite sides so ``samples`` get the aspect ``width:height``."""
    old_w, old_h = samples.shape[-1], samples.shape[-2]
    if old_w == 0 or old_h == 0 or width == 0 or height == 0:
        return samples
    old_aspect, new_aspect = old_w / old_h, width / height
    x = y = 0
    if old_aspect > new_aspect:
        x = round((old_w - old_w * (new_aspect / old_aspect)) / 2)
    elif old_aspect < new_aspect:
        y = round((old_h - old_h * (old_aspect / new_aspect)) / 2)
    return samples.narrow(-2, y, old_h - 2 * y).narrow(-1, x, old_w - 2 * x)


def _linear_taps(old: int, new: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each of ``new`` output positions: the two source indices and the weight of the second,
    with the half-pixel convention of torch's bilinear ``interpolate`` (align_corners=False):
    source = (i + 0.5) * old / new - 0.5, clamped to [0, old - 1]."""
    scale = old / new
    source = ((torch.arange(new, dtype=torch.float64, device=device) + 0.5) * scale - 0.5).clamp(0, old - 1)
    first = source.floor().long()
    second = (first + 1).clamp(max=old - 1)
    ratio = (source - first).float()
    return first, second, ratio


def _slerp(low: torch.Tensor, high: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of rows of ``low``/``high`` ``[N, C]`` by ``ratio`` ``[N, 1]``:
    the direction is slerped, the length interpolated linearly (ComfyUI's bislerp rule)."""
    low_norm = torch.linalg.vector_norm(low, dim=-1, keepdim=True)
    high_norm = torch.linalg.vector_norm(high, dim=-1, keepdim=True)
    low_dir = torch.where(low_norm == 0, 0.0, low / low_norm)
    high_dir = torch.where(high_norm == 0, 0.0, high / high_norm)
    dot = (low_dir * high_dir).sum(-1)
    omega = torch.acos(dot)
    sin_omega = torch.sin(omega)
    r = ratio.squeeze(-1)
    out = (torch.sin((1.0 - r) * omega) / sin_omega).unsqueeze(-1) * low_dir \
        + (torch.sin(r * omega) / sin_omega).unsqueeze(-1) * high_dir
    out = out * (low_norm * (1.0 - ratio) + high_norm * ratio)
    # Near-parallel pairs keep the first vector and opposite pairs are lerped, as ComfyUI does.
    parallel = dot > 1 - 1e-5
    opposite = dot < 1e-5 - 1
    out[parallel] = low[parallel]
    out[opposite] = (low * (1.0 - ratio) + high * ratio)[opposite]
    return out


def _pixel_rows(samples: torch.Tensor) -> torch.Tensor:
    """``[B, C, H, W]`` -> ``[B*H*W, C]``: one row per pixel."""
    return samples.movedim(1, -1).reshape(-1, samples.shape[1])


def _bislerp_axis(samples: torch.Tensor, new: int, dim: int) -> torch.Tensor:
    """Resample ``samples`` ``[B, C, H, W]`` along ``dim`` (-1 or -2), slerping channel vectors."""
    channels = samples.shape[1]
    first, second, ratio = _linear_taps(samples.shape[dim], new, samples.device)
    low = samples.index_select(dim, first)
    high = samples.index_select(dim, second)
    shape = [1, 1, 1, 1]
    shape[dim] = new
    ratios = ratio.reshape(shape).expand(low.shape[0], 1, low.shape[2], low.shape[3])
    out = _slerp(_pixel_rows(low), _pixel_rows(high), _pixel_rows(ratios))
    return out.reshape(low.shape[0], low.shape[2], low.shape[3], channels).movedim(-1, 1)


def bislerp(samples: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Resize latents ``[B, C, H, W]`` by slerping each pixel's channel vector, first along the
    width then along the height (ComfyUI's "bislerp"; keeps latent magnitudes better than lerp)."""
    dtype = samples.dtype
    out = _bislerp_axis(samples.float(), width, -1)
    out = _bislerp_axis(out, height, -2)
    return out.to(dtype)


def lanczos(samples: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Pillow's Lanczos resampling of images ``[B, C, H, W]``; like ComfyUI, through 8-bit pixels."""
    frames = []
    for frame in samples:
        pixels = np.clip(255.0 * frame.movedim(0, -1).detach().cpu().float().numpy(), 0, 255).astype(np.uint8)
        if pixels.shape[-1] in (3, 4):
            resized = np.asarray(Image.fromarray(pixels).resize((width, height), Image.Resampling.LANCZOS))
        else:  # other channel counts: one greyscale image per channel
            resized = np.stack([np.asarray(Image.fromarray(pixels[..., c]).resize(
                (width, height), Image.Resampling.LANCZOS)) for c in range(pixels.shape[-1])], axis=-1)
        frames.append(torch.from_numpy(resized.astype(np.float32) / 255.0).movedim(-1, 0))
    if not frames:
        return samples.new_zeros((0, samples.shape[1], height, width))
    return torch.stack(frames).to(samples.device, samples.dtype)


def _interpolator(mode: str) -> Callable[[torch.Tensor, int, int], torch.Tensor]:
    def interpolate(samples: torch.Tensor, width: int, height: int) -> torch.Tensor:
        return F.interpolate(samples, size=(height, width), mode=mode)
    return interpolate


#: Resampling methods by the names the nodes offer.
RESAMPLERS: dict[str, Callable[[torch.Tensor, int, int], torch.Tensor]] = {
    "bislerp": bislerp,
    "lanczos": lanczos,
    **{name: _interpolator(name) for name in INTERPOLATE_METHODS},
}


def resample(samples: torch.Tensor, width: int, height: int, method: str, crop: str = "disabled") -> torch.Tensor:
    """Resize ``samples`` ``[B, C, H, W]`` to ``height x width``; ``crop="center"`` first cuts
    the input to the target aspect (ComfyUI's ``common_upscale``)."""
    if method not in RESAMPLERS:
        raise ValueError(f"unknown upscale method {method!r}; expected one of {sorted(RESAMPLERS)}")
    if width < 1 or height < 1:
        raise ValueError(f"cannot resize to {width}x{height}")
    if crop == "center":
        samples = center_crop_to_aspect(samples, width, height)
    elif crop != "disabled":
        raise ValueError(f"unknown crop {crop!r}; expected 'disabled' or 'center'")
    if samples.shape[-1] == 0 or samples.shape[-2] == 0:
        raise ValueError("cannot resize an empty image")
    if samples.shape[0] == 0:
        return samples.new_zeros(samples.shape[:2] + (height, width))
    return RESAMPLERS[method](samples, width, height)


def resample_image(image: torch.Tensor, width: int, height: int, method: str, crop: str = "disabled") -> torch.Tensor:
    """:func:`resample` for images ``[B, H, W, C]``."""
    return as_channel_last(resample(as_channel_first(image), width, height, method, crop))


def fit_size(width: int, height: int, source_width: int, source_height: int, minimum: int = 1) -> tuple[int, int]:
    """The target size when one side may be 0 ("keep the aspect"); ``minimum`` bounds both sides
    of a derived size (ComfyUI: 1 for images, 64 pixels for latents)."""
    if width == 0:
        height = max(minimum, height)
        width = max(minimum, round(source_width * height / source_height))
    elif height == 0:
        width = max(minimum, width)
        height = max(minimum, round(source_height * width / source_width))
    return max(minimum, width), max(minimum, height)


def total_pixels_size(width: int, height: int, megapixels: float, multiple: int = 1) -> tuple[int, int]:
    """The size with about ``megapixels`` x 2^20 pixels and the same aspect, sides rounded to a
    ``multiple`` (ComfyUI's ImageScaleToTotalPixels)."""
    scale = math.sqrt(int(megapixels * 1024 * 1024) / (width * height))
    new_w = max(1, round(width * scale / multiple)) * multiple
    new_h = max(1, round(height * scale / multiple)) * multiple
    return new_w, new_h


# -- filters ([B, H, W, C]) --------------------------------------------------------------------------

def gaussian_kernel(size: int, sigma: float, dtype=torch.float32, device=None) -> torch.Tensor:
    """A normalised ``size x size`` Gaussian over coordinates spread on [-1, 1] (so ``sigma`` is
    relative to the kernel radius, as in ComfyUI's ImageBlur/ImageSharpen)."""
    axis = torch.linspace(-1, 1, size, device=device)
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    kernel = torch.exp(-(x * x + y * y) / (2.0 * sigma * sigma))
    return (kernel / kernel.sum()).to(dtype)


def _pad_mirrored(samples: torch.Tensor, radius: int) -> torch.Tensor:
    # Reflect padding needs radius < size; smaller images repeat their border instead
    # (ComfyUI raises there).
    fits = radius < samples.shape[-1] and radius < samples.shape[-2]
    return F.pad(samples, (radius,) * 4, mode="reflect" if fits else "replicate")


def _convolve(image: torch.Tensor, kernel: torch.Tensor, radius: int) -> torch.Tensor:
    """Convolve each channel of ``image`` ``[B, H, W, C]`` with ``kernel`` over a mirrored border."""
    if image.shape[0] == 0 or image.shape[1] == 0 or image.shape[2] == 0:
        return image.clone()
    channels = image.shape[-1]
    weights = kernel.to(image.dtype).expand(channels, 1, *kernel.shape)
    padded = _pad_mirrored(as_channel_first(image), radius)
    return as_channel_last(F.conv2d(padded, weights, groups=channels))


def blur(image: torch.Tensor, radius: int, sigma: float) -> torch.Tensor:
    """Gaussian blur with a ``(2 radius + 1)``-pixel kernel."""
    if radius == 0:
        return image
    return _convolve(image, gaussian_kernel(2 * radius + 1, sigma, device=image.device), radius)


def sharpen(image: torch.Tensor, radius: int, sigma: float, alpha: float) -> torch.Tensor:
    """Unsharp-mask style sharpening: a negative Gaussian scaled by ``10 alpha`` whose centre is
    raised so the kernel sums to 1; the result is clamped to 0..1."""
    if radius == 0:
        return image
    kernel = gaussian_kernel(2 * radius + 1, sigma, device=image.device) * -(alpha * 10)
    kernel[radius, radius] = kernel[radius, radius] - kernel.sum() + 1.0
    return _convolve(image, kernel, radius).clamp(0, 1)


def _soft_light_curve(x: torch.Tensor) -> torch.Tensor:
    # The W3C compositing spec's D(x) for soft-light.
    return torch.where(x <= 0.25, ((16 * x - 12) * x + 4) * x, torch.sqrt(x))


#: Blend modes: f(base, layer) -> blended layer (W3C compositing formulas; "difference" is
#: ComfyUI's signed base - layer, clamped afterwards).
BLEND_MODES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "normal": lambda a, b: b,
    "multiply": lambda a, b: a * b,
    "screen": lambda a, b: 1 - (1 - a) * (1 - b),
    "overlay": lambda a, b: torch.where(a <= 0.5, 2 * a * b, 1 - 2 * (1 - a) * (1 - b)),
    "soft_light": lambda a, b: torch.where(b <= 0.5, a - (1 - 2 * b) * a * (1 - a),
                                           a + (2 * b - 1) * (_soft_light_curve(a) - a)),
    "difference": lambda a, b: a - b,
}


def blend(image1: torch.Tensor, image2: torch.Tensor, factor: float, mode: str) -> torch.Tensor:
    """``image1 (1 - factor) + mode(image1, image2) factor``, clamped; ``image2`` is resized
    (bicubic, centre crop) and repeated to ``image1``'s size and batch. An RGBA ``image1`` keeps
    its alpha."""
    if mode not in BLEND_MODES:
        raise ValueError(f"unsupported blend mode {mode!r}; expected one of {list(BLEND_MODES)}")
    image1, image2 = match_channels(image1, image2.to(image1.device))
    if image1.shape[1:3] != image2.shape[1:3]:
        image2 = resample_image(image2, image1.shape[2], image1.shape[1], "bicubic", "center")
    image2 = repeat_to_batch(image2, image1.shape[0])
    out = (image1 * (1 - factor) + BLEND_MODES[mode](image1, image2) * factor).clamp(0, 1)
    if image1.shape[-1] == 4:
        out[..., 3] = image1[..., 3]
    return out


# -- compositing -------------------------------------------------------------------------------------

def composite(destination: torch.Tensor, source: torch.Tensor, x: int, y: int,
              mask: torch.Tensor | None = None, multiplier: int = 1,
              resize_source: bool = False) -> torch.Tensor:
    """Paste ``source`` onto a copy of ``destination`` (both ``[B, C, H, W]``) with its top-left
    corner at ``(x, y) // multiplier``, blending by ``mask`` (any mask shape; resized bilinearly
    to the source). ``multiplier`` is 8 for latents placed in pixel units. Parts outside the
    destination are dropped; the source and mask repeat to the destination's batch."""
    if resize_source:
        source = F.interpolate(source, size=destination.shape[-2:], mode="bilinear")
    batch = destination.shape[0]
    source = repeat_to_batch(source.to(destination.device, destination.dtype), batch)
    src_h, src_w = source.shape[-2:]
    dst_h, dst_w = destination.shape[-2:]
    x = max(-src_w * multiplier, min(x, dst_w * multiplier))
    y = max(-src_h * multiplier, min(y, dst_h * multiplier))
    left, top = x // multiplier, y // multiplier

    if mask is None:
        mask = torch.ones_like(source[:, :1])
    else:
        mask = mask.to(destination.device, destination.dtype).reshape((-1, 1, mask.shape[-2], mask.shape[-1]))
        mask = repeat_to_batch(F.interpolate(mask, size=(src_h, src_w), mode="bilinear"), batch)

    src_x, src_y = max(0, -left), max(0, -top)
    dst_x, dst_y = max(0, left), max(0, top)
    width = min(src_w - src_x, dst_w - dst_x)
    height = min(src_h - src_y, dst_h - dst_y)
    out = destination.clone()
    if width <= 0 or height <= 0:
        return out
    weight = mask[..., src_y:src_y + height, src_x:src_x + width]
    patch = source[..., src_y:src_y + height, src_x:src_x + width]
    region = out[..., dst_y:dst_y + height, dst_x:dst_x + width]
    out[..., dst_y:dst_y + height, dst_x:dst_x + width] = weight * patch + (1 - weight) * region
    return out


def composite_feathered(destination: torch.Tensor, source: torch.Tensor, x: int, y: int,
                        feather: int) -> torch.Tensor:
    """Paste ``source`` onto a copy of ``destination`` (``[B, C, H, W]``, offsets in the same
    units) with linear ramps ``feather`` wide on every edge of the pasted area that lies inside
    the destination (ComfyUI's LatentComposite)."""
    dst_h, dst_w = destination.shape[-2:]
    source = source[..., :max(0, dst_h - y), :max(0, dst_w - x)]
    source = repeat_to_batch(source.to(destination.device, destination.dtype), destination.shape[0])
    height, width = source.shape[-2:]
    out = destination.clone()
    if height == 0 or width == 0:
        return out
    if feather == 0:
        out[..., y:y + height, x:x + width] = source
        return out
    ramp = [(t + 1) / feather for t in range(feather)]
    rows = torch.ones(height, dtype=torch.float64)
    cols = torch.ones(width, dtype=torch.float64)
    for t, value in enumerate(ramp):
        if y != 0 and t < height:
            rows[t] *= value
        if y + height < dst_h and t < height:
            rows[height - 1 - t] *= value
        if x != 0 and t < width:
            cols[t] *= value
        if x + width < dst_w and t < width:
            cols[width - 1 - t] *= value
    weight = (rows[:, None] * cols[None, :]).to(out.dtype).to(out.device)
    region = out[..., y:y + height, x:x + width]
    out[..., y:y + height, x:x + width] = source * weight + region * (1 - weight)
    return out


def pad_for_outpaint(image: torch.Tensor, left: int, top: int, right: int, bottom: int,
                     feathering: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Grow ``image`` ``[B, H, W, C]`` by the given margins filled with 0.5 grey, and the mask
    ``[1, H', W']`` of what to paint: 1 in the margins, and inside the old image
    ``((feathering - d) / feathering)^2`` within ``feathering`` pixels of a padded side (``d``
    the distance to it: the row or column index from top/left, ``size - index`` from
    bottom/right), 0 elsewhere. No feathering when it would not fit twice into both sides."""
    batch, height, width, channels = image.shape
    out = torch.full((batch, height + top + bottom, width + left + right, channels), 0.5,
                     dtype=torch.float32, device=image.device)
    out[:, top:top + height, left:left + width, :] = image
    mask = torch.ones((height + top + bottom, width + left + right), dtype=torch.float32, device=image.device)
    inner = torch.zeros((height, width), dtype=torch.float64)
    if feathering > 0 and feathering * 2 < height and feathering * 2 < width:
        rows = torch.arange(height, dtype=torch.float64)[:, None].expand(height, width)
        cols = torch.arange(width, dtype=torch.float64)[None, :].expand(height, width)
        distances = [rows if top else torch.full_like(rows, height),
                     height - rows if bottom else torch.full_like(rows, height),
                     cols if left else torch.full_like(cols, width),
                     width - cols if right else torch.full_like(cols, width)]
        distance = torch.stack(distances).amin(dim=0)
        value = (feathering - distance) / feathering
        inner = torch.where(distance < feathering, value * value, 0.0)
    mask[top:top + height, left:left + width] = inner.to(torch.float32)
    return out, mask.unsqueeze(0)


# -- masks ([B, H, W]) -------------------------------------------------------------------------------

def feather_edges(mask: torch.Tensor, left: int, top: int, right: int, bottom: int) -> torch.Tensor:
    """Fade a mask linearly to 0 towards its borders: the k-th column from the left (k = 1..left)
    is multiplied by k/left, and likewise for the other sides (ComfyUI's FeatherMask)."""
    out = as_mask_batch(mask).clone()
    height, width = out.shape[-2:]
    left, right = min(left, width), min(right, width)
    top, bottom = min(top, height), min(bottom, height)

    def ramp(size: int, count: int, from_end: bool) -> torch.Tensor:
        factors = torch.ones(size, dtype=out.dtype)
        for k in range(count):
            factors[size - 1 - k if from_end else k] = (k + 1) / count
        return factors.to(out.device)

    out = out * ramp(width, left, False)
    out = out * ramp(width, right, True)
    out = out * ramp(height, top, False)[:, None]
    out = out * ramp(height, bottom, True)[:, None]
    return out


def _neighbourhood(mask: torch.Tensor, square: bool) -> torch.Tensor:
    """The 3x3 cross (or square) neighbours of each pixel of ``[B, H, W]``, stacked on dim 0;
    the border repeats outwards (scipy.ndimage's "reflect" mode, for a 3x3 footprint)."""
    padded = F.pad(mask.unsqueeze(1), (1, 1, 1, 1), mode="replicate").squeeze(1)
    height, width = mask.shape[-2:]
    offsets = [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)]
    if square:
        offsets += [(-1, -1), (-1, 1), (1, -1), (1, 1)]
    return torch.stack([padded[:, 1 + dy:1 + dy + height, 1 + dx:1 + dx + width] for dy, dx in offsets])


def grow(mask: torch.Tensor, expand: int, tapered_corners: bool) -> torch.Tensor:
    """Grey dilation (``expand`` > 0) or erosion (< 0), ``|expand|`` times, with a 3x3 cross
    footprint when ``tapered_corners`` else a 3x3 square (ComfyUI's GrowMask)."""
    out = as_mask_batch(mask)
    if out.numel() == 0 or expand == 0:
        return out.clone()
    for _ in range(abs(expand)):
        neighbours = _neighbourhood(out, square=not tapered_corners)
        out = neighbours.amax(dim=0) if expand > 0 else neighbours.amin(dim=0)
    return out


#: MaskComposite operations: f(destination, source) on overlapping regions.
MASK_OPERATIONS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "multiply": lambda d, s: d * s,
    "add": lambda d, s: d + s,
    "subtract": lambda d, s: d - s,
    "and": lambda d, s: torch.logical_and(d.round().bool(), s.round().bool()).to(d.dtype),
    "or": lambda d, s: torch.logical_or(d.round().bool(), s.round().bool()).to(d.dtype),
    "xor": lambda d, s: torch.logical_xor(d.round().bool(), s.round().bool()).to(d.dtype),
}


def combine_masks(destination: torch.Tensor, source: torch.Tensor, x: int, y: int, operation: str) -> torch.Tensor:
    """Apply ``operation`` where ``source`` placed at ``(x, y)`` overlaps ``destination``; clamp
    the result to 0..1. Batches are repeated to the larger of the two."""
    if operation not in MASK_OPERATIONS:
        raise ValueError(f"unknown mask operation {operation!r}; expected one of {list(MASK_OPERATIONS)}")
    destination = as_mask_batch(destination)
    source = as_mask_batch(source).to(destination.device, destination.dtype)
    batch = max(destination.shape[0], source.shape[0])
    out = repeat_to_batch(destination, batch).clone()
    source = repeat_to_batch(source, batch)
    height = min(source.shape[-2], out.shape[-2] - y)
    width = min(source.shape[-1], out.shape[-1] - x)
    if height > 0 and width > 0:
        region = out[:, y:y + height, x:x + width]
        out[:, y:y + height, x:x + width] = MASK_OPERATIONS[operation](region, source[:, :height, :width])
    return out.clamp(0.0, 1.0)


def color_to_mask(image: torch.Tensor, color: int) -> torch.Tensor:
    """1 where an image's 8-bit RGB equals ``color`` (0xRRGGBB), else 0."""
    rgb = (image[..., :3].clamp(0, 1) * 255.0).round().to(torch.int64)
    packed = (rgb[..., 0] << 16) + (rgb[..., 1] << 8) + rgb[..., 2]
    return (packed == color).to(torch.float32)


def solid_color(width: int, height: int, batch_size: int, color: int) -> torch.Tensor:
    """An image ``[B, H, W, 3]`` of one 0xRRGGBB colour."""
    channels = [((color >> shift) & 0xFF) / 0xFF for shift in (16, 8, 0)]
    return torch.tensor(channels, dtype=torch.float32).expand(batch_size, height, width, 3).clone()


# -- latent batches ----------------------------------------------------------------------------------

def _masks_for_batch(masks: torch.Tensor, batch: int) -> torch.Tensor:
    """Noise masks repeated cyclically until there is at least one per latent."""
    return repeat_to_batch(masks, batch) if masks.shape[0] < batch else masks


def take_from_batch(samples: torch.Tensor, noise_mask: torch.Tensor | None, batch_index: list[int] | None,
                    start: int, length: int):
    """Latents ``start .. start+length`` of a batch, with their noise masks and batch indices.

    ``start`` is clamped to the batch; the indices keep the originals' (so a sampler draws the
    same noise for them as for the whole batch) or, when there are none, become
    ``start .. start+length-1``. Returns ``(samples, noise_mask, batch_index)``.
    """
    count = samples.shape[0]
    start = max(0, min(count - 1, start))
    length = max(0, min(count - start, length))
    taken = samples[start:start + length].clone()
    mask = None
    if noise_mask is not None:
        if noise_mask.shape[0] == 1:
            mask = noise_mask.clone()
        else:
            mask = _masks_for_batch(noise_mask, count)[start:start + length].clone()
    indices = list(batch_index[start:start + length]) if batch_index is not None else list(range(start, start + length))
    return taken, mask, indices


def repeat_batch(samples: torch.Tensor, noise_mask: torch.Tensor | None, batch_index: list[int] | None,
                 amount: int):
    """The batch repeated ``amount`` times; per-latent noise masks repeat with it, and batch
    indices continue past the original range (copy k is offset by k times its span).
    Returns ``(samples, noise_mask, batch_index)``."""
    repeated = samples.repeat((amount,) + (1,) * (samples.ndim - 1))
    mask = noise_mask
    if noise_mask is not None and noise_mask.shape[0] > 1:
        mask = _masks_for_batch(noise_mask, samples.shape[0])
        mask = mask.repeat((amount,) + (1,) * (mask.ndim - 1))
    indices = None
    if batch_index is not None:
        span = max(batch_index) - min(batch_index) + 1 if batch_index else 0
        indices = list(batch_index) + [i + k * span for k in range(1, amount) for i in batch_index]
    return repeated, mask, indices
