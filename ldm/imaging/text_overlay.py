"""Text drawn over images, as ComfyUI's TextOverlay draws it (``comfy_extras/nodes_text_overlay.py``).

The text is laid out once on a transparent RGBA layer with Pillow's built-in scalable font: its
size a percentage of the image height, lines wrapped to the width between the side margins (a
word longer than a line is cut), line pitch 1.2 × the font size, shrunk by 10 % steps while the
block is taller than the space (never below min(size, max(10 px, 2 % of the height))), an
optional black stroke of 4 % of the size, and the block flush with the top or bottom margin.
The layer is then composited over every frame: plainly over RGB, and source-over with straight
alpha over RGBA.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageColor, ImageDraw, ImageFont

LINE_SPACING = 1.2
MIN_FONT_PERCENT = 2.0
MIN_FONT_PIXELS = 10
OUTLINE_FACTOR = 0.04
SHRINK = 0.9
POSITIONS = ("top", "bottom")
ALIGNMENTS = ("left", "center", "right")


def parse_color(color: str) -> tuple[int, int, int, int]:
    """A CSS colour (``#rrggbb``, ``#rrggbbaa``, names) as RGBA bytes."""
    parsed = ImageColor.getrgb(color)
    return (*parsed, 255) if len(parsed) == 3 else parsed


def wrap_lines(text: str, font, max_width: float) -> list[str]:
    """Greedy word wrap of each line of ``text`` to ``max_width`` pixels."""
    lines: list[str] = []
    for raw_line in text.split("\n"):
        words = raw_line.split()
        if not words:
            lines.append("")
            continue
        current = ""
        for word in words:
            while font.getlength(word) > max_width and len(word) > 1:
                cut = 1  # the longest prefix that fits, at least one character
                while cut < len(word) and font.getlength(word[:cut + 1]) <= max_width:
                    cut += 1
                if current:
                    lines.append(current)
                    current = ""
                lines.append(word[:cut])
                word = word[cut:]
            candidate = f"{current} {word}" if current else word
            if not current or font.getlength(candidate) <= max_width:
                current = candidate
            else:
                lines.append(current)
                current = word
        if current:
            lines.append(current)
    return lines


def render_layer(width: int, height: int, text: str, font_percent: float, color: str, position: str,
                 align: str, outline: bool, padding_x: float = 1.0,
                 padding_y: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The text layer: RGB [H, W, 3] and alpha [H, W, 1], float 0..1."""
    if position not in POSITIONS or align not in ALIGNMENTS:
        raise ValueError(f"position must be one of {POSITIONS} and align one of {ALIGNMENTS}")
    fill = parse_color(color)
    stroke_fill = (0, 0, 0, 255) if outline else (0, 0, 0, 0)
    layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    margin_x = int(round(padding_x / 100.0 * min(width, height)))
    margin_y = int(round(padding_y / 100.0 * min(width, height)))
    max_width, max_height = max(1, width - 2 * margin_x), max(1, height - 2 * margin_y)
    size = max(1, int(round(font_percent / 100.0 * height)))
    floor = min(size, max(MIN_FONT_PIXELS, int(round(MIN_FONT_PERCENT / 100.0 * height))))
    while True:
        font = ImageFont.load_default(size=size)
        stroke = max(1, int(round(size * OUTLINE_FACTOR))) if outline else 0
        block = "\n".join(wrap_lines(text, font, max_width))
        # Pillow's own line advance, replaced by LINE_SPACING × size
        single = draw.textbbox((0, 0), "Ay", font=font, stroke_width=stroke)
        double = draw.multiline_textbbox((0, 0), "Ay\nAy", font=font, spacing=0, stroke_width=stroke)
        spacing = int(round(size * LINE_SPACING - ((double[3] - double[1]) - (single[3] - single[1]))))
        box = draw.multiline_textbbox((0, 0), block, font=font, spacing=spacing, stroke_width=stroke)
        if box[3] - box[1] <= max_height or size <= floor:
            break
        size = max(floor, int(size * SHRINK))
    anchor, x = {"left": ("l", margin_x), "center": ("m", width / 2), "right": ("r", width - margin_x)}[align]
    y = height - margin_y - box[3] if position == "bottom" else margin_y - box[1]
    draw.multiline_text((x, y), block, font=font, fill=fill, anchor=anchor + "a", align=align,
                        spacing=spacing, stroke_width=stroke, stroke_fill=stroke_fill)
    pixels = torch.from_numpy(np.asarray(layer).astype(np.float32) / 255.0)
    return pixels[..., :3], pixels[..., 3:]


def overlay_text(images: torch.Tensor, text: str, font_percent: float, color: str, position: str, align: str,
                 outline: bool, padding_x: float = 1.0, padding_y: float = 1.0) -> torch.Tensor:
    """``images`` [B, H, W, 3|4] with the text drawn over each; unchanged for blank text.
    ``\\n`` and ``\\t`` typed as two characters become a newline and a tab."""
    if not text.strip():
        return images
    text = text.replace("\\n", "\n").replace("\\t", "\t")
    rgb, alpha = render_layer(images.shape[2], images.shape[1], text, font_percent, color, position, align,
                              outline, padding_x, padding_y)
    rgb, alpha = rgb.to(images), alpha.to(images)
    if images.shape[-1] != 4:
        return images * (1.0 - alpha) + rgb * alpha
    base, base_alpha = images[..., :3], images[..., 3:]
    out_alpha = alpha + (1.0 - alpha) * base_alpha
    premultiplied = rgb * alpha + (1.0 - alpha) * base * base_alpha
    out_rgb = torch.where(out_alpha > 1e-5, premultiplied / out_alpha, torch.zeros_like(premultiplied))
    return torch.cat((out_rgb.clamp(0, 1), out_alpha), dim=-1)
