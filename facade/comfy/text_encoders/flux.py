"""``comfy.text_encoders.flux``: Flux's text encoders (CLIP-L + T5-XXL), not in Weft.

The classes are real and subclassable (with ComfyUI's bases), match no Weft object, and raise
:class:`_weft_absent.NotInWeftError` when constructed; ``flux_clip`` raises.
"""

from __future__ import annotations

from torch import nn

from _weft_absent import OTHER_FAMILIES, absent_class, absent_function
from comfy.sd1_clip import SDTokenizer


def _absent(name: str, base: type = object) -> type:
    return absent_class(OTHER_FAMILIES, __name__, name, (base,))


T5XXLTokenizer = _absent("T5XXLTokenizer", SDTokenizer)
FluxTokenizer = _absent("FluxTokenizer")
FluxClipModel = _absent("FluxClipModel", nn.Module)
flux_clip = absent_function(OTHER_FAMILIES, __name__, "flux_clip")
