"""``comfy.cldm``: ComfyUI's ControlNet networks — not in Weft yet (see ``comfy.controlnet``)."""

from _weft_lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
