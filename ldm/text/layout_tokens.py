"""Bounding boxes with class labels -> the token sequence the paper's layout-to-image LDM is
conditioned on, and back.

Rombach et al. (2022, sec. 4.3.1) train layout-to-image LDMs on OpenImages and COCO. CompVis did
not release their data module (``ldm.data.openimages``), but everything released points at the
builder of taming-transformers (``taming/data/conditional_builder/objects_bbox.py``,
``ObjectsBoundingBoxConditionalBuilder``): ``LatentDiffusion.apply_model`` re-encodes crops with its
``_crop_encoder`` and ``Layout2ImgDiffusion`` plots layouts with it, and the
``layout2img-openimages256`` config matches its sizes — ``vocab_size: 8192`` is the builder's
``no_tokens``, ``max_seq_len: 92`` is 30 objects × 3 tokens + 2 crop tokens, as in taming's
OpenImages config. This module follows the builder's rules (our own code):

- **Vocabulary.** One vocabulary of ``vocab_size`` ids holds class tokens, coordinate tokens and
  the padding token ``vocab_size - 1`` (8191). Coordinates sit on a square grid of
  ``int(sqrt(vocab_size))`` points per side (90 for 8192): a point ``(x, y)`` in [0, 1]² becomes
  ``round(y·(grid-1))·grid + round(x·(grid-1))`` — Python's ``round``, so halves go to the even
  neighbour, as in taming. Grid points are ``1/(grid-1)`` apart (1/89 ≈ 0.011 for 8192).
- **One object = 3 tokens:** its class token, the token of its top-left corner ``(x, y)`` and
  that of its bottom-right corner ``(x + w, y + h)``. The class token is the class number plus
  ``num_classes ×`` a bit set of flags (1 group-of, when ``use_group_flag``; 2 occluded, 4
  depiction, 8 inside, when ``use_additional_flags``) — 0 for a plain box, so its token is its
  class number whatever ``num_classes`` is.
- **Sequence:** ``max_objects`` triples, objects first and then ``(pad, pad, pad)`` triples, then
  (``encode_crop``) the two corner tokens of the crop the image shows — the whole image,
  ``(0, 0, 1, 1)``, gives ``(0, grid²-1)``, i.e. ``(0, 8099)``.

**Coordinates.** A box is ``(class_id, x, y, w, h)``: left, top, width and height as fractions of
the image's width and height, ``y`` growing downwards. That is taming's ``BoundingBox``
``(x0, y0, w, h)`` exactly (COCO's pixel ``[x, y, w, h]`` divided by the image size; OpenImages'
``XMin, YMin, XMax - XMin, YMax - YMin``), so no conversion is needed.

**Order.** taming's builder shuffles the objects (``random.shuffle``) before tokenising, so a
model trained with it saw every order; here the caller's order is kept, which makes the sequence reproducible.
With the shuffle left out, the sequence is exactly taming's for the same input.

**Edge cases, as taming treats them:**
- no boxes: all padding (plus the crop tokens) — a valid "empty layout";
- more than ``max_objects`` boxes: the first ``max_objects`` are kept (a warning is logged),
  *before* boxes outside the image are dropped, as taming does;
- boxes that do not overlap the image (the crop) with a positive area — wholly outside it, or of
  zero width or height — are dropped;
- boxes reaching past an edge are clamped as taming clamps them: the corner ``(x, y)`` is moved
  into [0, 1] and then the width and height are cut so the box ends by the far edge. A box that
  starts left of or above the image is therefore shifted rather than cut (``x = -0.2, w = 0.5``
  becomes ``x = 0, w = 0.5``); models trained on random crops saw boxes handled this way.

Inputs a caller cannot mean are refused with ``ValueError`` rather than silently fixed: a
coordinate that is not finite, a negative width or height, a class number outside
``[0, num_classes)``, a flagged class token that does not fit the vocabulary.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

#: A rectangle ``(x, y, w, h)`` in image-relative coordinates (see the module docstring).
Rect = tuple[float, float, float, float]
#: The whole image, as a crop.
FULL_IMAGE: Rect = (0.0, 0.0, 1.0, 1.0)
#: Tokens per object: class, top-left corner, bottom-right corner.
TOKENS_PER_OBJECT = 3
#: The class lists shipped beside this module (ids as taming numbers them; provenance inside).
CLASS_LIST_FILE = Path(__file__).with_name("layout_classes.json")

_GROUP_BIT, _OCCLUDED_BIT, _DEPICTION_BIT, _INSIDE_BIT = 1, 2, 4, 8


@dataclass(frozen=True)
class LayoutBox:
    """One labelled box; ``x, y, w, h`` as in the module docstring. The flags are OpenImages'
    annotation attributes; they reach the tokens only where the :class:`LayoutSpec` enables them."""

    class_id: int
    x: float
    y: float
    w: float
    h: float
    group_of: bool = False
    occluded: bool = False
    depiction: bool = False
    inside: bool = False

    @property
    def rect(self) -> Rect:
        return self.x, self.y, self.w, self.h


#: What :func:`layout_tokens` accepts for a box: a LayoutBox or ``(class_id, x, y, w, h)``.
BoxLike = LayoutBox | Sequence[float]


@dataclass(frozen=True)
class LayoutSpec:
    """The builder's settings (taming's ``no_object_classes``, ``no_max_objects``, ``no_tokens``,
    ``encode_crop``, ``use_group_parameter``, ``use_additional_parameters``)."""

    num_classes: int
    max_objects: int = 30
    vocab_size: int = 8192
    encode_crop: bool = True
    use_group_flag: bool = False
    use_additional_flags: bool = False

    def __post_init__(self) -> None:
        if self.num_classes < 1 or self.max_objects < 1:
            raise ValueError(f"a layout needs at least one class and one object slot; got {self}")
        if self.grid < 2:
            raise ValueError(f"{self.vocab_size} ids leave no coordinate grid")

    @property
    def grid(self) -> int:
        """Grid points per side; coordinate tokens are ``0 … grid² - 1``."""
        return math.isqrt(self.vocab_size)

    @property
    def pad_token(self) -> int:
        """taming's ``none``: pads empty object slots (all three tokens of a slot)."""
        return self.vocab_size - 1

    @property
    def seq_len(self) -> int:
        return self.max_objects * TOKENS_PER_OBJECT + (2 if self.encode_crop else 0)

    @classmethod
    def for_encoder(cls, vocab_size: int, positions: int, num_classes: int, **flags: bool) -> LayoutSpec:
        """The spec whose sequence fills an encoder of ``vocab_size`` ids and ``positions``
        positions (with the crop tokens, as in every CompVis layout config)."""
        objects, rest = divmod(positions - 2, TOKENS_PER_OBJECT)
        if rest or objects < 1:
            raise ValueError(f"{positions} positions are not 3 tokens per object plus 2 crop tokens")
        return cls(num_classes=num_classes, max_objects=objects, vocab_size=vocab_size, **flags)


