"""Layer compositing: blend modes, alpha compositing, and placing layers on a canvas.

This is the arithmetic behind ComfyUI's layer compositor (``ImageCompositor``, Dec 2026), which
follows GIMP 2.10's layer model: every layer mode is a *blend* function, a *blend space* in which
that function sees the pixels, and a *composite* rule that mixes the blended colour back in.

- The canvas is kept in linear light (RGBA, straight alpha). A mode whose blend space is
  ``"perceptual"`` converts backdrop and layer to sRGB for the blend function and the result
  back; ``"linear"`` modes blend the linear values.
- Blend functions take the backdrop ``b`` and the layer ``s`` per pixel. The separable ones are
  the usual formulas (W3C "Compositing and Blending Level 1" §9.1 where it has the mode); soft
  light is Pegtop's ``b²(1 - 2s) + 2bs`` (GIMP's and Pillow's ``ImageChops.soft_light``, not the
  W3C curve), as in ComfyUI. The non-separable ones are GIMP's: HSV hue and saturation, HSL
  colour, and luminance with babl's sRGB luminance weights.
- Composite rules: ``"union"`` is source-over with the blended colour (W3C §5.8, Porter-Duff
  over); ``"clip-to-backdrop"`` keeps the backdrop's alpha and mixes the blended colour in by the
  layer's coverage (W3C source-atop). ComfyUI gives ``normal`` union and every other mode
  clip-to-backdrop, so a non-normal layer over a transparent canvas adds nothing.

Images here are ``[H, W, 4]`` float tensors; the layer raster goes through 8-bit Pillow images
for flips, Lanczos resizing and bicubic rotation, as ComfyUI's does, so placements match.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from PIL import Image

from ldm.imaging.color_spaces import linear_to_srgb, srgb_to_linear

EPSILON = 1e-6
#: babl's luminance weights for linear sRGB (Bradford-adapted to D50), GIMP's "luminance" mode.
LUMINANCE_WEIGHTS = (0.2224884, 0.71690369, 0.06060791)

Blend = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _divide(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """``numerator / denominator``, 0 where the denominator is (nearly) 0."""
    safe = torch.where(denominator.abs() >= EPSILON, denominator, torch.ones_like(denominator))
    return torch.where(denominator.abs() >= EPSILON, numerator / safe, torch.zeros_like(numerator))


def _screen(b, s):
    return b + s - b * s


def _color_dodge(b, s):
    dodged = torch.clamp(_divide(b, 1 - s), max=1.0)
    return torch.where(b <= 0, torch.zeros_like(b), torch.where(1 - s <= EPSILON, torch.ones_like(b), dodged))


def _color_burn(b, s):
    burned = 1 - torch.clamp(_divide(1 - b, s), max=1.0)
    return torch.where(b >= 1, torch.ones_like(b), torch.where(s <= EPSILON, torch.zeros_like(b), burned))


def _hard_light(b, s):
    return torch.where(s > 0.5, torch.clamp(_screen(b, 2 * s - 1), max=1.0), torch.clamp(2 * b * s, max=1.0))


def _vivid_light(b, s):
    """Colour burn by ``2s`` below the middle, colour dodge by ``2s - 1`` above it."""
    burn = torch.where(b >= 1, torch.ones_like(b), torch.where(
        2 * s <= EPSILON, torch.zeros_like(b), torch.clamp(1 - _divide(1 - b, 2 * s), min=0.0)))
    dodge = torch.where(b <= 0, torch.zeros_like(b), torch.where(
        2 * (1 - s) <= EPSILON, torch.ones_like(b), torch.clamp(_divide(b, 2 * (1 - s)), max=1.0)))
    return torch.where(s <= 0.5, burn, dodge)


def _hsv_hue(b, s):
    """The layer's HSV hue with the backdrop's saturation and value."""
    s_max, s_delta = s.amax(-1), s.amax(-1) - s.amin(-1)
    b_max, b_delta = b.amax(-1), b.amax(-1) - b.amin(-1)
    b_saturation = _divide(b_delta, b_max)
    grey = s_delta <= EPSILON
    ratio = torch.where(grey, torch.zeros_like(s_delta), _divide(b_saturation * b_max, s_delta))
    offset = b_max - s_max * ratio
    return torch.where(grey[..., None], b, s * ratio[..., None] + offset[..., None])


def _hsv_saturation(b, s):
    """The layer's HSV saturation with the backdrop's hue and value."""
    b_max, b_delta = b.amax(-1), b.amax(-1) - b.amin(-1)
    s_max, s_delta = s.amax(-1), s.amax(-1) - s.amin(-1)
    flat = b_delta <= EPSILON
    ratio = torch.where(flat, torch.zeros_like(b_delta), _divide(_divide(s_delta, s_max) * b_max, b_delta))
    saturated = b * ratio[..., None] + ((1 - ratio) * b_max)[..., None]
    return torch.where(flat[..., None], b_max[..., None].expand_as(b), saturated)


def _hsl_color(b, s):
    """The layer's HSL hue and saturation with the backdrop's lightness."""
    b_light = (b.amin(-1) + b.amax(-1)) / 2
    s_light = (s.amin(-1) + s.amax(-1)) / 2
    grey = ((s_light.abs() <= EPSILON) | ((1 - s_light).abs() <= EPSILON))
    # Keeping HSL saturation, (max - min) / (2 min(L, 1 - L)), scales the chroma by this ratio.
    b_room = torch.minimum(b_light, 1 - b_light)
    s_room = torch.where(grey, torch.ones_like(s_light), torch.minimum(s_light, 1 - s_light))
    ratio = b_room / s_room
    offset = b_light - s_light * ratio
    return torch.where(grey[..., None], b_light[..., None].expand_as(b), s * ratio[..., None] + offset[..., None])


def luminance(rgb: torch.Tensor) -> torch.Tensor:
    red, green, blue = LUMINANCE_WEIGHTS
    return rgb[..., 0] * red + rgb[..., 1] * green + rgb[..., 2] * blue


def _luminosity(b, s):
    """The backdrop scaled to the layer's luminance."""
    return b * _divide(luminance(s), luminance(b))[..., None]


