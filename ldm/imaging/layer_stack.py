"""LAYERS documents and the compositor editor's saved state, as ComfyUI's layer nodes read them.

A LAYERS value is a plain dict, so any node can build or read one (ComfyUI's shape, Dec 2026)::

    {"version": 1,                       # other versions are refused
     "canvas": (width, height),          # optional; else the placed layers' extent
     "layers": [item, ...]}              # bottom first, then stable-sorted by z_index

    item = {"type": "raster", "image": IMAGE [B, H, W, C],   # a batch is B consecutive layers
            "x": int, "y": int, "z_index": int,              # placement of the unrotated box
            # optional: "mask": MASK (1 = transparent), "name": str, "opacity": float,
            # "blend_mode": str (a ldm.imaging.compositing.LAYER_MODES name), "rotation": radians,
            # "w"/"h": display size (else the image's), "flip_h"/"flip_v": bool, "visible": bool}

The compositor editor saves its state (the ``compositor`` input) as a dict or its JSON text::

    {"version": 1, "canvas": {"w", "h"}, "inputs": [fingerprint per layer],
     "layers": [{"name", "visible", "opacity", "blend", "flipH", "flipV",
                 "transform": {"x", "y", "w", "h", "rotation"}}, ...],
     "order": [layer indices, bottom first], "background": {"color": "#rrggbb", "opacity", "visible"}}

It is replayed only while its ``inputs`` equal the current layers' :func:`fingerprints` (ComfyUI's
digest, so states saved there replay here); otherwise the layers' own properties decide.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ldm.imaging.compositing import LAYER_MODES, Background, Layer, Placement, compose, placed_bounds

MAX_LAYERS = 50
#: ComfyUI's MAX_RESOLUTION: the largest canvas, placement and layer size.
MAX_SIZE = 16384
#: A composite whose alpha is everywhere above 1 - this counts as opaque (an RGB result).
OPAQUE_EPSILON = 1e-3
EMPTY_SIZE = 64


def as_int(value, default: int) -> int:
    """A number as an int (truncated); anything else, booleans included, is ``default``."""
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def document_items(document) -> list[dict]:
    """The raster items of a LAYERS document, stable-sorted by ``z_index``."""
    if not isinstance(document, dict):
        return []
    version = document.get("version")
    if version is not None and version != 1:
        raise ValueError(f"LAYERS document version {version!r} is not supported")
    items = []
    for item in document.get("layers") or []:
        if not isinstance(item, dict):
            continue
        kind = item.get("type", "raster")
        if kind != "raster":
            raise ValueError(f"LAYERS item type {kind!r} is not supported yet")
        if not isinstance(item.get("image"), torch.Tensor):
            continue
        blend = item.get("blend_mode")
        if blend is not None and blend not in LAYER_MODES:
            raise ValueError(f"LAYERS item blend_mode {blend!r} is not a known blend mode")
        items.append(item)
    return sorted(items, key=lambda item: as_int(item.get("z_index"), 0))


def document_canvas(document) -> tuple[int, int] | None:
    """The document's explicit ``(width, height)``, if it has a positive one."""
    canvas = document.get("canvas") if isinstance(document, dict) else None
    if not isinstance(canvas, (tuple, list)) or len(canvas) != 2:
        return None
    width, height = as_int(canvas[0], 0), as_int(canvas[1], 0)
    return (width, height) if width > 0 and height > 0 else None


def extended(previous, new_items: list[dict], canvas: tuple[int, int] | None = None) -> dict:
    """A new document: ``previous``'s items then ``new_items``; ``canvas``, else the previous one."""
    previous = previous if isinstance(previous, dict) else None
    document: dict = {"version": 1, "layers": [*((previous.get("layers") or []) if previous else []), *new_items]}
    canvas = canvas or document_canvas(previous)
    if canvas:
        document["canvas"] = canvas
    return document


def mask_frame(mask, index: int) -> torch.Tensor | None:
    """Frame ``index`` of a per-frame MASK (a single mask serves every frame)."""
    if not isinstance(mask, torch.Tensor):
        return None
    if mask.shape[0] == 1:
        return mask[:1]
    return mask[index:index + 1] if index < mask.shape[0] else None


@dataclass(frozen=True)
class Frame:
    """One layer of an expanded document. ``opacity``, ``blend`` and ``visible`` are the item's
    values as given: the fingerprint digests them so."""

    image: torch.Tensor  # [1, H, W, C]
    mask: torch.Tensor | None  # [1, h, w], 1 = transparent
    name: str | None
    x: int
    y: int
    width: int
    height: int
    rotation: float
    opacity: object
    blend: object
    visible: object
    flip_h: bool
    flip_v: bool


