"""``comfy.k_diffusion``: Weft's k-diffusion-style samplers under ComfyUI's module path."""

from _weft_lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
