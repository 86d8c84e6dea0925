"""``comfy.ldm.lumina.model``: Lumina 2's NextDiT layers, not in Weft. The classes are real
``torch.nn.Module`` subclasses (packs patch methods onto ``FeedForward``) that match no Weft layer
and raise :class:`_weft_absent.NotInWeftError` when constructed; ``modulate`` raises when called."""

from __future__ import annotations

from torch import nn

from _weft_absent import OTHER_FAMILIES, absent_class, absent_function


def _absent(name: str) -> type:
    return absent_class(OTHER_FAMILIES, __name__, name, (nn.Module,))


modulate = absent_function(OTHER_FAMILIES, __name__, "modulate")
JointAttention = _absent("JointAttention")
FeedForward = _absent("FeedForward")
JointTransformerBlock = _absent("JointTransformerBlock")
FinalLayer = _absent("FinalLayer")
NextDiT = _absent("NextDiT")