def expand_frames(items: list[dict]) -> list[Frame]:
    """One :class:`Frame` per image of every item's batch; at most :data:`MAX_LAYERS`."""
    frames = []
    for item in items:
        image = item["image"]
        rotation = item.get("rotation")
        rotation = float(rotation) if isinstance(rotation, (int, float)) and not isinstance(rotation, bool) else 0.0
        width, height = as_int(item.get("w"), 0), as_int(item.get("h"), 0)
        for index in range(image.shape[0]):
            frames.append(Frame(
                image=image[index:index + 1], mask=mask_frame(item.get("mask"), index),
                name=item.get("name") if isinstance(item.get("name"), str) else None,
                x=as_int(item.get("x"), 0), y=as_int(item.get("y"), 0),
                width=width if width > 0 else int(image.shape[2]), height=height if height > 0 else int(image.shape[1]),
                rotation=rotation,
                opacity=item.get("opacity", 1.0), blend=item.get("blend_mode", "normal"),
                visible=item.get("visible", True),
                flip_h=bool(item.get("flip_h", False)), flip_v=bool(item.get("flip_v", False))))
    if len(frames) > MAX_LAYERS:
        raise ValueError(f"Compositor supports at most {MAX_LAYERS} layers, got {len(frames)}")
    return frames


def frame_alpha(frame: Frame) -> torch.Tensor | None:
    """The frame's alpha ``[1, H, W]``: its image's alpha channel times the inverted mask (resized
    bilinearly to the image when their sizes differ); None when it has neither."""
    image = frame.image
    alpha = image[:1, :, :, 3] if image.shape[-1] == 4 else None
    if frame.mask is None:
        return alpha
    mask = frame.mask[:1].to(device=image.device, dtype=torch.float32)
    if mask.shape[1:] != image.shape[1:3]:
        mask = F.interpolate(mask.unsqueeze(1), size=tuple(image.shape[1:3]), mode="bilinear").squeeze(1)
    opaque = torch.clamp(1.0 - mask, 0.0, 1.0)
    return opaque if alpha is None else alpha * opaque


def canvas_extent(frames: list[Frame]) -> tuple[int, int]:
    """The right and bottom edges of the placed frames (at least 1×1)."""
    right = bottom = 1
    for frame in frames:
        left, top, width, height = placed_bounds(frame.x, frame.y, frame.width, frame.height, frame.rotation)
        right, bottom = max(right, left + width), max(bottom, top + height)
    return right, bottom


def _bytes8(values: torch.Tensor) -> bytes:
    return np.clip(np.rint(values.detach().cpu().numpy() * 255.0), 0, 255).astype(np.uint8).tobytes()


def fingerprints(frames: list[Frame], alphas: list[torch.Tensor | None]) -> list[str]:
    """ComfyUI's per-layer input digest: SHA-256 over the shape, the 8-bit RGB and alpha, and
    the placement tuple's ``repr``; its first 16 hex digits."""
    digests = []
    for frame, alpha in zip(frames, alphas):
        digest = hashlib.sha256()
        digest.update(repr(tuple(frame.image.shape)).encode())
        digest.update(_bytes8(frame.image[0, :, :, :3]))
        if alpha is not None:
            digest.update(_bytes8(alpha[0]))
        digest.update(repr((frame.x, frame.y, frame.width, frame.height, frame.rotation, frame.opacity, frame.blend,
                            bool(frame.visible), frame.flip_h, frame.flip_v)).encode())
        digests.append(digest.hexdigest()[:16])
    return digests


# -- the editor's saved state --------------------------------------------------------------------

@dataclass(frozen=True)
class CompositorState:
    canvas: tuple[int, int]
    layers: list
    inputs: list[str] | None
    background: Background | None
    order: list[int] | None


def state_provided(raw) -> bool:
    """Whether the ``compositor`` input holds a state at all (an empty one does not count)."""
    if isinstance(raw, dict):
        return bool(raw)
    return isinstance(raw, str) and raw not in ("", "{}")


def _number(source: dict, key: str, default: float) -> float:
    value = source.get(key, default)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else float(default)


def _hex_color(value) -> tuple[float, float, float]:
    """``#rgb`` or ``#rrggbb`` as 0..1 floats; anything else is white."""
    digits = value.strip().lower()[1:] if isinstance(value, str) and value.strip().startswith("#") else ""
    if len(digits) == 3:
        digits = "".join(digit * 2 for digit in digits)
    if len(digits) != 6 or any(digit not in "0123456789abcdef" for digit in digits):
        digits = "ffffff"
    return tuple(int(digits[index:index + 2], 16) / 255.0 for index in (0, 2, 4))


def _background(entry) -> Background | None:
    """The state's background, None when absent, hidden or fully transparent."""
    if not isinstance(entry, dict) or not bool(entry.get("visible", True)):
        return None
    opacity = min(max(_number(entry, "opacity", 1.0), 0.0), 1.0)
    return Background(_hex_color(entry.get("color")), opacity) if opacity > 0 else None


def _order(value, count: int) -> list[int] | None:
    if not isinstance(value, list) or not value:
        return None
    if not all(isinstance(index, int) and not isinstance(index, bool) for index in value):
        return None
    return value if sorted(value) == list(range(count)) else None