#: Blend functions by ComfyUI's mode name: backdrop ``b`` and layer ``s`` → blended colour.
BLENDS: dict[str, Blend] = {
    "normal": lambda b, s: s,
    "multiply": lambda b, s: b * s,
    "screen": _screen,
    "overlay": lambda b, s: torch.where(b < 0.5, 2 * b * s, 1 - 2 * (1 - b) * (1 - s)),
    "darken": torch.minimum,
    "lighten": torch.maximum,
    "color-dodge": _color_dodge,
    "color-burn": _color_burn,
    "hard-light": _hard_light,
    "soft-light": lambda b, s: b * b * (1 - 2 * s) + 2 * b * s,
    "difference": lambda b, s: (b - s).abs(),
    "exclusion": lambda b, s: b + s - 2 * b * s,
    "linear-dodge": lambda b, s: b + s,
    "linear-burn": lambda b, s: b + s - 1,
    "vivid-light": _vivid_light,
    "pin-light": lambda b, s: torch.where(s > 0.5, torch.maximum(b, 2 * (s - 0.5)), torch.minimum(b, 2 * s)),
    "linear-light": lambda b, s: b + 2 * s - 1,
    "hard-mix": lambda b, s: (b + s >= 1).to(b.dtype),
    "subtract": lambda b, s: torch.clamp(b - s, min=0.0),
    "divide": lambda b, s: torch.clamp(b / torch.clamp(s, min=EPSILON), 0.0, 1.0),
    "grain-extract": lambda b, s: b - s + 0.5,
    "grain-merge": lambda b, s: b + s - 0.5,
    "hue": _hsv_hue,
    "saturation": _hsv_saturation,
    "color": _hsl_color,
    "luminosity": _luminosity,
}

UNION, CLIP_TO_BACKDROP = "union", "clip-to-backdrop"
LINEAR, PERCEPTUAL = "linear", "perceptual"


@dataclass(frozen=True)
class LayerMode:
    blend: str
    space: str
    composite: str


def _modes() -> dict[str, LayerMode]:
    # ComfyUI's table: the space each blend reads its pixels in; only normal is a union.
    linear = {"normal", "multiply", "darken", "lighten", "linear-dodge", "subtract", "divide", "luminosity"}
    return {name: LayerMode(name, LINEAR if name in linear else PERCEPTUAL,
                            UNION if name == "normal" else CLIP_TO_BACKDROP) for name in BLENDS}


