"""Bounding boxes as the box editor (ComfyUI's CreateBoundingBoxes) and the layer nodes read them.

Three shapes describe the same regions:

- a pixel box, ComfyUI's BOUNDING_BOX ``{"x", "y", "width", "height"}``, here with an optional
  ``"metadata"`` dict (``type`` "obj"/"text", ``text``, ``desc``, ``palette``, and for layers
  ``name``, ``z_index``, ``content_rect``);
- an *element*, the prompt format of Ideogram's layout API: ``{"type": "obj"|"text",
  "bbox": [ymin, xmin, ymax, xmax]`` on a 0..1000 grid, ``"text"`` (text only), ``"desc"``,
  ``"color_palette": ["#RRGGBB", ...]}``;
- a *region*, the editor's canvas-relative form: ``x``, ``y``, ``w``, ``h`` as fractions of the
  canvas plus ``type``, ``text``, ``desc``, ``palette``.

:func:`boxes_from_input` reads whatever a BOUNDING_BOX / ARRAY / STRING socket brings (one box,
a list, a list per frame (the first frame is used), elements, or the JSON text of any of
these); :func:`render_preview` draws regions the way the editor shows them.
"""

from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageEnhance, ImageFont

PREVIEW_LONG_EDGE = 1024
#: Brightness of the preview's background (an image, or mid grey).
PREVIEW_DIM = 0.25
NEUTRAL_RGB = (140, 140, 140)
MAX_SWATCHES = 5
GRID = 1000


def hex_rgb(value: str) -> tuple[int, int, int]:
    """``#rrggbb`` as 0..255 ints; anything else is white."""
    digits = value.lstrip("#") if isinstance(value, str) else ""
    try:
        return tuple(int(digits[index:index + 2], 16) for index in (0, 2, 4)) if len(digits) == 6 else (255, 255, 255)
    except ValueError:
        return (255, 255, 255)


def readable_color(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """``rgb`` lifted towards white until its luma (BT.601) reaches 130, for text on dark grey."""
    luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    if luma >= 130:
        return rgb
    lift = (130 - luma) / (255 - luma)
    return tuple(round(channel + (255 - channel) * lift) for channel in rgb)


def normalize_palette(colors) -> list[str]:
    """A palette's colours, upper-cased (a dict's values count as its colours)."""
    if isinstance(colors, dict):
        colors = colors.values()
    return [color.upper() for color in colors if isinstance(color, str) and color]


# -- conversions ---------------------------------------------------------------------------------

def pixel_boxes(frame) -> list[dict]:
    """The pixel boxes of one box, a list of them, or a list per frame (its first frame), each
    as ``{"x", "y", "width", "height"}`` plus its metadata dict if it has one."""
    if isinstance(frame, dict):
        frame = [frame]
    elif not isinstance(frame, list) or not frame:
        frame = []
    elif not isinstance(frame[0], dict):
        frame = frame[0] if isinstance(frame[0], list) else []
    boxes = []
    for box in frame:
        if isinstance(box, dict):
            normal = {key: box.get(key, 0) for key in ("x", "y", "width", "height")}
            if isinstance(box.get("metadata"), dict):
                normal["metadata"] = box["metadata"]
            boxes.append(normal)
    return boxes


def is_element(box: dict) -> bool:
    return isinstance(box.get("bbox"), (list, tuple)) and len(box["bbox"]) == 4


def _is_pixel_box(box: dict) -> bool:
    return all(key in box for key in ("x", "y", "width", "height"))


def element_boxes(elements: list, width: int, height: int) -> list[dict]:
    """Elements as pixel boxes on a ``width`` × ``height`` canvas, their text in the metadata."""
    boxes = []
    for element in elements:
        if not isinstance(element, dict):
            continue
        if not is_element(element):
            raise ValueError("bboxes element is missing a valid 'bbox' [ymin, xmin, ymax, xmax]")
        try:
            ymin, xmin, ymax, xmax = (float(value) / GRID for value in element["bbox"])
        except (TypeError, ValueError) as exc:
            raise ValueError("bboxes element 'bbox' must contain four numbers") from exc
        kind = "text" if element.get("type") == "text" else "obj"
        boxes.append({"x": round(min(xmin, xmax) * width), "y": round(min(ymin, ymax) * height),
                      "width": round(abs(xmax - xmin) * width), "height": round(abs(ymax - ymin) * height),
                      "metadata": {"type": kind, "text": element.get("text", "") if kind == "text" else "",
                                   "desc": element.get("desc", ""), "palette": element.get("color_palette", []) or []}})
    return boxes


def parse_json(data):
    """``data``, or the value its JSON text holds (None for blank text)."""
    if not isinstance(data, str):
        return data
    text = data.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"bboxes string input is not valid JSON: {exc}") from exc


