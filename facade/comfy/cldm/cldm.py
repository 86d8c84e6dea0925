"""``comfy.cldm.cldm``: ComfyUI's ControlNet network class — not in Weft yet.

``ControlNet`` is a real ``torch.nn.Module`` subclass so packs can subclass it or read it at
import; constructing one raises :class:`_weft_absent.NotInWeftError`.
"""

from __future__ import annotations

from torch import nn

from _weft_absent import CONTROLNET, absent_class

ControlNet = absent_class(CONTROLNET, __name__, "ControlNet", (nn.Module,))
