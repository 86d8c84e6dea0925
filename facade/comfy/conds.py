"""``comfy.conds``: ComfyUI's batchable model inputs are Weft's own (:mod:`ldm.sampling.model_conds`).

``CONDRegular``, ``CONDNoiseShape`` and ``CONDCrossAttn`` subclass Weft's ``RegularInput``,
``NoiseShapedInput`` and ``CrossAttnInput``; ``CONDConstant`` and ``CONDList`` are the same kind
of input for a non-tensor value and for a list of tensors. So an object built here that reaches
Weft's guidance as a model input (a builder of :data:`ldm.sampling.model_conds.MODEL_CONDS_BY_FAMILY`
returns such objects) is cropped, repeated and batched exactly as Weft's own inputs are, and
ComfyUI's methods work on Weft's objects too: ``cond``, ``process_cond(batch_size, area=…)``,
``can_concat(other)``, ``concat(others)``, ``size()``. Not yet read by Weft's guidance: a
``model_conds`` dict inside a conditioning entry, and ``extra_conds`` object patches on the model.

``concat`` is called two ways: Weft's guidance asks the class (``Class.concat(items)``),
ComfyUI code asks the first item (``first.concat(others)``); :class:`_Concat` answers both.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from ldm.sampling.model_conds import CrossAttnInput, NoiseShapedInput, RegularInput, repeat_to_batch_size

__all__ = ["CONDRegular", "CONDNoiseShape", "CONDCrossAttn", "CONDConstant", "CONDList"]


class _Concat:
    """``Class.concat(items)`` → ``combine(items)``; ``item.concat(others)`` → ``combine([item, *others])``."""

    def __init__(self, combine: Callable[[list], Any]) -> None:
        self.combine = combine

    def __get__(self, obj: Any, owner: type) -> Callable:
        if obj is None:
            return self.combine
        return lambda others: self.combine([obj, *others])


class _ComfyMethods:
    """ComfyUI's names over a Weft model input (``value`` is ComfyUI's ``cond``)."""

    value: Any

    @property
    def cond(self) -> Any:
        return self.value

    def _copy_with(self, cond: Any) -> Any:
        return type(self)(cond)

    def process(self, batch_size: int, area: Any) -> Any:
        # Weft's guidance calls process(); routing it through process_cond lets a subclass that
        # overrides ComfyUI's method be honoured by Weft's sampler.
        return self.process_cond(batch_size, area=area)

    def size(self) -> list[int]:
        return list(self.value.size())


class CONDRegular(_ComfyMethods, RegularInput):
    """A per-batch-item tensor; batches with others of the same shape."""

    def process_cond(self, batch_size: int, area: Any = None, **kwargs: Any) -> "CONDRegular":
        return RegularInput.process(self, batch_size, area)

    concat = _Concat(RegularInput.concat)


class CONDNoiseShape(_ComfyMethods, NoiseShapedInput):
    """Shaped like the latent: cropped to the conditioning's area as x is."""

    def process_cond(self, batch_size: int, area: Any = None, **kwargs: Any) -> "CONDNoiseShape":
        return NoiseShapedInput.process(self, batch_size, area)

    concat = _Concat(NoiseShapedInput.concat)


class CONDCrossAttn(_ComfyMethods, CrossAttnInput):
    """Text embeddings; different token counts batch by repetition (Weft's rule, ComfyUI's limit of 4×)."""

    def process_cond(self, batch_size: int, area: Any = None, **kwargs: Any) -> "CONDCrossAttn":
        return CrossAttnInput.process(self, batch_size, area)

    concat = _Concat(CrossAttnInput.concat)


class CONDConstant(CONDRegular):
    """A value handed to the model unchanged (not per batch item); batches only with an equal one."""

    def process_cond(self, batch_size: int, area: Any = None, **kwargs: Any) -> "CONDConstant":
        return self

    def can_concat(self, other: Any) -> bool:
        return bool(self.value == other.value)

    concat = _Concat(lambda items: items[0].value)

    def size(self) -> list[int]:
        return [1]


def _concat_lists(items: list["CONDList"]) -> list[torch.Tensor]:
    return [torch.cat([item.value[i] for item in items]) for i in range(len(items[0].value))]


class CONDList(CONDRegular):
    """A list of per-batch-item tensors, batched position by position."""

    def process_cond(self, batch_size: int, area: Any = None, **kwargs: Any) -> "CONDList":
        return type(self)([repeat_to_batch_size(t, batch_size) for t in self.value])

    def can_concat(self, other: Any) -> bool:
        return len(self.value) == len(other.value) and all(
            a.shape == b.shape for a, b in zip(self.value, other.value))

    concat = _Concat(_concat_lists)

    def size(self) -> list[int]:
        """``[1, width, elements / width]`` over all tensors (what memory estimates read)."""
        width = 1
        total = 0
        for tensor in self.value:
            total += math.prod(tensor.size())
            if tensor.ndim > 1:
                width = tensor.shape[1]
        return [1, width, total // width]
