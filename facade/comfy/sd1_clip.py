"""``comfy.sd1_clip``: ComfyUI's prompt-weight helpers (Weft's parser) and its text-encoder classes.

``token_weights``, ``escape_important``, ``unescape_important`` and ``parse_parentheses`` are
Weft's own prompt parser (``ldm.text.prompt``), which reads ComfyUI's syntax; ``expand_directory_list``
lists folders with their sub-folders.

The classes (``SD1ClipModel``, ``SDClipModel``, ``SDTokenizer`` …) are real and subclassable, but
no Weft object is an instance of them: Weft's CLIP is :class:`ldm.text.handle.ClipHandle`, which
has no ``cond_stage_model`` (the object packs test with these classes) and one tokenizer for
every family. Constructing one raises :class:`_weft_absent.NotInWeftError`.
"""

from __future__ import annotations

import os
from typing import Iterable

from torch import nn

from _weft_absent import TEXT_ENCODER_CLASSES, absent_class
from ldm.text.prompt import escape_parentheses, parse_weights, split_top_level_groups, unescape_parentheses

#: ``"a (b:1.2)"`` (escaped) → ``[("a ", 1.0), ("b", 1.2)]``.
token_weights = parse_weights
#: ``\\(`` / ``\\)`` → placeholder characters, so they survive :func:`token_weights`.
escape_important = escape_parentheses
unescape_important = unescape_parentheses
#: Plain runs and top-level ``( … )`` groups of a prompt.
parse_parentheses = split_top_level_groups


def expand_directory_list(directories: Iterable[str | os.PathLike]) -> list:
    """The given folders and every folder below them (symbolic links followed), without repeats."""
    found = set()
    for directory in directories:
        found.add(directory)
        found.update(root for root, _, _ in os.walk(directory, followlinks=True))
    return list(found)


def _absent(name: str, *bases: type) -> type:
    return absent_class(TEXT_ENCODER_CLASSES, __name__, name, bases or (object,))


ClipTokenWeightEncoder = _absent("ClipTokenWeightEncoder")
SDClipModel = _absent("SDClipModel", nn.Module, ClipTokenWeightEncoder)
SD1CheckpointClipModel = _absent("SD1CheckpointClipModel", SDClipModel)
SD1ClipModel = _absent("SD1ClipModel", nn.Module)
SDTokenizer = _absent("SDTokenizer")
SD1Tokenizer = _absent("SD1Tokenizer")
