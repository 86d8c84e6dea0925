"""``comfy.sdxl_clip``: ComfyUI's SDXL and Stable Cascade text-encoder classes, for class checks.

Packs test ``isinstance(clip.cond_stage_model, SDXLClipModel)`` and
``isinstance(clip.tokenizer, SDXLTokenizer)`` to tell SDXL from SD1. These classes are real and
subclassable, but match no Weft object: Weft's CLIP (:class:`ldm.text.handle.ClipHandle`) has no
``cond_stage_model`` and shares one tokenizer across families, so a check on it cannot tell the
family (read ``comfy.model_base.SDXL`` on the MODEL instead). Constructing one raises
:class:`_weft_absent.NotInWeftError`.
"""

from __future__ import annotations

from torch import nn

from _weft_absent import TEXT_ENCODER_CLASSES, absent_class
from comfy.sd1_clip import SD1ClipModel, SD1Tokenizer, SDClipModel, SDTokenizer


def _absent(name: str, *bases: type) -> type:
    return absent_class(TEXT_ENCODER_CLASSES, __name__, name, bases or (object,))


SDXLClipG = _absent("SDXLClipG", SDClipModel)
SDXLClipGTokenizer = _absent("SDXLClipGTokenizer", SDTokenizer)
SDXLTokenizer = _absent("SDXLTokenizer")
SDXLClipModel = _absent("SDXLClipModel", nn.Module)
SDXLRefinerClipModel = _absent("SDXLRefinerClipModel", SD1ClipModel)
StableCascadeClipGTokenizer = _absent("StableCascadeClipGTokenizer", SDTokenizer)
StableCascadeTokenizer = _absent("StableCascadeTokenizer", SD1Tokenizer)
StableCascadeClipG = _absent("StableCascadeClipG", SDClipModel)
StableCascadeClipModel = _absent("StableCascadeClipModel", SD1ClipModel)
