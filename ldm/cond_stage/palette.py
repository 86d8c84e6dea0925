"""A colour for each class of the semantic-synthesis model, so a label map can be painted in colour
and read back (``SemanticMapConditioning``'s "palette colours").

Whose palette: Weft's own. The model's data are grey label PNGs (taming's S-FLCKR reads label values;
CompVis colour them only with a random projection for logging), and COCO-Stuff's own colour map
(cocostuffapi's ``getCMap``) paints all 91 thing classes black, so no published palette tells the 182
classes apart. Weft uses the PASCAL-VOC colour map *algorithm* — each id's bits dealt in turn to the
high bits of R, G and B — which is deterministic, needs no data file, and gives ids 0..255 distinct
colours at least 32 apart in one channel.

Reading colours back maps each pixel to the nearest palette colour. Exact colours are expected;
pixels within ``MAX_COLOUR_DISTANCE`` (Euclidean, 8-bit units; under the palette's spacing of 32) are
accepted, which absorbs JPEG noise. Blends from a bilinear resize may land nearer another class or
too far from all: resize label maps with nearest-neighbour.

    python -m ldm.cond_stage.palette OUT.png    # the legend: a swatch, id and name per class
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from ldm.cond_stage.coco_stuff import COCO_STUFF_CLASSES, coco_stuff_names

#: Ids the bit-interleaved map keeps distinct and at least 32 apart.
MAX_PALETTE_SIZE = 256
#: How far (Euclidean, 0..255 per channel) a pixel may be from its class's colour.
MAX_COLOUR_DISTANCE = 30.0


def palette_colours(count: int = COCO_STUFF_CLASSES) -> torch.Tensor:
    """[count, 3] uint8 colours of ids 0..count-1 (PASCAL-VOC's bit-interleaved colour map)."""
    if not 0 < count <= MAX_PALETTE_SIZE:
        raise ValueError(f"the palette has colours for 1..{MAX_PALETTE_SIZE} classes, not {count}")
    colours = np.zeros((count, 3), np.uint8)
    for index in range(count):
        bits, red, green, blue = index, 0, 0, 0
        for shift in range(7, -1, -1):  # bits 0, 1, 2 of each triple go to R, G, B, high bits first
            red |= (bits & 1) << shift
            green |= ((bits >> 1) & 1) << shift
            blue |= ((bits >> 2) & 1) << shift
            bits >>= 3
        colours[index] = (red, green, blue)
    return torch.from_numpy(colours)


def labels_from_colours(image: torch.Tensor, count: int) -> torch.Tensor:
    """Labels [B, H, W] (long) of a palette-coloured IMAGE [B, H, W, C>=3] in 0..1: each pixel's
    nearest colour among the first ``count``. Raises ``ValueError`` when pixels lie farther than
    ``MAX_COLOUR_DISTANCE`` from every colour, with their share and an example."""
    if image.ndim != 4 or image.shape[-1] < 3:
        raise ValueError(f"a palette-coloured map must be an RGB IMAGE [B, H, W, 3], got shape {tuple(image.shape)}")
    pixels = image[..., :3].float().reshape(-1, 3) * 255.0
    colours = palette_colours(count).float()
    labels = torch.empty(pixels.shape[0], dtype=torch.long)
    distances = torch.empty(pixels.shape[0])
    # in chunks: [pixels, count] distances for a 512 x 1024 map would otherwise hold ~95 M floats
    for start in range(0, pixels.shape[0], 65536):
        chunk = torch.cdist(pixels[start:start + 65536], colours)
        distances[start:start + 65536], labels[start:start + 65536] = chunk.min(dim=1)
    far = distances > MAX_COLOUR_DISTANCE
    if bool(far.any()):
        example = tuple(int(v) for v in pixels[far.nonzero()[0, 0]].round().tolist())
        raise ValueError(f"{float(far.float().mean()):.1%} of the map's pixels (e.g. RGB {example}) are farther than "
                         f"{MAX_COLOUR_DISTANCE:g} from every palette colour: paint with the legend's colours "
                         "(`python -m ldm.cond_stage.palette OUT.png`), resize with nearest-neighbour, or use "
                         "map_kind 'label values' for a grey label PNG")
    return labels.reshape(image.shape[:3])


def legend_image(count: int = COCO_STUFF_CLASSES, columns: int = 4) -> Image.Image:
    """A swatch, the id and the COCO-Stuff name of each class, in ``columns`` columns."""
    colours = palette_colours(count).tolist()
    names = coco_stuff_names()
    row_height, column_width = 20, 230
    rows = -(-count // columns)
    legend = Image.new("RGB", (columns * column_width, rows * row_height), "white")
    draw = ImageDraw.Draw(legend)
    for index, colour in enumerate(colours):
        x, y = (index // rows) * column_width, (index % rows) * row_height
        draw.rectangle((x + 4, y + 2, x + 40, y + row_height - 3), fill=tuple(colour), outline=(0, 0, 0))
        draw.text((x + 46, y + 4), f"{index} {names.get(index, '(unused)')}", fill=(0, 0, 0))
    return legend


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the semantic-synthesis palette's legend as a PNG.")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--classes", type=int, default=COCO_STUFF_CLASSES, help="how many classes (182)")
    args = parser.parse_args(argv)
    legend_image(args.classes).save(args.out)
    print(f"wrote {args.out}: {args.classes} classes")


if __name__ == "__main__":
    main()