#: The OpenImages layout model (``layout2img-openimages256``): taming's OpenImages builder — the
#: 340 classes of ``layout_classes.json``, group-of and the other flags on
#: (``configs/open_images_scene_images_transformer.yaml``).
OPENIMAGES_LAYOUT = LayoutSpec(num_classes=340, max_objects=30, vocab_size=8192, encode_crop=True,
                               use_group_flag=True, use_additional_flags=True)
#: taming's COCO builder (things and stuff, 171 classes). Its config turns group-of on, but its
#: loader passes COCO's ``iscrowd`` as 0/1, which the builder's ``is True`` test never matches: no
#: COCO-trained model saw the flag, so it is off here.
COCO_LAYOUT = LayoutSpec(num_classes=171, max_objects=30, vocab_size=8192, encode_crop=True)


def as_layout_box(box: BoxLike) -> LayoutBox:
    """A LayoutBox from itself or from ``(class_id, x, y, w, h)``."""
    if isinstance(box, LayoutBox):
        return box
    if len(box) != 5:
        raise ValueError(f"a box is (class_id, x, y, w, h); got {box!r}")
    class_id, x, y, w, h = box
    if int(class_id) != class_id:
        raise ValueError(f"class id {class_id!r} is not an integer")
    return LayoutBox(int(class_id), float(x), float(y), float(w), float(h))


def check_box(box: LayoutBox, spec: LayoutSpec) -> None:
    """Raise ValueError for a box no caller can mean (see the module docstring)."""
    if not all(math.isfinite(v) for v in box.rect):
        raise ValueError(f"box {box} has a coordinate that is not finite")
    if box.w < 0 or box.h < 0:
        raise ValueError(f"box {box} has a negative width or height")
    if not 0 <= box.class_id < spec.num_classes:
        raise ValueError(f"class id {box.class_id} is outside [0, {spec.num_classes})")


def overlap_area(a: Rect, b: Rect) -> float:
    """The area two ``(x, y, w, h)`` rectangles share (0 when they only touch)."""
    width = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return width * height


def clamp_rect(rect: Rect, frame: Rect = FULL_IMAGE) -> Rect:
    """``rect`` in ``frame``'s coordinates, clamped as taming clamps: the corner into [0, 1], then
    width and height cut at the far edges (so a box starting before an edge is shifted, not cut)."""
    x = min(max((rect[0] - frame[0]) / frame[2], 0.0), 1.0)
    y = min(max((rect[1] - frame[1]) / frame[3], 0.0), 1.0)
    return x, y, min(rect[2] / frame[2], 1.0 - x), min(rect[3] / frame[3], 1.0 - y)


def point_token(x: float, y: float, spec: LayoutSpec) -> int:
    """The grid token of a point in [0, 1]², row-major from the top-left."""
    last = spec.grid - 1
    return round(y * last) * spec.grid + round(x * last)


