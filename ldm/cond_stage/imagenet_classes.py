"""ImageNet's 1000 class names, in the class-index order the paper's class-conditional models
(cin256, cin256-v2) were trained with: ILSVRC-2012's, the sorted WordNet synset ids
(0 = tench, 207 = golden retriever). The names are torchvision's ``_IMAGENET_CATEGORIES``
(BSD-3-Clause); provenance and licence are in ``imagenet_classes.json`` beside this module.

Names are matched as typed first, then ignoring case. torchvision keeps one name per class, so only
a name that two classes share ignoring case is ambiguous ("Cardigan" the corgi, 264, and
"cardigan" the sweater, 474): typed exactly it picks its class, otherwise the error lists both.
A name may also be a comma-separated list of synonyms ("goldfish, Carassius auratus", as other
ImageNet label lists write them): the first synonym that names a class decides.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

CLASS_LIST_FILE = Path(__file__).with_name("imagenet_classes.json")


@cache
def imagenet_class_names() -> tuple[str, ...]:
    """The 1000 names, indexed by class (read once; the tuple is immutable)."""
    names = json.loads(CLASS_LIST_FILE.read_text(encoding="utf-8"))["classes"]
    if len(names) != 1000:
        raise ValueError(f"{CLASS_LIST_FILE} holds {len(names)} ImageNet classes, not 1000")
    return tuple(names)


def _matches(name: str) -> list[int]:
    names = imagenet_class_names()
    exact = [index for index, known in enumerate(names) if known == name]
    if exact:
        return exact
    folded = name.casefold()
    return [index for index, known in enumerate(names) if known.casefold() == folded]


def imagenet_class_index(name: str) -> int:
    """The class index of ``name`` (see the module docstring). Raises ``ValueError`` naming the
    unknown or ambiguous name."""
    synonyms = [part.strip() for part in name.split(",") if part.strip()]
    if not synonyms:
        raise ValueError("an empty ImageNet class name")
    for synonym in synonyms:
        found = _matches(synonym)
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            listed = ", ".join(f"{index} ({imagenet_class_names()[index]!r})" for index in found)
            raise ValueError(f"the ImageNet class name {synonym!r} is ambiguous: it names classes {listed}; "
                             "type it exactly or give class_index")
    raise ValueError(f"{name!r} is not an ImageNet class name; the 1000 names (torchvision's, e.g. "
                     f"'golden retriever', 'tench') are listed in {CLASS_LIST_FILE.name} "
                     "(ldm/cond_stage/), or give class_index")
