"""Draw the media of the templates for the paper's own models (the ``weft_ldm_*`` templates).

    python workflow_templates/make_ldm_media.py

These templates need checkpoints that are not shipped (see docs/models.md), so unlike
``make_thumbnails.py`` nothing is sampled here. This script draws

* the pictures the templates load, all from one procedural landscape (sky, a mountain ridge, sea,
  a beach): its colours at 64 x 64 (super-resolution's input), at 256 x 256 with a transparent
  hole (inpainting's input), and its regions as COCO-Stuff label maps at 256 x 256 and 512 x 1024
  (semantic synthesis' inputs);
* each template's thumbnail ``<name>-1.webp``: a diagram, not a sample — the input picture (if
  any), an arrow, and a card naming the mode and the checkpoint file. The card says "diagram".

Everything is drawn from fixed numbers, so a rerun writes the same files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).resolve().parent
THUMBNAIL_SIZE = 256

#: COCO-Stuff class ids (0-based, the 182 classes the landscape model's one-hot encoder takes).
SKY, CLOUDS, MOUNTAIN, SEA, SAND = 156, 105, 134, 154, 153
#: The picture's colour of each region.
COLOURS = {SKY: (118, 168, 222), CLOUDS: (236, 240, 246), MOUNTAIN: (92, 96, 110), SEA: (36, 92, 148),
           SAND: (222, 200, 150)}


def landscape_labels(height: int, width: int) -> np.ndarray:
    """``[height, width]`` uint8 class ids; the same scene at any size (coordinates in 0..1)."""
    v, u = np.meshgrid(np.linspace(0, 1, height), np.linspace(0, 1, width), indexing="ij")
    labels = np.full((height, width), SKY, np.uint8)
    clouds = ((u - 0.25) / 0.16) ** 2 + ((v - 0.16) / 0.06) ** 2 < 1
    clouds |= ((u - 0.72) / 0.12) ** 2 + ((v - 0.22) / 0.05) ** 2 < 1
    labels[clouds] = CLOUDS
    ridge = 0.58 - 0.26 * np.exp(-((u - 0.38) / 0.16) ** 2) - 0.14 * np.exp(-((u - 0.78) / 0.12) ** 2)
    labels[v > ridge] = MOUNTAIN
    labels[v > 0.62] = SEA
    labels[v > 0.62 + 0.2 + 0.06 * np.sin(u * 2 * np.pi)] = SAND
    return labels


def landscape_picture(height: int, width: int) -> Image.Image:
    labels = landscape_labels(height, width)
    rgb = np.zeros((height, width, 3), np.uint8)
    for label, colour in COLOURS.items():
        rgb[labels == label] = colour
    return Image.fromarray(rgb, "RGB")


def with_hole(picture: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    """RGBA copy whose ``box`` (x0, y0, x1, y1) is transparent: LoadImage's MASK is 1 there."""
    alpha = np.full(picture.size[::-1], 255, np.uint8)
    x0, y0, x1, y1 = box
    alpha[y0:y1, x0:x1] = 0
    out = picture.copy()
    out.putalpha(Image.fromarray(alpha))
    return out


def label_map(height: int, width: int) -> Image.Image:
    return Image.fromarray(landscape_labels(height, width), "L")


def draw_inputs(folder: Path) -> dict[str, Image.Image]:
    pictures = {
        "weft_input_ldm_lowres.png": landscape_picture(64, 64),
        "weft_input_ldm_masked.png": with_hole(landscape_picture(256, 256), (96, 72, 176, 152)),
        "weft_input_ldm_landscape_labels.png": label_map(256, 256),
        "weft_input_ldm_landscape_labels_512x1024.png": label_map(512, 1024),
    }
    for name, picture in pictures.items():
        picture.save(folder / name)
    return pictures


@dataclass(frozen=True)
class Card:
    """What a thumbnail shows: the mode, the checkpoint, and the input picture it starts from."""

    mode: str
    checkpoint: str
    input_name: str | None = None


