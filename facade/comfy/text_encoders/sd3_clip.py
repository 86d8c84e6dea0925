"""``comfy.text_encoders.sd3_clip`` (and the older ``comfy.sd3_clip``): SD3's text encoders, not in Weft.

Packs import ``SD3ClipModel`` / ``T5XXLModel`` to test ``isinstance(clip.cond_stage_model, …)``.
The classes are real and subclassable (with ComfyUI's bases), match no Weft object, and raise
:class:`_weft_absent.NotInWeftError` when constructed; ``sd3_clip`` and ``t5_xxl_detect`` raise.
"""

from __future__ import annotations

from torch import nn

from _weft_absent import OTHER_FAMILIES, absent_class, absent_function
from comfy.sd1_clip import SDClipModel, SDTokenizer


def _absent(name: str, base: type = object) -> type:
    return absent_class(OTHER_FAMILIES, __name__, name, (base,))


T5XXLModel = _absent("T5XXLModel", SDClipModel)
T5XXLTokenizer = _absent("T5XXLTokenizer", SDTokenizer)
SD3Tokenizer = _absent("SD3Tokenizer")
SD3ClipModel = _absent("SD3ClipModel", nn.Module)
t5_xxl_detect = absent_function(OTHER_FAMILIES, __name__, "t5_xxl_detect")
sd3_clip = absent_function(OTHER_FAMILIES, __name__, "sd3_clip")
