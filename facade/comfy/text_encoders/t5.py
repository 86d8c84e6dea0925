"""``comfy.text_encoders.t5``: ComfyUI's T5 encoder (SD3, Flux, video families), not in Weft.

The classes are real ``torch.nn.Module`` subclasses that raise
:class:`_weft_absent.NotInWeftError` when constructed.
"""

from __future__ import annotations

from torch import nn

from _weft_absent import OTHER_FAMILIES, absent_class


def _absent(name: str) -> type:
    return absent_class(OTHER_FAMILIES, __name__, name, (nn.Module,))


T5LayerNorm = _absent("T5LayerNorm")
T5DenseActDense = _absent("T5DenseActDense")
T5DenseGatedActDense = _absent("T5DenseGatedActDense")
T5LayerFF = _absent("T5LayerFF")
T5Attention = _absent("T5Attention")
T5LayerSelfAttention = _absent("T5LayerSelfAttention")
T5Block = _absent("T5Block")
T5Stack = _absent("T5Stack")
T5 = _absent("T5")
