"""``comfy.ldm``: ComfyUI's model-code package paths, re-exporting Weft's own layers (see
``modules.attention``, ``modules.diffusionmodules``, ``modules.distributions``, ``models``)."""

from _weft_lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