def parse_state(raw) -> CompositorState | None:
    """The saved state, or None when it is missing or malformed (then it is simply not used)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else None
        except ValueError:
            return None
    if not isinstance(raw, dict) or raw.get("version") not in (None, 1):
        return None
    canvas, layers = raw.get("canvas"), raw.get("layers")
    if not isinstance(canvas, dict) or not isinstance(layers, list) or not layers:
        return None
    try:
        width, height = int(round(float(canvas.get("w")))), int(round(float(canvas.get("h"))))
    except (TypeError, ValueError, OverflowError):
        return None
    if width <= 0 or height <= 0:
        return None
    inputs = raw.get("inputs")
    if not (isinstance(inputs, list) and len(inputs) == len(layers) and all(isinstance(i, str) for i in inputs)):
        inputs = None
    return CompositorState((width, height), layers, inputs, _background(raw.get("background")),
                           _order(raw.get("order"), len(layers)))


def state_from_frames(frames: list[Frame], canvas: tuple[int, int]) -> CompositorState:
    """The state the layers' own properties describe (no background)."""
    layers = [{"name": frame.name, "visible": bool(frame.visible), "opacity": frame.opacity, "blend": frame.blend,
               "flipH": frame.flip_h, "flipV": frame.flip_v,
               "transform": {"x": frame.x, "y": frame.y, "w": frame.width, "h": frame.height,
                             "rotation": frame.rotation}} for frame in frames]
    return CompositorState(canvas, layers, None, None, None)


def _size(value: float, natural: int) -> float:
    return float(natural) if value <= 0 else min(value, float(MAX_SIZE))


def _layer(frame: Frame, alpha: torch.Tensor | None, entry) -> Layer | None:
    """The layer a state entry makes of a frame; None when it is hidden. The entry is untrusted
    (it round-trips through saved workflows), so every value is checked and clamped."""
    entry = entry if isinstance(entry, dict) else {}
    if not bool(entry.get("visible", True)):
        return None
    transform = entry.get("transform") if isinstance(entry.get("transform"), dict) else {}
    natural_w, natural_h = int(frame.image.shape[2]), int(frame.image.shape[1])
    placement = Placement(
        x=min(max(_number(transform, "x", 0.0), -MAX_SIZE), MAX_SIZE),
        y=min(max(_number(transform, "y", 0.0), -MAX_SIZE), MAX_SIZE),
        width=_size(_number(transform, "w", natural_w), natural_w),
        height=_size(_number(transform, "h", natural_h), natural_h),
        rotation=_number(transform, "rotation", 0.0),
        flip_h=bool(entry.get("flipH", False)), flip_v=bool(entry.get("flipV", False)))
    blend = entry.get("blend")
    return Layer(rgb=frame.image[0, :, :, :3], alpha=None if alpha is None else alpha[0], placement=placement,
                 opacity=min(max(_number(entry, "opacity", 1.0), 0.0), 1.0),
                 mode=blend if isinstance(blend, str) else "normal")


def composite(frames: list[Frame], alphas: list[torch.Tensor | None], state: CompositorState) -> torch.Tensor:
    """The frames composited as ``state`` says: sRGB RGBA ``[1, H, W, 4]``."""
    width, height = state.canvas
    if width > MAX_SIZE or height > MAX_SIZE:
        raise ValueError(f"Compositor canvas {width}x{height} exceeds the maximum supported size of "
                         f"{MAX_SIZE}x{MAX_SIZE}")
    layers = []
    for index in state.order or range(len(frames)):
        if 0 <= index < len(frames):
            entry = state.layers[index] if index < len(state.layers) else None
            layer = _layer(frames[index], alphas[index] if index < len(alphas) else None, entry)
            if layer is not None:
                layers.append(layer)
    return compose(width, height, layers, state.background).unsqueeze(0)


def split_alpha(rgba: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The composite as (IMAGE, MASK): plain RGB and a zero mask when it is opaque, else RGBA
    and ``1 - alpha``."""
    alpha = rgba[..., 3]
    if bool((alpha >= 1.0 - OPAQUE_EPSILON).all()):
        return rgba[..., :3], torch.zeros_like(alpha)
    return rgba, torch.clamp(1.0 - alpha, 0.0, 1.0)


def ui_entries(frames: list[Frame]) -> list[dict]:
    """The per-layer boxes the editor shows (``compositor_bboxes``)."""
    return [{"x": frame.x, "y": frame.y, "width": int(frame.width), "height": int(frame.height),
             "rotation": frame.rotation, "name": frame.name, "visible": bool(frame.visible),
             "opacity": frame.opacity if isinstance(frame.opacity, (int, float)) else 1.0,
             "blend": frame.blend if isinstance(frame.blend, str) else "normal",
             "flipH": frame.flip_h, "flipV": frame.flip_v} for frame in frames]