def boxes_from_input(data, width: int, height: int) -> list[dict]:
    """Pixel boxes from a BOUNDING_BOX, ARRAY or STRING input (elements resolve on a ``width``
    × ``height`` canvas); anything of another shape is an error naming what was expected."""
    data = parse_json(data)
    if data is None:
        return []
    if isinstance(data, dict):
        if is_element(data):
            return element_boxes([data], width, height)
        if _is_pixel_box(data):
            return pixel_boxes(data)
        raise ValueError("bboxes dict must be a bounding box (x, y, width, height) or an element (with a 'bbox')")
    if not isinstance(data, list):
        raise ValueError(f"bboxes input must be bounding boxes, elements, or a JSON string, got {type(data).__name__}")
    if not data:
        return []
    first = data[0]
    if isinstance(first, list):
        return pixel_boxes(data)
    if not isinstance(first, dict):
        raise ValueError(f"bboxes list must contain bounding boxes or elements, got {type(first).__name__}")
    if is_element(first):
        return element_boxes(data, width, height)
    if _is_pixel_box(first):
        return pixel_boxes(data)
    raise ValueError("bboxes items must be bounding boxes (x, y, width, height) or elements (with a 'bbox')")


def has_elements(data) -> bool:
    """Whether an input (or its first frame) holds elements, which need a canvas size."""
    probe = data if isinstance(data, list) else [data]
    if probe and isinstance(probe[0], list):
        probe = probe[0]
    return any(isinstance(box, dict) and is_element(box) for box in probe)


def boxes_to_regions(boxes, width: int, height: int) -> list[dict]:
    """Pixel boxes as canvas-relative regions (their metadata becomes the region's fields)."""
    regions = []
    for box in boxes if isinstance(boxes, list) else []:
        if not isinstance(box, dict):
            continue
        meta = box.get("metadata") if isinstance(box.get("metadata"), dict) else {}
        regions.append({"x": box.get("x", 0) / (width or 1), "y": box.get("y", 0) / (height or 1),
                        "w": box.get("width", 0) / (width or 1), "h": box.get("height", 0) / (height or 1),
                        "type": meta.get("type", "obj"), "text": meta.get("text", ""),
                        "desc": meta.get("desc", ""), "palette": meta.get("palette", [])})
    return regions


def region_pixels(region: dict, width: int, height: int) -> dict:
    """A region as a pixel box; a negative extent flips the box to start at its other corner."""
    x, y, w, h = (region.get(key, 0.0) for key in ("x", "y", "w", "h"))
    if w < 0:
        x, w = x + w, -w
    if h < 0:
        y, h = y + h, -h
    return {"x": round(x * width), "y": round(y * height), "width": round(w * width), "height": round(h * height)}


def _grid(value: float) -> int:
    return max(0, min(GRID, round(value * GRID)))


def region_element(region: dict) -> dict:
    """A region as an element: ``bbox`` ``[ymin, xmin, ymax, xmax]`` on the 0..1000 grid."""
    kind = "text" if region.get("type") == "text" else "obj"
    x, y, w, h = (region.get(key, 0.0) for key in ("x", "y", "w", "h"))
    ymin, xmin, ymax, xmax = _grid(y), _grid(x), _grid(y + h), _grid(x + w)
    element = {"type": kind, "bbox": [min(ymin, ymax), min(xmin, xmax), max(ymin, ymax), max(xmin, xmax)]}
    if kind == "text":
        element["text"] = region.get("text", "")
    element["desc"] = region.get("desc", "")
    palette = normalize_palette(region.get("palette", []))
    if palette:
        element["color_palette"] = palette[:MAX_SWATCHES]
    return element


