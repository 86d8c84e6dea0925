"""Control images from pictures without any model weights: Canny edges, line thresholds, tile, inpaint.

All functions take and return channel-first images ``[B, C, H, W]`` in 0..1 (masks ``[B, H, W]``).

Canny (Canny 1986) as ComfyUI computes it (kornia's ``canny``): luma (0.299, 0.587, 0.114); a
5x5 Gaussian blur with sigma 1 (reflected borders); unnormalised Sobel gradients (replicated
borders); magnitude ``sqrt(gx² + gy² + 1e-6)``; non-maximum suppression along the gradient
direction rounded to 45° (a pixel stays only if strictly above both neighbours along it, zero
outside the image); ``> low`` is weak, ``> high`` strong; hysteresis repeats "a weak pixel next
to a strong one becomes strong" until nothing changes; weak pixels left over are dropped.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: ITU-R BT.601 luma weights (kornia's rgb_to_grayscale).
LUMA = (0.299, 0.587, 0.114)
#: (dy, dx) of the neighbour along each rounded gradient direction: 0°, 45°, ..., 315° with y down.
DIRECTIONS = ((0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1))
CANNY_KERNEL = 5
CANNY_SIGMA = 1.0
CANNY_EPS = 1e-6


def luma(image: torch.Tensor) -> torch.Tensor:
    """[B, 1, H, W] brightness of an RGB (or already single-channel) image."""
    if image.shape[1] == 1:
        return image
    weights = torch.tensor(LUMA, dtype=image.dtype, device=image.device).reshape(1, 3, 1, 1)
    return (image[:, :3] * weights).sum(dim=1, keepdim=True)


def gaussian_blur(image: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of [B, C, H, W] with reflected borders."""
    offsets = torch.arange(size, dtype=image.dtype, device=image.device) - (size - 1) / 2
    kernel = torch.exp(-offsets ** 2 / (2 * sigma ** 2))
    kernel = kernel / kernel.sum()
    channels = image.shape[1]
    radius = size // 2
    x = F.pad(image, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, kernel.reshape(1, 1, 1, size).repeat(channels, 1, 1, 1), groups=channels)
    return F.conv2d(x, kernel.reshape(1, 1, size, 1).repeat(channels, 1, 1, 1), groups=channels)


def sobel(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unnormalised Sobel derivatives (d/dx, d/dy) of [B, 1, H, W], borders replicated."""
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=image.dtype,
                      device=image.device)
    padded = F.pad(image, (1, 1, 1, 1), mode="replicate")
    gx = F.conv2d(padded, kx.reshape(1, 1, 3, 3))
    gy = F.conv2d(padded, kx.t().reshape(1, 1, 3, 3))
    return gx, gy


def _neighbour(values: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``values`` at (y + dy, x + dx) for every pixel, zero outside the image."""
    padded = F.pad(values, (1, 1, 1, 1))
    h, w = values.shape[-2:]
    return padded[..., 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]


def non_maximum_suppression(magnitude: torch.Tensor, gx: torch.Tensor, gy: torch.Tensor) -> torch.Tensor:
    """``magnitude`` where it is a strict maximum along the rounded gradient direction, else 0."""
    angle = torch.round(torch.rad2deg(torch.atan2(gy, gx)) / 45.0)
    forward = torch.remainder(angle, 8).long()
    backward = torch.remainder(angle + 4, 8).long()
    neighbours = torch.cat([_neighbour(magnitude, dy, dx) for dy, dx in DIRECTIONS], dim=1)  # [B, 8, H, W]
    ahead = neighbours.gather(1, forward)
    behind = neighbours.gather(1, backward)
    return magnitude * ((magnitude > ahead) & (magnitude > behind))


def hysteresis(weak: torch.Tensor, strong: torch.Tensor) -> torch.Tensor:
    """Strong pixels plus the weak ones connected to them through 8-neighbourhoods (0/1 float)."""
    edges = strong.float()
    weak = weak.float()
    while True:
        grown = torch.maximum(edges, F.max_pool2d(edges, 3, stride=1, padding=1) * weak)
        if torch.equal(grown, edges):
            return edges
        edges = grown


def canny(image: torch.Tensor, low_threshold: float, high_threshold: float) -> torch.Tensor:
    """Canny edges [B, 1, H, W] (0 or 1) of ``image`` [B, C, H, W] in 0..1."""
    gray = gaussian_blur(luma(image.float()), CANNY_KERNEL, CANNY_SIGMA)
    gx, gy = sobel(gray)
    magnitude = non_maximum_suppression(torch.sqrt(gx * gx + gy * gy + CANNY_EPS), gx, gy)
    return hysteresis(magnitude > low_threshold, magnitude > high_threshold)


def line_threshold(image: torch.Tensor, threshold: float, dark_lines: bool, thickness: int = 0) -> torch.Tensor:
    """White lines on black (what scribble and lineart ControlNets read) from a drawing: pixels
    darker (or, for ``dark_lines=False``, brighter) than ``threshold``, grown by ``thickness``."""
    gray = luma(image.float())
    lines = (gray < threshold) if dark_lines else (gray > threshold)
    lines = lines.float()
    if thickness > 0:
        lines = F.max_pool2d(lines, 2 * thickness + 1, stride=1, padding=thickness)
    return lines.expand(-1, 3, -1, -1).contiguous()


def tile_image(image: torch.Tensor, downscale: float, blur_sigma: float) -> torch.Tensor:
    """A tile ControlNet's input: the picture area-averaged down by ``downscale``, back up
    bilinearly, then Gaussian-blurred by ``blur_sigma`` pixels (0 = none)."""
    h, w = image.shape[-2:]
    out = image.float()
    if downscale > 1:
        small = (max(1, round(h / downscale)), max(1, round(w / downscale)))
        out = F.interpolate(F.interpolate(out, size=small, mode="area"), size=(h, w), mode="bilinear",
                            align_corners=False)
    # A kernel of 3 sigma each side, cut to what reflected padding allows on a small image.
    radius = min(math.ceil(3 * blur_sigma), min(h, w) - 1)
    if blur_sigma > 0 and radius > 0:
        out = gaussian_blur(out, 2 * radius + 1, blur_sigma)
    return out.clamp(0.0, 1.0)


#: The value inpainting ControlNets (lllyasviel's control_v11p_sd15_inpaint) read as "to fill".
INPAINT_MASKED_VALUE = -1.0


def inpaint_control_image(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``image`` with the pixels where ``mask`` > 0.5 set to -1 (diffusers' and the ControlNet
    authors' ``make_inpaint_condition``); the mask is resized to the image if needed."""
    mask = mask.float().reshape((-1, 1) + tuple(mask.shape[-2:]))
    if tuple(mask.shape[-2:]) != tuple(image.shape[-2:]):
        mask = F.interpolate(mask, size=tuple(image.shape[-2:]), mode="bilinear", align_corners=False)
    if mask.shape[0] != image.shape[0]:
        mask = mask.repeat(math.ceil(image.shape[0] / mask.shape[0]), 1, 1, 1)[:image.shape[0]]
    return torch.where(mask > 0.5, torch.full_like(image, INPAINT_MASKED_VALUE), image.float())
