"""ComfyUI's ``comfy`` package as node packs import it: thin translations onto Weft's objects.
Submodules are importable as attributes (``import comfy; comfy.samplers``), see _weft_lazy."""

from _weft_lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
