"""Reading a shape scene back from its pixels: background, shape, colour and grid position.

Pixel analysis only, no learned model, so it can score images a diffusion model generated:

1. the background colour is the per-channel median of the image's border;
2. the foreground is every pixel farther (RGB distance) from it than half the largest distance
   in the image — after a 3 x 3 majority vote, the largest connected blob of them, so stray
   specks do not count;
3. its colour is the median of its inner pixels (distance above 3/4 of the largest), named by
   the nearest palette colour; its grid cell is the one holding its centroid;
4. its shape is the template (circle, square, triangle, cross) that, placed on the blob's
   centroid with the blob's area, overlaps it best (intersection over union).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from ldm.data.shapes import CENTROID_OFFSET, COLOURS, POSITIONS, SHAPE_NAMES, shape_coverage

#: Below this RGB distance (0..1 scale) from the background nothing counts as a shape.
MIN_CONTRAST = 0.1

_PALETTE = np.array(list(COLOURS.values()), dtype=np.float32) / 255.0
_PALETTE_NAMES = tuple(COLOURS)


@dataclass(frozen=True)
class Reading:
    background: str
    shape: str | None  # None: no foreground found
    colour: str | None
    position: str | None
    shape_iou: float = 0.0


def nearest_colour(rgb: np.ndarray) -> str:
    return _PALETTE_NAMES[int(np.argmin(((_PALETTE - rgb[None]) ** 2).sum(axis=1)))]


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected region of ``mask`` (a breadth-first flood fill per region)."""
    height, width = mask.shape
    labels = np.zeros(mask.shape, dtype=np.int32)
    best_label, best_size, label = 0, 0, 0
    for y0, x0 in zip(*np.nonzero(mask)):
        if labels[y0, x0]:
            continue
        label += 1
        labels[y0, x0] = label
        queue, size = deque([(y0, x0)]), 0
        while queue:
            y, x = queue.popleft()
            size += 1
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < height and 0 <= nx < width and mask[ny, nx] and not labels[ny, nx]:
                    labels[ny, nx] = label
                    queue.append((ny, nx))
        if size > best_size:
            best_label, best_size = label, size
    return labels == best_label


def _border(image: np.ndarray) -> np.ndarray:
    width = max(1, image.shape[0] // 32)
    return np.concatenate([image[:width].reshape(-1, 3), image[-width:].reshape(-1, 3),
                           image[:, :width].reshape(-1, 3), image[:, -width:].reshape(-1, 3)])


#: Area of each shape whose box has half-size 1: templates are placed by the blob's area and
#: centroid, which ragged or soft edges move far less than they move a bounding box.
SHAPE_AREA = {"circle": math.pi, "square": 4.0, "triangle": 2.0, "cross": 20.0 / 9.0}
#: Template sizes tried around the area-matched one.
TEMPLATE_SCALES = (0.9, 1.0, 1.1)


def _best_shape(blob: np.ndarray) -> tuple[str, float]:
    ys, xs = np.nonzero(blob)
    size = blob.shape[0]
    cx, cy = xs.mean() + 0.5, ys.mean() + 0.5
    best, best_iou = SHAPE_NAMES[0], -1.0
    for shape in SHAPE_NAMES:
        matched = math.sqrt(len(xs) / SHAPE_AREA[shape])
        for scale in TEMPLATE_SCALES:
            half = matched * scale
            centre = (cx, cy - CENTROID_OFFSET[shape] * half)
            template = shape_coverage(shape, centre, half, size) >= 0.5
            iou = float((template & blob).sum()) / max(1, int((template | blob).sum()))
            if iou > best_iou:
                best, best_iou = shape, iou
    return best, best_iou


def _majority(mask: np.ndarray) -> np.ndarray:
    """3 x 3 majority vote (edges replicated): single noisy pixels neither join nor split the blob."""
    padded = np.pad(mask.astype(np.int32), 1, mode="edge")
    height, width = mask.shape
    votes = sum(padded[dy:dy + height, dx:dx + width] for dy in range(3) for dx in range(3))
    return votes >= 5


def read_scene(image: np.ndarray) -> Reading:
    """What ``image`` (``[H, W, 3]`` float in 0..1, square) shows."""
    image = np.asarray(image, dtype=np.float32)
    background = np.median(_border(image), axis=0)
    distance = np.sqrt(((image - background) ** 2).sum(axis=-1))
    peak = float(distance.max())
    background_name = nearest_colour(background)
    if peak < MIN_CONTRAST:
        return Reading(background_name, None, None, None)
    blob = _largest_component(_majority(distance > peak / 2.0))
    if not blob.any():
        return Reading(background_name, None, None, None)
    core = blob & (distance > 0.75 * peak)
    colour = nearest_colour(np.median(image[core if core.any() else blob], axis=0))
    ys, xs = np.nonzero(blob)
    size = image.shape[0]
    row = min(2, int((ys.mean() + 0.5) * 3 / size))
    column = min(2, int((xs.mean() + 0.5) * 3 / size))
    position = next(name for name, r, c in POSITIONS if (r, c) == (row, column))
    shape, iou = _best_shape(blob)
    return Reading(background_name, shape, colour, position, iou)
