"""``comfy.ldm.anima.model``: the Anima diffusion model, not in Weft (see the package)."""

from __future__ import annotations

from torch import nn

from _weft_absent import OTHER_FAMILIES, absent_class


def _absent(name: str) -> type:
    return absent_class(OTHER_FAMILIES, __name__, name, (nn.Module,))


RotaryEmbedding = _absent("RotaryEmbedding")
Attention = _absent("Attention")
TransformerBlock = _absent("TransformerBlock")
LLMAdapter = _absent("LLMAdapter")
Anima = _absent("Anima")