#: Every layer mode, in ComfyUI's order (the AddLayer ``blend_mode`` options).
LAYER_MODES: dict[str, LayerMode] = _modes()


def layer_mode(name: str) -> LayerMode:
    """The mode of a blend name; an unknown name blends as normal (as ComfyUI's does)."""
    return LAYER_MODES.get(name, LAYER_MODES["normal"])


def blend(mode: LayerMode, backdrop_rgb: torch.Tensor, layer_rgb: torch.Tensor) -> torch.Tensor:
    """The mode's blend of linear colours, computed in its blend space; linear result."""
    if mode.space == LINEAR:
        return BLENDS[mode.blend](backdrop_rgb, layer_rgb)
    blended = BLENDS[mode.blend](linear_to_srgb(backdrop_rgb), linear_to_srgb(layer_rgb))
    return srgb_to_linear(blended)


def _union(backdrop, layer, blended, coverage):
    backdrop_alpha = backdrop[..., 3:]
    alpha = coverage + (1 - coverage) * backdrop_alpha
    # source-over: (cover·(1-ab)·s + cover·ab·B + (1-cover)·ab·b) / alpha, written from the backdrop
    ratio = torch.where(alpha != 0, coverage / torch.where(alpha != 0, alpha, torch.ones_like(alpha)), 0.0)
    backdrop_rgb, layer_rgb = backdrop[..., :3], layer[..., :3]
    mixed = backdrop_rgb + ratio * (backdrop_alpha * (blended - layer_rgb) + layer_rgb - backdrop_rgb)
    rgb = torch.where(backdrop_alpha == 0, layer[..., :3], mixed)
    rgb = torch.where((coverage == 0) | (alpha == 0), backdrop[..., :3], rgb)
    return torch.cat([rgb, alpha], dim=-1)


def _clip_to_backdrop(backdrop, layer, blended, coverage):
    mixed = blended * coverage + backdrop[..., :3] * (1 - coverage)
    keep = (backdrop[..., 3:] == 0) | (coverage == 0)
    return torch.cat([torch.where(keep, backdrop[..., :3], mixed), backdrop[..., 3:]], dim=-1)


_COMPOSITES = {UNION: _union, CLIP_TO_BACKDROP: _clip_to_backdrop}


def blend_composite(mode: LayerMode, backdrop: torch.Tensor, layer: torch.Tensor, opacity: float) -> torch.Tensor:
    """``layer`` over ``backdrop`` (both linear RGBA ``[..., 4]``) by ``mode`` at ``opacity``."""
    coverage = layer[..., 3:] * opacity
    blended = blend(mode, backdrop[..., :3], layer[..., :3])
    return _COMPOSITES[mode.composite](backdrop, layer, blended, coverage)


# -- placing layers ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Placement:
    """Where a layer goes: its box before rotation (canvas pixels) and its transform. ``rotation``
    is in radians, clockwise (canvas y points down)."""

    x: float
    y: float
    width: float
    height: float
    rotation: float = 0.0
    flip_h: bool = False
    flip_v: bool = False


def placed_bounds(x: float, y: float, width: float, height: float, rotation: float) -> tuple[int, int, int, int]:
    """``(x, y, width, height)`` of the whole-pixel box holding the rotated layer box, which turns
    about its centre."""
    centre_x, centre_y = x + width / 2, y + height / 2
    cos, sin = math.cos(rotation), math.sin(rotation)
    corners = [(dx, dy) for dx, dy in ((-width / 2, -height / 2), (width / 2, -height / 2),
                                       (width / 2, height / 2), (-width / 2, height / 2))]
    xs = [centre_x + dx * cos - dy * sin for dx, dy in corners]
    ys = [centre_y + dx * sin + dy * cos for dx, dy in corners]
    left, top = math.floor(min(xs)), math.floor(min(ys))
    return left, top, max(1, math.ceil(max(xs)) - left), max(1, math.ceil(max(ys)) - top)


def _to_8bit(values: torch.Tensor) -> np.ndarray:
    return np.clip(np.rint(values.detach().cpu().float().numpy() * 255.0), 0, 255).astype(np.uint8)


