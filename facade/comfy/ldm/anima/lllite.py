"""``comfy.ldm.anima.lllite``: ControlNet-LLLite for Anima models, not in Weft (see the package)."""

from __future__ import annotations

from torch import nn

from _weft_absent import OTHER_FAMILIES, absent_class


def _absent(name: str, base: type = nn.Module) -> type:
    return absent_class(OTHER_FAMILIES, __name__, name, (base,))


AnimaLLLiteResBlock = _absent("AnimaLLLiteResBlock")
AnimaLLLiteASPP = _absent("AnimaLLLiteASPP")
AnimaLLLiteConditioning = _absent("AnimaLLLiteConditioning")
AnimaLLLiteModule = _absent("AnimaLLLiteModule")
AnimaLLLite = _absent("AnimaLLLite")
AnimaLLLitePatch = _absent("AnimaLLLitePatch", object)
AnimaLLLiteAttentionPatch = _absent("AnimaLLLiteAttentionPatch", object)
AnimaLLLiteMLPPatch = _absent("AnimaLLLiteMLPPatch", object)
