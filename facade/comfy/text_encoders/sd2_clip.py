"""``comfy.text_encoders.sd2_clip``: ComfyUI's SD2 text-encoder classes, for class checks.

As ``comfy.sd1_clip``'s classes: real and subclassable, matching no Weft object (Weft's CLIP has no
``cond_stage_model``), raising :class:`_weft_absent.NotInWeftError` when constructed.
"""

from __future__ import annotations

from _weft_absent import TEXT_ENCODER_CLASSES, absent_class
from comfy.sd1_clip import SD1ClipModel, SD1Tokenizer, SDClipModel, SDTokenizer


def _absent(name: str, base: type) -> type:
    return absent_class(TEXT_ENCODER_CLASSES, __name__, name, (base,))


SD2ClipHModel = _absent("SD2ClipHModel", SDClipModel)
SD2ClipHTokenizer = _absent("SD2ClipHTokenizer", SDTokenizer)
SD2Tokenizer = _absent("SD2Tokenizer", SD1Tokenizer)
SD2ClipModel = _absent("SD2ClipModel", SD1ClipModel)