def layer_raster(rgb: torch.Tensor, alpha: torch.Tensor | None, placement: Placement) -> torch.Tensor:
    """The layer ``[H, W, 3]`` (sRGB) with its ``alpha`` ``[H, W]`` flipped, resized (Lanczos) and
    rotated (bicubic, growing the canvas) as ``placement`` says, centred in its
    :func:`placed_bounds`: a linear RGBA tensor of the bounds' size."""
    pixels = _to_8bit(rgb[..., :3])
    picture = (Image.fromarray(pixels, "RGB").convert("RGBA") if alpha is None
               else Image.fromarray(np.dstack([pixels, _to_8bit(alpha)]), "RGBA"))
    if placement.flip_h:
        picture = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if placement.flip_v:
        picture = picture.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    size = (max(1, round(placement.width)), max(1, round(placement.height)))
    if picture.size != size:
        picture = picture.resize(size, Image.Resampling.LANCZOS)
    if placement.rotation != 0:
        # Pillow turns counter-clockwise for positive angles
        picture = picture.rotate(-math.degrees(placement.rotation), expand=True,
                                 resample=Image.Resampling.BICUBIC, fillcolor=(0, 0, 0, 0))
    values = torch.from_numpy(np.asarray(picture, dtype=np.float32) / 255.0)
    values = torch.cat([srgb_to_linear(values[..., :3]), values[..., 3:]], dim=-1)
    _, _, bounds_w, bounds_h = placed_bounds(placement.x, placement.y, placement.width, placement.height,
                                             placement.rotation)
    return _centred(values, bounds_w, bounds_h)


def _centred(values: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """``values`` ``[h, w, 4]`` centred on a transparent ``[height, width, 4]``, cut where larger."""
    out = torch.zeros((height, width, 4), dtype=values.dtype)
    offset_x, offset_y = (width - values.shape[1]) // 2, (height - values.shape[0]) // 2
    x0, y0 = max(offset_x, 0), max(offset_y, 0)
    x1, y1 = min(offset_x + values.shape[1], width), min(offset_y + values.shape[0], height)
    if x0 < x1 and y0 < y1:
        out[y0:y1, x0:x1] = values[y0 - offset_y:y1 - offset_y, x0 - offset_x:x1 - offset_x]
    return out


@dataclass(frozen=True)
class Layer:
    """One layer to composite: its pixels (sRGB ``[H, W, 3+]`` and optional alpha ``[H, W]``),
    placement, opacity and mode name."""

    rgb: torch.Tensor
    alpha: torch.Tensor | None
    placement: Placement
    opacity: float = 1.0
    mode: str = "normal"


@dataclass(frozen=True)
class Background:
    """A solid colour under every layer: sRGB 0..1 and its opacity."""

    color: tuple[float, float, float]
    opacity: float = 1.0


def compose(width: int, height: int, layers: list[Layer], background: Background | None = None) -> torch.Tensor:
    """The layers, bottom first, composited on a transparent ``width`` × ``height`` canvas (over
    ``background`` if given): sRGB RGBA ``[height, width, 4]``."""
    canvas = torch.zeros((height, width, 4), dtype=torch.float32)
    if background is not None and background.opacity > 0:
        fill = torch.empty_like(canvas)
        fill[..., :3] = srgb_to_linear(torch.tensor(background.color, dtype=torch.float32))
        fill[..., 3] = 1.0
        canvas = blend_composite(LAYER_MODES["normal"], canvas, fill, background.opacity)
    for layer in layers:
        placement = layer.placement
        left, top, bounds_w, bounds_h = placed_bounds(placement.x, placement.y, placement.width, placement.height,
                                                      placement.rotation)
        x0, y0, x1, y1 = max(left, 0), max(top, 0), min(left + bounds_w, width), min(top + bounds_h, height)
        if x0 >= x1 or y0 >= y1:
            continue
        raster = layer_raster(layer.rgb, layer.alpha, placement)[y0 - top:y1 - top, x0 - left:x1 - left]
        canvas[y0:y1, x0:x1] = blend_composite(layer_mode(layer.mode), canvas[y0:y1, x0:x1], raster, layer.opacity)
    return torch.cat([linear_to_srgb(canvas[..., :3].clamp(0.0, 1.0)), canvas[..., 3:].clamp(0.0, 1.0)], dim=-1)
