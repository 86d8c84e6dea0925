"""The layout-boxes widget's value -> the boxes :mod:`ldm.text.layout_tokens` encodes.

The editor's ``layout_boxes`` widget writes a JSON list ``[{"label", "x", "y", "w", "h"}, …]``
with coordinates relative to the image (0..1, origin top-left, ``y`` downwards): the convention of
``layout_tokens`` (taming's ``BoundingBox``), so boxes pass through unchanged. A label is an
OpenImages class name as ``ldm/text/layout_classes.json`` spells it (matched ignoring case), or a
class id written as a number ("12" or 12). ``[]`` (or an empty string) is the empty layout: all
padding, which is what the model saw for images without boxes and so the natural negative for
classifier-free guidance.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence

from ldm.text.layout_tokens import CLASS_LIST_FILE, LayoutBox

_COORDINATES = ("x", "y", "w", "h")


def _label_id(label: object, ids_by_folded_name: Mapping[str, int], num_classes: int) -> int | None:
    """The class id a label stands for, or None when it names no class."""
    if isinstance(label, bool):
        return None
    if isinstance(label, int):
        return label if 0 <= label < num_classes else None
    if not isinstance(label, str):
        return None
    text = label.strip()
    if text.isdigit():
        return int(text) if int(text) < num_classes else None
    return ids_by_folded_name.get(text.casefold())


def _coordinate(entry: Mapping, key: str, position: int) -> float:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"layout box {position}: {key!r} must be a finite number (0..1 of the image), "
                         f"got {value!r}")
    return float(value)


def parse_layout(value: str, class_names: Sequence[str]) -> list[LayoutBox]:
    """The boxes of a widget value (see the module docstring). ``class_names`` are indexed by class
    id. Raises ``ValueError`` for text that is not such a list, for a box without numeric
    coordinates, and — naming every one of them — for labels that are no class."""
    text = value.strip()
    if not text:
        return []
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"a layout is a JSON list of {{\"label\", \"x\", \"y\", \"w\", \"h\"}} boxes; "
                         f"this is not JSON ({exc})") from None
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise ValueError("a layout is a JSON list of {\"label\", \"x\", \"y\", \"w\", \"h\"} objects")
    ids_by_folded_name = {name.casefold(): class_id for class_id, name in enumerate(class_names)}
    boxes, unknown = [], []
    for position, entry in enumerate(entries):
        class_id = _label_id(entry.get("label"), ids_by_folded_name, len(class_names))
        if class_id is None:
            unknown.append(entry.get("label"))
            continue
        boxes.append(LayoutBox(class_id, *(_coordinate(entry, key, position) for key in _COORDINATES)))
    if unknown:
        listed = ", ".join(repr(label) for label in dict.fromkeys(map(str, unknown)))
        raise ValueError(f"unknown layout label(s) {listed}: a label is one of the model's {len(class_names)} "
                         f"OpenImages class names (the layout widget's label list; all in "
                         f"ldm/text/{CLASS_LIST_FILE.name}) or a class id 0..{len(class_names) - 1}")
    return boxes
