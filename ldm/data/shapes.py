"""Procedural captioned scenes: one coloured shape on a plain background, deterministic by seed.

A scene is drawn from a fixed vocabulary — four shapes (circle, square, triangle, cross), eight
colours, a 3 x 3 grid of positions, a background colour other than the shape's — with small
random jitter of position and size, and captioned from the same vocabulary: "a red circle at
the top left on a blue background". Scene ``i`` of a dataset with seed ``s`` is drawn from its own generator
``numpy.random.default_rng([s, i])`` (a SeedSequence over both numbers), so every scene is
reproducible on its own, on any machine, in any order.

Shapes are rendered 4 x 4 supersampled (anti-aliased edges). Geometry is given for a 64-pixel
canvas and scaled to ``size``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

#: name -> RGB (0..255). Far apart in RGB, so the nearest palette colour names a pixel reliably.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 40, 40),
    "orange": (245, 135, 30),
    "yellow": (240, 215, 50),
    "green": (45, 165, 65),
    "blue": (40, 85, 210),
    "purple": (135, 60, 185),
    "white": (240, 240, 240),
    "black": (25, 25, 25),
}
COLOUR_NAMES = tuple(COLOURS)


def _circle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u * u + v * v <= 1.0


def _square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (np.abs(u) <= 1.0) & (np.abs(v) <= 1.0)


def _triangle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # apex at the top centre (v = -1), base along the bottom edge (v = 1)
    return (v <= 1.0) & (np.abs(u) <= (v + 1.0) / 2.0)


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # a plus sign: arms a third of the box wide
    inside = (np.abs(u) <= 1.0) & (np.abs(v) <= 1.0)
    return inside & ((np.abs(u) <= 1.0 / 3.0) | (np.abs(v) <= 1.0 / 3.0))


#: Each shape fills (part of) the box u, v in [-1, 1] and touches all four of its sides, so a
#: shape's bounding box is its box: the classifier compares shapes fitted to a detected box.
SHAPES = {"circle": _circle, "square": _square, "triangle": _triangle, "cross": _cross}
SHAPE_NAMES = tuple(SHAPES)

#: (name, row, column) of the 3 x 3 grid; phrases as they appear in captions.
POSITIONS = (
    ("top left", 0, 0), ("top", 0, 1), ("top right", 0, 2),
    ("left", 1, 0), ("center", 1, 1), ("right", 1, 2),
    ("bottom left", 2, 0), ("bottom", 2, 1), ("bottom right", 2, 2),
)
POSITION_NAMES = tuple(name for name, _, _ in POSITIONS)
_PHRASE = {"left": "on the left", "right": "on the right", "center": "in the center"}

# Geometry on the 64-pixel canvas: where a shape's centre of mass may fall (grid-cell centre +-
# jitter), and the half-size of its box. A shape covers a good part of its 21-pixel grid cell.
CANVAS = 64
CELL_CENTRES = (16.0, 32.0, 48.0)
CENTRE_JITTER = 1.5
HALF_SIZE = (9.5, 12.0)
SUPERSAMPLE = 4


def position_phrase(position: str) -> str:
    return _PHRASE.get(position, f"at the {position}")


@dataclass(frozen=True)
class Scene:
    shape: str
    colour: str
    position: str
    background: str
    # rendering details, in pixels of the 64-pixel canvas
    centre: tuple[float, float] = (32.0, 32.0)  # x, y of the shape's box
    half_size: float = 10.5

    def caption(self, with_position: bool = True, with_background: bool = True) -> str:
        words = [f"a {self.colour} {self.shape}"]
        if with_position:
            words.append(position_phrase(self.position))
        if with_background:
            words.append(f"on a {self.background} background")
        return " ".join(words)


def grid_centre(position: str) -> tuple[float, float]:
    """The (x, y) centre of a grid cell on the 64-pixel canvas."""
    _, row, column = POSITIONS[POSITION_NAMES.index(position)]
    return CELL_CENTRES[column], CELL_CENTRES[row]


#: Where a shape's centre of mass lies below its box centre, in half-sizes (a triangle's is a
#: third of the way up from its base; the others are symmetric).
CENTROID_OFFSET = {"circle": 0.0, "square": 0.0, "triangle": 1.0 / 3.0, "cross": 0.0}


def draw_scene(rng: np.random.Generator) -> Scene:
    """A random scene: uniform shape, colour, position; a background colour other than the shape's."""
    shape = SHAPE_NAMES[rng.integers(len(SHAPE_NAMES))]
    colour_index = int(rng.integers(len(COLOUR_NAMES)))
    background_index = int(rng.integers(len(COLOUR_NAMES) - 1))
    background_index += background_index >= colour_index  # any colour but the shape's
    position = POSITION_NAMES[rng.integers(len(POSITION_NAMES))]
    cx, cy = grid_centre(position)
    jitter = rng.uniform(-CENTRE_JITTER, CENTRE_JITTER, size=2)
    half_size = float(rng.uniform(*HALF_SIZE))
    # the centre of mass sits on the grid point, so "top" means the same for every shape
    box_centre = (cx + float(jitter[0]), cy + float(jitter[1]) - CENTROID_OFFSET[shape] * half_size)
    return Scene(shape=shape, colour=COLOUR_NAMES[colour_index], position=position,
                 background=COLOUR_NAMES[background_index], centre=box_centre, half_size=half_size)