def _checkerboard(size: tuple[int, int], cell: int = 6) -> Image.Image:
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    board = np.where(((x // cell) + (y // cell)) % 2 == 0, 200, 150).astype(np.uint8)
    return Image.fromarray(np.stack([board] * 3, -1), "RGB")


def _as_shown(picture: Image.Image) -> Image.Image:
    """Label maps in false colour (their values are dark greys), transparency over a checkerboard."""
    if picture.mode == "L":
        ids = np.asarray(picture)
        rgb = np.zeros(ids.shape + (3,), np.uint8)
        for label, colour in COLOURS.items():
            rgb[ids == label] = colour
        return Image.fromarray(rgb, "RGB")
    if picture.mode == "RGBA":
        under = _checkerboard(picture.size)
        under.paste(picture, mask=picture.getchannel("A"))
        return under
    return picture.convert("RGB")


def thumbnail(card: Card, pictures: dict[str, Image.Image]) -> Image.Image:
    size = THUMBNAIL_SIZE
    sheet = Image.new("RGB", (size, size), (24, 24, 27))
    draw = ImageDraw.Draw(sheet)
    title = ImageFont.load_default(size=17)
    small = ImageFont.load_default(size=11)
    draw.text((12, 10), card.mode, font=title, fill=(244, 244, 245))
    draw.text((12, 34), card.checkpoint, font=small, fill=(161, 161, 170))
    if card.input_name is not None:
        shown = _as_shown(pictures[card.input_name])
        shown.thumbnail((104, 104), Image.NEAREST)
        sheet.paste(shown, (12, 64 + (104 - shown.height) // 2))
        draw.text((12, 174), "input", font=small, fill=(161, 161, 170))
        draw.line((124, 116, 144, 116), fill=(244, 244, 245), width=3)
        draw.polygon([(144, 109), (152, 116), (144, 123)], fill=(244, 244, 245))
        box = (158, 64, 244, 168)
    else:
        box = (60, 64, 196, 168)
    draw.rounded_rectangle(box, radius=10, outline=(129, 140, 248), width=3)
    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    draw.text(centre, "LDM", font=title, fill=(199, 210, 254), anchor="mm")
    draw.text((12, 226), "diagram, not a sample", font=small, fill=(113, 113, 122))
    return sheet


CARDS = {
    "weft_ldm_text_to_image": Card("Text to image", "ldm-txt2img-f8-large.ckpt"),
    "weft_ldm_unconditional": Card("Unconditional", "ldm-celeba256.ckpt"),
    "weft_ldm_class_conditional": Card("ImageNet class", "ldm-cin256-v2.ckpt"),
    "weft_ldm_super_resolution": Card("Super-resolution 4x", "ldm-bsr-sr.ckpt", "weft_input_ldm_lowres.png"),
    "weft_ldm_inpainting": Card("Inpainting", "ldm-inpainting-big.ckpt", "weft_input_ldm_masked.png"),
    "weft_ldm_semantic_synthesis": Card("Semantic synthesis", "ldm-semantic-synthesis256.ckpt",
                                        "weft_input_ldm_landscape_labels.png"),
    "weft_ldm_semantic_synthesis_512x1024": Card("Semantic, 512 x 1024", "ldm-semantic-synthesis256.ckpt",
                                                 "weft_input_ldm_landscape_labels_512x1024.png"),
    "weft_ldm_layout_to_image": Card("Layout to image", "ldm-layout2img-openimages256.ckpt"),
}


def main() -> None:
    pictures = draw_inputs(HERE)
    listed = {t["name"] for category in json.loads((HERE / "index.json").read_text()) for t in category["templates"]}
    for name, card in CARDS.items():
        if name in listed:
            thumbnail(card, pictures).save(HERE / f"{name}-1.webp", lossless=True)
            print(f"{name}-1.webp")


if __name__ == "__main__":
    main()
