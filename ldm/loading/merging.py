"""Model merging and weight scaling as lazy weight patches (ComfyUI's model-merge nodes).

A merge never writes a weight: it returns a patch table for a clone of the first model in which
each weight key gets one :class:`~ldm.lora.patches.WeightPatch` —
``w1 · strength_model + strength · w2`` — applied where LoRA patches are (``ldm.lora.patches``, the
memory manager). ``w2`` is the second model's weight as its own patches make it. Facts from ComfyUI's ``nodes_model_merging.py``:

* simple merge at ``ratio``: strength ``1 - ratio``, strength_model ``ratio`` (ratio 1 keeps model 1);
* add: ``(1, 1)``; subtract at ``multiplier``: ``(-multiplier, multiplier)``;
* block merges pick each key's ratio by the longest input name that is a prefix of its UNet key,
  the first input's ratio where none is;
* text-encoder merges skip ``position_ids`` and ``logit_scale``;
* attention multiply scales q/k/v/out weights and biases by a patch with no difference.

Weights are read as stored (:func:`stored_weights`): a memory manager may have swapped device
copies with the model's LoRA already in them into a loaded module.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterable, Mapping

import torch
from torch import nn

from ldm.lora.patches import DiffAdapter, ScaleOnly, WeightPatch, patched_weight
from ldm.memory.residency import managing_entry

log = logging.getLogger(__name__)

Patches = dict[str, list[WeightPatch]]
#: ``key -> (strength, strength_model)``, or None to leave the key alone.
Strengths = Callable[[str], "tuple[float, float] | None"]

#: Text-encoder tensors that are not merged (ComfyUI skips them).
CLIP_UNMERGED_SUFFIXES = (".position_ids", ".logit_scale")


def stored_weights(module: nn.Module) -> dict[str, torch.Tensor]:
    """``module``'s weights as stored: the originals a memory manager keeps while the module
    holds device copies, else the module's own state dict."""
    entry = managing_entry(module)
    return dict(entry.originals) if entry is not None else dict(module.state_dict())


def merge_patches(patches: Mapping[str, list[WeightPatch]], own: Mapping[str, torch.Tensor],
                  source: Mapping[str, torch.Tensor], source_patches: Mapping[str, list[WeightPatch]],
                  strengths: Strengths) -> Patches:
    """A new patch table: ``patches`` plus, for each key both weight sets hold, the source weight
    (with ``source_patches`` applied) blended in at ``strengths(key)``. A key whose shapes differ
    is left alone with a warning."""
    out = {key: list(found) for key, found in patches.items()}
    for key, weight in source.items():
        if key not in own:
            continue
        pair = strengths(key)
        if pair is None:
            continue
        if weight.shape != own[key].shape:
            log.warning("merge: %s has shape %s in the second model and %s in the first; not merged",
                        key, tuple(weight.shape), tuple(own[key].shape))
            continue
        found = source_patches.get(key)
        blended = patched_weight(weight, found) if found else weight
        strength, strength_model = pair
        out.setdefault(key, []).append(WeightPatch(float(strength), DiffAdapter(blended), float(strength_model)))
    return out


def simple(ratio: float) -> Strengths:
    return lambda key: (1.0 - ratio, ratio)


def add() -> Strengths:
    return lambda key: (1.0, 1.0)


def subtract(multiplier: float) -> Strengths:
    return lambda key: (-multiplier, multiplier)


def block_ratio(key: str, ratios: Mapping[str, float]) -> float:
    """The ratio of the longest name in ``ratios`` that prefixes ``key``; else the first ratio."""
    ratio, longest = next(iter(ratios.values())), 0
    for prefix, value in ratios.items():
        if key.startswith(prefix) and len(prefix) > longest:
            ratio, longest = value, len(prefix)
    return ratio


def blocks(ratios: Mapping[str, float]) -> Strengths:
    def strengths(key: str) -> tuple[float, float]:
        ratio = block_ratio(key, ratios)
        return 1.0 - ratio, ratio
    return strengths


def without_suffixes(strengths: Strengths, suffixes: Iterable[str]) -> Strengths:
    suffixes = tuple(suffixes)
    return lambda key: None if key.endswith(suffixes) else strengths(key)


def scale_patches(patches: Mapping[str, list[WeightPatch]], keys: Iterable[str],
                  scales: Mapping[str, float]) -> Patches:
    """A new patch table scaling each key that ends in ``<name>.weight`` / ``<name>.bias`` by
    ``scales[name]`` (the weight alone, as ComfyUI's ``(None,)`` patch at strength 0 does)."""
    out = {key: list(found) for key, found in patches.items()}
    for key in keys:
        module, _, tensor = key.rpartition(".")
        if tensor not in ("weight", "bias"):
            continue
        for name, scale in scales.items():
            if module.endswith(name):
                out.setdefault(key, []).append(WeightPatch(0.0, ScaleOnly(), float(scale)))
    return out