def token_point(token: int, spec: LayoutSpec) -> tuple[float, float]:
    """The grid point a coordinate token stands for."""
    row, column = divmod(token, spec.grid)
    return column / (spec.grid - 1), row / (spec.grid - 1)


def corner_tokens(rect: Rect, spec: LayoutSpec) -> tuple[int, int]:
    """The tokens of a rectangle's top-left and bottom-right corners."""
    x, y, w, h = rect
    return point_token(x, y, spec), point_token(x + w, y + h, spec)


def rect_from_corner_tokens(top_left: int, bottom_right: int, spec: LayoutSpec) -> Rect:
    (x0, y0), (x1, y1) = token_point(top_left, spec), token_point(bottom_right, spec)
    return x0, y0, x1 - x0, y1 - y0


def class_token(box: LayoutBox, spec: LayoutSpec) -> int:
    """The class number plus ``num_classes ×`` the enabled flags' bits."""
    flags = 0
    if spec.use_group_flag and box.group_of:
        flags |= _GROUP_BIT
    if spec.use_additional_flags:
        flags |= (_OCCLUDED_BIT * box.occluded) | (_DEPICTION_BIT * box.depiction) | (_INSIDE_BIT * box.inside)
    token = box.class_id + spec.num_classes * flags
    if token >= spec.pad_token:
        raise ValueError(f"class {box.class_id} with flags {flags} gives token {token}, past the vocabulary "
                         f"({spec.vocab_size} ids, the last one padding)")
    return token


def box_from_class_token(token: int, rect: Rect, spec: LayoutSpec) -> LayoutBox:
    flags, class_id = divmod(token, spec.num_classes)
    return LayoutBox(class_id, *rect,
                     group_of=spec.use_group_flag and bool(flags & _GROUP_BIT),
                     occluded=spec.use_additional_flags and bool(flags & _OCCLUDED_BIT),
                     depiction=spec.use_additional_flags and bool(flags & _DEPICTION_BIT),
                     inside=spec.use_additional_flags and bool(flags & _INSIDE_BIT))


def layout_tokens(boxes: Iterable[BoxLike], spec: LayoutSpec, crop: Rect = FULL_IMAGE) -> list[int]:
    """The ``spec.seq_len`` token ids of a layout (see the module docstring). ``crop``: the part
    of the image the sample shows (the whole image for ordinary sampling); with ``encode_crop``
    the boxes stay in whole-image coordinates and the crop is encoded, otherwise the boxes are
    re-expressed in the crop's coordinates."""
    objects = [as_layout_box(box) for box in boxes]
    for box in objects:
        check_box(box, spec)
    if len(objects) > spec.max_objects:
        log.warning("layout has %d boxes; the model takes %d, the rest are left out", len(objects),
                    spec.max_objects)
        objects = objects[:spec.max_objects]
    objects = [box for box in objects if overlap_area(box.rect, crop) > 0.0]
    frame = FULL_IMAGE if spec.encode_crop else crop
    tokens: list[int] = []
    for box in objects:
        tokens += [class_token(box, spec), *corner_tokens(clamp_rect(box.rect, frame), spec)]
    tokens += [spec.pad_token] * (spec.max_objects * TOKENS_PER_OBJECT - len(tokens))
    if spec.encode_crop:
        tokens += corner_tokens(crop, spec)
    return tokens


def boxes_from_tokens(tokens: Sequence[int], spec: LayoutSpec) -> tuple[list[LayoutBox], Rect | None]:
    """The inverse of :func:`layout_tokens`, up to the grid: ``(boxes, crop)`` — the objects on grid
    points with their flags, padding slots skipped, and the crop (None without ``encode_crop``)."""
    tokens = [int(token) for token in tokens]
    if len(tokens) != spec.seq_len:
        raise ValueError(f"{len(tokens)} tokens; this layout has {spec.seq_len}")
    crop = None
    if spec.encode_crop:
        crop = rect_from_corner_tokens(tokens[-2], tokens[-1], spec)
        tokens = tokens[:-2]
    boxes = []
    for start in range(0, len(tokens), TOKENS_PER_OBJECT):
        label, top_left, bottom_right = tokens[start:start + TOKENS_PER_OBJECT]
        if label != spec.pad_token:
            boxes.append(box_from_class_token(label, rect_from_corner_tokens(top_left, bottom_right, spec), spec))
    return boxes, crop


def class_names(dataset: str) -> list[str]:
    """The class names of ``dataset`` (``"openimages"`` or ``"coco"``), indexed by class id as
    taming's builders number them (provenance in ``layout_classes.json``)."""
    lists = json.loads(CLASS_LIST_FILE.read_text(encoding="utf-8"))
    if dataset not in lists:
        raise ValueError(f"no class list for {dataset!r}; there are {sorted(lists)}")
    return [name for _, _, name in lists[dataset]["classes"]]


def class_ids(dataset: str) -> dict[str, int]:
    """Class name -> class id for ``dataset`` (the inverse of :func:`class_names`)."""
    return {name: class_id for class_id, name in enumerate(class_names(dataset))}
