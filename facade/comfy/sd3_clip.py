"""``comfy.sd3_clip``: where older ComfyUI releases kept SD3's text encoders; the same classes as
``comfy.text_encoders.sd3_clip`` (not in Weft: they match no Weft object and raise when constructed)."""

from __future__ import annotations

from comfy.text_encoders.sd3_clip import (SD3ClipModel, SD3Tokenizer, T5XXLModel, T5XXLTokenizer,  # noqa: F401
                                          sd3_clip, t5_xxl_detect)