# -- the preview ---------------------------------------------------------------------------------

def _font(size: int):
    try:
        return ImageFont.load_default(size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _wrapped(draw: ImageDraw.ImageDraw, text: str, font, max_width: float) -> list[str]:
    lines = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split():
            candidate = word if not line else f"{line} {word}"
            if line and draw.textlength(candidate, font=font) > max_width:
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    return lines


def _scaled(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, PREVIEW_LONG_EDGE / (max(width, height) or 1))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _base(width: int, height: int, background: torch.Tensor | None) -> Image.Image:
    """The dimmed background image, or mid grey at the same dimness; at most 1024 on its long edge."""
    if background is None:
        grey = round(PREVIEW_DIM * 128)
        return Image.new("RGBA", _scaled(width, height), (grey, grey, grey, 255))
    pixels = (background[0, :, :, :3].detach().cpu().float().numpy() * 255).clip(0, 255).astype(np.uint8)
    picture = Image.fromarray(pixels)
    picture = picture.convert("RGB").resize(_scaled(*picture.size), Image.Resampling.LANCZOS)
    return ImageEnhance.Brightness(picture).enhance(PREVIEW_DIM).convert("RGBA")


def _draw_region(draw: ImageDraw.ImageDraw, index: int, region: dict, size: tuple[int, int], fonts) -> None:
    """One region: outline in its first palette colour, a strip of swatches, a numbered tag and
    its description (or quoted text) wrapped inside the box."""
    (width, height), (font, tag_font, font_size) = size, fonts
    palette = [color for color in (region.get("palette") or []) if color]
    rgb = hex_rgb(palette[0]) if palette else NEUTRAL_RGB
    x0, x1 = sorted(max(0, min(width, round(value * width)))
                    for value in (region.get("x", 0), region.get("x", 0) + region.get("w", 0)))
    y0, y1 = sorted(max(0, min(height, round(value * height)))
                    for value in (region.get("y", 0), region.get("y", 0) + region.get("h", 0)))
    draw.rectangle([x0, y0, x1, y1], outline=rgb + (255,), width=2)
    swatches = palette[:MAX_SWATCHES]
    if swatches and x1 - x0 > 2:
        strip, step = max(5, font_size // 2), (x1 - x0) / len(swatches)
        for slot, color in enumerate(swatches):
            draw.rectangle([x0 + round(slot * step), y0, x0 + round((slot + 1) * step), y0 + strip],
                           fill=hex_rgb(color))
    tag = str(index + 1).zfill(2)
    draw.rectangle([x0, y0, x0 + draw.textlength(tag, font=tag_font) + 6, y0 + font_size + 2], fill=rgb + (255,))
    luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    draw.text((x0 + 3, y0 + 1), tag, fill=(0, 0, 0, 255) if luma > 140 else (255, 255, 255, 255), font=tag_font)
    body = region.get("desc", "") or ""
    if region.get("type") == "text" and region.get("text"):
        body = f'"{region["text"]}"' + (f" — {body}" if body else "")
    if body and x1 - x0 > 8:
        line_y = y0 + font_size + 5
        for line in _wrapped(draw, body, font, x1 - x0 - 8):
            if line_y > y1:
                break
            draw.text((x0 + 4, line_y), line, fill=readable_color(rgb) + (255,), font=font)
            line_y += font_size + 2


def render_preview(regions: list, width: int, height: int, background: torch.Tensor | None = None) -> torch.Tensor:
    """The regions drawn over the dimmed background (or grey): IMAGE ``[1, h, w, 3]``."""
    base = _base(width, height, background)
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    font_size = max(10, round(base.size[1] / 64))
    fonts = (_font(font_size), _font(max(9, font_size - 2)), font_size)
    for index, region in enumerate(regions):
        if isinstance(region, dict):
            _draw_region(draw, index, region, base.size, fonts)
    composed = Image.alpha_composite(base, overlay).convert("RGB")
    return torch.from_numpy(np.asarray(composed, dtype=np.float32) / 255.0).unsqueeze(0)
