"""``comfy.ldm.anima``: ComfyUI's Anima model (a Cosmos-based DiT) and its ControlNet-LLLite, not in Weft.

Packs import ``comfy.ldm.anima.lllite`` to offer Anima LLLite loaders (Advanced-ControlNet). The
modules exist so such packs load their other nodes; every class is a real ``torch.nn.Module`` (or
plain) subclass that matches no Weft object and raises :class:`_weft_absent.NotInWeftError` when
constructed, so the node that needs it fails with that error.
"""
