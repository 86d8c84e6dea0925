"""Re-predicting one side of CFG inside a post-cfg hook, as ComfyUI's ``calc_cond_batch`` lets
SAG and PAG do: the model of the hook's ``args`` with other (or extra) UNet patches."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

from torch import Tensor

from ldm.sampling.guidance import GuidedModel, calc_cond_batch


def with_attn1_replaced(model: GuidedModel, replacement: Callable, block: tuple) -> GuidedModel:
    """``model`` whose self-attention core at ``block`` (e.g. ``("middle", 0)``) is ``replacement``."""
    hooks = model.hooks.clone()
    table = hooks.transformer_options.setdefault("patches_replace", {}).setdefault("attn1", {})
    table[block] = replacement
    return replace(model, hooks=hooks)


def predict_side(model: GuidedModel, entries: Any, x: Tensor, sigma: Tensor) -> Tensor:
    """The denoised prediction of one side's conditioning entries at ``x``, ``sigma``."""
    return calc_cond_batch(model, [entries], x, sigma)[0]
