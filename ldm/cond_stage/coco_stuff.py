"""COCO-Stuff's 182 class ids, as the paper's semantic-synthesis (landscape) model takes them: the
0-based label values of COCO-Stuff's label PNGs, ``COCO category id - 1`` (sky-other, category 157,
is label 156). 171 ids have names (80 things, 91 stuff); the other 11 are COCO's unused thing ids.

The names come from ``ldm/text/layout_classes.json``'s ``coco`` list (taming-transformers' COCO
annotations, provenance inside), keyed here by label value instead of layout class id.
"""

from __future__ import annotations

import json
from functools import cache

from ldm.text.layout_tokens import CLASS_LIST_FILE

#: COCO-Stuff's label values 0..181 (the semantic model's one-hot width).
COCO_STUFF_CLASSES = 182


@cache
def coco_stuff_names() -> dict[int, str]:
    """Label value -> class name for the 171 named COCO-Stuff classes (read once; do not mutate)."""
    rows = json.loads(CLASS_LIST_FILE.read_text(encoding="utf-8"))["coco"]["classes"]
    return {category_id - 1: name for _, category_id, name in rows}


def coco_stuff_label(text: str, n_classes: int = COCO_STUFF_CLASSES) -> int:
    """The label value ``text`` names: a number ("156") or a COCO-Stuff class name ("sky-other",
    any case). Raises ``ValueError`` for an unknown name or a number outside ``0..n_classes-1``."""
    stripped = text.strip()
    if stripped.lstrip("-").isdigit():
        label = int(stripped)
    else:
        by_name = {name.casefold(): label for label, name in coco_stuff_names().items()}
        if stripped.casefold() not in by_name:
            raise ValueError(f"unknown class {stripped!r}: give a class id (0..{n_classes - 1}) or a COCO-Stuff "
                             "name such as 'sky-other', 'sea', 'mountain' (the names are in the legend "
                             "`python -m ldm.cond_stage.palette OUT.png` draws)")
        label = by_name[stripped.casefold()]
    if not 0 <= label < n_classes:
        raise ValueError(f"unknown class {stripped!r}: this model's classes are 0..{n_classes - 1}")
    return label