def shape_coverage(shape: str, centre: tuple[float, float], half_size: tuple[float, float] | float,
                   size: int, supersample: int = SUPERSAMPLE) -> np.ndarray:
    """``[size, size]`` float32 fraction of each pixel inside ``shape``.

    ``centre`` and ``half_size`` (one value, or (x, y) half-widths) are in pixels of a ``size``
    canvas; pixel ``(i, j)`` covers ``[j, j+1) x [i, i+1)``.
    """
    hx, hy = (half_size, half_size) if np.isscalar(half_size) else half_size
    steps = (np.arange(size * supersample, dtype=np.float32) + 0.5) / supersample
    u = (steps[None, :] - centre[0]) / max(hx, 1e-6)
    v = (steps[:, None] - centre[1]) / max(hy, 1e-6)
    inside = SHAPES[shape](u, v).astype(np.float32)
    return inside.reshape(size, supersample, size, supersample).mean(axis=(1, 3))


def _rgb(name: str) -> np.ndarray:
    return np.array(COLOURS[name], dtype=np.float32) / 255.0


def render_scene(scene: Scene, size: int = CANVAS) -> np.ndarray:
    """``[size, size, 3]`` float32 in 0..1."""
    scale = size / CANVAS
    alpha = shape_coverage(scene.shape, (scene.centre[0] * scale, scene.centre[1] * scale),
                           scene.half_size * scale, size)[..., None]
    background = _rgb(scene.background)
    foreground = _rgb(scene.colour)
    return background * (1.0 - alpha) + foreground * alpha


@dataclass(frozen=True)
class ShapesDataset:
    """``length`` scenes of ``size`` x ``size`` pixels drawn from ``seed``.

    ``partial_captions``: the chance that a training caption leaves out its position phrase, and
    (independently) its background phrase, so short prompts ("a red circle") mean something too.
    """

    seed: int = 0
    length: int = 50_000
    size: int = CANVAS
    partial_captions: float = 0.0

    def __len__(self) -> int:
        return self.length

    def _rng(self, index: int) -> np.random.Generator:
        if not 0 <= index < self.length:
            raise IndexError(f"scene {index} of a dataset of {self.length}")
        return np.random.default_rng([self.seed, index])

    def scene(self, index: int) -> Scene:
        return draw_scene(self._rng(index))

    def image(self, index: int) -> torch.Tensor:
        return torch.from_numpy(render_scene(self.scene(index), self.size)).permute(2, 0, 1).contiguous()

    def caption(self, index: int) -> str:
        rng = self._rng(index)
        scene = draw_scene(rng)
        keep = rng.random(2) >= self.partial_captions  # drawn after the scene: scenes never change
        return scene.caption(with_position=bool(keep[0]), with_background=bool(keep[1]))
