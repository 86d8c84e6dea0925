"""``comfy.gligen``: ComfyUI's GLIGEN classes — not Weft's (its GLIGEN is ``ldm.vision.gligen``).

The classes are real ``torch.nn.Module`` subclasses (packs patch methods onto ``Gligen`` at import,
as TiledDiffusion does) that raise :class:`_weft_absent.NotInWeftError` when constructed;
``load_gligen`` raises when called.
"""

from __future__ import annotations

from torch import nn

from _weft_absent import GLIGEN, absent_class, absent_function


def _absent(name: str, base: type = nn.Module) -> type:
    return absent_class(GLIGEN, __name__, name, (base,))


GatedCrossAttentionDense = _absent("GatedCrossAttentionDense")
GatedSelfAttentionDense = _absent("GatedSelfAttentionDense")
GatedSelfAttentionDense2 = _absent("GatedSelfAttentionDense2")
FourierEmbedder = _absent("FourierEmbedder", object)
PositionNet = _absent("PositionNet")
Gligen = _absent("Gligen")
load_gligen = absent_function(GLIGEN, __name__, "load_gligen")
