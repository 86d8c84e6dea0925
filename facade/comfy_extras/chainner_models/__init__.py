"""``comfy_extras.chainner_models``: ComfyUI's old upscale-model loader — upscale models are not in Weft yet."""

from _weft_lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
